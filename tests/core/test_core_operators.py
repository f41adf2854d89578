"""The functional API: ``derivative`` / ``derivatives`` on 1-3-D fields.

Analytic checks use products of sines, ``u = prod_i sin(w_i x_i + phi_i)``, for which
the error of a separable stencil is bounded by ``prod (A_i + T_i) - prod A_i``
(see ``core_helpers``): the smoothing bias, tight, plus rounding.
"""

from __future__ import annotations

import math

import pytest
import torch

import mollifier
from mollifier.core import convolution

from core_helpers import bump_stencil, halo, moments, product_bound, sin_derivative, tail_bound
from tolerances import EPS32, EPS64, l1, mollifier_terms, reordering_bound, stencil_rounding_bound

OMEGAS = (1.3, 2.1, 0.8)
PHASES = (0.3, -0.7, 1.1)
LOWER = (-0.4, 0.1, 0.25)


def _sine_product(shape, spacing, lower=LOWER, dtype=torch.float64):
    axes = [lo + h * torch.arange(n, dtype=torch.float64) for lo, h, n in zip(lower, spacing, shape)]
    mesh = torch.meshgrid(*axes, indexing="ij") if len(axes) > 1 else (axes[0],)
    u = torch.ones(shape, dtype=torch.float64)
    for m, w, p in zip(mesh, OMEGAS, PHASES):
        u = u * torch.sin(w * m + p)
    return axes, mesh, u.reshape(1, 1, *shape).to(dtype)


def _expected(mesh, index):
    out = torch.ones_like(mesh[0])
    for m, w, p, k in zip(mesh, OMEGAS, PHASES, index):
        out = out * sin_derivative(m, w, p, k)
    return out


def _bound(index, spacing, radius, u_max=1.0, eps=EPS64):
    stencils = [bump_stencil(k, h, r) for k, h, r in zip(index, spacing, radius)]
    tails = [tail_bound(s, h, k, w) for s, h, k, w in zip(stencils, spacing, index, OMEGAS)]
    amplitudes = [w**k for w, k in zip(OMEGAS, index)]
    return product_bound(amplitudes, tails) + stencil_rounding_bound(stencils, u_max, eps)


ANALYTIC_CASES = [
    ((2,), (0.05,), (0.2,)),
    ((5,), (0.05,), (0.25,)),
    ((1, 1), (0.05, 0.08), (0.2, 0.24)),
    ((2, 1), (0.04, 0.07), (0.16, 0.21)),
    ((0, 3), (0.06, 0.05), (0.18, 0.2)),
    ((1, 1, 1), (0.05, 0.08, 0.06), (0.15, 0.24, 0.18)),
    ((2, 0, 1), (0.07, 0.05, 0.06), (0.21, 0.15, 0.24)),
]


# --- smoke / shapes ---------------------------------------------------------------------


def test_smoke_docstring_example() -> None:
    u = torch.randn(1, 1, 64, 64, dtype=torch.float64)
    lap = mollifier.derivative(u, mollifier.laplacian(2), spacing=0.1, radius=0.4, boundary="periodic")
    assert lap.shape == (1, 1, 64, 64)


@pytest.mark.parametrize("boundary", mollifier.BOUNDARIES)
@pytest.mark.parametrize("shape", [(20,), (14, 17), (11, 12, 13)])
def test_output_shapes(shape, boundary) -> None:
    ndim = len(shape)
    spacing = (0.1, 0.2, 0.05)[:ndim]
    radius = (0.3, 0.45, 0.1)[:ndim]  # halos 3, 2, 2
    u = torch.randn(2, 3, *shape, dtype=torch.float64)
    out = mollifier.derivative(u, (1,) * ndim, spacing, radius, boundary=boundary)
    halos = mollifier.halo_width(spacing, radius)
    assert halos == (3, 2, 2)[:ndim]
    if boundary == "valid":
        assert out.shape == (2, 3, *[n - 2 * m for n, m in zip(shape, halos)])
    else:
        assert out.shape == u.shape


