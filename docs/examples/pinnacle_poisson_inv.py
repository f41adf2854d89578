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
same formula with ``(2x - 1)`` and ``(2y - 1)``; :func:`check_source` verifies it.

Run it: ``mollifier run docs/examples/pinnacle_poisson_inv.py --seed 0 --json``.
"""

from __future__ import annotations

import numpy as np

from mollifier import Grid
from mollifier.inverse import Dirichlet, InverseProblem, Observations, UnknownField
from mollifier.inverse.residuals import div_a_grad, gradient_requests, laplacian_requests

N = 50
"""Grid points per axis (PINNacle's data grid, edges included)."""

NOISE = 0.1
"""Standard deviation of the Gaussian noise on ``u`` (absolute)."""

TRAINING = {"steps": 3000, "lr": 3e-3, "lr_final": 3e-4, "residual_warmup": 500, "log_every": 100}
"""Training settings this task runs with (flags override them)."""


def u_true(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.sin(np.pi * x) * np.sin(np.pi * y)


def a_true(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + x**2 + y**2 + (x - 1.0) ** 2 + (y - 1.0) ** 2)


def source(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``f = -div(a grad u)`` of the truth (PINNacle's formula with ``2x - 1``, ``2y - 1``)."""
    a = a_true(x, y)
    return 2 * np.pi**2 * u_true(x, y) * a + 2 * np.pi * a**2 * (
        (2 * x - 1) * np.cos(np.pi * x) * np.sin(np.pi * y) + (2 * y - 1) * np.sin(np.pi * x) * np.cos(np.pi * y)
    )


def check_source(h: float = 1e-4) -> float:
    """Largest ``|div(a grad u) + f|`` of the truth, by central differences of step ``h``
    (flux form, second order: about ``h^2`` small)."""
    x, y = np.meshgrid(np.linspace(0.05, 0.95, 19), np.linspace(0.05, 0.95, 19), indexing="ij")

    def flux_x(x, y):
        return a_true(x, y) * (u_true(x + h, y) - u_true(x - h, y)) / (2 * h)

    def flux_y(x, y):
        return a_true(x, y) * (u_true(x, y + h) - u_true(x, y - h)) / (2 * h)

    div = (flux_x(x + h, y) - flux_x(x - h, y)) / (2 * h) + (flux_y(x, y + h) - flux_y(x, y - h)) / (2 * h)
    return float(np.abs(div + source(x, y)).max())


def problem(seed: int = 0, grid: int = N, noise: float = NOISE) -> InverseProblem:
    """PoissonInv with PINNacle's data recipe (noise ``noise`` absolute; seed of the noise)."""
    g = Grid.from_bounds([(0.0, 1.0), (0.0, 1.0)], (grid, grid))
    x, y = (m.numpy() for m in g.mesh(dtype=__import__("torch").float64))
    rng = np.random.default_rng(seed)
    observed = u_true(x, y) + noise * rng.standard_normal(x.shape)
    f = source(x, y)
    return InverseProblem(
        name="pinnacle-poisson-inv",
        grid=g,
        observations=Observations(observed, noise=noise),
        derivatives={**gradient_requests("u", 2), **laplacian_requests("u", 2)},
        unknowns=[UnknownField("a", init=0.4, positive=True, derivatives=gradient_requests("a", 2))],
        residual=lambda d, p, k: div_a_grad(d, "a", "u", axes=2) + k["f"],
        known={"f": f},
        truth={"a": a_true(x, y)},
        conditions=[Dirichlet("a", lambda c: a_true(c[:, 0], c[:, 1]), on="boundary")],
        radius=4 * g.spacing[0],
        residual_scale=float(np.abs(f).mean()),
        residual_weight=1.0,
        description="PINNacle PoissonInv: div(a grad u) + f = 0, a unknown (known on the boundary)",
    )
