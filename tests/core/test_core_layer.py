"""MollifierLayer and gradients: gradcheck through ``derivative`` and the layer, learnable radius."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

import mollifier
from mollifier import MollifierLayer, ProfileMollifier, mollifier_stencil

from core_helpers import BUMP, POLY8, polynomial_exactness_tolerance
from tolerances import EPS64

BUMP_AS_PROFILE = ProfileMollifier(lambda r: torch.exp(-1 / (1 - r * r)), label="bump-autograd")

# --- smoke / shapes ---------------------------------------------------------------------


def test_layer_docstring_example() -> None:
    layer = MollifierLayer({"lap": mollifier.laplacian(2)}, spacing=0.1, radius=0.3)
    assert layer.halo == (3, 3)
    out = layer(torch.randn(2, 1, 38, 38))
    assert list(out) == ["u", "lap"]
    assert out["u"].shape == (2, 1, 32, 32) and out["lap"].shape == (2, 1, 32, 32)
    assert out["u"].dtype == torch.float32
    assert "halo=(3, 3)" in repr(layer)


@pytest.mark.parametrize("boundary", ["valid", "periodic", "reflect"])
def test_layer_equals_functional_api(boundary: str) -> None:
    torch.manual_seed(0)
    g = torch.randn(2, 3, 20, 18, 16, dtype=torch.float64)
    requests = {"u_x": (1, 0, 0), "lap": mollifier.laplacian(3), "u_xyz": (1, 1, 1)}
    spacing, radius = (0.1, 0.12, 0.08), (0.3, 0.36, 0.2)
    layer = MollifierLayer(requests, spacing, radius, boundary=boundary, field_name=None)
    assert layer.ndim == 3 and list(layer(g)) == list(requests)
    ref = mollifier.derivatives(g, requests, spacing, radius, boundary=boundary)
    out = layer(g)
    for name in requests:
        assert torch.equal(out[name], ref[name])
    assert torch.allclose(layer.radius, torch.tensor(radius, dtype=torch.float64))


def test_layer_halo_with_learnable_radius() -> None:
    layer = MollifierLayer({"d": (1, 0)}, (0.1, 0.2), (0.3, 0.4), learnable_radius=True)
    assert layer.max_radius == pytest.approx((0.45, 0.6))
    assert layer.halo == (4, 3)
    assert isinstance(layer.log_radius, torch.nn.Parameter)
    # stored as log(radius), read back through exp: <= 4 ulp each, the log's error
    # relative to |log radius| <= 1.3
    rtol = 2 * 4 * EPS64 * (1 + abs(math.log(0.3)))
    assert torch.allclose(layer.radius, torch.tensor([0.3, 0.4], dtype=torch.float64), rtol=rtol, atol=0)
    # the radius is clamped to [2 h, max_radius]
    with torch.no_grad():
        layer.log_radius.copy_(torch.log(torch.tensor([10.0, 0.01])))
    assert torch.allclose(layer.radius, torch.tensor([0.45, 0.4], dtype=torch.float64))


def test_learnable_layer_is_exact_on_polynomials() -> None:
    # The learnable stencils have max_radius's tap count; they obey the same moment rule.
    h = 0.1
    layer = MollifierLayer({"d1": (1,), "d2": (2,)}, h, 0.32, learnable_radius=True, max_radius=0.5, field_name=None)
    m = layer.halo[0]
    x = (torch.arange(-m, 10 + m, dtype=torch.float64) * h - 0.4)
    g = (1 - 2 * x + 0.5 * x**2 - x**3).reshape(1, 1, -1)
    with torch.no_grad():
        out = layer(g)
    xi = x[m:-m]
    s2 = mollifier_stencil(BUMP, 2, h, 0.32, halfwidth=m)
    exact2 = 1.0 - 6 * xi
    coeffs = np.array([1.0, -2.0, 0.5, -1.0])
    tol = polynomial_exactness_tolerance(coeffs, [float(x[0])], [h], [x.numel()], [2], [s2], float(g.abs().max()))
    assert float((out["d2"].flatten() - exact2).abs().max()) <= tol
    # d1 is exact only up to degree 2: on the cubic it carries the bias mu_3 * (-6)
    s1 = mollifier_stencil(BUMP, 1, h, 0.32, halfwidth=m)
    exact1 = -2 + xi - 3 * xi**2
    tol1 = polynomial_exactness_tolerance(coeffs, [float(x[0])], [h], [x.numel()], [1], [s1], float(g.abs().max()))
    assert float((out["d1"].flatten() - exact1).abs().max()) > 1e3 * tol1


# --- gradcheck ------------------------------------------------------------------------------


@pytest.mark.parametrize("boundary", mollifier.BOUNDARIES)
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_gradcheck_derivative_wrt_input(boundary: str, method: str) -> None:
    torch.manual_seed(0)
    u1 = torch.randn(1, 1, 9, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda u: mollifier.derivative(u, (2,), 0.5, 1.0, boundary=boundary, method=method), (u1,))
    u2 = torch.randn(1, 1, 7, 6, dtype=torch.float64, requires_grad=True)
    # 2-D: fast mode (random projections v^T J w) -- a complete check for a linear map
    # up to probability zero, and ~30x cheaper than building the full Jacobian.
    assert gradcheck(
        lambda u: mollifier.derivative(u, {(1, 1): 1.0, (0, 2): -2.0}, (0.5, 0.4), (1.0, 0.8), boundary=boundary, method=method),
        (u2,),
        fast_mode=True,
    )


def test_gradcheck_through_layer_wrt_input() -> None:
    layer = MollifierLayer({"lap": mollifier.laplacian(2), "u_xy": (1, 1)}, 0.5, 1.0)
    g = torch.randn(1, 1, 7, 8, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda x: tuple(layer(x).values()), (g,), fast_mode=True)


@pytest.mark.parametrize("kernel", [BUMP, POLY8, BUMP_AS_PROFILE])
@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_gradcheck_stencil_wrt_radius(kernel, order: int) -> None:
    # radius 0.35 with h = 0.1: no tap within gradcheck's 1e-6 step of the support edge,
    # so the stencil is smooth in the radius there.
    radius = torch.tensor(0.35, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda r: mollifier_stencil(kernel, order, 0.1, r, halfwidth=5), (radius,))
    assert gradcheck(lambda r: mollifier_stencil(kernel, order, 0.1, r, halfwidth=5, correct=False), (radius,))


def test_learnable_radius_gets_a_gradient() -> None:
    torch.manual_seed(1)
    layer = MollifierLayer({"lap": mollifier.laplacian(2)}, (0.1, 0.1), (0.3, 0.25), learnable_radius=True)
    g = torch.randn(1, 1, 20, 20, dtype=torch.float64)
    out = layer(g)
    (out["lap"] ** 2).sum().backward()
    grad = layer.log_radius.grad
    assert grad is not None and grad.shape == (2,)
    assert bool(torch.isfinite(grad).all()) and bool((grad != 0).all())


def test_gradcheck_layer_wrt_log_radius() -> None:
    layer = MollifierLayer({"d2": (2, 0), "dxy": (1, 1)}, (0.1, 0.1), (0.35, 0.25), learnable_radius=True)
    g = torch.randn(1, 1, 14, 12, dtype=torch.float64)

    def f(log_radius: torch.Tensor):
        return tuple(torch.func.functional_call(layer, {"log_radius": log_radius}, (g,)).values())

    assert gradcheck(f, (layer.log_radius.detach().clone().requires_grad_(True),))


def test_learnable_radius_float32_input() -> None:
    layer = MollifierLayer({"d": (1,)}, 0.1, 0.3, learnable_radius=True)
    g = torch.randn(2, 1, 30)
    out = layer(g)
    assert out["d"].dtype == torch.float32
    out["d"].sum().backward()
    assert layer.log_radius.grad is not None


def test_layer_errors() -> None:
    with pytest.raises(ValueError, match="field_name"):
        MollifierLayer({"u": (1,)}, 0.1, 0.3)
    with pytest.raises(ValueError, match="max_radius"):
        MollifierLayer({"d": (1,)}, 0.1, 0.3, learnable_radius=True, max_radius=0.25)
    with pytest.raises(ValueError, match="spatial dims"):
        MollifierLayer({"d": (1, 0)}, 0.1, 0.3)(torch.randn(1, 1, 30))
    with pytest.raises(ValueError, match="halo"):
        MollifierLayer({"d": (1,)}, 0.1, 0.3)(torch.randn(1, 1, 6))
    with pytest.raises(ValueError, match="radius"):
        MollifierLayer({"d": (1,)}, 0.1, 0.15)
    with pytest.raises(ValueError, match="boundary"):
        MollifierLayer({"d": (1,)}, 0.1, 0.3, boundary="wrap")
    with pytest.raises(TypeError, match="`g`"):
        MollifierLayer({"d": (1,)}, 0.1, 0.3)(torch.ones(1, 1, 30, dtype=torch.int64))
    with pytest.raises(ValueError, match="`g` holds 1 NaN"):
        bad = torch.zeros(1, 1, 30)
        bad[0, 0, 4] = math.nan
        MollifierLayer({"d": (1,)}, 0.1, 0.3)(bad)
