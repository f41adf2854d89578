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

from tolerances import EPS64, spectral_rounding_bound

PM = 0.7
PC = 0.8


def _k2_max(n: int, L: float) -> float:
    """Largest |k|^2 of the spectral Laplacian on an n x n periodic grid of period L."""
    return 2 * (np.pi * n / L) ** 2


def _spectral(multiplier: float, x: np.ndarray) -> float:
    """Max-norm rounding of ifft(K fft(x)) with max|K| = multiplier (tolerances.spectral_rounding_bound)."""
    return spectral_rounding_bound(multiplier, x.size, float(np.linalg.norm(x)), EPS64)


def _steady_bounds(r: dict, l: float, L: float = 10.0) -> dict:  # noqa: E741
    """How far the public functions may lie from the solver's own quantities (rounding only).

    The solver evaluates d phi_d / dt in spectral space from phi_hat, the public
    chromatin_rhs and chemical_potential from phi_d = irfft(phi_hat) through physical-space
    mu; mathematically the same. Each spectral operator rounds by _spectral(max|K|, input)
    (2-norm bound, summed): the bi-Laplacian l^2 |k|^4 on phi, the Laplacian |k|^2 on the
    nonlinear potential, l^2 |k|^2 on phi for mu, the round trips of phi, of the potential
    and of the reaction term; phi_h - phi_e equals phi_d up to 2 eps phi_c per sample.
    """
    phi = r["phi_d"]
    n = phi.shape[0]
    k2 = _k2_max(n, L)
    nonlinear = -r["phi_e"] + r["phi_h"] * (PM - r["phi_h"]) * (PM - 2 * r["phi_h"])
    reaction = 2 * (r["lambda"] * r["phi_e"] - r["phi_h"])
    elementwise = 2 * EPS64 * PC * np.sqrt(phi.size)  # 2-norm of (phi_h - phi_e) - phi_d
    rhs = (4 * _spectral(l * l * k2 * k2, phi) + l * l * k2 * k2 * elementwise + 2 * _spectral(k2, nonlinear)
           + 2 * _spectral(1.0, reaction) + 8 * EPS64 * float(np.abs(reaction).max()))
    mu = 3 * _spectral(l * l * k2, phi) + l * l * k2 * elementwise + _spectral(1.0, nonlinear)
    mu += 4 * EPS64 * float(np.abs(nonlinear).max())
    return {"rhs": rhs, "mu": mu, "k2": k2}


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
    assert r["residual_max"] < 1e-10  # the stopping rule (tol = 1e-10), not a rounding level
    bounds = _steady_bounds(r, 0.2)
    rhs = chromatin_rhs(r["phi_d"], r["lambda"], 0.8, PM, 0.2, 10.0)
    assert np.max(np.abs(rhs)) <= r["residual_max"] + bounds["rhs"]
    np.testing.assert_allclose(
        r["mu_d"], chemical_potential(r["phi_h"], r["phi_e"], PM, 0.2, 10.0), rtol=0, atol=bounds["mu"]
    )


@pytest.mark.parametrize("l", [0.03, 0.3])
def test_direct_recovery_returns_lambda(l):  # noqa: E741
    r = simulate(n=48, l=l, correlation_length=0.8, rng=1)
    lam = direct_recovery(r["phi_h"], r["phi_e"], PM, l, 10.0)
    # (phi_h - lap(mu) / 2) / phi_e = lambda - rhs / (2 phi_e) exactly; |rhs| is below the
    # stopping tolerance plus the solver's rounding, and direct_recovery rounds mu
    # (amplified by |k|^2) and its Laplacian.
    b = _steady_bounds(r, l)
    mu = chemical_potential(r["phi_h"], r["phi_e"], PM, l, 10.0)
    lap_mu_error = b["k2"] * b["mu"] * np.sqrt(mu.size) + _spectral(b["k2"], mu)
    pe_min = float(r["phi_e"].min())
    tol = (r["residual_max"] + b["rhs"] + lap_mu_error) / (2 * pe_min) + 4 * EPS64 * float(r["lambda"].max())
    assert np.max(np.abs(lam - r["lambda"])) <= tol
    assert tol < 1e-4  # a worst case, still far below the baseline's error (> 1e-2) just below
    # The derivative-free baseline is visibly worse on the same data.
    assert np.max(np.abs(equilibrium_guess(r["phi_d"], 0.8) - r["lambda"])) > 1e-2


def test_fields_in_physical_ranges(steady):
    r = steady
    # phi_h, phi_e = (phi_c +- phi_d) / 2: a sum (or difference) and a halving each, then
    # one more for the check: <= 4 roundings of values <= phi_c
    np.testing.assert_allclose(r["phi_h"] + r["phi_e"], 0.8, rtol=0, atol=4 * EPS64 * PC)
    np.testing.assert_allclose(r["phi_h"] - r["phi_e"], r["phi_d"], rtol=0, atol=4 * EPS64 * PC)
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
    # Solver targets, not rounding: stepping stops at max|d phi_d/dt| < 1e-10; near the
    # uniform equilibrium d(ratio)/d(phi_d) = phi_c / (2 phi_e^2) <= ~10 and the slowest
    # mode decays at a rate >= 1, so what is left of the transient is <~ 1e-9.
    assert np.mean(ratio) == pytest.approx(lam, rel=1e-9)
    assert np.ptp(ratio) < 1e-9


def test_time_accurate_stepping_gives_same_steady_state():
    lam = lognormal_field((32, 32), 10.0, 1.5, rng=3)
    fast = simulate(n=32, lambda_field=lam, l=0.1)
    slow = simulate(n=32, lambda_field=lam, l=0.1, dt=2e-3, t_max=50.0)
    assert fast["converged"] and slow["converged"]
    assert fast["params"]["steps"] < 200
    assert 5.0 < slow["t_final"] < 50.0
    # two runs stopped at max|d phi_d/dt| < 1e-10 (solver target, as above): steady states
    # within ~1e-10 / (slowest decay rate) of each other
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
    # Trigonometric polynomials resolved by the grid (harmonics <= 3 k << n / 2): spectral
    # derivatives are exact up to rounding. mu: the spectral Laplacian of ph - pe and
    # ~20 elementwise roundings of its terms (both sides); lap(mu): mu's error amplified
    # by |k|^2 and the second spectral Laplacian, then over pe.
    k2 = _k2_max(n, L)
    terms = np.abs(pe) + np.abs(f) + l**2 * (np.abs(ph_xx) + np.abs(pe_yy))
    mu_error = _spectral(l**2 * k2, ph - pe) + 20 * EPS64 * float(terms.max())
    np.testing.assert_allclose(chemical_potential(ph, pe, PM, l, L), mu, rtol=0, atol=mu_error)
    lap_terms = np.abs(pe_yy) + np.abs(f1 * ph_xx) + np.abs(f2) * ph_x**2 + l**2 * (np.abs(ph_xxxx) + np.abs(pe_yyyy))
    lap_error = k2 * mu_error * np.sqrt(mu.size) + _spectral(k2, mu) + 30 * EPS64 * float(lap_terms.max())
    recovery = (ph - lap_mu / 2) / pe
    tol = lap_error / (2 * float(pe.min())) + 4 * EPS64 * float(np.abs(recovery).max())
    np.testing.assert_allclose(direct_recovery(ph, pe, PM, l, L), recovery, rtol=0, atol=tol)
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