def test_batch_and_channels_are_independent() -> None:
    u = torch.randn(2, 3, 16, 15, dtype=torch.float64)
    out = mollifier.derivative(u, (2, 1), (0.1, 0.1), 0.3, boundary="reflect")
    for b in range(2):
        for c in range(3):
            one = mollifier.derivative(u[b : b + 1, c : c + 1], (2, 1), (0.1, 0.1), 0.3, boundary="reflect")
            assert torch.equal(out[b : b + 1, c : c + 1], one)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_preserved(dtype) -> None:
    u = torch.randn(1, 2, 20, 20, dtype=dtype)
    out = mollifier.derivatives(u, {"a": (1, 0), "lap": mollifier.laplacian(2)}, 0.1, 0.3, boundary="zeros")
    for value in out.values():
        assert value.dtype == dtype and value.device == u.device


# --- feature values -------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "spacing", "radius"), ANALYTIC_CASES)
def test_analytic_derivatives_valid_mode(index, spacing, radius) -> None:
    halos = [halo(h, r) for h, r in zip(spacing, radius)]
    interior = (9, 8, 7)[: len(index)]
    shape = tuple(n + 2 * m for n, m in zip(interior, halos))
    _, mesh, u = _sine_product(shape, spacing)
    out = mollifier.derivative(u, index, spacing, radius)
    inner = tuple(slice(m, -m) for m in halos)
    expected = _expected([m[inner] for m in mesh], index)
    err = float((out[0, 0] - expected).abs().max())
    assert err <= _bound(index, spacing, radius), err


def test_analytic_derivative_fails_with_wrong_spacing() -> None:
    # Sanity check that the analytic comparison can fail: a 20 % wrong spacing along
    # axis 0 scales the first derivative by ~1/1.2, an error of ~0.45 on a result of
    # size 2.7, several times the bound (0.066, mostly smoothing bias at 4 cells).
    index, spacing, radius = (1, 1), (0.05, 0.08), (0.2, 0.24)
    halos = [halo(h, r) for h, r in zip(spacing, radius)]
    _, mesh, u = _sine_product((9 + 2 * halos[0], 8 + 2 * halos[1]), spacing)
    out = mollifier.derivative(u, index, (0.05 * 1.2, 0.08), (0.2 * 1.2, 0.24))
    inner = tuple(slice(m, -m) for m in halos)
    err = float((out[0, 0] - _expected([m[inner] for m in mesh], index)).abs().max())
    assert err > 3 * _bound(index, spacing, radius)


def test_smoothed_field_of_a_linear_function_is_exact() -> None:
    # order-0 stencil: mu_0 = 1, mu_1 = 0, so the smoothing keeps affine functions
    x = torch.linspace(0, 1, 31, dtype=torch.float64)
    X, Y = torch.meshgrid(x, x, indexing="ij")
    u = (2 + 3 * X - Y).reshape(1, 1, 31, 31)
    out = mollifier.derivative(u, (0, 0), 1 / 30, 4 / 30)
    s = bump_stencil(0, 1 / 30, 4 / 30)
    # Exact up to: the rounding of the two passes (|u| <= 5); the samples' own deviation
    # from an affine function of the index (linspace, 3 * X, +, -: <= 4 roundings of
    # values <= 5, i.e. 20 eps), seen through both sides (gain l1(s)^2 and 1); and the
    # moment residuals of the taps (mu_0 - 1 against |u| <= 5, mu_1 against |grad u| <= 3
    # per axis), summed exactly by core_helpers.moments.
    mu = moments(s, 1 / 30, 1)
    residual = 2 * (abs(mu[0] - 1) * 5.0 + abs(mu[1]) * 3.0) * l1(s)
    tol = stencil_rounding_bound([s, s], 5.0, EPS64) + (l1(s) ** 2 + 1) * 20 * EPS64 + residual
    assert torch.allclose(out, u[..., 4:-4, 4:-4], rtol=0, atol=tol)


