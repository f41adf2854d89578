"""Tests for mollifier.problems.forward.chromatin."""

from __future__ import annotations

import numpy as np
import pytest

from mollifier.problems.chromatin import equilibrium_guess
from mollifier.problems.forward import (
    chemical_potential,
    chromatin_rhs,
    direct_recovery,
    lognormal_field,
    simulate_chromatin,
)

PM = 0.7


def simulate(**kwargs):
    """The solver with the published constants unless a test sets its own."""
    return simulate_chromatin(**{"phi_c": 0.8, "phi_max": PM, "l": 0.03, **kwargs})


def _pearson(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.fixture(scope="module")
def steady():
    # 64^2 over [0, 10]^2, lambda resolved (correlation length 1 = 6.4 cells).
    return simulate(n=64, l=0.2, correlation_length=1.0, rng=0)


def test_steady_state_reached(steady):
    r = steady
    assert r["converged"]
    assert r["params"]["stop_reason"] == "tol"
    assert r["residual_max"] < 1e-10
    rhs = chromatin_rhs(r["phi_d"], r["lambda"], 0.8, PM, 0.2, 10.0)
    assert np.max(np.abs(rhs)) < 1e-10
    np.testing.assert_allclose(
        r["mu_d"], chemical_potential(r["phi_h"], r["phi_e"], PM, 0.2, 10.0), atol=1e-13
    )


@pytest.mark.parametrize("l", [0.03, 0.3])
def test_direct_recovery_returns_lambda(l):  # noqa: E741
    r = simulate(n=48, l=l, correlation_length=0.8, rng=1)
    lam = direct_recovery(r["phi_h"], r["phi_e"], PM, l, 10.0)
    assert np.max(np.abs(lam - r["lambda"])) < 1e-8
    # The derivative-free baseline is visibly worse on the same data.
    assert np.max(np.abs(equilibrium_guess(r["phi_d"], 0.8) - r["lambda"])) > 1e-2


def test_fields_in_physical_ranges(steady):
    r = steady
    np.testing.assert_allclose(r["phi_h"] + r["phi_e"], 0.8, atol=1e-14)
    np.testing.assert_allclose(r["phi_h"] - r["phi_e"], r["phi_d"], atol=1e-14)
    assert r["phi_h"].min() > 0 and r["phi_e"].min() > 0
    assert r["phi_h"].max() < 0.8 and r["phi_e"].max() < 0.8
    assert np.all(r["lambda"] > 0)
    # Heterochromatin where methylation dominates.
    assert _pearson(r["phi_h"], r["lambda"]) > 0.8
    np.testing.assert_allclose(r["x"], np.arange(64) * 10.0 / 64)
    for key in ("phi_h", "phi_e", "phi_d", "mu_d", "lambda"):
        assert r[key].shape == (64, 64)


@pytest.mark.parametrize("lam", [0.5, 1.0, 1.5])
def test_constant_lambda_ratio_tracks_lambda(lam):
    # From a noisy uniform start the state relaxes to uniform reaction equilibrium.
    r = simulate(n=32, lambda_field=lam, initial="uniform", noise=0.05, rng=2)
    assert r["converged"]
    ratio = r["phi_h"] / r["phi_e"]
    assert np.mean(ratio) == pytest.approx(lam, rel=1e-9)
    assert np.ptp(ratio) < 1e-9


def test_time_accurate_stepping_gives_same_steady_state():
    lam = lognormal_field((32, 32), 10.0, 1.5, rng=3)
    fast = simulate(n=32, lambda_field=lam, l=0.1)
    slow = simulate(n=32, lambda_field=lam, l=0.1, dt=2e-3, t_max=50.0)
    assert fast["converged"] and slow["converged"]
    assert fast["params"]["steps"] < 200
    assert 5.0 < slow["t_final"] < 50.0
    np.testing.assert_allclose(slow["phi_d"], fast["phi_d"], atol=1e-9)


def test_semi_implicit_transient_is_first_order_in_dt():
    lam = lognormal_field((32, 32), 10.0, 1.0, rng=4)
    finals = [
        simulate(n=32, lambda_field=lam, dt=dt, t_max=0.5, initial="uniform",
                           tol=1e-14)["phi_d"]
        for dt in (4e-3, 2e-3, 1e-3, 5e-4)
    ]
    errs = [np.max(np.abs(a - b)) for a, b in zip(finals[:-1], finals[1:], strict=True)]
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    np.testing.assert_allclose(orders, 1.0, atol=0.15)


def test_stop_reasons_and_progress():
    calls = []
    r = simulate(n=32, correlation_length=1.0, rng=0, t_max=3.0,
                           progress=lambda *a: calls.append(a), progress_every=1)
    assert not r["converged"]
    assert r["params"]["stop_reason"] == "t_max"
    assert r["t_final"] == pytest.approx(3.0)
    assert r["residual_max"] > 1e-10
    assert len(calls) == r["params"]["steps"] + 1
    assert calls[-1][2] == r["residual_max"]
    r = simulate(n=32, correlation_length=1.0, rng=0, max_steps=2)
    assert r["params"]["stop_reason"] == "max_steps"
    assert r["params"]["steps"] == 2


def test_direct_recovery_matches_analytic_laplacian():
    n, L, l = 64, 10.0, 0.3  # noqa: E741
    x = np.arange(n) * L / n
    xx, yy = np.meshgrid(x, x, indexing="ij")
    k, q = 2 * np.pi / L, 4 * np.pi / L
    a, b, c, d = 0.4, 0.1, 0.35, 0.05
    ph = a + b * np.sin(k * xx)
    pe = c + d * np.cos(q * yy)
    ph_x, ph_xx, ph_xxxx = b * k * np.cos(k * xx), -b * k**2 * np.sin(k * xx), b * k**4 * np.sin(
        k * xx
    )
    pe_yy, pe_yyyy = -d * q**2 * np.cos(q * yy), d * q**4 * np.cos(q * yy)
    f = ph * (PM - ph) * (PM - 2 * ph)
    f1 = 6 * ph**2 - 6 * PM * ph + PM**2
    f2 = 12 * ph - 6 * PM
    mu = -pe + f - l**2 * (ph_xx - pe_yy)
    lap_mu = -pe_yy + f1 * ph_xx + f2 * ph_x**2 - l**2 * (ph_xxxx - pe_yyyy)
    np.testing.assert_allclose(chemical_potential(ph, pe, PM, l, L), mu, atol=1e-13)
    np.testing.assert_allclose(
        direct_recovery(ph, pe, PM, l, L), (ph - lap_mu / 2) / pe, atol=1e-12
    )
    np.testing.assert_allclose(equilibrium_guess(ph - pe, ph + pe), ph / pe)


def test_shorter_correlation_length_defeats_equilibrium_guess():
    def pearson(ell):
        r = simulate(n=64, l=0.2, correlation_length=ell, rng=5)
        return _pearson(equilibrium_guess(r["phi_d"], 0.8), r["lambda"])

    long_, short = pearson(2.5), pearson(0.6)
    assert long_ > 0.97
    assert short < 0.93
    assert short < long_


def test_reproducible_with_same_seed():
    a = simulate(n=32, rng=9, noise=0.01)
    b = simulate(n=32, rng=np.random.default_rng(9), noise=0.01)
    np.testing.assert_array_equal(a["phi_d"], b["phi_d"])
    np.testing.assert_array_equal(a["lambda"], b["lambda"])


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"n": 3}, ValueError, "n"),
        ({"L": 0.0}, ValueError, "L"),
        ({"phi_c": 1.2}, ValueError, "phi_c"),
        ({"phi_max": -0.7}, ValueError, "phi_max"),
        ({"l": -0.1}, ValueError, "l"),
        ({"lambda_field": -1.0}, ValueError, "lambda_field"),
        ({"lambda_field": np.ones((8, 8))}, ValueError, "lambda_field"),
        ({"lambda_field": -np.ones((16, 16))}, ValueError, "lambda_field"),
        ({"correlation_length": 0.0}, ValueError, "correlation_length"),
        ({"sigma": -1.0}, ValueError, "sigma"),
        ({"dt": 0.0}, ValueError, "dt"),
        ({"tol": -1.0}, ValueError, "tol"),
        ({"initial": "random"}, ValueError, "initial"),
        ({"initial": np.zeros((8, 8))}, ValueError, "initial"),
        ({"progress": 3}, TypeError, "progress"),
        ({"rng": "x"}, TypeError, "rng"),
    ],
)
def test_bad_arguments(kwargs, exc, name):
    args = {"n": 16, "rng": 0}
    args.update(kwargs)
    with pytest.raises(exc, match=f"`{name}`"):
        simulate(**args)


def test_recovery_bad_arguments():
    with pytest.raises(ValueError, match="`phi_h`"):
        direct_recovery(np.ones((4, 4)), np.ones((4, 5)), PM, 0.03)
    with pytest.raises(ValueError, match="`L`"):
        direct_recovery(np.ones((4, 4)), np.ones((4, 4)), PM, 0.03, L=-1.0)
