"""Derivative engines on a smooth 2-D field: agreement with analytic derivatives.

Backbone ``u(x, y) = sin(a x) cos(b y)`` (an analytic torch function, (N, 2) -> (N, 1)).
- autodiff / autodiff-forward differentiate it exactly: float64 rounding only, a few
  tens of eps relative to the size ``A^i B^j`` of the derivative (``ANALYTIC_ULPS``).
- fd: central differences, error bounded by the Taylor tail of the FD stencils (O(h^2)).
- mollifier: error bounded by the Taylor tail of the mollifier stencils (O(radius^2)).
"""

from __future__ import annotations

import math

import pytest
import torch

import mollifier
from mollifier import Grid, make_engine

from core_helpers import bump_stencil, fd_stencil, moment_condition, product_bound, tail_bound
from tolerances import (
    EPS64,
    combination_gain,
    combination_rounding_bound,
    conditioned_bound,
    engine_terms,
    l1,
    stencil_rounding_bound,
)

A, B = 2.0, 1.5
GRID = Grid.from_bounds([(0.0, 1.0), (-0.5, 1.0)], (17, 21))  # h = (1/16, 0.075)
RADIUS = (4 / 16, 0.225)  # 4 and 3 cells
REQUESTS = {"u_x": (1, 0), "u_yy": (0, 2), "u_xy": (1, 1), "lap": mollifier.laplacian(2), "u_xxy": (2, 1)}


# An exact derivative of sin(A x) cos(B y) in float64, against _analytic: each of the two
# factors comes from sin/cos (<= 4 ulp) of an argument rounded twice (A x, + i pi/2: <= 2 *
# 5.2 eps absolute, |A x| + pi <= 5.2 here), times A^i (i <= 2 roundings): <= 18 eps of
# A^i; their product <= 37 eps of A^i B^j. The autograd side rounds once per chain-rule
# step (<= 6 steps, each <= 4 ulp for sin/cos): <= 24 eps. Sum: 61 <= 64.
ANALYTIC_ULPS = 64

# The same, for a derivative of order k of a one-hidden-layer tanh MLP, relative to the
# size of the terms it sums (mlp_derivative_size): width + 1 roundings for the sum over
# hidden units and the bias, and per term <= k + 2 factors, tanh^(k) being a polynomial in
# tanh of degree k + 1 (<= 2 k operations, tanh itself <= 4 ulp, amplified by |P_k'| <= 8):
# <= 16 (k + 2) eps.
def mlp_ulps(width: int, order: int) -> int:
    return width + 1 + 16 * (order + 2)


# max |tanh^(k)| over the real line, k = 0..4
TANH_DERIVATIVE_MAX = (1.0, 1.0, 4 / (3 * math.sqrt(3)), 2.0, 4.086)


def _magnitude(name: str) -> float:
    """``sum |c| A^i B^j``: the size of the derivative ``name`` of the backbone."""
    spec = {(0, 0): 1.0} if name == "u" else _spec(REQUESTS[name])
    return sum(abs(c) * A ** idx[0] * B ** idx[1] for idx, c in spec.items())


def _one_hidden_layer(net):
    first, _, last = net
    return first.weight.detach(), first.bias.detach(), last.weight.detach()[0], last.bias.detach()


def mlp_derivative_size(net, x: torch.Tensor, index) -> torch.Tensor:
    """Per point, ``sum_j |W2_j| max|tanh^(k)| prod_a |W1_ja|^index_a``: the terms a derivative sums."""
    w1, _, w2, b2 = _one_hidden_layer(net)
    k = sum(index)
    prod = torch.ones_like(w2)
    for a, i in enumerate(index):
        prod = prod * w1[:, a].abs() ** i
    size = (w2.abs() * prod).sum() * TANH_DERIVATIVE_MAX[k] + (b2.abs().sum() if k == 0 else 0.0)
    return torch.full((x.shape[0],), float(size), dtype=torch.float64)


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


def _options(name: str) -> dict:
    """The options each engine takes: the radius for the mollifier engine only."""
    return {"radius": RADIUS} if name == "mollifier" else {}


# --- smoke / shapes ---------------------------------------------------------------------


@pytest.mark.parametrize("name", mollifier.ENGINES)
def test_engine_shapes_and_names(name: str) -> None:
    engine = make_engine(name, GRID, REQUESTS, **_options(name))
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
        engine = make_engine(name, GRID, {"lap": mollifier.laplacian(2)}, **_options(name))
        out = engine(two, dtype=torch.float64)
        assert out["lap"].shape == (1, 2, 17, 21)
        lap = out["lap"][:, 0].detach()
        if name in ("mollifier", "fd"):
            # lap(3 u) (3 u rounded: eps * 3 max|u|, times the gain) vs 3 lap(u): both
            # within the rounding bound of the Laplacian of their data (|u| <= 1), plus
            # the final product by 3.
            terms = engine_terms(engine, "lap")
            tol = (4 * combination_rounding_bound(terms, 1.0, EPS64) + combination_gain(terms) * 3 * EPS64
                   + 3 * EPS64 * float(lap.abs().max()))
        else:  # two exact derivatives, each within ANALYTIC_ULPS of 3 * size (A^2 + B^2)
            tol = 2 * ANALYTIC_ULPS * EPS64 * 3 * _magnitude("lap") + 3 * EPS64 * float(lap.abs().max())
        assert float((out["lap"][:, 1].detach() - 3 * lap).abs().max()) <= tol, name


