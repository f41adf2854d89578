"""PINNacle's inverse tasks (docs/examples/pinnacle_tasks.py): the truth satisfies each PDE, data recipes."""

import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

import pinnacle_tasks as tasks  # noqa: E402

H = 1e-3  # finite-difference step; 4th-order central differences, float64


def _d(g, i, h=H):
    """4th-order central difference of ``g(*coords)`` along coordinate ``i``, as a function."""
    def dg(*c):
        def at(k):
            shifted = list(c)
            shifted[i] = c[i] + k * h
            return g(*shifted)
        return (-at(2) + 8 * at(1) - 8 * at(-1) + at(-2)) / (12 * h)
    return dg


def _div_a_grad_u(u, a, ndim_space=2):
    """``div(a grad u)`` over the first ``ndim_space`` coordinates, by nested differences."""
    def div(*c):
        total = 0.0
        for i in range(ndim_space):
            du = _d(u, i)
            total = total + _d(lambda *p: a(*p[:2]) * du(*p), i)(*c)
        return total
    return div


def _points(lo, hi, n, dim, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(lo, hi, n) for _ in range(dim)]


def test_consistent_poisson_source_makes_the_truth_satisfy_the_pde():
    x, y = _points(0.0, 1.0, 400, 2)
    residual = _div_a_grad_u(tasks.poisson_u, tasks.poisson_a)(x, y) + tasks.poisson_f(x, y)
    assert np.max(np.abs(residual)) < 1e-6
    assert np.max(np.abs(tasks.poisson_f(x, y))) > 1.0  # a residual of 1e-6 is small against f


def test_published_poisson_source_does_not():
    x, y = (g.reshape(-1) for g in np.meshgrid(np.linspace(0, 1, 101), np.linspace(0, 1, 101)))
    residual = _div_a_grad_u(tasks.poisson_u, tasks.poisson_a)(x, y) + tasks.poisson_f_published(x, y)
    a = tasks.poisson_a(x, y)
    expected = 4 * np.pi * a**2 * (np.cos(np.pi * x) * np.sin(np.pi * y) + np.sin(np.pi * x) * np.cos(np.pi * y))
    np.testing.assert_allclose(residual, expected, atol=1e-6)
    assert 2.5 < np.max(np.abs(residual)) < 2.7


def test_heat_source_makes_the_truth_satisfy_the_pde():
    x, y = _points(-1.0, 1.0, 400, 2, seed=1)
    t = np.random.default_rng(2).uniform(0.0, 1.0, 400)
    u_t = _d(tasks.heat_u, 2)(x, y, t)
    residual = u_t - _div_a_grad_u(tasks.heat_u, tasks.heat_a)(x, y, t) - tasks.heat_f(x, y, t)
    assert np.max(np.abs(residual)) < 1e-6


def test_sources_symbolically(monkeypatch):
    sp = pytest.importorskip("sympy")
    monkeypatch.setattr(tasks, "PI", sp.pi)  # the functions read the module's PI at call time
    x, y, t = sp.symbols("x y t", real=True)

    def exact_zero(expr):
        return sp.simplify(sp.nsimplify(expr)) == 0  # nsimplify: the module's 1.0, 2.0 to rationals

    u, a = tasks.poisson_u(x, y, xp=sp), tasks.poisson_a(x, y, xp=sp)
    div = sp.diff(a * sp.diff(u, x), x) + sp.diff(a * sp.diff(u, y), y)
    assert exact_zero(div + tasks.poisson_f(x, y, xp=sp))
    assert not exact_zero(div + tasks.poisson_f_published(x, y, xp=sp))
    u, a = tasks.heat_u(x, y, t, xp=sp), tasks.heat_a(x, y, xp=sp)
    div = sp.diff(a * sp.diff(u, x), x) + sp.diff(a * sp.diff(u, y), y)
    assert exact_zero(sp.diff(u, t) - div - tasks.heat_f(x, y, t, xp=sp))


def test_poisson_data_recipe():
    xy, u = tasks.poisson_data(0)
    assert xy.shape == (2500, 2) and u.shape == (2500,)
    s = np.linspace(0, 1, 50)
    np.testing.assert_array_equal(np.unique(xy[:, 0]), s)
    np.testing.assert_array_equal(xy[:50, 0], s)  # x fastest, as PINNacle's meshgrid + reshape
    np.testing.assert_array_equal(xy[:50, 1], 0.0)
    noise = u - tasks.poisson_u(xy[:, 0], xy[:, 1])
    assert 0.09 < noise.std() < 0.11 and abs(noise.mean()) < 0.01
    np.testing.assert_array_equal(tasks.poisson_data(0)[1], u)
    assert not np.array_equal(tasks.poisson_data(1)[1], u)


def test_heat_data_recipe():
    xyt, u = tasks.heat_data(0)
    assert xyt.shape == (2500, 3) and u.shape == (2500,)
    assert xyt[:, :2].min() >= -1 and xyt[:, :2].max() <= 1
    assert xyt[:, 2].min() >= 0 and xyt[:, 2].max() <= 1
    noise = u - tasks.heat_u(*xyt.T)
    assert 0.09 < noise.std() < 0.11
    np.testing.assert_array_equal(tasks.heat_data(0)[1], u)
    assert not np.array_equal(tasks.heat_data(3)[1], u)


def test_load_heat_points_rejects_wrong_columns(tmp_path):
    bad = tmp_path / "bad.dat"
    bad.write_text("0 1\n2 3\n")
    with pytest.raises(ValueError, match="3 columns"):
        tasks.load_heat_points(bad)


def test_metrics():
    true = np.array([1.0, 2.0, 3.0])
    assert tasks.relative_l2(true, true) == 0.0
    assert tasks.relative_l2(2 * true, true) == pytest.approx(1.0)
    assert tasks.pearson(2 * true + 1, true) == pytest.approx(1.0)
    assert np.isnan(tasks.pearson(np.ones(3), true))


def test_grids():
    g = tasks.heat_grid()
    assert g.shape == (2500, 2) and g.min() == -1 and g.max() == 1
    np.testing.assert_array_equal(tasks.poisson_grid(), tasks.poisson_data(0)[0])
