"""Derivative engines on a smooth 2-D field: agreement with analytic derivatives.

Backbone ``u(x, y) = sin(a x) cos(b y)`` (an analytic torch function, (N, 2) -> (N, 1)).
- autodiff / autodiff-forward differentiate it exactly: float64 rounding only (1e-10).
- fd: central differences, error bounded by the Taylor tail of the FD stencils (O(h^2)).
- mollifier: error bounded by the Taylor tail of the mollifier stencils (O(radius^2)).
"""

from __future__ import annotations

import math

import pytest
import torch

import mollifier
from mollifier import Grid, make_engine

from core_helpers import bump_stencil, fd_stencil, product_bound, tail_bound
from tolerances import EPS64, stencil_rounding_bound

A, B = 2.0, 1.5
GRID = Grid.from_bounds([(0.0, 1.0), (-0.5, 1.0)], (17, 21))  # h = (1/16, 0.075)
RADIUS = (4 / 16, 0.225)  # 4 and 3 cells
REQUESTS = {"u_x": (1, 0), "u_yy": (0, 2), "u_xy": (1, 1), "lap": mollifier.laplacian(2), "u_xxy": (2, 1)}


def backbone(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(A * x[:, :1]) * torch.cos(B * x[:, 1:2])


def _analytic(index, X, Y):
    fx = A ** index[0] * torch.sin(A * X + index[0] * math.pi / 2)
    fy = B ** index[1] * torch.cos(B * Y + index[1] * math.pi / 2)
    return fx * fy


def _spec(spec):
    return spec if isinstance(spec, dict) else {spec: 1.0}


def _expected(name: str):
    X, Y = GRID.mesh(dtype=torch.float64)
    spec = {(0, 0): 1.0} if name == "u" else _spec(REQUESTS[name])
    return sum(c * _analytic(idx, X, Y) for idx, c in spec.items())


def _tail_tolerance(name: str, stencil_for) -> float:
    spec = {(0, 0): 1.0} if name == "u" else _spec(REQUESTS[name])
    total = 0.0
    for idx, c in spec.items():
        stencils = [stencil_for(axis, k) for axis, k in enumerate(idx)]
        tails = [tail_bound(s, h, k, w) for s, h, k, w in zip(stencils, GRID.spacing, idx, (A, B))]
        total += abs(c) * (product_bound([A ** idx[0], B ** idx[1]], tails) + stencil_rounding_bound(stencils, 1.0, EPS64))
    return total


# --- smoke / shapes ---------------------------------------------------------------------


@pytest.mark.parametrize("name", mollifier.ENGINES)
def test_engine_shapes_and_names(name: str) -> None:
    engine = make_engine(name, GRID, REQUESTS, radius=RADIUS)
    assert engine.name == name
    out = engine(backbone, dtype=torch.float64)
    assert list(out) == ["u", *REQUESTS]
    for value in out.values():
        assert value.shape == (1, 1, 17, 21) and value.dtype == torch.float64
    assert engine.coords(torch.float64).shape == (
        math.prod(GRID.extended_shape(engine.halo)),
        2,
    )


def test_engine_halos() -> None:
    assert make_engine("autodiff", GRID, REQUESTS).halo == (0, 0)
    assert make_engine("autodiff-forward", GRID, REQUESTS).halo == (0, 0)
    assert make_engine("fd", GRID, REQUESTS).halo == (1, 1)
    assert make_engine("fd", GRID, REQUESTS, accuracy=4).halo == (2, 2)
    assert make_engine("mollifier", GRID, REQUESTS, radius=RADIUS).halo == (4, 3)


def test_multichannel_backbone() -> None:
    def two(x):
        return torch.cat([backbone(x), 3 * backbone(x)], dim=1)

    for name in mollifier.ENGINES:
        out = make_engine(name, GRID, {"lap": mollifier.laplacian(2)}, radius=RADIUS)(two, dtype=torch.float64)
        assert out["lap"].shape == (1, 2, 17, 21)
        assert torch.allclose(out["lap"][:, 1], 3 * out["lap"][:, 0], rtol=1e-13, atol=1e-13)


# --- feature values -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["autodiff", "autodiff-forward"])
def test_autodiff_engines_are_exact(name: str) -> None:
    out = make_engine(name, GRID, REQUESTS)(backbone, dtype=torch.float64)
    for key, value in out.items():
        # exact derivatives of sin/cos products: rounding of a few ops on values <= A^2 B
        assert torch.allclose(value[0, 0], _expected(key), rtol=0, atol=1e-10), key


def test_fd_engine_second_order() -> None:
    engine = make_engine("fd", GRID, REQUESTS)
    out = engine(backbone, dtype=torch.float64)

    def stencil_for(axis, k):
        return fd_stencil(k, GRID.spacing[axis], engine.halo[axis])

    for key, value in out.items():
        err = float((value[0, 0] - _expected(key)).abs().max())
        assert err <= _tail_tolerance(key, stencil_for), key
    assert float((out["u"][0, 0] - _expected("u")).abs().max()) <= 1e-14  # order 0 is the identity


def test_mollifier_engine_bias_bound() -> None:
    out = make_engine("mollifier", GRID, REQUESTS, radius=RADIUS)(backbone, dtype=torch.float64)

    def stencil_for(axis, k):
        return bump_stencil(k, GRID.spacing[axis], RADIUS[axis])

    for key, value in out.items():
        err = float((value[0, 0] - _expected(key)).abs().max())
        tol = _tail_tolerance(key, stencil_for)
        assert err <= tol, (key, err, tol)
        if key != "u":
            assert err > 0.1 * tol  # the bound is the actual O(radius^2) bias, not a loose cap


def test_engines_agree_on_an_mlp() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    reverse = make_engine("autodiff", GRID, REQUESTS)(net, dtype=torch.float64)
    forward = make_engine("autodiff-forward", GRID, REQUESTS)(net, dtype=torch.float64)
    for key in reverse:
        assert torch.allclose(reverse[key], forward[key], rtol=0, atol=1e-10), key


@pytest.mark.parametrize("name", mollifier.ENGINES)
def test_gradients_flow_to_backbone_parameters(name: str) -> None:
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1)).double()
    engine = make_engine(name, GRID, {"lap": mollifier.laplacian(2), "u_x": (1, 0)}, radius=RADIUS)
    out = engine(net, dtype=torch.float64)
    loss = (out["lap"] ** 2).mean() + (out["u_x"] ** 2).mean() + (out["u"] ** 2).mean()
    loss.backward()
    for p in net.parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all())
        assert float(p.grad.abs().max()) > 0


