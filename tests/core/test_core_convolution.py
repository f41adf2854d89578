"""Boundary modes and the FFT path of the separable correlation.

Each padded mode must equal ``boundary="valid"`` applied to the input padded explicitly
with the numpy equivalent of the docstring's rule (numpy.pad is an implementation
independent of the library's torch.nn.functional.pad):

- periodic  -> "wrap"     (u[-1] = u[n-1])
- reflect   -> "reflect"  (mirror, edge not repeated: u[-1] = u[1])
- replicate -> "edge"     (u[-1] = u[0])
- zeros     -> "constant" (0)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mollifier
from mollifier.core import convolution

from core_helpers import bump_stencil
from tolerances import EPS64, fft_rounding_bound, stencil_rounding_bound

NUMPY_MODES = {"periodic": "wrap", "reflect": "reflect", "replicate": "edge", "zeros": "constant"}
SHAPES = {1: (23,), 2: (13, 11), 3: (9, 10, 8)}
SPACING = (0.1, 0.07, 0.12)
RADIUS = (0.3, 0.14, 0.36)  # halos 3, 2, 3
INDICES = {1: [(0,), (1,), (3,)], 2: [(1, 0), (2, 1), (0, 2)], 3: [(1, 1, 1), (0, 2, 1)]}


def _pad(u: torch.Tensor, halos, boundary: str) -> torch.Tensor:
    width = [(0, 0), (0, 0)] + [(m, m) for m in halos]
    return torch.as_tensor(np.pad(u.numpy(), width, mode=NUMPY_MODES[boundary]))


def _tol(index, u) -> float:
    stencils = [bump_stencil(k, h, r) for k, h, r in zip(index, SPACING, RADIUS)]
    return 2 * stencil_rounding_bound(stencils, float(u.abs().max()), EPS64)


@pytest.mark.parametrize("boundary", list(NUMPY_MODES))
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_padded_modes_equal_valid_on_explicitly_padded_input(ndim: int, boundary: str) -> None:
    torch.manual_seed(ndim)
    u = torch.randn(2, 2, *SHAPES[ndim], dtype=torch.float64)
    spacing, radius = SPACING[:ndim], RADIUS[:ndim]
    halos = mollifier.halo_width(spacing, radius)
    padded = _pad(u, halos, boundary)
    for index in INDICES[ndim]:
        got = mollifier.derivative(u, index, spacing, radius, boundary=boundary)
        ref = mollifier.derivative(padded, index, spacing, radius, boundary="valid")
        assert got.shape == u.shape and ref.shape == u.shape
        # same sums in possibly another order: within twice the rounding bound
        assert float((got - ref).abs().max()) <= _tol(index, u), (index, boundary)


def test_reflect_does_not_repeat_the_edge_sample() -> None:
    # Reflect padding without repeating the edge makes the data even about sample 0
    # (u[-j] = u[j]), so an antisymmetric order-1 stencil gives exactly 0 there (up to
    # rounding). Replicate (u[-j] = u[0]) or a mirror that repeats the edge would not.
    torch.manual_seed(5)
    u = torch.randn(1, 1, 30, dtype=torch.float64)
    d = mollifier.derivative(u, (1,), 0.1, 0.3, boundary="reflect", method="direct")
    s = bump_stencil(1, 0.1, 0.3)
    assert abs(float(d[0, 0, 0])) <= stencil_rounding_bound([s], float(u.abs().max()), EPS64)
    assert abs(float(d[0, 0, -1])) <= stencil_rounding_bound([s], float(u.abs().max()), EPS64)
    r = mollifier.derivative(u, (1,), 0.1, 0.3, boundary="replicate", method="direct")
    assert abs(float(r[0, 0, 0])) > 1e3 * stencil_rounding_bound([s], float(u.abs().max()), EPS64)


def test_periodic_equals_sum_of_rolls() -> None:
    # (D u)_i = sum_m c_m u_{i+m} with wrap-around: an independent formula via torch.roll
    torch.manual_seed(1)
    u = torch.randn(1, 1, 17, 19, dtype=torch.float64)
    s0 = bump_stencil(2, 0.1, 0.3)
    s1 = bump_stencil(1, 0.1, 0.3)
    ref = torch.zeros_like(u)
    for i, a in enumerate(s0):
        for j, b in enumerate(s1):
            ref = ref + a * b * torch.roll(u, shifts=(-(i - 3), -(j - 3)), dims=(2, 3))
    got = mollifier.derivative(u, (2, 1), 0.1, 0.3, boundary="periodic")
    # got: two passes (7 + 1 and 7 + 1 roundings); ref: 49 products a * b * u accumulated
    # in one sum (49 + 2 roundings), both of the same terms.
    u_max = float(u.abs().max())
    tol = stencil_rounding_bound([s0, s1], u_max, EPS64) + stencil_rounding_bound(
        [s0, s1], u_max, EPS64, k=s0.numel() * s1.numel() + 2
    )
    assert float((got - ref).abs().max()) <= tol


def test_zeros_mode_is_linear_and_local() -> None:
    # With zero padding, a delta far from the edges gives back the (reversed) stencil.
    u = torch.zeros(1, 1, 41, dtype=torch.float64)
    u[0, 0, 20] = 1.0
    d = mollifier.derivative(u, (3,), 0.1, 0.4, boundary="zeros")
    s = bump_stencil(3, 0.1, 0.4)
    # correlation: out[i] = sum_m c_m u[i+m] = c_{20-i}  ->  out[20 - m] = c_m; exact in
    # floating point (products with 0 and 1, sums with 0), hence atol=0.
    assert torch.allclose(d[0, 0, 16:25], s.flip(0), rtol=0, atol=0)
    assert bool((d[0, 0, :16] == 0).all()) and bool((d[0, 0, 25:] == 0).all())


# --- FFT path ----------------------------------------------------------------------------------


@pytest.mark.parametrize("boundary", mollifier.BOUNDARIES)
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_fft_equals_direct(ndim: int, boundary: str) -> None:
    # Both within their rounding bound of the exact correlation: the direct passes'
    # (tolerances.stencil_rounding_bound) and the FFT's, ~eps log2(n) sqrt(n) per pass
    # relative to prod ||c||_1 max|u| (tolerances.fft_rounding_bound; n: the padded length).
    torch.manual_seed(10 + ndim)
    u = torch.randn(1, 2, *SHAPES[ndim], dtype=torch.float64)
    spacing, radius = SPACING[:ndim], RADIUS[:ndim]
    halos = mollifier.halo_width(spacing, radius)
    lengths = [n + (0 if boundary == "valid" else 2 * m) for n, m in zip(SHAPES[ndim], halos)]
    u_max = float(u.abs().max())
    for index in INDICES[ndim]:
        direct = mollifier.derivative(u, index, spacing, radius, boundary=boundary, method="direct")
        fft = mollifier.derivative(u, index, spacing, radius, boundary=boundary, method="fft")
        stencils = [bump_stencil(k, h, r) for k, h, r in zip(index, spacing, radius)]
        tol = stencil_rounding_bound(stencils, u_max, EPS64) + fft_rounding_bound(stencils, lengths, u_max, EPS64)
        assert fft.shape == direct.shape
        assert float((fft - direct).abs().max()) <= tol


def test_fft_equals_direct_for_wide_stencil() -> None:
    torch.manual_seed(3)
    u = torch.randn(1, 1, 200, dtype=torch.float64)
    h = 0.01
    for boundary in ("valid", "periodic"):
        direct = mollifier.derivative(u, (2,), h, 30 * h, boundary=boundary, method="direct")
        fft = mollifier.derivative(u, (2,), h, 30 * h, boundary=boundary, method="fft")
        s = bump_stencil(2, h, 30 * h)
        n = 200 + (0 if boundary == "valid" else 60)  # the length the FFT sees
        u_max = float(u.abs().max())
        tol = stencil_rounding_bound(s, u_max, EPS64) + fft_rounding_bound(s, n, u_max, EPS64)
        assert float((fft - direct).abs().max()) <= tol


@pytest.mark.parametrize("cells", [11, 12])
def test_auto_switches_to_fft_at_threshold(monkeypatch, cells: int) -> None:
    used = []
    real_fft, real_direct = convolution._correlate_fft, convolution._correlate_direct
    monkeypatch.setattr(convolution, "_correlate_fft", lambda *a: used.append("fft") or real_fft(*a))
    monkeypatch.setattr(convolution, "_correlate_direct", lambda *a: used.append("direct") or real_direct(*a))
    u = torch.randn(1, 1, 120, dtype=torch.float64)
    h = 0.01
    mollifier.derivative(u, (1,), h, cells * h, boundary="periodic", method="auto")
    taps = 2 * cells + 1
    assert convolution.FFT_MIN_TAPS == 25  # the parametrised cells straddle it (23 and 25 taps)
    assert used == (["fft"] if taps >= convolution.FFT_MIN_TAPS else ["direct"])
    used.clear()
    mollifier.derivative(u, (1,), h, cells * h, boundary="periodic", method="direct")
    assert used == ["direct"]
    used.clear()
    mollifier.derivative(u, (1,), h, 3 * h, boundary="periodic", method="fft")
    assert used == ["fft"]


def test_correlate_axis_shapes() -> None:
    x = torch.randn(3, 1, 12, 10, dtype=torch.float64)
    stencils = torch.randn(2, 5, dtype=torch.float64)
    for method in convolution.METHODS:
        assert convolution.correlate_axis(x, 1, stencils, "valid", method).shape == (3, 2, 12, 6)
        assert convolution.correlate_axis(x, 0, stencils, "zeros", method).shape == (3, 2, 12, 10)
