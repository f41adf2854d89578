"""Kernels: normalisation, closed-form derivatives vs nested autograd, support, order limits."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, special

import mollifier
from mollifier import PolynomialMollifier, ProfileMollifier, get_mollifier
from mollifier.core.stencils import mollifier_stencil

from core_helpers import moment_condition, sin_derivative, tail_bound
from tolerances import EPS64, conditioned_bound, stencil_rounding_bound

BUMP = get_mollifier("bump")  # the shared instance (normalisation computed once)
BUMP_AS_PROFILE = ProfileMollifier(lambda r: torch.exp(-1 / (1 - r * r)), label="bump-by-autograd")
POLY8 = get_mollifier("polynomial")
POLY8_AS_PROFILE = ProfileMollifier(lambda r: (1 - r * r) ** 8, label="poly8-by-autograd")


def _quad(f, a, b) -> tuple[float, float]:
    """Adaptive quadrature: the value and quad's own error estimate (a sanity cap of 1e-11)."""
    value, err = integrate.quad(f, a, b, epsabs=1e-14, epsrel=1e-13, limit=200)
    assert err < 1e-11
    return value, err


# The library's normalisation Z is a 400-point Gauss-Legendre sum of positive terms: its
# rounding is <= 400 eps relative in any summation order; the samples (1 - r^2)^p or
# exp(-1/(1 - r^2)) add a few eps relative on average over the rule (their conditioning
# ~ p r^2 / (1 - r^2) and 1 / (1 - r^2)^2 is large only where the samples are negligible),
# and numpy's leggauss weights a few eps more: Z_ROUNDING eps relative in all.
Z_ROUNDING = 400 + 64


@functools.cache
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


def _profile_difference(r: torch.Tensor, order: int) -> float:
    """Bound on |closed form - nested autograd| of eta^(order) at ``r`` (|r| < 1), profile units.

    The rationale of test_bump_closed_form_matches_nested_autograd: rounding amplified by
    kappa = 1 / s_min^2 (s = 1 - r^2) times ~4^k terms, relative to max|eta^(k)|.
    """
    inside = r[r.abs() < 1]
    kappa = 1 / float((1 - inside**2).min()) ** 2
    return 2 * EPS64 * kappa * 4**order * float(BUMP.profile_derivative(inside, order).abs().max())


def _tap_difference(order: int, h: float, radius: float) -> float:
    """Bound on ||taps(BUMP_AS_PROFILE) - taps(BUMP)||_1 for ``mollifier_stencil``.

    Samples h eta^(k)(x / delta) / (Z delta^(k+1)) differ by the profile difference so
    scaled; the moment correction c0 -> c0 + P(t - R c0) is a projection on c0 (2-norm
    <= 1), so ||dc||_1 <= sqrt(n) ||dc||_2 <= n max|dc0|; each correction also has its own
    forward error (tolerances.conditioned_bound, in the units m / M where it is solved).
    """
    half = int(radius / h + 1e-9)
    r = torch.arange(-half, half + 1, dtype=torch.float64) * h / radius
    n = r.numel()
    samples = h * _profile_difference(r, order) / (BUMP.normalization * radius ** (order + 1))
    stencil = mollifier_stencil(BUMP, order, h, radius)
    raw = mollifier_stencil(BUMP, order, h, radius, correct=False)
    correction = float((stencil - raw).norm())  # (the unit (M h)^order of the solve cancels)
    solve = conditioned_bound(moment_condition(half, order + 1), correction, EPS64)
    return n * samples + 2 * math.sqrt(n) * solve


def _radius_gradient_difference(order: int, h: float, radius: float, half: int, weights: torch.Tensor) -> float:
    """Bound on the difference of d(sum w * taps)/d(delta) between the two kernels.

    d/d delta of h eta^(k)(x/delta) / (Z delta^(k+1)) = -h / (Z delta^(k+2)) ((x/delta)
    eta^(k+1) + (k + 1) eta^(k)): its samples differ by the profile differences at orders
    k + 1 and k so scaled; the correction (rows independent of delta) is linear in the
    samples, a projection again, each with its own forward error (conditioned_bound); and
    the sum over taps rounds n + 1 times the terms' size, in both.
    """
    r = torch.arange(-half, half + 1, dtype=torch.float64) * h / radius
    n = r.numel()
    scale = h / (BUMP.normalization * radius ** (order + 2))
    inside = r[r.abs() < 1]
    d_samples = scale * (float(inside.abs().max()) * _profile_difference(r, order + 1)
                         + (order + 1) * _profile_difference(r, order))
    size = scale * (float(inside.abs().max()) * float(BUMP.profile_derivative(inside, order + 1).abs().max())
                    + (order + 1) * float(BUMP.profile_derivative(inside, order).abs().max()))
    w = float(weights.norm())  # |sum w dc| <= ||w||_2 ||dc||_2, ||dc||_2 <= sqrt(n) max|dc|
    cond = moment_condition(half, order + 1)
    return (w * math.sqrt(n) * d_samples + 2 * (n + 1) * EPS64 * w * math.sqrt(n) * size
            + 2 * w * conditioned_bound(cond, math.sqrt(n) * size, EPS64))