# --- feature values -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["autodiff", "autodiff-forward"])
def test_autodiff_engines_are_exact(name: str) -> None:
    out = make_engine(name, GRID, REQUESTS)(backbone, dtype=torch.float64)
    for key, value in out.items():
        # exact derivatives of sin/cos products: rounding only (ANALYTIC_ULPS, per term)
        tol = ANALYTIC_ULPS * EPS64 * _magnitude(key)
        assert torch.allclose(value[0, 0], _expected(key), rtol=0, atol=tol), key


def test_fd_engine_second_order() -> None:
    engine = make_engine("fd", GRID, REQUESTS)
    out = engine(backbone, dtype=torch.float64)

    def stencil_for(axis, k):
        return fd_stencil(k, GRID.spacing[axis], engine.halo[axis])

    for key, value in out.items():
        err = float((value[0, 0] - _expected(key)).abs().max())
        assert err <= _tail_tolerance(key, stencil_for), key
    # Order 0 is the identity: the 3-tap stencil exact on quadratics is (0, 1, 0) up to the
    # rounding of its 3x3 moment solve, so u comes back up to that and one more rounding.
    identity = []
    for axis, h in enumerate(GRID.spacing):
        s = stencil_for(axis, 0)
        e = torch.zeros_like(s)
        e[s.numel() // 2] = 1.0
        assert l1(s - e) <= conditioned_bound(moment_condition(engine.halo[axis], 2 * engine.halo[axis]), 1.0, EPS64)
        identity.append(l1(s - e))
    stencils = [stencil_for(axis, 0) for axis in range(2)]
    tol = stencil_rounding_bound(stencils, 1.0, EPS64) + (math.prod(1 + d for d in identity) - 1)
    assert float((out["u"][0, 0] - _expected("u")).abs().max()) <= tol


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
    x = GRID.coords(dtype=torch.float64)
    for key in reverse:
        spec = {(0, 0): 1.0} if key == "u" else _spec(REQUESTS[key])
        # two roundings of the same exact derivative: each within mlp_ulps of the terms' size
        size = sum(abs(c) * mlp_derivative_size(net, x, idx) for idx, c in spec.items())
        order = max(sum(idx) for idx in spec)
        tol = 2 * (mlp_ulps(8, order) + len(spec)) * EPS64 * size.reshape(reverse[key].shape)
        assert bool(((reverse[key] - forward[key]).abs() <= tol).all()), key


@pytest.mark.parametrize("name", mollifier.ENGINES)
def test_gradients_flow_to_backbone_parameters(name: str) -> None:
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1)).double()
    engine = make_engine(name, GRID, {"lap": mollifier.laplacian(2), "u_x": (1, 0)}, **_options(name))
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
    # d mean(lap^2) / d theta = mean_x 2 lap(x) J(x), J = d lap / d theta. Per point, lap and
    # J are sums of terms of known size (below); each mode computes them within mlp_ulps
    # of those sizes (J: one order more in tanh), and the mean over N points adds N
    # roundings of sum |2 lap J|. The two modes differ by at most twice that.
    w1, _, w2, _ = _one_hidden_layer(net)
    x = GRID.coords(dtype=torch.float64)
    t2, t3 = TANH_DERIVATIVE_MAX[2], TANH_DERIVATIVE_MAX[3]
    s = (w1**2).sum(dim=1)  # S_j = sum_a W1_ja^2: lap = sum_j W2_j tanh''(z_j) S_j
    lap_size = (w2.abs() * t2 * s).sum()
    size_w1 = w2.abs()[:, None] * (t3 * x.abs().max(dim=0).values[None, :] * s[:, None] + 2 * t2 * w1.abs())
    size_b1 = w2.abs() * t3 * s
    size_w2 = t2 * s
    j_size = torch.cat([size_w1.flatten(), size_b1, size_w2])  # parameter order: W1, b1, W2
    n = x.shape[0]
    width = w2.numel()
    ulps = 2 * mlp_ulps(width, 3) + n + 2
    tol = 2 * ulps * EPS64 * 2 * lap_size * j_size
    assert bool(((grads[0] - grads[1]).abs() <= tol).all())


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


@pytest.mark.parametrize(
    ("name", "option"),
    [("autodiff", {"radius": RADIUS}), ("fd", {"kernel": "bump"}), ("mollifier", {"radius": RADIUS, "accuracy": 4}),
     ("autodiff-forward", {"boundary": "valid"})],
)
def test_make_engine_refuses_options_the_engine_does_not_take(name: str, option: dict) -> None:
    # an option that would be silently dropped is an error naming the engine and what it takes
    with pytest.raises(ValueError, match=rf"the '{name}' engine does not take option"):
        make_engine(name, GRID, REQUESTS, **option)
    assert set(mollifier.engine_options(name)) < set(mollifier.engine_options(name)) | set(option)