@pytest.mark.parametrize(("index", "spacing", "radius"), ANALYTIC_CASES)
def test_float32_matches_float64_within_rounding(index, spacing, radius) -> None:
    # The float32 result differs from the float64 one on the same input by at most the
    # float32 rounding: sum_a (n_a + 1) eps32 * prod ||c_a||_1 * ||u||_inf (taps
    # rounded to float32 and n_a products accumulated per pass); float64 rounding is
    # 2^-29 times smaller. Direct method: the FFT's rounding behaves differently.
    halos = [halo(h, r) for h, r in zip(spacing, radius)]
    shape = tuple(10 + 2 * m for m in halos)
    torch.manual_seed(len(index))
    u32 = torch.randn(1, 1, *shape, dtype=torch.float32)
    u64 = u32.double()
    out32 = mollifier.derivative(u32, index, spacing, radius, method="direct")
    out64 = mollifier.derivative(u64, index, spacing, radius, method="direct")
    assert out32.dtype == torch.float32
    stencils = [bump_stencil(k, h, r) for k, h, r in zip(index, spacing, radius)]
    tol = stencil_rounding_bound(stencils, float(u64.abs().max()), EPS32)
    err = float((out32.double() - out64).abs().max())
    assert err <= tol, (err, tol)
    # the bound is not vacuous: it is below the size of the result
    assert tol < 0.05 * float(out64.abs().max())


def test_laplacian_of_sin_sin_periodic() -> None:
    n, m = 64, 48
    hx, hy = 2 * math.pi / n, 2 * math.pi / m
    X, Y = torch.meshgrid(torch.arange(n) * hx, torch.arange(m) * hy, indexing="ij")
    u = (torch.sin(X.double()) * torch.sin(Y.double())).reshape(1, 1, n, m)
    radius = (4 * hx, 3 * hy)
    lap = mollifier.derivative(u, mollifier.laplacian(2), (hx, hy), radius, boundary="periodic")
    expected = -2 * u
    bound = 0.0
    for idx in ((2, 0), (0, 2)):
        stencils = [bump_stencil(k, h, r) for k, h, r in zip(idx, (hx, hy), radius)]
        tails = [tail_bound(s, h, k, 1.0) for s, h, k in zip(stencils, (hx, hy), idx)]
        bound += product_bound([1.0, 1.0], tails) + stencil_rounding_bound(stencils, 1.0, EPS64)
    assert float((lap - expected).abs().max()) <= bound


def test_biharmonic_of_sin_sin_periodic() -> None:
    n = 48
    h = 2 * math.pi / n
    x = torch.arange(n, dtype=torch.float64) * h
    X, Y = torch.meshgrid(x, x, indexing="ij")
    u = (torch.sin(X) * torch.sin(2 * Y)).reshape(1, 1, n, n)
    radius = 5 * h
    spec = mollifier.biharmonic(2)
    out = mollifier.derivative(u, spec, h, radius, boundary="periodic")
    expected = (1 + 4) ** 2 * u  # lap^2 of sin(x) sin(2y) = (1 + 4)^2 u
    bound = 0.0
    for idx, coeff in spec.items():
        stencils = [bump_stencil(k, h, radius) for k in idx]
        tails = [tail_bound(s, h, k, w) for s, k, w in zip(stencils, idx, (1.0, 2.0))]
        bound += abs(coeff) * (product_bound([1.0**idx[0], 2.0 ** idx[1]], tails) + stencil_rounding_bound(stencils, 1.0, EPS64))
    err = float((out - expected).abs().max())
    assert err <= bound
    assert err > 0.1 * bound  # the bound is the (tight) smoothing bias, not a loose cap


# --- many derivatives at once -------------------------------------------------------------------