# --- smoke / shapes -------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["bump", "polynomial"])
def test_kernels_registry_and_shapes(kernel: str) -> None:
    eta = get_mollifier(kernel)
    assert eta is mollifier.KERNELS[kernel]
    assert get_mollifier(eta) is eta
    x = torch.linspace(-2, 2, 41, dtype=torch.float64).reshape(1, 41)
    for order in range(3):
        out = eta.evaluate(x, order, radius=1.5)
        assert out.shape == x.shape and out.dtype == torch.float64


# --- feature values ---------------------------------------------------------------------


@pytest.mark.parametrize("radius", [1.0, 0.3, 2.5])
@pytest.mark.parametrize("kernel", ["bump", "polynomial"])
def test_normalised_kernel_integrates_to_one(kernel: str, radius: float) -> None:
    # Adaptive quadrature of the scaled kernel, within quad's own error estimate; the
    # library's normalisation uses 400-point Gauss-Legendre (exact to ~eps for these
    # smooth profiles), within its rounding Z_ROUNDING eps.
    eta = get_mollifier(kernel)
    value, err = _quad(lambda x: float(eta.evaluate(torch.tensor(x, dtype=torch.float64), 0, radius)), -radius, radius)
    assert value == pytest.approx(1.0, abs=err + Z_ROUNDING * EPS64)


def test_normalisation_constants_match_closed_forms() -> None:
    # (1 - r^2)^p integrates to B(1/2, p + 1) = sqrt(pi) Gamma(p + 1) / Gamma(p + 3/2) exactly;
    # 400-point Gauss-Legendre is exact for this polynomial of degree 2p << 799.
    # Z within Z_ROUNDING eps; the closed form (sqrt, two gammas, a quotient) a few ulp more.
    assert POLY8 == PolynomialMollifier(8)
    for p in (2, 3, 8, 12):
        exact = math.sqrt(math.pi) * math.gamma(p + 1) / math.gamma(p + 1.5)
        assert PolynomialMollifier(p).normalization == pytest.approx(exact, rel=(Z_ROUNDING + 16) * EPS64)
    # The bump's integral has no elementary form; check against adaptive quadrature
    # (within quad's error estimate).
    bump_z, err = _quad(lambda r: math.exp(-1 / (1 - r * r)), -1, 1)
    assert BUMP.normalization == pytest.approx(bump_z, abs=err + Z_ROUNDING * EPS64 * bump_z)
    assert special.beta(0.5, 9) == pytest.approx(POLY8.normalization, rel=(Z_ROUNDING + 16) * EPS64)


@pytest.mark.parametrize("order", range(1, 7))
def test_derivative_kernels_have_the_continuous_moments(order: int) -> None:
    # Integration by parts (the kernel vanishes with all derivatives at the edge):
    # int eta_d^(k)(x) x^q dx = (-1)^k k! [q == k] for q <= k, given unit mass.
    # Quadrature: 1000-point Gauss-Legendre on the (C-infinity, flat at the ends)
    # integrand converges faster than any power (already ~1e-14 * L1 at 800 points);
    # what is left is rounding, relative to the integrand's L1 norm L1 = sum_i w_i |f(x_i)|:
    # the 1000-term sum, <= 1000 eps L1 in any order (the only part that depends on the
    # machine's summation order), and the samples' evaluation (IEEE operations plus
    # exp/log within a few ulp, amplified by the kernel's conditioning, ~eps kappa 4^k
    # as in the nested-autograd test below). 1e-12 L1 = 4500 eps L1 covers both.
    radius = 0.7
    nodes, weights = _gauss_legendre(1000)
    x = torch.as_tensor(nodes * radius, dtype=torch.float64)
    w = torch.as_tensor(weights * radius, dtype=torch.float64)
    kernel = BUMP.evaluate(x, order, radius)
    for q in range(order + 1):
        integrand = kernel * x**q
        value = float((w * integrand).sum())
        l1_norm = float((w * integrand.abs()).sum())
        expected = (-1) ** order * math.factorial(order) if q == order else 0.0
        assert value == pytest.approx(expected, abs=1e-12 * l1_norm)


