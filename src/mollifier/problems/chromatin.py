r"""The 4th-order chromatin model's home: constants, equations, recovery, guess, benchmark.

Volume fractions on a 2-D nucleus section (Kant et al., Nat. Commun. 15, 2024):
heterochromatin ``phi_h``, euchromatin ``phi_e``, total ``phi_c = phi_h + phi_e`` and
``phi_d = phi_h - phi_e``. The steady state used for inference is

.. math::

    \mu_d = -\phi_e + \phi_h(\phi_{max} - \phi_h)(\phi_{max} - 2\phi_h) - l^2 \Delta\phi_d,
    \qquad 0 = \Delta\mu_d + 2(\lambda\phi_e - \phi_h),

with ``lambda = Gamma_me / Gamma_ac`` the methylation-to-acetylation rate ratio. Here,
in one place:

- :class:`ChromatinConstants` and :data:`CHROMATIN` (the published ``phi_c``,
  ``phi_max``, ``l``) and :data:`BENCHMARK` (the benchmark's regime, ``l = 0.3``);
- :func:`fields` (``phi_h``, ``phi_e``, ``lap(mu_d)`` from derivatives of ``phi_d``),
  :func:`equations` (the residual and the direct formula
  ``lambda = (phi_h - lap(mu_d)/2) / phi_e``) and :data:`DERIVATIVES` they read;
- :func:`equilibrium_guess`, the derivative-free baseline ``lambda ~ phi_h / phi_e``;
- :func:`simulate`, the hook to the independent forward solver
  (:func:`~mollifier.problems.forward.simulate_chromatin`);
- :data:`TRAINING` defaults and :func:`build`, the benchmark problem.

The imaging application (:mod:`mollifier.chromatin`) reads the same constants and
equations.

Example:
    >>> from mollifier.problems.chromatin import CHROMATIN, equilibrium_guess
    >>> CHROMATIN.phi_c, CHROMATIN.phi_max, CHROMATIN.l
    (0.8, 0.7, 0.03)
    >>> float(equilibrium_guess(0.0, CHROMATIN.phi_c))
    1.0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from ..core.grid import Grid
from ..core.operators import biharmonic, laplacian
from ..inverse.model import guarded_divide
from ..inverse.problem import InverseProblem, UnknownField
from .forward import simulate_chromatin
from .synthetic import observe, unknown_backbone

__all__ = [
    "BENCHMARK",
    "CHROMATIN",
    "DERIVATIVES",
    "ORDER",
    "TRAINING",
    "ChromatinConstants",
    "build",
    "equations",
    "equilibrium_guess",
    "fields",
    "simulate",
]

ORDER = 4
"""Highest derivative order in the residual."""


@dataclass(frozen=True)
class ChromatinConstants:
    """The model's physical constants (non-dimensional).

    Attributes:
        phi_c: Total chromatin fraction ``phi_h + phi_e``, in (0, 1].
        phi_max: ``phi_max`` of the chemical potential.
        l: Interface parameter (length of the ``l^2 lap(phi_d)`` term).
    """

    phi_c: float = 0.8
    phi_max: float = 0.7
    l: float = 0.03  # noqa: E741

    def replace(self, **changes: float) -> "ChromatinConstants":
        """A copy with some constants changed."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, float]:
        """``{"phi_c": ..., "phi_max": ..., "l": ...}`` (the solver's keyword arguments)."""
        return dataclasses.asdict(self)


CHROMATIN = ChromatinConstants()
"""The published constants: ``phi_c = 0.8``, ``phi_max = 0.7``, ``l = 0.03``."""

BENCHMARK = CHROMATIN.replace(l=0.3)
"""The benchmark's regime: a larger interface parameter ``l = 0.3``, where derivatives
matter (the derivative-free guess reaches only Pearson ~0.83 there)."""

DERIVATIVES = {"d0": (1, 0), "d1": (0, 1), "lap": laplacian(2), "bilap": biharmonic(2)}
"""Named derivatives of ``phi_d`` that :func:`fields` reads."""

TRAINING = MappingProxyType({"steps": 3000, "residual_warmup": 1000, "recovery": "learned"})
"""Benchmark training defaults: fit the data first (the ``l^2`` bilap residual otherwise
freezes the field), then couple; the learned rate-ratio network beats the direct formula."""


