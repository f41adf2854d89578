"""The 1st-order benchmark's home: ``u_t = u + lambda(t)`` on ``t in [0, 1]``.

Everything about this PDE lives here: the residual, the direct formula
``lambda = u_t - u``, the training defaults and the builder of the benchmark problem;
the data come from the independent solver :func:`~mollifier.problems.forward.simulate_langevin`.

Example:
    >>> from mollifier.problems.langevin import build
    >>> build(grid=64, noise=0.0).grid.shape
    (64,)
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np

from ..core.grid import Grid
from ..inverse.problem import InverseProblem, UnknownField
from .forward import simulate_langevin
from .synthetic import observe, unknown_backbone

__all__ = ["DERIVATIVES", "ORDER", "TRAINING", "build", "direct", "residual"]

ORDER = 1
"""Highest derivative order in the residual."""

DERIVATIVES = {"u_t": (1,)}
"""Named derivatives the residual and the direct formula read."""

TRAINING = MappingProxyType({"steps": 3000, "lbfgs_steps": 300})
"""Training settings the benchmark runs with unless the user overrides them."""


def residual(d, p, k):
    """``u_t - u - lambda``."""
    return d["u_t"] - d["u"] - p["lambda"]


def direct(d, k):
    """``lambda = u_t - u`` read off the (mollified) field."""
    return {"lambda": d["u_t"] - d["u"]}


def build(grid: int = 256, noise: float = 0.05, density: float = 1.0, seed: int = 0, *, prior: str = "gp",
          **options: Any) -> InverseProblem:
    """The benchmark problem: recover the forcing ``lambda(t)`` from noisy ``u(t)``.

    Args:
        grid: Time samples.
        noise: Relative noise level.
        density: Fraction of samples observed.
        seed: Seed of the forcing, the noise and the mask.
        prior: The unknown's representation: ``gp`` (default: a Gaussian-process prior whose
            settings come from the data, :mod:`mollifier.inverse.priors`) or ``network`` (an MLP).
        **options: Passed to :func:`~mollifier.problems.forward.simulate_langevin`.
    """
    data = simulate_langevin(n=grid, rng=seed, **options)
    t = data["t"]
    g = Grid.from_bounds([(float(t[0]), float(t[-1]))], (grid,))
    return InverseProblem(
        name="langevin",
        grid=g,
        observations=observe(data["u"], noise, density, seed),
        derivatives=DERIVATIVES,
        unknowns=[UnknownField("lambda", init=0.0, positive=False, backbone=unknown_backbone(prior))],
        residual=residual,
        direct=direct,
        truth={"lambda": data["lambda"]},
        radius=8 * g.spacing[0],
        residual_scale=float(np.abs(data["lambda"]).std() + 1e-12),
        residual_weight=0.1,
        description="1st order Langevin-type ODE u_t = u + lambda(t)",
    )
