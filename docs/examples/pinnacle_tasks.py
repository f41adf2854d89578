"""PINNacle's two inverse tasks (PoissonInv, HeatInv): analytic truth, sources, noisy data.

Pure NumPy; importable without the library or DeepXDE (put ``docs/examples`` on
``sys.path``; ``mollifier run`` does so for the example files beside it). One home for
the tasks' facts: our examples (``pinnacle_poisson_inv.py``, ``pinnacle_heat_inv.py``) and
the DeepXDE baseline (``benchmarks/pinnacle_deepxde.py``) read them from here. The task facts restate PINNacle's ``src/pde/inverse.py``
(Hao et al., NeurIPS 2024 Datasets and Benchmarks; repository i207M/PINNacle, MIT):

PoissonInv, on ``[0, 1]^2``: ``div(a grad u) + f = 0`` with
``u = sin(pi x) sin(pi y)`` and ``a = 1 / (1 + x^2 + y^2 + (x - 1)^2 + (y - 1)^2)``.
Writing ``D = 1/a``, ``grad a = -a^2 grad D = -a^2 (4x - 2, 4y - 2)`` and
``lap u = -2 pi^2 u``, so ``f = -div(a grad u) = -a lap u - grad a . grad u``::

    f = 2 pi^2 a u + 2 pi a^2 ((2x - 1) cos(pi x) sin(pi y) + (2y - 1) sin(pi x) cos(pi y))

PINNacle's code has ``(2x + 1)`` and ``(2y + 1)`` in place of ``(2x - 1)`` and ``(2y - 1)``
(:func:`poisson_f_published`); with it the exact ``u``, ``a`` leave a residual
``4 pi a^2 (cos(pi x) sin(pi y) + sin(pi x) cos(pi y))`` (up to about 2.6). Everything here
uses the consistent :func:`poisson_f` (``tests/benchmarks/test_pinnacle_tasks.py`` checks it
by finite differences and, where SymPy is installed, symbolically).

HeatInv, on ``[-1, 1]^2 x [0, 1]``: ``u_t = div(a grad u) + f`` with
``u = exp(-t) sin(pi x) sin(pi y)`` and ``a = 2 + sin(pi x) sin(pi y)`` (no ``t``);
PINNacle's ``f`` is consistent and is used as published::

    f = exp(-t) ((4 pi^2 - 1) sx sy + pi^2 (2 sx^2 sy^2 - cx^2 sy^2 - sx^2 cy^2))

with ``sx = sin(pi x)``, ``cx = cos(pi x)`` and so on.

Data: ``u`` plus Gaussian noise of standard deviation :data:`NOISE_STD` = 0.1 (absolute),
at the 50 x 50 points of ``linspace(0, 1, 50)^2`` (PoissonInv; ordered as PINNacle's
``meshgrid`` then ``reshape``) or at the 2,500 points of ``heatinv_points.dat`` (HeatInv).
PINNacle draws the noise from NumPy's global state; here it comes from
``numpy.random.default_rng(seed)``, so a seed fixes the data.

The field functions take arrays of coordinates (any broadcastable shapes) and an optional
array namespace ``xp`` (NumPy by default; ``torch`` works too, as does any module with
``sin``, ``cos``, ``exp``) so that a training loop can evaluate the source on tensors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NOISE_STD = 0.1
"""Standard deviation of the additive Gaussian noise on ``u`` (absolute), both tasks."""

POISSON_GRID_N = 50
"""Side of the PoissonInv data grid and of both tasks' evaluation grids."""

POISSON_BOUNDS = (0.0, 1.0)
"""PoissonInv domain per axis: ``[0, 1]^2``."""

HEAT_BOUNDS = (-1.0, 1.0)
"""HeatInv spatial domain per axis: ``[-1, 1]^2`` (time runs over ``[0, 1]``)."""

HEAT_T_BOUNDS = (0.0, 1.0)

HEAT_POINTS_PATH = Path(__file__).resolve().parent / "data" / "heatinv_points.dat"
"""PINNacle's ``heatinv_points.dat`` (2,500 rows: x, y, t), copied into this repository."""

PI = np.pi


# --- PoissonInv ---------------------------------------------------------------------------

def poisson_u(x, y, xp=np):
    """Exact ``u = sin(pi x) sin(pi y)``."""
    return xp.sin(PI * x) * xp.sin(PI * y)


def poisson_a(x, y, xp=np):
    """Exact ``a = 1 / (1 + x^2 + y^2 + (x - 1)^2 + (y - 1)^2)`` (``xp`` unused: no transcendentals)."""
    return 1.0 / (1.0 + x**2 + y**2 + (x - 1.0) ** 2 + (y - 1.0) ** 2)


def poisson_f(x, y, xp=np):
    """Consistent source ``f = -div(a grad u)`` of the exact ``u``, ``a`` (see the module docstring)."""
    a = poisson_a(x, y)
    sx, cx, sy, cy = xp.sin(PI * x), xp.cos(PI * x), xp.sin(PI * y), xp.cos(PI * y)
    return 2 * PI**2 * a * sx * sy + 2 * PI * a**2 * ((2 * x - 1) * cx * sy + (2 * y - 1) * sx * cy)


