"""Tests for mollifier.problems.forward.heat."""

from __future__ import annotations

import numpy as np
import pytest

from mollifier.problems.forward import default_heat_source, poisson_dirichlet, simulate_heat

PI = np.pi


def _u_exact(x, y):
    return np.sin(PI * x) * np.exp(x) * np.sin(PI * y) * np.exp(y / 2)


def _lap_u_exact(x, y):
    a, b = np.sin(PI * x) * np.exp(x), np.sin(PI * y) * np.exp(y / 2)
    a2 = np.exp(x) * ((1 - PI**2) * np.sin(PI * x) + 2 * PI * np.cos(PI * x))
    b2 = np.exp(y / 2) * ((0.25 - PI**2) * np.sin(PI * y) + PI * np.cos(PI * y))
    return a2 * b + a * b2


def _slope(ns, errs):
    h = 1.0 / (np.asarray(ns) - 1.0)
    return np.polyfit(np.log(h), np.log(errs), 1)[0]


@pytest.mark.parametrize("order", [2, 4])
def test_manufactured_solution_converges_at_declared_order(order):
    lam = 2.0

    def source(x, y):
        return -lam * _lap_u_exact(x, y)

    ns = [9, 17, 33, 65]
    errs = []
    for n in ns:
        r = simulate_heat(n, refine=1, lambda_field=lam, source=source, order=order)
        xx, yy = np.meshgrid(r["x"], r["y"], indexing="ij")
        errs.append(np.max(np.abs(r["u"] - _u_exact(xx, yy))))
    assert _slope(ns, errs) == pytest.approx(order, abs=0.15)
    if order == 4:
        assert errs[-1] < 1e-7


def test_random_problem_self_convergence():
    # Subsampled solutions on grids refined 1, 2, 4 times against refine=32.
    n = 33
    ref = simulate_heat(n, rng=1, refine=32)["u"]
    errs = [np.max(np.abs(simulate_heat(n, rng=1, refine=r)["u"] - ref)) for r in (1, 2, 4)]
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(orders > 3.5)
    default = simulate_heat(n, rng=1)["u"]  # refine=8
    assert np.max(np.abs(default - ref)) < 1e-7 * np.max(np.abs(ref))


def test_pde_holds_away_from_corners():
    # lambda = -m / lap(u) with a plain 5-point Laplacian converges at O(h^2) away from
    # the corners (where u has the r^2 log r corner singularity).
    errs = []
    ns = [33, 65, 129]
    for n in ns:
        r = simulate_heat(n, rng=2, refine=4)
        u, h = r["u"], 1.0 / (n - 1)
        lap = (u[2:, 1:-1] + u[:-2, 1:-1] + u[1:-1, 2:] + u[1:-1, :-2] - 4 * u[1:-1, 1:-1]) / h**2
        rel = np.abs(-r["source"][1:-1, 1:-1] / lap / r["lambda"][1:-1, 1:-1] - 1)
        x = r["x"][1:-1]
        d = np.minimum(x, 1 - x)
        dist = np.hypot(d[:, None], d[None, :])
        errs.append(rel[dist > 0.1].max())
    assert errs[-1] < 2e-3
    assert _slope(ns, errs) == pytest.approx(2.0, abs=0.3)


def test_output_layout_and_physics():
    r = simulate_heat(32, rng=0)
    assert set(r) >= {"x", "y", "u", "lambda", "source", "lambda_fn", "params"}
    np.testing.assert_allclose(r["x"], np.linspace(0, 1, 32))
    np.testing.assert_allclose(r["y"], np.linspace(0, 1, 32))
    for key in ("u", "lambda", "source"):
        assert r[key].shape == (32, 32)
    u = r["u"]
    assert np.all(u[0] == 0) and np.all(u[-1] == 0) and np.all(u[:, 0] == 0)
    assert np.all(u[:, -1] == 0)
    assert np.all(u[1:-1, 1:-1] > 0)  # lap u = -m/lambda < 0: superharmonic
    assert 0.5 < r["lambda"].min() and r["lambda"].max() < 1.5
    xx, yy = np.meshgrid(r["x"], r["y"], indexing="ij")
    np.testing.assert_allclose(r["source"], default_heat_source(xx, yy))
    assert r["source"].min() >= 0.5
    np.testing.assert_allclose(r["lambda_fn"](xx, yy), r["lambda"], atol=1e-12)


def test_indexing_is_ix_iy():
    # Source depends on x only through sin(2 pi x): antisymmetric about x = 1/2 around 1;
    # use a source depending on x only and check u varies along axis 0 accordingly.
    r = simulate_heat(33, refine=2, lambda_field=1.0, source=lambda x, y: 1.0 + x)
    u = r["u"]
    # Heavier source at larger x: the maximum sits at x > 1/2, y = 1/2.
    ix, iy = np.unravel_index(np.argmax(u), u.shape)
    assert r["x"][ix] > 0.5
    assert r["y"][iy] == pytest.approx(0.5)


def test_reproducible_and_lambda_forms():
    a = simulate_heat(17, rng=5)
    b = simulate_heat(17, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a["u"], b["u"])
    const = simulate_heat(17, lambda_field=2.0, refine=2)
    call = simulate_heat(17, lambda_field=lambda x, y: 2.0 + 0 * x, refine=2)
    arr = simulate_heat(17, lambda_field=np.full((33, 33), 2.0), refine=2)
    for r in (call, arr):
        np.testing.assert_allclose(r["u"], const["u"], rtol=1e-14, atol=1e-16)
    # u scales as 1/lambda for a constant diffusivity.
    one = simulate_heat(17, lambda_field=1.0, refine=2)
    np.testing.assert_allclose(const["u"], one["u"] / 2.0, rtol=1e-12, atol=1e-16)


def test_poisson_dirichlet_bad_arguments():
    with pytest.raises(ValueError, match="`f`"):
        poisson_dirichlet(np.zeros((4, 5)), 0.1)
    with pytest.raises(ValueError, match="`order`"):
        poisson_dirichlet(np.zeros((5, 5)), 0.1, order=6)


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"n": 2}, ValueError, "n"),
        ({"refine": 0}, ValueError, "refine"),
        ({"correlation_length": 0.0}, ValueError, "correlation_length"),
        ({"lambda_field": -1.0}, ValueError, "lambda_field"),
        ({"lambda_field": np.ones((16, 16))}, ValueError, "lambda_field"),
        ({"amplitude": 2.0}, ValueError, "amplitude"),
        ({"order": 3}, ValueError, "order"),
        ({"rng": "x"}, TypeError, "rng"),
    ],
)
def test_bad_arguments(kwargs, exc, name):
    args = {"n": 17, "rng": 0}
    args.update(kwargs)
    with pytest.raises(exc, match=f"`{name}`"):
        simulate_heat(**args)