@pytest.mark.parametrize("order", range(7))
def test_bump_closed_form_matches_nested_autograd(order: int) -> None:
    # Both evaluate the same analytic function in float64; each differs from it by
    # rounding amplified by the sensitivity of exp(-1/s), s = 1 - r^2: d(1/s) = ds / s^2,
    # so kappa <= 1/s_min^2 = 27.7 for |r| <= 0.9, times the growth of the nested
    # autograd expression (at most ~4^k terms of similar size). Tolerance:
    # 2 * eps * kappa * 4^k relative to max|eta^(k)| (~2.5e-11 at k = 6).
    r = torch.linspace(-0.9, 0.9, 181, dtype=torch.float64)
    closed = BUMP.profile_derivative(r, order)
    nested = BUMP_AS_PROFILE.profile_derivative(r, order)
    kappa = 1 / (1 - 0.9**2) ** 2
    tol = 2 * EPS64 * kappa * 4**order * float(closed.abs().max())
    assert float((closed - nested).abs().max()) <= tol
    # and through the public evaluation (scaled, normalised)
    x = torch.linspace(-0.27, 0.27, 55, dtype=torch.float64)
    a = BUMP.evaluate(x, order, 0.3)
    b = BUMP_AS_PROFILE.evaluate(x, order, 0.3)
    assert float((a - b).abs().max()) <= tol / BUMP.normalization / 0.3 ** (order + 1) * 1.01 + 1e-300


@pytest.mark.parametrize("order", range(8))
def test_polynomial_closed_form_matches_nested_autograd(order: int) -> None:
    # The closed form evaluates the expanded polynomial by Horner; its rounding error is
    # at most gamma_{2n} * sum_i |a_i| |r|^i (n = degree, a_i the coefficients, computed
    # here independently with numpy). Autograd differentiates the factored form, which is
    # accurate to a few eps relative to |value| <= that same sum.
    r = torch.linspace(-0.99, 0.99, 199, dtype=torch.float64)
    closed = POLY8.profile_derivative(r, order)
    nested = POLY8_AS_PROFILE.profile_derivative(r, order)
    coefficients = np.abs((np.polynomial.Polynomial([1, 0, -1]) ** 8).deriv(order).coef)
    degree = len(coefficients) - 1
    magnitude = torch.as_tensor(np.polynomial.polynomial.polyval(r.abs().numpy(), coefficients))
    tol = (2 * degree + 8) * EPS64 * magnitude
    assert bool(((closed - nested).abs() <= tol).all())


def test_bump_derivative_recurrence_against_finite_difference_of_closed_form() -> None:
    # An independent check of P_k: the central difference of eta^(k) approximates
    # eta^(k+1) with truncation error <= h^2/6 max|eta^(k+3)| and rounding error
    # <= eps max|eta^(k)| / h (times a few).
    r = torch.linspace(-0.8, 0.8, 33, dtype=torch.float64)
    h = 1e-4
    wide = torch.linspace(-0.8 - h, 0.8 + h, 3201, dtype=torch.float64)
    kappa = 1 / (1 - (0.8 + h) ** 2) ** 2  # as in test_bump_closed_form_matches_nested_autograd
    for k in range(5):
        fd = (BUMP.profile_derivative(r + h, k) - BUMP.profile_derivative(r - h, k)) / (2 * h)
        exact = BUMP.profile_derivative(r, k + 1)
        trunc = h**2 / 6 * float(BUMP.profile_derivative(wide, k + 3).abs().max())
        # each sample within 2 eps kappa 4^k of max|eta^(k)| (r +- h rounded: kappa covers
        # it), the difference of two over 2 h; the exact side likewise at order k + 1
        rounding = 2 * EPS64 * kappa * 4**k * float(BUMP.profile_derivative(wide, k).abs().max()) / h
        rounding += 2 * EPS64 * kappa * 4 ** (k + 1) * float(exact.abs().max())
        assert float((fd - exact).abs().max()) <= trunc + rounding


@pytest.mark.parametrize("kernel", ["bump", "polynomial"])
def test_non_negative_with_compact_support(kernel: str) -> None:
    eta = get_mollifier(kernel)
    radius = 0.4
    x = torch.arange(-1000, 1001, dtype=torch.float64) / 1000  # x.flip(0) == -x exactly
    value = eta.evaluate(x, 0, radius)
    assert bool((value >= 0).all())
    inside = x.abs() < radius
    assert bool((value[~inside] == 0).all())
    # strictly positive inside (away from the last 1% where the bump underflows:
    # exp(-1/(1 - r^2)) < 1e-308 only for 1 - r^2 < 1/708)
    assert bool((value[x.abs() < 0.99 * radius] > 0).all())
    for order in (1, 3, 5):
        assert bool((eta.evaluate(x, order, radius)[~inside] == 0).all())
    # Parity: eta^(k)(-x) = (-1)^k eta^(k)(x). The same IEEE operations on inputs of
    # opposite sign give results of opposite sign exactly; only exp, log and pow may round
    # differently at x and -x (vectorised body vs scalar tail), by <= 4 ulp each, and
    # log s enters the bump's exponent times 2k (s = 1 - r^2).
    log_s = torch.log((1 - (x / radius) ** 2).clamp_min(1e-300)).abs()
    for order in range(5):
        v = eta.evaluate(x, order, radius)
        tol = 2 * 4 * EPS64 * (2 + 2 * order * log_s) * v.abs()
        assert bool(((v.flip(0) - (-1) ** order * v).abs() <= tol).all())


