"""PINNacle's HeatInv: u_t = div(a grad u) + f on [-1, 1]^2 x [0, 1], with a(x, y) unknown.

The task (PINNacle, Hao et al., NeurIPS 2024 Datasets and Benchmarks; its
``src/pde/inverse.py``): truth ``u = exp(-t) sin(pi x) sin(pi y)`` and
``a = 2 + sin(pi x) sin(pi y)`` (no ``t``); ``u`` observed at the 2,500 scattered points
of ``heatinv_points.dat`` (shipped in ``docs/examples/data``) with Gaussian noise of
standard deviation 0.1; ``a`` known on the spatial boundary. Metric: relative L2 error of
``a`` on a 50 x 50 grid of ``(x, y)``.

Posed here: the residual on a 50 x 50 x 11 grid of ``(x, y, t)``; ``a`` a field on the
axes ``(x, y)`` only (its network is blind to ``t``), with its own derivatives from the
same engine; the data term evaluates the field's network at the scattered points.

Run it: ``mollifier run docs/examples/pinnacle_heat_inv.py --seed 0 --json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mollifier import Grid
from mollifier.inverse import Dirichlet, InverseProblem, ScatteredObservations, UnknownField
from mollifier.inverse.residuals import div_a_grad, gradient_requests, laplacian_requests

POINTS = Path(__file__).with_name("data") / "heatinv_points.dat"
"""The 2,500 observation points (x, y, t) of PINNacle's HeatInv."""

NOISE = 0.1
"""Standard deviation of the Gaussian noise on ``u`` (absolute)."""

TRAINING = {
    "steps": 3000,
    "lr": 3e-3,
    "lr_final": 3e-4,
    "residual_warmup": 500,
    "log_every": 100,
    "backbone_options": {"width": 64, "depth": 4},
}
"""Training settings this task runs with (flags override them)."""


def u_true(x: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.exp(-t) * np.sin(np.pi * x) * np.sin(np.pi * y)


def a_true(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 2.0 + np.sin(np.pi * x) * np.sin(np.pi * y)


def source(x: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """PINNacle's ``f`` (consistent: the truth satisfies ``u_t = div(a grad u) + f``)."""
    sx, cx, sy, cy = np.sin(np.pi * x), np.cos(np.pi * x), np.sin(np.pi * y), np.cos(np.pi * y)
    return np.exp(-t) * ((4 * np.pi**2 - 1) * sx * sy + np.pi**2 * (2 * sx**2 * sy**2 - cx**2 * sy**2 - sx**2 * cy**2))


def problem(seed: int = 0, grid: int = 50, time_samples: int = 11, noise: float = NOISE) -> InverseProblem:
    """HeatInv with PINNacle's data recipe (noise ``noise`` absolute; seed of the noise)."""
    g = Grid.from_bounds([(-1.0, 1.0), (-1.0, 1.0), (0.0, 1.0)], (grid, grid, time_samples))
    x, y, t = (m.numpy() for m in g.mesh(dtype=torch.float64))
    points = np.loadtxt(POINTS)
    rng = np.random.default_rng(seed)
    values = u_true(*points.T) + noise * rng.standard_normal(len(points))
    gx, gy = np.meshgrid(g.axes(dtype=torch.float64)[0].numpy(), g.axes(dtype=torch.float64)[1].numpy(), indexing="ij")
    spatial = (0, 1)
    return InverseProblem(
        name="pinnacle-heat-inv",
        grid=g,
        observations=ScatteredObservations(points, values, noise=noise),
        derivatives={
            "u_t": (0, 0, 1),
            **gradient_requests("u", spatial, ndim=3),
            **laplacian_requests("u", spatial, ndim=3),
        },
        unknowns=[UnknownField("a", init=2.0, positive=True, axes=spatial, derivatives=gradient_requests("a", spatial, ndim=3))],
        residual=lambda d, p, k: d["u_t"] - div_a_grad(d, "a", "u", axes=spatial) - k["f"],
        known={"f": source(x, y, t)},
        truth={"a": a_true(gx, gy)},
        conditions=[Dirichlet("a", lambda c: a_true(c[:, 0], c[:, 1]), on="boundary")],
        radius=(3 * g.spacing[0], 3 * g.spacing[1], 2 * g.spacing[2]),
        residual_scale=float(np.abs(source(x, y, t)).mean()),
        residual_weight=1.0,
        description="PINNacle HeatInv: u_t = div(a grad u) + f, a(x, y) unknown (known on the boundary)",
    )
