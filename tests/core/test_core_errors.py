"""Bad input: every public entry point raises ValueError/TypeError naming the argument."""

from __future__ import annotations

import math

import pytest
import torch

import mollifier
from mollifier import Grid

U1 = torch.zeros(1, 1, 40, dtype=torch.float64)
U2 = torch.zeros(1, 1, 30, 30, dtype=torch.float64)


def _d(u=U2, derivative=(1, 0), spacing=0.1, radius=0.3, **kw):
    return mollifier.derivative(u, derivative, spacing, radius, **kw)


# --- multi-index ---------------------------------------------------------------------------


def test_multi_index_wrong_length() -> None:
    with pytest.raises(ValueError, match=r"`derivatives\['_'\]` must have one entry per spatial dim \(2\)"):
        _d(derivative=(1,))
    with pytest.raises(ValueError, match="derivative"):
        _d(derivative=(1, 0, 0))


def test_multi_index_negative_or_non_integer() -> None:
    with pytest.raises(ValueError, match="derivative.*non-negative"):
        _d(derivative=(-1, 0))
    with pytest.raises(TypeError, match="derivative.*non-negative ints"):
        _d(derivative=(1.0, 0))
    with pytest.raises(TypeError, match="derivative"):
        _d(derivative=(True, 0))
    with pytest.raises(TypeError, match="derivative"):
        _d(derivative="xx")
    # a bare int is accepted in 1-D only
    assert _d(U1, derivative=2, boundary="periodic").shape == U1.shape
    with pytest.raises(TypeError, match="derivative"):
        _d(derivative=2)