def poisson_f_published(x, y, xp=np):
    """The source as PINNacle's code has it, with ``(2x + 1)``, ``(2y + 1)``: NOT consistent with the truth.

    Kept only to document the difference; nothing here trains with it.
    """
    a = poisson_a(x, y)
    sx, cx, sy, cy = xp.sin(PI * x), xp.cos(PI * x), xp.sin(PI * y), xp.cos(PI * y)
    return 2 * PI**2 * a * sx * sy + 2 * PI * a**2 * ((2 * x + 1) * cx * sy + (2 * y + 1) * sx * cy)


def poisson_grid(n: int = POISSON_GRID_N) -> np.ndarray:
    """The ``n x n`` points of ``linspace(0, 1, n)^2`` as an ``(n*n, 2)`` array, PINNacle's order.

    PINNacle builds ``meshgrid(linspace, linspace)`` (``xy`` indexing) and flattens each
    coordinate, so ``x`` varies fastest. The same points are the PoissonInv data sites and
    its evaluation grid.
    """
    s = np.linspace(*POISSON_BOUNDS, n)
    gx, gy = np.meshgrid(s, s)
    return np.stack((gx.reshape(-1), gy.reshape(-1)), axis=1)


def poisson_data(seed: int, noise_std: float = NOISE_STD) -> tuple[np.ndarray, np.ndarray]:
    """PoissonInv observations: ``(xy, u_noisy)`` of shapes ``(2500, 2)`` and ``(2500,)``.

    ``u`` at the 50 x 50 grid of :func:`poisson_grid` plus ``N(0, noise_std^2)`` noise from
    ``numpy.random.default_rng(seed)``.
    """
    xy = poisson_grid()
    rng = np.random.default_rng(seed)
    u = poisson_u(xy[:, 0], xy[:, 1]) + rng.normal(0.0, noise_std, size=len(xy))
    return xy, u


# --- HeatInv ------------------------------------------------------------------------------

def heat_u(x, y, t, xp=np):
    """Exact ``u = exp(-t) sin(pi x) sin(pi y)``."""
    return xp.exp(-t) * xp.sin(PI * x) * xp.sin(PI * y)


def heat_a(x, y, xp=np):
    """Exact ``a = 2 + sin(pi x) sin(pi y)`` (independent of ``t``)."""
    return 2.0 + xp.sin(PI * x) * xp.sin(PI * y)


def heat_f(x, y, t, xp=np):
    """Source of ``u_t = div(a grad u) + f`` for the exact ``u``, ``a`` (PINNacle's, consistent)."""
    sx, cx, sy, cy = xp.sin(PI * x), xp.cos(PI * x), xp.sin(PI * y), xp.cos(PI * y)
    return xp.exp(-t) * ((4 * PI**2 - 1) * sx * sy
                         + PI**2 * (2 * sx**2 * sy**2 - cx**2 * sy**2 - sx**2 * cy**2))


def heat_grid(n: int = POISSON_GRID_N) -> np.ndarray:
    """The ``n x n`` points of ``linspace(-1, 1, n)^2`` as an ``(n*n, 2)`` array (``x`` fastest).

    The HeatInv evaluation grid for ``a`` (which does not depend on ``t``).
    """
    s = np.linspace(*HEAT_BOUNDS, n)
    gx, gy = np.meshgrid(s, s)
    return np.stack((gx.reshape(-1), gy.reshape(-1)), axis=1)


def load_heat_points(path=HEAT_POINTS_PATH) -> np.ndarray:
    """PINNacle's HeatInv observation sites: a ``(2500, 3)`` float64 array, columns x, y, t."""
    pts = np.loadtxt(path, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"{path}: expected rows of 3 columns (x, y, t), got shape {pts.shape}")
    return pts


def heat_data(seed: int, points_path=HEAT_POINTS_PATH,
              noise_std: float = NOISE_STD) -> tuple[np.ndarray, np.ndarray]:
    """HeatInv observations: ``(xyt, u_noisy)`` of shapes ``(2500, 3)`` and ``(2500,)``.

    ``u`` at the points of :func:`load_heat_points` plus ``N(0, noise_std^2)`` noise from
    ``numpy.random.default_rng(seed)``.
    """
    xyt = load_heat_points(points_path)
    rng = np.random.default_rng(seed)
    u = heat_u(xyt[:, 0], xyt[:, 1], xyt[:, 2]) + rng.normal(0.0, noise_std, size=len(xyt))
    return xyt, u


# --- metrics ------------------------------------------------------------------------------

def relative_l2(pred, true) -> float:
    """``||pred - true||_2 / ||true||_2`` over all entries (PINNacle's L2RE)."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    true = np.asarray(true, dtype=np.float64).reshape(-1)
    return float(np.linalg.norm(pred - true) / np.linalg.norm(true))


def pearson(pred, true) -> float:
    """Pearson correlation coefficient of the flattened arrays (NaN if either is constant)."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    true = np.asarray(true, dtype=np.float64).reshape(-1)
    if np.std(pred) == 0 or np.std(true) == 0:
        return float("nan")
    return float(np.corrcoef(pred, true)[0, 1])
