"""Tests for mollifier.problems.forward.langevin."""

from __future__ import annotations

import numpy as np
import pytest

from mollifier.problems.forward import simulate_langevin

# Tolerances here are the ODE solver's accuracy, not rounding: solve_ivp (DOP853) runs
# with rtol = 1e-11, atol = 1e-13 per step; over T <= 2 the global error grows by at most
# e^T ~ 7 times the steps' local errors (a few dozen steps), so 1e-9 relative is ~100x the
# requested accuracy and ~1e6 x the rounding level.


@pytest.mark.parametrize(("c", "u0", "T"), [(0.7, 1.0, 1.0), (-2.0, 0.5, 2.0), (0.0, 1.0, 1.0)])
def test_constant_forcing_matches_exact_solution(c, u0, T):
    r = simulate_langevin(n=101, T=T, u0=u0, forcing=c)
    exact = (u0 + c) * np.exp(r["t"]) - c
    np.testing.assert_allclose(r["u"], exact, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(r["lambda"], c)
    assert r["params"]["forcing"] == "constant"


def test_random_forcing_ivp_matches_closed_form():
    a = simulate_langevin(n=256, rng=4)
    b = simulate_langevin(n=256, rng=4, method="closed_form")
    np.testing.assert_array_equal(a["lambda"], b["lambda"])
    assert np.max(np.abs(a["u"] - b["u"])) < 1e-9 * np.max(np.abs(b["u"]))


def test_fine_finite_difference_residual_is_small():
    # u_t - u - lambda with a 6th-order central difference on a fine simulation.
    r = simulate_langevin(n=4001, rng=3)
    t, u, lam = r["t"], r["u"], r["lambda"]
    h = t[1] - t[0]
    c = np.array([-1 / 60, 3 / 20, -3 / 4, 0.0, 3 / 4, -3 / 20, 1 / 60])
    ut = np.convolve(u, c[::-1], mode="valid") / h
    res = ut - u[3:-3] - lam[3:-3]
    # truncation h^6 |u^(7)| / 140 (h = 2.5e-4: negligible), the solver's error (smooth,
    # ~1e-10) differentiated, and rounding sum|c| max|u| eps / h ~ 1e-11: 1e-7 is a
    # discretisation/solver tolerance with ample room
    assert np.max(np.abs(res)) < 1e-7
    # The residual is small relative to the terms it balances.
    assert np.max(np.abs(ut)) > 1.0


def test_output_layout_and_defaults():
    r = simulate_langevin(rng=0)
    assert set(r) >= {"t", "u", "lambda", "lambda_fn", "params"}
    assert r["t"].shape == r["u"].shape == r["lambda"].shape == (256,)
    assert r["t"][0] == 0.0 and r["t"][-1] == 1.0
    assert r["u"][0] == 1.0
    p = r["params"]
    assert p["correlation_length"] == pytest.approx(0.1)
    assert p["amplitude"] == 1.0
    np.testing.assert_allclose(r["lambda_fn"](r["t"]), r["lambda"])
    # Visibly varying forcing of order one, not periodic on [0, T].
    assert 0.3 < r["lambda"].std() < 3.0
    assert np.sum(np.diff(np.sign(r["lambda"])) != 0) >= 2


def test_reproducible_with_same_seed():
    a = simulate_langevin(n=64, rng=11)
    b = simulate_langevin(n=64, rng=np.random.default_rng(11))
    c = simulate_langevin(n=64, rng=12)
    np.testing.assert_array_equal(a["u"], b["u"])
    assert not np.allclose(a["lambda"], c["lambda"])


def test_shorter_correlation_length_gives_rougher_forcing():
    def roughness(ell):
        vals = []
        for s in range(5):
            lam = simulate_langevin(n=512, correlation_length=ell, rng=s, method="closed_form")[
                "lambda"
            ]
            vals.append(np.mean(np.diff(lam) ** 2) / np.var(lam))
        return np.mean(vals)

    assert roughness(0.05) > 2.0 * roughness(0.2)


def test_callable_forcing():
    r = simulate_langevin(n=51, forcing=lambda t: np.sin(3.0 * t), u0=0.0)
    t = r["t"]
    # u' = u + sin(3t), u(0) = 0  ->  u = (3 e^t - sin 3t - 3 cos 3t) / 10
    exact = (3 * np.exp(t) - np.sin(3 * t) - 3 * np.cos(3 * t)) / 10
    np.testing.assert_allclose(r["u"], exact, rtol=1e-9, atol=1e-11)
    with pytest.raises(ValueError, match="closed_form"):
        simulate_langevin(forcing=np.sin, method="closed_form")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n": 1}, "n"),
        ({"T": 0.0}, "T"),
        ({"u0": float("inf")}, "u0"),
        ({"correlation_length": -0.1}, "correlation_length"),
        ({"amplitude": -1.0}, "amplitude"),
        ({"method": "rk4"}, "method"),
        ({"rtol": 0.0}, "rtol"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        simulate_langevin(rng=0, **kwargs)