def test_polynomial_kernel_refuses_order_at_or_above_power() -> None:
    for p in (3, 8):
        eta = PolynomialMollifier(p)
        assert eta.max_order == p - 1
        eta.check_order(p - 1)
        with pytest.raises(ValueError, match=rf"order {p}.*at most {p - 1}"):
            eta.check_order(p)
        with pytest.raises(ValueError, match="order"):
            eta.evaluate(torch.zeros(3, dtype=torch.float64), p + 1, 1.0)
    u = torch.zeros(1, 1, 64, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"order 8 .*kernel='bump'"):
        mollifier.derivative(u, (8,), 0.1, 1.0, kernel="polynomial", boundary="periodic")
    with pytest.raises(TypeError, match="power"):
        PolynomialMollifier(2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="power"):
        PolynomialMollifier(1)


def test_profile_with_non_positive_integral_is_rejected() -> None:
    with pytest.raises(ValueError, match="positive finite integral"):
        _ = ProfileMollifier(lambda r: -torch.ones_like(r), label="negative").normalization


# --- user kernels end to end -------------------------------------------------------------


def test_profile_mollifier_end_to_end_in_derivative() -> None:
    sharp = ProfileMollifier(lambda r: torch.exp(-2 / (1 - r * r)), label="sharp-bump")
    n = 96
    h = 2 * math.pi / n
    radius = 6 * h
    x = torch.arange(n, dtype=torch.float64) * h
    u = torch.sin(x).reshape(1, 1, n)
    for order in (0, 1, 2, 3):
        out = mollifier.derivative(u, (order,), h, radius, kernel=sharp, boundary="periodic")
        stencil = mollifier_stencil(sharp, order, h, radius)
        tol = tail_bound(stencil, h, order, 1.0) + 4 * stencil.numel() * EPS64 * float(stencil.abs().sum())
        assert float((out.flatten() - sin_derivative(x, 1.0, 0.0, order)).abs().max()) <= tol
    # The bump written as a profile gives the built-in bump's result (derivatives by
    # autograd instead of closed form): same linear operator, taps within _tap_difference.
    for order in (1, 4):
        a = mollifier.derivative(u, (order,), h, radius, kernel=BUMP_AS_PROFILE, boundary="periodic")
        b = mollifier.derivative(u, (order,), h, radius, kernel="bump", boundary="periodic")
        stencil = mollifier_stencil(BUMP, order, h, radius)
        u_max = float(u.abs().max())
        tol = _tap_difference(order, h, radius) * u_max + 2 * stencil_rounding_bound(stencil, u_max, EPS64)
        assert torch.allclose(a, b, rtol=0, atol=tol)


def test_profile_mollifier_works_under_no_grad() -> None:
    # Regression: nested autograd of the profile used to fail inside torch.no_grad().
    kernel = ProfileMollifier(lambda r: torch.exp(-3 / (1 - r * r)), label="no-grad-probe")
    u = torch.randn(1, 1, 40, dtype=torch.float64)
    with torch.no_grad():
        out = mollifier.derivative(u, (2,), 0.1, 0.35, kernel=kernel, boundary="periodic")
    assert out.shape == u.shape and bool(torch.isfinite(out).all())


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_profile_mollifier_radius_gradient_matches_closed_form_kernel(order: int) -> None:
    # Regression: the autograd-derived kernel used to detach r = x / radius, dropping the
    # chain-rule term through r from d(stencil)/d(radius). Same function, so the
    # gradients agree up to the rounding of the kernels themselves (_radius_gradient_difference).
    torch.manual_seed(order)
    weights = torch.randn(11, dtype=torch.float64)
    grads = []
    for kernel in (BUMP, BUMP_AS_PROFILE):
        radius = torch.tensor(0.43, dtype=torch.float64, requires_grad=True)
        taps = mollifier_stencil(kernel, order, 0.1, radius, halfwidth=5)
        (g,) = torch.autograd.grad((taps * weights).sum(), radius)
        grads.append(float(g))
    assert grads[1] == pytest.approx(grads[0], abs=_radius_gradient_difference(order, 0.1, 0.43, 5, weights))
    assert grads[0] != 0.0
