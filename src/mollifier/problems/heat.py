"""The 2nd-order benchmark's home: steady heat ``0 = lambda(x, y) lap(u) + m(x, y)``.

On the unit square with ``u = 0`` on the edge and a known source ``m``. Here: the
residual, the guarded direct formula ``lambda = -m / lap(u)``, the training defaults and
the builder; data from :func:`~mollifier.problems.forward.simulate_heat`.

Example:
    >>> from mollifier.problems.heat import build
    >>> build(grid=32, noise=0.05, seed=1).parameter
    'lambda'
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np

from ..core.grid import Grid
from ..core.operators import laplacian
from ..inverse.model import guarded_divide
from ..inverse.problem import InverseProblem, UnknownField
from .forward import simulate_heat
from .synthetic import observe, unknown_backbone

__all__ = ["DERIVATIVES", "EDGE_BAND", "ORDER", "TRAINING", "build", "direct_formula", "residual"]

ORDER = 2
"""Highest derivative order in the residual."""

DERIVATIVES = {"lap": laplacian(2)}
"""Named derivatives the residual and the direct formula read."""

EDGE_BAND = 3
"""Cells along the edge left out of the metrics (``u`` has corner singularities there:
``m / lambda`` does not vanish at the corners)."""

TRAINING = MappingProxyType({"steps": 2000})
"""Training settings the benchmark runs with unless the user overrides them."""


def residual(d, p, k):
    """``lambda lap(u) + m``."""
    return p["lambda"] * d["lap"] + k["m"]


def direct_formula(floor: float):
    """``lambda = -m / lap(u)``, damped where ``|lap u| < floor`` (:func:`guarded_divide`)."""

    def direct(d, k):
        return {"lambda": guarded_divide(-k["m"], d["lap"], floor)}

    return direct


def build(grid: int = 64, noise: float = 0.05, density: float = 1.0, seed: int = 0, *, prior: str = "gp",
          **options: Any) -> InverseProblem:
    """The benchmark problem: recover the diffusivity ``lambda(x, y)`` from noisy ``u``.

    Args:
        grid: Samples per axis.
        noise: Relative noise level.
        density: Fraction of grid points observed.
        seed: Seed of the diffusivity, the noise and the mask.
        prior: The unknown's representation: ``gp`` (default: a Gaussian-process prior whose
            settings come from the data, :mod:`mollifier.inverse.priors`) or ``network`` (an MLP).
        **options: Passed to :func:`~mollifier.problems.forward.simulate_heat`.
    """
    data = simulate_heat(n=grid, rng=seed, **options)
    g = Grid.from_bounds([(0.0, 1.0), (0.0, 1.0)], (grid, grid))
    source = data["source"]
    floor = 0.05 * float(np.abs(source / data["lambda"]).mean())
    band = np.zeros((grid, grid), dtype=bool)
    band[EDGE_BAND:-EDGE_BAND, EDGE_BAND:-EDGE_BAND] = True
    return InverseProblem(
        name="heat",
        grid=g,
        observations=observe(data["u"], noise, density, seed),
        derivatives=DERIVATIVES,
        unknowns=[UnknownField("lambda", init=1.0, positive=True, backbone=unknown_backbone(prior))],
        residual=residual,
        direct=direct_formula(floor),
        truth={"lambda": data["lambda"]},
        known={"m": source},
        radius=4 * g.spacing[0],
        residual_scale=float(np.abs(source).mean()),
        residual_weight=0.1,
        metric_mask=band,
        description="2nd order steady heat 0 = lambda(x,y) lap(u) + m(x,y)",
    )