def test_engine_gradients_agree_between_autodiff_modes() -> None:
    torch.manual_seed(2)
    grads = []
    for name in ("autodiff", "autodiff-forward"):
        torch.manual_seed(2)
        net = torch.nn.Sequential(torch.nn.Linear(2, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1)).double()
        out = make_engine(name, GRID, {"lap": mollifier.laplacian(2)})(net, dtype=torch.float64)
        (out["lap"] ** 2).mean().backward()
        # the last bias does not reach a second derivative: its grad stays None in both
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-10, atol=1e-12)


def test_learnable_radius_engine() -> None:
    engine = make_engine("mollifier", GRID, {"lap": mollifier.laplacian(2)}, radius=RADIUS, learnable_radius=True)
    out = engine(backbone, dtype=torch.float64)
    out["lap"].sum().backward()
    assert engine.layer.log_radius.grad is not None


def test_engine_errors() -> None:
    with pytest.raises(ValueError, match="engine.*mollifier"):
        make_engine("spectral", GRID, REQUESTS)
    with pytest.raises(ValueError, match="`radius`"):
        make_engine("mollifier", GRID, REQUESTS)
    with pytest.raises(TypeError, match="`grid`"):
        mollifier.AutodiffEngine((17, 21), REQUESTS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="field_name"):
        make_engine("fd", GRID, {"u": (1, 0)})
    with pytest.raises(ValueError, match="backbone must return"):
        make_engine("fd", GRID, REQUESTS)(lambda x: x[:, 0], dtype=torch.float64)
