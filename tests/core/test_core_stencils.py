"""Moment-corrected mollifier stencils and finite-difference stencils.

The rule under test: the stencil for ``d^k/dx^k`` has discrete moments
``mu_q = [q == k]`` for ``q <= k + 1``, hence is exact on polynomials of degree
``k + 1`` (per axis, for separable multi-indices) and not beyond.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from numpy.polynomial import polynomial as P

import mollifier
from mollifier import finite_difference_stencil, get_mollifier, mollifier_stencil, stencil_moments

from core_helpers import moment_condition, moments, polynomial_exactness_tolerance
from tolerances import EPS64, conditioned_bound, residual_bound

BUMP = get_mollifier("bump")


def _scale(stencil: torch.Tensor, spacing: float, degree: int) -> np.ndarray:
    """``sum_m |c_m| |m h|^q / q!``: the size of the terms summed into ``mu_q``."""
    c = stencil.abs().numpy()
    half = (len(c) - 1) // 2
    m = np.abs(np.arange(-half, half + 1) * spacing)
    return np.array([float(np.sum(c * m**q)) / math.factorial(q) for q in range(degree + 1)])


def _moment_tolerance(s: torch.Tensor, raw: torch.Tensor, spacing: float, order: int, degree: int) -> np.ndarray:
    """Bound on ``|mu_q - [q == order]|``, ``q <= degree``, for taps from ``moment_correct``.

    The correction ``s - raw`` solves the moment system in units where the offsets are
    ``m / M`` (rows ``R``); a backward-stable solve leaves a residual of at most
    ``tolerances.residual_bound(||R||, ||correction||)`` there, which is
    ``(M h)^(q - order)`` times as large in physical units. Computing ``mu_q`` (the
    library's ``stencil_moments``: ``n`` products summed, offsets^q / q! with ``q + 2``
    roundings) and rescaling the taps by ``(M h)^order`` (``order + 2`` roundings) add
    their roundings relative to ``_scale``, the size of the terms summed.
    """
    half = (s.numel() - 1) // 2
    unit = half * spacing
    sv = np.arange(-half, half + 1) / half
    rows = np.stack([sv**q / math.factorial(q) for q in range(degree + 1)])
    correction = (s - raw).numpy() * unit**order
    q = np.arange(degree + 1)
    residual = residual_bound(np.linalg.norm(rows, 2), np.linalg.norm(correction), EPS64) * unit ** (q - order)
    return residual + (s.numel() + 2 * q + order + 6) * EPS64 * _scale(s, spacing, degree)


def _parity_tolerance(s: torch.Tensor, raw: torch.Tensor, spacing: float, order: int, degree: int) -> float:
    """Bound on the odd (even) moment ``mu_q`` of an even (odd) corrected stencil, ``q > degree``.

    In exact arithmetic the taps keep the kernel's parity and ``mu_q`` vanishes. The SVD
    behind the correction does not preserve parity: the taps' antisymmetric part is at most
    the forward error of the solve, ``conditioned_bound(cond(R), ||correction||)`` (scaled
    units), and ``mu_q`` sees it through ``sqrt(n) max|s^q| / q!``.
    """
    half = (s.numel() - 1) // 2
    unit = half * spacing
    q = degree + 1
    correction = np.linalg.norm((s - raw).numpy() * unit**order)
    odd = conditioned_bound(moment_condition(half, degree), correction, EPS64) * math.sqrt(s.numel()) / math.factorial(q)
    return odd * unit ** (q - order) + (s.numel() + 2 * q + order + 6) * EPS64 * _scale(s, spacing, q)[q]


# --- smoke / shapes ---------------------------------------------------------------------


@pytest.mark.parametrize("cells", [2, 3, 8, 16])
def test_stencil_shape_dtype_and_parity(cells: int) -> None:
    h = 0.05
    for order in range(5):
        s = mollifier_stencil(BUMP, order, h, cells * h)
        assert s.shape == (2 * cells + 1,) and s.dtype == torch.float64
        # Correlation taps of a derivative of order k have parity (-1)^k. The samples have
        # it up to exp/log, which may round differently (<= 4 ulp each) for the two taps
        # (vectorised body vs scalar tail); log s enters the exponent times 2k. The
        # correction keeps it up to its forward error (see _parity_tolerance).
        raw = mollifier_stencil(BUMP, order, h, cells * h, correct=False)
        r = np.arange(-cells + 1, cells) / cells
        log_s = float(np.abs(np.log(1 - r**2)).max())
        unit = (cells * h) ** order
        correction = np.linalg.norm((s - raw).numpy() * unit)
        tol = conditioned_bound(moment_condition(cells, order + 1), correction, EPS64) / unit
        tol += 2 * 4 * EPS64 * (2 + 2 * order * log_s) * float(raw.abs().max())
        assert torch.allclose(s.flip(0), (-1) ** order * s, rtol=0, atol=tol)


def test_halfwidth_and_halo_width() -> None:
    assert mollifier.halo_width(0.1, 0.45, ndim=2) == (4, 4)
    assert mollifier.halo_width((0.1, 0.2), (0.3, 0.3)) == (3, 1)
    # radius an exact multiple of h up to rounding (0.3 / 0.1 = 2.9999999999999996)
    assert mollifier.halo_width(0.1, 0.3, ndim=1) == (3,)
    assert mollifier_stencil(BUMP, 2, 0.1, 0.3).numel() == 7


# --- the moment rule ----------------------------------------------------------------------


@pytest.mark.parametrize("cells", [2, 3, 8, 16])
@pytest.mark.parametrize("order", range(7))
@pytest.mark.parametrize("spacing", [1.0, 0.01])
def test_moments_are_exact_up_to_order_plus_one(order: int, cells: int, spacing: float) -> None:
    if 2 * cells < order:
        # 2M + 1 taps of parity (-1)^k give M (+1 if k even) free values for the
        # ceil(k/2) (+1) moment conditions: impossible when 2M < k. It must be refused
        # rather than silently returning a stencil with wrong moments.
        with pytest.raises(ValueError, match="`radius`"):
            mollifier_stencil(BUMP, order, spacing, cells * spacing)
        return
    s = mollifier_stencil(BUMP, order, spacing, cells * spacing)
    raw = mollifier_stencil(BUMP, order, spacing, cells * spacing, correct=False)
    mu = stencil_moments(s, spacing, order + 1).numpy()
    target = np.zeros(order + 2)
    target[order] = 1.0
    # the residual of the moment system (a float64 solve) plus the rounding of the sums
    assert np.all(np.abs(mu - target) <= _moment_tolerance(s, raw, spacing, order, order + 1))
    # The library's moments agree with an independent exactly-summed evaluation: they
    # differ by the rounding of the library's sums (n products, offsets^q / q!: q + 2
    # roundings) and of the powers in `moments` (q + 1 roundings), relative to _scale.
    q = np.arange(order + 2)
    tol = (s.numel() + 2 * q + 4) * EPS64 * _scale(s, spacing, order + 1)
    assert np.all(np.abs(mu - moments(s, spacing, order + 1)) <= tol)
    # the next moment of the same parity is the smoothing bias: nonzero
    assert abs(moments(s, spacing, order + 2)[order + 2]) > 1e-6 * _scale(s, spacing, order + 2)[order + 2]


@pytest.mark.parametrize("order", [2, 4])
def test_uncorrected_samples_have_wrong_moments(order: int) -> None:
    # Sampling the kernel alone (correct=False) is far from exact: this is why the
    # correction exists (and shows the moment test above can fail).
    h = 0.1
    raw = mollifier_stencil(BUMP, order, h, 8 * h, correct=False)
    mu = stencil_moments(raw, h, order)
    assert abs(float(mu[order]) - 1.0) > 1e-3


@pytest.mark.parametrize("kernel", [get_mollifier("bump"), get_mollifier("polynomial")])
def test_moment_rule_holds_for_every_kernel(kernel) -> None:
    h = 0.2
    for order in range(6):
        s = mollifier_stencil(kernel, order, h, 5 * h)
        raw = mollifier_stencil(kernel, order, h, 5 * h, correct=False)
        mu = stencil_moments(s, h, order + 1).numpy()
        target = np.eye(order + 2)[order]
        assert np.all(np.abs(mu - target) <= _moment_tolerance(s, raw, h, order, order + 1))


# --- exactness on polynomials (valid mode, float64) -------------------------------------------


def _poly_field(coeffs: np.ndarray, axes: list[np.ndarray]) -> torch.Tensor:
    grid = {1: P.polyval, 2: P.polygrid2d, 3: P.polygrid3d}[len(axes)]
    values = grid(*axes, coeffs) if len(axes) > 1 else grid(axes[0], coeffs)
    return torch.as_tensor(values, dtype=torch.float64)


def _poly_derivative(coeffs: np.ndarray, index: tuple[int, ...]) -> np.ndarray:
    out = coeffs
    for axis, k in enumerate(index):
        out = P.polyder(out, k, axis=axis) if k else out
    return out


CASES = [
    # (orders per axis, spacing per axis, radius in cells per axis)
    ((0,), (0.1,), (3,)),
    ((1,), (0.1,), (2,)),
    ((3,), (0.07,), (4,)),
    ((6,), (0.1,), (3,)),
    ((6,), (0.05,), (8,)),
    ((1, 1), (0.1, 0.07), (3, 2)),
    ((2, 1), (0.05, 0.12), (4, 3)),
    ((0, 4), (0.1, 0.07), (2, 5)),
    ((1, 1, 1), (0.1, 0.07, 0.13), (2, 3, 2)),
    ((2, 0, 3), (0.09, 0.11, 0.05), (3, 2, 4)),
]


def _exactness_setup(orders, spacing, cells, extra_degree: int = 0, axis_extra: int = 0):
    rng = np.random.default_rng(sum(orders) * 31 + len(orders))
    degrees = [k + 1 + (extra_degree if a == axis_extra else 0) for a, k in enumerate(orders)]
    coeffs = rng.standard_normal([d + 1 for d in degrees])
    n_interior = 5
    axes = [
        lower + h * np.arange(-m, n_interior + m)
        for lower, h, m in zip((-0.3, 0.2, -0.1)[: len(orders)], spacing, cells)
    ]
    u = _poly_field(coeffs, axes).reshape(1, 1, *[len(a) for a in axes])
    radius = tuple(m * h for m, h in zip(cells, spacing))
    out = mollifier.derivative(u, orders, spacing, radius, boundary="valid", method="direct")
    interior = [a[m:-m] for a, m in zip(axes, cells)]
    expected = _poly_field(_poly_derivative(coeffs, orders), interior)
    stencils = [mollifier_stencil(BUMP, k, h, r) for k, h, r in zip(orders, spacing, radius)]
    # On a polynomial of degree <= k + 1 per axis the only error left is rounding: of the
    # passes, of the samples and the expected values, and of the taps' moments
    # (core_helpers.polynomial_exactness_tolerance). A violated moment instead gives an
    # error of size mu_{k+2} p^(k+2) (the next test), 1e3 or more times larger.
    lowers = [a[0] for a in axes]
    tol = polynomial_exactness_tolerance(coeffs, lowers, spacing, [len(a) for a in axes], orders, stencils,
                                         float(u.abs().max()))
    return out, expected, tol


@pytest.mark.parametrize(("orders", "spacing", "cells"), CASES)
def test_exact_on_polynomials_of_degree_order_plus_one(orders, spacing, cells) -> None:
    out, expected, tol = _exactness_setup(orders, spacing, cells)
    assert out.shape[2:] == expected.shape
    err = float((out[0, 0] - expected).abs().max())
    assert err <= tol, (err, tol)


@pytest.mark.parametrize(("orders", "spacing", "cells"), CASES)
def test_not_exact_on_degree_order_plus_two(orders, spacing, cells) -> None:
    # One more degree along one axis: the error is mu_{k+2} * p^(k+2), the smoothing bias,
    # which must stand far above the rounding tolerance of the exactness test.
    axis = len(orders) - 1
    out, expected, tol = _exactness_setup(orders, spacing, cells, extra_degree=1, axis_extra=axis)
    err = float((out[0, 0] - expected).abs().max())
    assert err > 1e3 * tol, (err, tol)


# --- finite-difference stencils ---------------------------------------------------------------


def test_finite_difference_classical_coefficients() -> None:
    h = 0.5
    ref = {
        (1, 2): [-0.5, 0, 0.5],
        (2, 2): [1, -2, 1],
        (1, 4): [1 / 12, -2 / 3, 0, 2 / 3, -1 / 12],
        (2, 4): [-1 / 12, 4 / 3, -5 / 2, 4 / 3, -1 / 12],
        (3, 2): [-0.5, 1, 0, -1, 0.5],
        (4, 2): [1, -4, 6, -4, 1],
    }
    for (order, accuracy), coefficients in ref.items():
        s = finite_difference_stencil(order, h, accuracy)
        expected = torch.tensor(coefficients, dtype=torch.float64) / h**order  # h = 1/2: exact scaling
        # a <= 5x5 moment system solved in float64: forward error <= cond * backward error,
        # plus one rounding of each expected coefficient (1/12, 2/3, ...)
        half = (s.numel() - 1) // 2
        tol = conditioned_bound(moment_condition(half, 2 * half), float(expected.norm()), EPS64)
        tol += EPS64 * float(expected.abs().max())
        assert torch.allclose(s, expected, rtol=0, atol=tol), (order, accuracy, s)
    assert torch.equal(finite_difference_stencil(0, h), torch.ones(1, dtype=torch.float64))


@pytest.mark.parametrize(("order", "accuracy"), list(itertools.product([1, 2, 3, 4], [2, 4, 6])))
def test_finite_difference_moments(order: int, accuracy: int) -> None:
    h = 0.3
    s = finite_difference_stencil(order, h, accuracy)
    half = (s.numel() - 1) // 2
    degree = 2 * half  # the unique stencil exact on polynomials of degree 2M
    mu = stencil_moments(s, h, degree + 2).numpy()
    target = np.eye(degree + 3)[order]
    scale = _scale(s, h, degree + 2)
    zero = torch.zeros_like(s)  # the finite-difference stencil is all correction
    assert np.all(np.abs(mu - target)[: degree + 1] <= _moment_tolerance(s, zero, h, order, degree))
    # By parity the first non-vanishing error moment is q = 2M + 1 (odd order) or
    # 2M + 2 (even order); the truncation error is O(h^(q - order)) >= O(h^accuracy).
    first = degree + 1 if order % 2 else degree + 2
    assert abs(mu[first]) > 1e-6 * scale[first]
    if order % 2 == 0:
        assert abs(mu[degree + 1]) <= _parity_tolerance(s, zero, h, order, degree)
    assert first - order == accuracy


def test_finite_differences_exact_on_polynomials() -> None:
    x = torch.linspace(-1, 1, 21, dtype=torch.float64)
    h = 0.1
    u = (3 * x**4 - x**3 + 2 * x).reshape(1, 1, -1)
    out = mollifier.finite_differences(u, {"d1": (1,), "d2": (2,), "d4": (4,)}, h, accuracy=4)
    # valid mode: the halo is the widest stencil's (order 4, accuracy 4: M = 3)
    xi = x[3:-3]
    expected = {"d1": 12 * xi**3 - 3 * xi**2 + 2, "d2": 36 * xi**2 - 6 * xi, "d4": torch.full_like(xi, 72.0)}
    coeffs = np.array([0.0, 2.0, 0.0, -1.0, 3.0])
    for name, value in expected.items():
        s = finite_difference_stencil(int(name[1]), h, 4, 3)
        # exact on degree 2 M = 6 >= 4: rounding only (passes, samples, moment residuals)
        tol = polynomial_exactness_tolerance(coeffs, [-1.0], [h], [21], [int(name[1])], [s], float(u.abs().max()),
                                             exact_degrees=[6])
        assert out[name].shape == (1, 1, 15)
        assert float((out[name].flatten() - value).abs().max()) <= tol