def test_bad_derivative_mappings() -> None:
    with pytest.raises(TypeError, match="`derivatives` must be a non-empty mapping"):
        mollifier.derivatives(U2, {}, 0.1, 0.3)
    with pytest.raises(TypeError, match="`derivatives` must be a non-empty mapping"):
        mollifier.derivatives(U2, [(1, 0)], 0.1, 0.3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one multi-index"):
        _d(derivative={})
    with pytest.raises(TypeError, match="coefficients must be numbers"):
        _d(derivative={(1, 0): "one"})
    with pytest.raises(ValueError, match=r"derivatives\['lap'\]"):
        mollifier.derivatives(U2, {"lap": {(2, 0): 1.0, (0, -2): 1.0}}, 0.1, 0.3)


# --- spacing / radius ------------------------------------------------------------------------


@pytest.mark.parametrize("spacing", [0.0, -0.1, math.inf, math.nan, (0.1, 0.0)])
def test_non_positive_spacing(spacing) -> None:
    with pytest.raises(ValueError, match="`spacing` must be positive"):
        _d(spacing=spacing)


def test_spacing_wrong_type_or_length() -> None:
    with pytest.raises(ValueError, match="`spacing`.*one per spatial dim"):
        _d(spacing=(0.1, 0.1, 0.1))
    with pytest.raises(TypeError, match="`spacing`"):
        _d(spacing="0.1")
    with pytest.raises(TypeError, match="`spacing`"):
        _d(spacing=(0.1, None))


def test_radius_under_two_cells() -> None:
    with pytest.raises(ValueError, match=r"`radius` must span at least 2 grid cells.*\(1\.5 cells\) along axis 0"):
        _d(radius=(0.15, 0.3))
    with pytest.raises(ValueError, match="`radius`.*axis 1"):
        _d(spacing=(0.1, 0.2), radius=0.3)
    _d(radius=0.2)  # exactly 2 cells is allowed


def test_radius_too_small_for_high_order() -> None:
    # 2 cells give a 5-tap stencil: enough for order <= 4, not for 5 or 6 (the moment
    # correction would be unsatisfiable, see test_core_stencils).
    _d(U1, derivative=(4,), radius=0.2, boundary="periodic")
    with pytest.raises(ValueError, match="`radius`.*order 5"):
        _d(U1, derivative=(5,), radius=0.2, boundary="periodic")


def test_radius_wider_than_grid() -> None:
    with pytest.raises(ValueError, match=r"spans 41 samples along spatial axis 1, wider than the grid \(30 samples\).*`radius`"):
        _d(radius=(0.3, 2.0), boundary="periodic")


def test_halo_too_small_for_valid() -> None:
    with pytest.raises(ValueError, match=r"`u` has 30 samples along spatial axis 0.*halo of 16.*`halo_width`"):
        _d(radius=1.6)
    with pytest.raises(ValueError, match="halo"):
        mollifier.finite_differences(torch.zeros(1, 1, 4), {"d": (4,)}, 0.1, accuracy=4)


# --- tensors ------------------------------------------------------------------------------------


def test_integer_and_non_tensor_input() -> None:
    with pytest.raises(TypeError, match=r"`u` must be a floating-point tensor.*int64.*u.float\(\)"):
        _d(u=torch.zeros(1, 1, 30, 30, dtype=torch.int64))
    with pytest.raises(TypeError, match="`u` must be a torch.Tensor"):
        _d(u=U2.numpy())
    with pytest.raises(ValueError, match=r"`u` must have 3 or 4 or 5 dims.*\(30, 30\)"):
        _d(u=torch.zeros(30, 30, dtype=torch.float64))
    with pytest.raises(ValueError, match="`u` must have"):
        _d(u=torch.zeros(1, 1, 5, 5, 5, 5, dtype=torch.float64), derivative=(1, 0, 0, 0))


def test_nan_and_inf_are_counted() -> None:
    u = U2.clone()
    u[0, 0, 3, 4] = math.nan
    u[0, 0, 5, 6] = math.inf
    u[0, 0, 7, 8] = -math.inf
    with pytest.raises(ValueError, match=r"`u` holds 3 NaN or infinite value\(s\) out of 900 \(first at index \(0, 0, 3, 4\)\)"):
        _d(u=u)
    with pytest.raises(ValueError, match="holds 3 NaN"):
        mollifier.finite_differences(u, {"d": (1, 0)}, 0.1)
    # opting out
    out = _d(u=u, boundary="periodic", check_finite=False)
    assert not bool(torch.isfinite(out).all())


# --- names ------------------------------------------------------------------------------------


def test_unknown_kernel_lists_names() -> None:
    with pytest.raises(ValueError, match=r"`kernel` must be one of \['bump', 'polynomial'\].*'gauss'"):
        _d(kernel="gauss")
    with pytest.raises(TypeError, match=r"`kernel`.*\['bump', 'polynomial'\]"):
        _d(kernel=3)


def test_unknown_boundary_lists_names() -> None:
    with pytest.raises(ValueError, match=r"`boundary` must be one of \['valid', 'periodic', 'reflect', 'replicate', 'zeros'\]"):
        _d(boundary="wrap")
    with pytest.raises(TypeError, match="`boundary`"):
        _d(boundary=None)
    with pytest.raises(ValueError, match=r"`method` must be one of \['auto', 'direct', 'fft'\]"):
        _d(method="fast")


def test_finite_difference_accuracy() -> None:
    with pytest.raises(ValueError, match="`accuracy` must be an even int"):
        mollifier.finite_differences(U1, {"d": (1,)}, 0.1, accuracy=3)
    with pytest.raises(ValueError, match="`accuracy`"):
        mollifier.finite_differences(U1, {"d": (1,)}, 0.1, accuracy=0)
    # with the accuracy-2 stencil already cached (2.0 == 2 share a cache key), a float
    # accuracy must still be refused, whatever ran before this test
    mollifier.finite_differences(U1, {"d": (1,)}, 0.1, accuracy=2)
    with pytest.raises(TypeError, match="`accuracy`"):
        mollifier.finite_differences(U1, {"d": (1,)}, 0.1, accuracy=2.0)
    with pytest.raises(ValueError, match="`halfwidth` 1 too small"):
        mollifier.finite_difference_stencil(4, 0.1, 2, halfwidth=1)


def test_kernel_order_errors() -> None:
    with pytest.raises(TypeError, match="`order`"):
        mollifier.get_mollifier("bump").evaluate(torch.zeros(3), 1.5, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`order`"):
        mollifier.get_mollifier("bump").check_order(-1)


# --- Grid --------------------------------------------------------------------------------------


def test_grid_bad_arguments() -> None:
    with pytest.raises(ValueError, match="`shape` must have 1 to 3 axes"):
        Grid((), (), ())
    with pytest.raises(ValueError, match="`shape` must have 1 to 3 axes"):
        Grid((2, 2, 2, 2), (0.0,) * 4, (0.1,) * 4)
    with pytest.raises(ValueError, match="`shape`"):
        Grid((0, 4), (0.0, 0.0), (0.1, 0.1))
    with pytest.raises(TypeError, match="`shape`"):
        Grid((4.0, 4), (0.0, 0.0), (0.1, 0.1))
    with pytest.raises(ValueError, match="`spacing` must be positive"):
        Grid((4, 4), (0.0, 0.0), (0.1, -0.1))
    with pytest.raises(ValueError, match="`spacing`"):
        Grid((4, 4), (0.0, 0.0), (0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match="`lower` must have one entry per axis"):
        Grid((4, 4), (0.0,), (0.1, 0.1))
    with pytest.raises(ValueError, match="`bounds` must be .* high > low"):
        Grid.from_bounds([(1.0, 0.0)], (5,))
    with pytest.raises(ValueError, match="`bounds` .* and `shape` .* must match"):
        Grid.from_bounds([(0.0, 1.0)], (5, 5))
    with pytest.raises(ValueError, match="`shape` needs at least 2 samples"):
        Grid.from_bounds([(0.0, 1.0)], (1,))
    g = Grid.from_bounds([(0.0, 1.0)], (5,))
    with pytest.raises(ValueError, match="`halo`"):
        g.coords(halo=-1)
    with pytest.raises(ValueError, match="`halo`"):
        g.coords(halo=(1, 1))
