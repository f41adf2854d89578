"""PINNacle's HeatInv: u_t = div(a grad u) + f on [-1, 1]^2 x [0, 1], with a(x, y) unknown.

The task (PINNacle, Hao et al., NeurIPS 2024 Datasets and Benchmarks; its
``src/pde/inverse.py``): truth ``u = exp(-t) sin(pi x) sin(pi y)`` and
``a = 2 + sin(pi x) sin(pi y)`` (no ``t``); ``u`` observed at the 2,500 scattered points
of ``heatinv_points.dat`` (shipped in ``docs/examples/data``) with Gaussian noise of
standard deviation 0.1; ``a`` known on the spatial boundary. Metric: relative L2 error of
``a`` on a 50 x 50 grid of ``(x, y)``.

Posed here: the residual on a 50 x 50 x 11 grid of ``(x, y, t)``; ``a`` a field on the
axes ``(x, y)`` only (its network is blind to ``t``), with its own derivatives from the
same engine; the data term reads the mollified field at the scattered points. ``a`` is
mollified with a wide radius (:data:`A_RADIUS`, 0.6: about 15 cells): a prior that ``a``
varies smoothly, which the 2,500 noisy points need (``benchmarks/heatinv_information.py``
bounds what any estimator can get from them; docs/benchmarks.md).

Run it: ``mollifier run docs/examples/pinnacle_heat_inv.py --seed 0 --json``.
"""

from __future__ import annotations

import numpy as np
import pinnacle_tasks as tasks  # beside this file: the task's facts, shared with the DeepXDE baseline
import torch

from mollifier import Grid
from mollifier.inverse import Dirichlet, InverseProblem, ScatteredObservations, UnknownField
from mollifier.inverse.residuals import div_a_grad, gradient_requests, laplacian_requests

A_RADIUS = 0.6
"""Mollifier radius of ``a`` (physical units): features of ``a`` finer than this are damped.
Measured, seed 0 at 2,000 steps: radius 0.12 (the field's) 0.062 (3,000 steps), 0.4 0.053, 0.6 0.041,
0.8 and 1.0 not converged in 2,000 steps (0.089, 0.163 at 1,750)."""

TRAINING = {
    "steps": 2000,
    "lr": 3e-3,
    "lr_final": 3e-4,
    "residual_warmup": 500,
    "log_every": 100,
    "backbone_options": {"width": 64, "depth": 4},
}
"""Training settings this task runs with (flags override them)."""


def problem(seed: int = 0, grid: int = tasks.POISSON_GRID_N, time_samples: int = 11) -> InverseProblem:
    """HeatInv with PINNacle's data recipe (:func:`pinnacle_tasks.heat_data`: the same data
    as the DeepXDE baseline for the same seed)."""
    g = Grid.from_bounds([tasks.HEAT_BOUNDS, tasks.HEAT_BOUNDS, tasks.HEAT_T_BOUNDS], (grid, grid, time_samples))
    x, y, t = (m.numpy() for m in g.mesh(dtype=torch.float64))
    points, values = tasks.heat_data(seed)
    f = tasks.heat_f(x, y, t)
    gx, gy = np.meshgrid(g.axes(dtype=torch.float64)[0].numpy(), g.axes(dtype=torch.float64)[1].numpy(), indexing="ij")
    spatial = (0, 1)
    return InverseProblem(
        name="pinnacle-heat-inv",
        grid=g,
        observations=ScatteredObservations(points, values, noise=tasks.NOISE_STD),
        derivatives={
            "u_t": (0, 0, 1),
            **gradient_requests("u", spatial, ndim=3),
            **laplacian_requests("u", spatial, ndim=3),
        },
        unknowns=[UnknownField(
                "a", init=2.0, positive=True, axes=spatial, radius=A_RADIUS, derivatives=gradient_requests("a", spatial, ndim=3)
            )],
        residual=lambda d, p, k: d["u_t"] - div_a_grad(d, "a", "u", axes=spatial) - k["f"],
        known={"f": f},
        truth={"a": tasks.heat_a(gx, gy)},
        conditions=[Dirichlet("a", lambda c: tasks.heat_a(c[:, 0], c[:, 1]), on="boundary")],
        radius=(3 * g.spacing[0], 3 * g.spacing[1], 2 * g.spacing[2]),
        residual_scale=float(np.abs(f).mean()),
        residual_weight=1.0,
        description="PINNacle HeatInv: u_t = div(a grad u) + f, a(x, y) unknown (known on the boundary)",
    )
