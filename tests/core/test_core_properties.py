"""Property tests (hypothesis): linearity, shift-equivariance, symmetry of mixed partials.

Tolerances are rounding bounds (tests/tolerances.py): every identity below holds exactly
in real arithmetic.
"""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mollifier

from core_helpers import bump_stencil
from tolerances import EPS64, combination_gain, fft_rounding_bound, stencil_rounding_bound

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None)


@st.composite
def problems(draw, boundaries=mollifier.BOUNDARIES):
    ndim = draw(st.integers(1, 3))
    cells = [draw(st.integers(2, 4)) for _ in range(ndim)]
    spacing = [draw(st.sampled_from([0.05, 0.1, 0.13])) for _ in range(ndim)]
    index = tuple(draw(st.integers(0, 3)) for _ in range(ndim))
    boundary = draw(st.sampled_from(boundaries))
    low = 12 if ndim == 1 else 9
    shape = [draw(st.integers(max(low, 2 * c + 1), low + 8)) for c in cells]
    seed = draw(st.integers(0, 2**16))
    radius = [c * h for c, h in zip(cells, spacing)]
    return ndim, tuple(spacing), tuple(radius), index, boundary, tuple(shape), seed


def _stencils(index, spacing, radius):
    return [bump_stencil(k, h, r) for k, h, r in zip(index, spacing, radius)]


@SETTINGS
@given(problems(), st.floats(-3, 3), st.floats(-3, 3))
def test_linearity(problem, a: float, b: float) -> None:
    ndim, spacing, radius, index, boundary, shape, seed = problem
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(1, 2, *shape, dtype=torch.float64, generator=g)
    v = torch.randn(1, 2, *shape, dtype=torch.float64, generator=g)
    lhs = mollifier.derivative(a * u + b * v, index, spacing, radius, boundary=boundary)
    rhs = a * mollifier.derivative(u, index, spacing, radius, boundary=boundary) + b * mollifier.derivative(
        v, index, spacing, radius, boundary=boundary
    )
    # lhs and a D u + b D v are each within the rounding bound of the exact value for data
    # up to size = (|a| + |b|) max(|u|, |v|); the input a u + b v rounds 3 times (two
    # products, one sum), seen through the gain, and so do a Du + b Dv after filtering.
    size = (abs(a) + abs(b)) * float(torch.maximum(u.abs().max(), v.abs().max()))
    stencils = _stencils(index, spacing, radius)
    tol = 2 * stencil_rounding_bound(stencils, size, EPS64) + 6 * EPS64 * combination_gain([(1.0, stencils)]) * size
    tol += 1e-300  # a zero bound (a = b = 0) still admits the exact 0
    assert float((lhs - rhs).abs().max()) <= tol


@SETTINGS
@given(problems(boundaries=("periodic",)), st.data())
def test_periodic_shift_equivariance(problem, data) -> None:
    ndim, spacing, radius, index, boundary, shape, seed = problem
    shifts = tuple(data.draw(st.integers(-n, n)) for n in shape)
    dims = tuple(range(2, 2 + ndim))
    u = torch.randn(1, 1, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    for method in ("direct", "fft"):
        shifted_first = mollifier.derivative(torch.roll(u, shifts, dims), index, spacing, radius, boundary="periodic", method=method)
        shifted_after = torch.roll(mollifier.derivative(u, index, spacing, radius, boundary="periodic", method=method), shifts, dims)
        stencils = _stencils(index, spacing, radius)
        if method == "direct":
            tol = 2 * stencil_rounding_bound(stencils, float(u.abs().max()), EPS64)
        else:  # periodic: each line is padded by the halo before the FFT
            lengths = [n + 2 * (s.numel() // 2) for n, s in zip(shape, stencils)]
            tol = 2 * fft_rounding_bound(stencils, lengths, float(u.abs().max()), EPS64)
        assert float((shifted_first - shifted_after).abs().max()) <= tol


@SETTINGS
@given(problems(boundaries=("periodic", "zeros", "valid")), st.data())
def test_axis_order_is_irrelevant(problem, data) -> None:
    # Permuting the spatial axes of u (and the multi-index, spacing and radius with
    # them) permutes the result: D^a is the same operator whatever the pass order.
    ndim, spacing, radius, index, boundary, shape, seed = problem
    perm = data.draw(st.permutations(range(ndim)))
    u = torch.randn(1, 1, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    out = mollifier.derivative(u, index, spacing, radius, boundary=boundary)
    up = u.permute(0, 1, *[2 + p for p in perm])
    outp = mollifier.derivative(
        up, tuple(index[p] for p in perm), tuple(spacing[p] for p in perm), tuple(radius[p] for p in perm), boundary=boundary
    )
    tol = 2 * stencil_rounding_bound(_stencils(index, spacing, radius), float(u.abs().max()), EPS64)
    assert float((out.permute(0, 1, *[2 + p for p in perm]) - outp).abs().max()) <= tol


@SETTINGS
@given(problems(boundaries=("periodic",)))
def test_mixed_partials_commute(problem) -> None:
    # Applying (1,0) then (0,1) equals (0,1) then (1,0): in periodic mode the separable
    # filters are circulant and commute. (The composition is *not* the (1,1) stencil:
    # each (.., 0, ..) entry also applies the order-0 smoothing kernel along that axis.)
    ndim, spacing, radius, _, _, shape, seed = problem
    if ndim < 2:
        return
    u = torch.randn(1, 1, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    e0 = (1, 0) + (0,) * (ndim - 2)
    e1 = (0, 1) + (0,) * (ndim - 2)
    d = lambda f, idx: mollifier.derivative(f, idx, spacing, radius, boundary="periodic")  # noqa: E731
    a = d(d(u, e0), e1)
    b = d(d(u, e1), e0)
    s = _stencils((1, 1) + (0,) * (ndim - 2), spacing, radius) + _stencils((0, 0) + (0,) * (ndim - 2), spacing, radius)
    tol = 4 * stencil_rounding_bound(s, float(u.abs().max()), EPS64)
    assert float((a - b).abs().max()) <= tol


def test_composition_matches_mixed_stencil_up_to_extra_smoothing() -> None:
    # (1,0) after (0,1) = stencil (c1 * c0) along x and (c0 * c1) along y; the (1,1)
    # request is c1 along both. Convolving the (1,1) result with the order-0 kernel
    # along both axes must reproduce the composition exactly (up to rounding).
    torch.manual_seed(0)
    u = torch.randn(1, 1, 20, 22, dtype=torch.float64)
    h, r = (0.1, 0.08), (0.3, 0.24)
    d = lambda f, idx: mollifier.derivative(f, idx, h, r, boundary="periodic")  # noqa: E731
    composed = d(d(u, (1, 0)), (0, 1))
    mixed_then_smoothed = d(d(u, (1, 1)), (0, 0))
    s = _stencils((1, 1), h, r) + _stencils((0, 0), h, r)
    assert float((composed - mixed_then_smoothed).abs().max()) <= 4 * stencil_rounding_bound(s, float(u.abs().max()), EPS64)
    # whereas the bare (1,1) differs from the composition by the extra smoothing
    assert float((composed - d(u, (1, 1))).abs().max()) > 1e6 * stencil_rounding_bound(s, float(u.abs().max()), EPS64)