def test_operator_helpers() -> None:
    assert mollifier.gradient(3) == {"d0": (1, 0, 0), "d1": (0, 1, 0), "d2": (0, 0, 1)}
    assert mollifier.laplacian(3) == {(2, 0, 0): 1.0, (0, 2, 0): 1.0, (0, 0, 2): 1.0}
    assert mollifier.biharmonic(1) == {(4,): 1.0}
    assert mollifier.biharmonic(3) == {
        (4, 0, 0): 1.0, (2, 2, 0): 2.0, (2, 0, 2): 2.0, (0, 4, 0): 1.0, (0, 2, 2): 2.0, (0, 0, 4): 1.0,
    }


@pytest.mark.parametrize("boundary", ["valid", "periodic", "reflect"])
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_many_at_once_equal_one_by_one(ndim: int, boundary: str) -> None:
    torch.manual_seed(ndim)
    shape = (24, 20, 18)[:ndim]
    spacing = (0.1, 0.12, 0.09)[:ndim]
    radius = (0.3, 0.36, 0.27)[:ndim]
    u = torch.randn(2, 1, *shape, dtype=torch.float64)
    requests = {
        **mollifier.gradient(ndim),
        "lap": mollifier.laplacian(ndim),
        "bih": mollifier.biharmonic(ndim),
        "mixed": {(1,) * ndim: 2.0, (0,) * ndim: -0.5},
    }
    together = mollifier.derivatives(u, requests, spacing, radius, boundary=boundary)
    assert list(together) == list(requests)
    for name, spec in requests.items():
        alone = mollifier.derivative(u, spec, spacing, radius, boundary=boundary)
        # Same taps and the same exact sums; only accumulation order may differ, so the
        # difference is within twice the rounding bound of the combination.
        specs = spec if isinstance(spec, dict) else {spec: 1.0}
        tol = 2 * sum(
            abs(c) * stencil_rounding_bound([bump_stencil(k, h, r) for k, h, r in zip(idx, spacing, radius)], float(u.abs().max()), EPS64)
            for idx, c in specs.items()
        )
        assert float((together[name] - alone).abs().max()) <= tol


def test_linear_combination_equals_combined_terms() -> None:
    torch.manual_seed(0)
    u = torch.randn(1, 1, 30, 30, dtype=torch.float64)
    combo = mollifier.derivative(u, {(1, 0): 2.0, (0, 2): -0.5}, 0.1, 0.3, boundary="periodic")
    a = mollifier.derivative(u, (1, 0), 0.1, 0.3, boundary="periodic")
    b = mollifier.derivative(u, (0, 2), 0.1, 0.3, boundary="periodic")
    ref = 2 * a - 0.5 * b
    # the same terms, summed in another order (the shared passes may even round
    # differently from the separate ones): within twice the combination's rounding bound
    terms = mollifier_terms({(1, 0): 2.0, (0, 2): -0.5}, (0.1, 0.1), (0.3, 0.3))
    tol = reordering_bound(terms, float(u.abs().max()), EPS64)
    assert torch.allclose(combo, ref, rtol=0, atol=tol)


def test_passes_are_shared(monkeypatch) -> None:
    calls = []
    original = convolution.correlate_axis

    def spy(x, axis, stencils, boundary, method="auto"):
        calls.append((axis, stencils.shape[0]))
        return original(x, axis, stencils, boundary, method)

    monkeypatch.setattr(convolution, "correlate_axis", spy)
    u = torch.randn(1, 1, 20, 20, dtype=torch.float64)
    mollifier.derivatives(u, {"a": (1, 0), "b": (1, 1), "c": (0, 2)}, 0.1, 0.3, boundary="periodic")
    # axis 0: one pass computing orders {0, 1}; axis 1: prefix (0,) -> {2}, prefix (1,) -> {0, 1}
    assert sorted(calls) == [(0, 2), (1, 1), (1, 2)]
