"""PINNacle's PoissonInv: div(a grad u) + f = 0 on [0, 1]^2, with the diffusivity a unknown.

The task (PINNacle, Hao et al., NeurIPS 2024 Datasets and Benchmarks; its
``src/pde/inverse.py``): truth ``u = sin(pi x) sin(pi y)`` and
``a = 1 / (1 + x^2 + y^2 + (x - 1)^2 + (y - 1)^2)``; data ``u`` on the 50 x 50 grid
``linspace(0, 1, 50)^2`` with Gaussian noise of standard deviation 0.1; ``a`` known on the
boundary. Metric: relative L2 error of ``a`` on that grid.

Source term. PINNacle publishes ``f = 2 pi^2 sin(pi x) sin(pi y) a + 2 pi ((2x + 1)
cos(pi x) sin(pi y) + (2y + 1) sin(pi x) cos(pi y)) a^2``, which its own truth does not
satisfy (the residual of the exact ``u``, ``a`` is ``4 pi a^2 (cos(pi x) sin(pi y) +
sin(pi x) cos(pi y))``, up to 2.6). Here ``f = -div(a grad u)`` of the truth, i.e. the
same formula with ``(2x - 1)`` and ``(2y - 1)`` (``pinnacle_tasks.poisson_f``);
:func:`check_source` verifies it.

Run it: ``mollifier run docs/examples/pinnacle_poisson_inv.py --seed 0 --json``.
"""

from __future__ import annotations

import numpy as np
import pinnacle_tasks as tasks  # beside this file: the task's facts, shared with the DeepXDE baseline
import torch

from mollifier import Grid
from mollifier.inverse import Dirichlet, InverseProblem, Observations, UnknownField
from mollifier.inverse.residuals import div_a_grad, gradient_requests, laplacian_requests

N = tasks.POISSON_GRID_N
"""Grid points per axis (PINNacle's data grid, edges included)."""

TRAINING = {"steps": 3000, "lr": 3e-3, "lr_final": 3e-4, "residual_warmup": 500, "log_every": 100}
"""Training settings this task runs with (flags override them)."""


def check_source(h: float = 1e-4) -> float:
    """Largest ``|div(a grad u) + f|`` of the truth on a 19 x 19 grid, by central differences
    of step ``h`` in flux form (second order: about ``h^2`` small)."""
    x, y = np.meshgrid(np.linspace(0.05, 0.95, 19), np.linspace(0.05, 0.95, 19), indexing="ij")

    def flux_x(x, y):
        return tasks.poisson_a(x, y) * (tasks.poisson_u(x + h, y) - tasks.poisson_u(x - h, y)) / (2 * h)

    def flux_y(x, y):
        return tasks.poisson_a(x, y) * (tasks.poisson_u(x, y + h) - tasks.poisson_u(x, y - h)) / (2 * h)

    div = (flux_x(x + h, y) - flux_x(x - h, y)) / (2 * h) + (flux_y(x, y + h) - flux_y(x, y - h)) / (2 * h)
    return float(np.abs(div + tasks.poisson_f(x, y)).max())


def problem(seed: int = 0) -> InverseProblem:
    """PoissonInv with PINNacle's data recipe (:func:`pinnacle_tasks.poisson_data`: the
    same data as the DeepXDE baseline for the same seed)."""
    g = Grid.from_bounds([(0.0, 1.0), (0.0, 1.0)], (N, N))
    x, y = (m.numpy() for m in g.mesh(dtype=torch.float64))
    _, noisy = tasks.poisson_data(seed)
    observed = noisy.reshape(N, N).T  # PINNacle's order has x fastest; the grid is [ix, iy]
    f = tasks.poisson_f(x, y)
    return InverseProblem(
        name="pinnacle-poisson-inv",
        grid=g,
        observations=Observations(observed, noise=tasks.NOISE_STD),
        derivatives={**gradient_requests("u", 2), **laplacian_requests("u", 2)},
        unknowns=[UnknownField("a", init=0.4, positive=True, derivatives=gradient_requests("a", 2))],
        residual=lambda d, p, k: div_a_grad(d, "a", "u", axes=2) + k["f"],
        known={"f": f},
        truth={"a": tasks.poisson_a(x, y)},
        conditions=[Dirichlet("a", lambda c: tasks.poisson_a(c[:, 0], c[:, 1]), on="boundary")],
        radius=4 * g.spacing[0],
        residual_scale=float(np.abs(f).mean()),
        residual_weight=1.0,
        description="PINNacle PoissonInv: div(a grad u) + f = 0, a unknown (known on the boundary)",
    )