def fields(d: dict[str, torch.Tensor], constants: ChromatinConstants) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``phi_h``, ``phi_e`` and ``lap(mu_d)`` from derivatives of the field ``phi_d``.

    ``lap(mu_d) = mu'(phi_d) lap(phi_d) + mu''(phi_d) |grad phi_d|^2 - l^2 bilap(phi_d)``
    with ``mu(phi_d) = -phi_e + f(phi_h)``, ``f(h) = h (a - h)(a - 2h)``, ``a = phi_max``,
    ``d phi_h / d phi_d = 1/2``, ``d phi_e / d phi_d = -1/2``.
    """
    phi_c, a, l = constants.phi_c, constants.phi_max, constants.l  # noqa: E741
    phi_d = d["u"][:, :1]
    phi_h = (phi_c + phi_d) / 2
    phi_e = (phi_c - phi_d) / 2
    d_mu = 0.5 + (a * a - 6 * a * phi_h + 6 * phi_h * phi_h) / 2
    d2_mu = (-6 * a + 12 * phi_h) / 4
    grad2 = d["d0"][:, :1] ** 2 + d["d1"][:, :1] ** 2
    lap_mu = d_mu * d["lap"][:, :1] + d2_mu * grad2 - l * l * d["bilap"][:, :1]
    return phi_h, phi_e, lap_mu


def equations(constants: ChromatinConstants) -> tuple[Callable, Callable]:
    """The residual ``lap(mu_d) + 2 (lambda phi_e - phi_h)`` and its direct recovery
    ``lambda = (phi_h - lap(mu_d) / 2) / phi_e`` (guarded), as ``(residual, direct)``."""

    def residual(d, p, k):
        phi_h, phi_e, lap_mu = fields(d, constants)
        return lap_mu + 2 * (p["lambda"] * phi_e - phi_h)

    def direct(d, k):
        phi_h, phi_e, lap_mu = fields(d, constants)
        return {"lambda": guarded_divide(phi_h - lap_mu / 2, phi_e, 0.01)}

    return residual, direct


def equilibrium_guess(phi_d: Any, phi_c: float) -> np.ndarray:
    """Derivative-free baseline at reaction equilibrium: ``lambda ~ phi_h / phi_e`` from ``phi_d``.

    Exact where the reaction is at equilibrium (``lap(mu_d) = 0``), e.g. for a constant
    ``lambda``; a low-pass image of ``lambda`` otherwise.
    """
    phi_d = np.asarray(phi_d, dtype=np.float64)
    return (phi_c + phi_d) / np.maximum(phi_c - phi_d, 1e-6)


def simulate(n: int, L: float, constants: ChromatinConstants, **options: Any) -> dict[str, Any]:
    """Steady state of the model from the independent solver, with these constants."""
    return simulate_chromatin(n=n, L=L, **constants.as_dict(), **options)


def build(
    grid: int = 64,
    noise: float = 0.05,
    density: float = 1.0,
    seed: int = 0,
    *,
    correlation_length: float = 0.6,
    l: float = BENCHMARK.l,  # noqa: E741
    phi_c: float = BENCHMARK.phi_c,
    phi_max: float = BENCHMARK.phi_max,
    sigma: float = 0.5,
    L: float = 5.0,
    prior: str = "gp",
    **options: Any,
) -> InverseProblem:
    """The benchmark problem: recover ``lambda(x, y)`` from noisy ``phi_d`` at steady state.

    The observed field is ``phi_d = phi_h - phi_e`` (``phi_c`` known), periodic on
    ``[0, L)^2``. The default regime (:data:`BENCHMARK`: correlation length 0.6 of
    ``lambda``, ``l = 0.3``, period ``L = 5`` on 64^2: 7.7 cells per correlation length)
    is one where the derivative-free guess ``phi_h / phi_e`` is clearly worse than the
    true field (Pearson ~0.84 over seeds, 0.83 for seed 0), so derivatives matter. The
    mollifier radius is 5 cells: 4th derivatives of 5 %-noisy data need that much smoothing.
    ``prior``: the unknown's representation, ``gp`` (default: a Gaussian-process prior whose
    settings come from the data, :mod:`mollifier.inverse.priors`) or ``network`` (an MLP);
    docs/benchmarks.md compares them cell by cell.
    """
    constants = ChromatinConstants(phi_c=phi_c, phi_max=phi_max, l=l)
    data = simulate(grid, L, constants, correlation_length=correlation_length, sigma=sigma, rng=seed, **options)
    g = Grid.from_bounds([(0.0, L), (0.0, L)], (grid, grid), periodic=True)
    residual, direct = equations(constants)
    obs = observe(data["phi_d"], noise, density, seed)
    guess = equilibrium_guess(obs.values, phi_c)
    return InverseProblem(
        name="chromatin",
        grid=g,
        observations=obs,
        derivatives=DERIVATIVES,
        unknowns=[UnknownField("lambda", init=1.0, positive=True, backbone=unknown_backbone(prior))],
        residual=residual,
        direct=direct,
        truth={"lambda": data["lambda"], "phi_d": data["phi_d"]},
        known={},
        boundary="periodic",
        radius=5 * g.spacing[0],
        residual_scale=1.0,
        residual_weight=0.01,
        field_names=("phi_d",),
        baselines={"equilibrium_guess": guess} if density == 1 else {},
        description="4th order chromatin reaction-diffusion, 0 = lap(mu_d) + 2(lambda phi_e - phi_h)",
    )
