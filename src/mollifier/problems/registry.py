"""The table of built-in problems: one immutable entry per PDE, read by the CLI, the bench
suite and the imaging application.

Example:
    >>> from mollifier.problems import PROBLEMS
    >>> [(name, spec.order) for name, spec in PROBLEMS.items()]
    [('langevin', 1), ('heat', 2), ('chromatin', 4)]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from ..core.errors import check_choice, check_positive_int
from ..inverse.problem import InverseProblem
from . import chromatin, heat, langevin

__all__ = ["PROBLEMS", "ProblemSpec", "make_problem"]


@dataclass(frozen=True)
class ProblemSpec:
    """One built-in problem.

    Attributes:
        name: Its name on the command line.
        order: Highest derivative order in its residual (None: not stated).
        summary: The PDE and its unknown, in one line.
        build: ``build(grid=..., noise=..., density=..., seed=..., **options)`` makes the
            problem (a user's file may accept fewer of these).
        training: Training settings it runs with unless the user overrides them.
        networks: Optional ``networks(problem) -> {field: torch.nn.Module}`` (a user's
            file may provide its own networks).
    """

    name: str
    order: int | None
    summary: str
    build: Callable[..., InverseProblem]
    training: Mapping[str, Any]
    networks: Callable[[InverseProblem], Mapping[str, Any]] | None = None

    def training_defaults(self) -> dict[str, Any]:
        """A mutable copy of :attr:`training`."""
        return dict(self.training)


PROBLEMS: Mapping[str, ProblemSpec] = MappingProxyType(
    {
        "langevin": ProblemSpec("langevin", langevin.ORDER, "u_t = u + lambda(t); forcing lambda(t)", langevin.build, langevin.TRAINING),
        "heat": ProblemSpec("heat", heat.ORDER, "0 = lambda(x,y) lap(u) + m(x,y); diffusivity lambda", heat.build, heat.TRAINING),
        "chromatin": ProblemSpec(
            "chromatin", chromatin.ORDER, "0 = lap(mu_d) + 2(lambda phi_e - phi_h); rate ratio lambda", chromatin.build, chromatin.TRAINING
        ),
    }
)
"""Built-in problems by name (read-only)."""


def make_problem(name: str, grid: int | None = None, noise: float = 0.05, density: float = 1.0, seed: int = 0, **options: Any) -> InverseProblem:
    """Build a built-in problem with synthetic data.

    Args:
        name: One of :data:`PROBLEMS` (``langevin``, ``heat``, ``chromatin``).
        grid: Samples per axis (default: the problem's).
        noise: Relative Gaussian noise level (0.05 = 5 % of the field's std).
        density: Fraction of grid points observed (1: all).
        seed: Seed of the ground truth, the noise and the mask.
        **options: Problem-specific options (e.g. ``correlation_length`` for chromatin).
    """
    check_choice("problem", name, tuple(PROBLEMS))
    if not isinstance(noise, (int, float)) or isinstance(noise, bool) or not np.isfinite(noise) or noise < 0:
        raise ValueError(f"`noise` must be a number >= 0 (0.05 for 5 %); got {noise!r}")
    check_positive_int("seed", seed, minimum=0)
    kwargs: dict[str, Any] = {"noise": float(noise), "density": density, "seed": seed, **options}
    if grid is not None:
        kwargs["grid"] = check_positive_int("grid", grid, minimum=8)
    return PROBLEMS[name].build(**kwargs)
