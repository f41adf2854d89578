"""Tests of the coordinate-network backbones (MLP, PirateNet, PINNsFormer)."""

from __future__ import annotations

import doctest
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch
from torch import Tensor

import mollifier.backbones as backbones_pkg
from mollifier.backbones import (
    BACKBONES,
    MLP,
    AbstractBackbone,
    PINNsFormer,
    PirateNet,
    _base,
    make_backbone,
    mlp,
    pinnsformer,
    piratenet,
)

# Small configurations so that high-order autodiff tests stay fast.
SMALL: dict[str, dict[str, Any]] = {
    "mlp": {"width": 16, "depth": 3},
    "piratenet": {"width": 16, "blocks": 2, "fourier_features": 8, "fourier_scale": 2.0},
    "pinnsformer": {"d_model": 8, "heads": 2, "d_hidden": 16, "seq_len": 3, "step": 0.1},
}
CLASSES: dict[str, type[AbstractBackbone]] = {
    "mlp": MLP,
    "piratenet": PirateNet,
    "pinnsformer": PINNsFormer,
}


def small(
    name: str,
    in_dim: int = 2,
    out_dim: int = 1,
    domain: Sequence[tuple[float, float]] | None = None,
    **overrides: Any,
) -> AbstractBackbone:
    """Small backbone; PirateNet gets non-zero alphas so every block is active."""
    model = make_backbone(name, in_dim, out_dim, domain=domain, **{**SMALL[name], **overrides})
    if isinstance(model, PirateNet):
        with torch.no_grad():
            for pname, param in model.named_parameters():
                if pname.endswith(".alpha"):
                    param.fill_(0.7)
    return model


def nested_grad(model: AbstractBackbone, x: Tensor, axes: Sequence[int]) -> Tensor:
    """Per-point mixed derivative d^k u_0 / dx_{axes[0]} ... dx_{axes[-1]}."""
    x = x.detach().clone().requires_grad_(True)
    d = model(x)[:, 0]
    for axis in axes:
        (g,) = torch.autograd.grad(d.sum(), x, create_graph=True)
        d = g[:, axis]
    return d


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("in_dim", [1, 2, 3])
@pytest.mark.parametrize("out_dim", [1, 3])
def test_output_shape(name: str, in_dim: int, out_dim: int) -> None:
    model = small(name, in_dim, out_dim)
    out = model(torch.rand(7, in_dim))
    assert out.shape == (7, out_dim)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert model.in_dim == in_dim and model.out_dim == out_dim


@pytest.mark.parametrize("name", BACKBONES)
def test_default_sizes_and_empty_batch(name: str) -> None:
    model = make_backbone(name, 2, 1, domain=[(0, 10), (0, 10)])
    assert model(torch.rand(5, 2) * 10).shape == (5, 1)
    assert model(torch.zeros(0, 2)).shape == (0, 1)
    assert "in_dim=2" in repr(model)


@pytest.mark.parametrize("name", BACKBONES)
def test_pointwise_batch_independence(name: str) -> None:
    model = small(name, 2, 2)
    x = torch.rand(6, 2, dtype=torch.float64)
    model = model.double()
    full = model(x)
    single = torch.cat([model(x[i : i + 1]) for i in range(len(x))])
    # Batches of other sizes may accumulate the layers' dot products in another order:
    # rounding of a few small layers, ~1e-15 relative; assert_close's float64 default
    # (rtol 1e-7, atol 1e-7) only guards against a row mixing in another row's data.
    torch.testing.assert_close(full, single)


@pytest.mark.parametrize("name", BACKBONES)
def test_float64(name: str) -> None:
    torch.manual_seed(0)
    model = small(name, 2, 1, domain=[(0, 10), (-5, 5)])
    x = torch.rand(9, 2) * 10 - torch.tensor([0.0, 5.0])
    out32 = model(x)
    model = model.double()
    out64 = model(x.double())
    assert out64.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert all(b.dtype == torch.float64 for b in model.buffers())
    # float32 forward rounding: per layer gamma_{fan-in + 1} ~ 17 eps32 = 2e-6 of the
    # terms' size (outputs and terms O(1) for these small initialised models), a few
    # layers (and the transformer's softmax/normalisation): within 1e-5 absolute, 1e-4
    # relative.
    torch.testing.assert_close(out64.float(), out32, rtol=1e-4, atol=1e-5)


# -------------------------------------------------------------------- bad arguments

BAD_ARGS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("mlp", {"in_dim": 0}, ValueError, r"`in_dim` must be a positive int, got 0"),
    ("mlp", {"out_dim": "1"}, TypeError, r"`out_dim` must be a positive int, got '1'"),
    ("mlp", {"width": -3}, ValueError, r"`width` must be a positive int, got -3"),
    ("mlp", {"width": 2.5}, TypeError, r"`width` must be a positive int, got 2.5"),
    ("mlp", {"depth": 0}, ValueError, r"`depth`.*got 0"),
    ("mlp", {"depth": True}, TypeError, r"`depth`.*True"),
    ("mlp", {"activation": "relu"}, ValueError, r"`activation`.*'tanh'.*'silu'.*'relu'"),
    ("mlp", {"activation": None}, TypeError, r"`activation` must be a str"),
    ("mlp", {"domain": [(0, 1)]}, ValueError, r"`domain`.*in_dim=2.*got 1"),
    ("mlp", {"domain": [(0, 1), (2, 2)]}, ValueError, r"`domain\[1\]`.*low < high.*\(2, 2\)"),
    ("mlp", {"domain": [(0, 1), (0, float("nan"))]}, ValueError, r"`domain\[1\]`.*finite"),
    ("mlp", {"domain": [(0, 1), (0, 1, 2)]}, TypeError, r"`domain\[1\]`.*pair"),
    ("mlp", {"domain": [(0, 1), ("a", 1)]}, TypeError, r"`domain\[1\]`.*pair"),
    ("mlp", {"domain": "ab"}, TypeError, r"`domain` must be"),
    ("mlp", {"domain": 3.0}, TypeError, r"`domain` must be"),
    ("piratenet", {"blocks": 0}, ValueError, r"`blocks`.*got 0"),
    ("piratenet", {"fourier_features": -1}, ValueError, r"`fourier_features`.*got -1"),
    ("piratenet", {"fourier_scale": 0.0}, ValueError, r"`fourier_scale`.*got 0.0"),
    ("piratenet", {"fourier_scale": float("inf")}, ValueError, r"`fourier_scale`.*inf"),
    ("piratenet", {"fourier_scale": "1"}, TypeError, r"`fourier_scale`.*'1'"),
    ("pinnsformer", {"d_model": 30, "heads": 4}, ValueError, r"`d_model`.*`heads`.*30.*4"),
    ("pinnsformer", {"heads": 0}, ValueError, r"`heads`.*got 0"),
    ("pinnsformer", {"layers": 0}, ValueError, r"`layers`.*got 0"),
    ("pinnsformer", {"seq_len": 0}, ValueError, r"`seq_len`.*got 0"),
    ("pinnsformer", {"step": -0.1}, ValueError, r"`step`.*-0.1"),
    ("pinnsformer", {"d_hidden": 0}, ValueError, r"`d_hidden`.*got 0"),
    ("pinnsformer", {"shift_axis": 2}, ValueError, r"`shift_axis`.*\[-2, 1\].*got 2"),
    ("pinnsformer", {"shift_axis": -3}, ValueError, r"`shift_axis`.*got -3"),
    ("pinnsformer", {"shift_axis": 1.0}, TypeError, r"`shift_axis`.*1.0"),
]


@pytest.mark.parametrize(("name", "kwargs", "exc", "match"), BAD_ARGS)
def test_bad_arguments(name: str, kwargs: dict[str, Any], exc: type[Exception], match: str) -> None:
    kwargs = dict(kwargs)
    in_dim = kwargs.pop("in_dim", 2)
    out_dim = kwargs.pop("out_dim", 1)
    with pytest.raises(exc, match=match):
        CLASSES[name](in_dim, out_dim, **kwargs)


def test_valid_argument_variants() -> None:
    import numpy as np

    assert MLP(1, 1, activation=" GELU ").activation == "gelu"
    domain = np.array([[0.0, 1.0], [-1.0, 3.0]])
    assert MLP(2, 1, domain=domain).domain == ((0.0, 1.0), (-1.0, 3.0))  # type: ignore[arg-type]
    assert MLP(1, 1, width=np.int64(4)).width == 4  # type: ignore[arg-type]
    assert PINNsFormer(3, 1, shift_axis=-1).shift_axis == 2
    assert PINNsFormer(3, 1, shift_axis=0).shift_axis == 0


@pytest.mark.parametrize("name", BACKBONES)
def test_bad_forward_input(name: str) -> None:
    model = small(name, 2, 1)
    with pytest.raises(TypeError, match=r"`coords` must be a torch.Tensor.*\(N, 2\)"):
        model([[0.0, 1.0]])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`coords`.*floating dtype.*torch.int64"):
        model(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`coords` must have shape \(N, 2\), got \(3,\)"):
        model(torch.zeros(3))
    with pytest.raises(ValueError, match=r"`coords` must have shape \(N, 2\), got \(3, 3\)"):
        model(torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"got \(2, 3, 2\)"):
        model(torch.zeros(2, 3, 2))
    with pytest.raises(TypeError, match=r"`coords` dtype torch.float64.*torch.float32"):
        model(torch.zeros(3, 2, dtype=torch.float64))


# --------------------------------------------------------------------------- domain


def test_domain_normalisation_1d() -> None:
    model = MLP(1, 1, width=4, depth=1, domain=[(0, 10)])
    x = torch.tensor([[0.0], [2.5], [5.0], [10.0]])
    assert model.normalize(x).flatten().tolist() == [-1.0, -0.5, 0.0, 1.0]
    x64 = x.double()
    assert model.double().normalize(x64).dtype == torch.float64
    assert model.normalize(x64).flatten().tolist() == [-1.0, -0.5, 0.0, 1.0]


def test_domain_normalisation_nd_and_identity() -> None:
    model = PirateNet(
        3, 1, width=4, blocks=1, fourier_features=2, domain=[(0, 10), (-2, 2), (1, 3)]
    )
    lo = torch.tensor([[0.0, -2.0, 1.0]])
    hi = torch.tensor([[10.0, 2.0, 3.0]])
    torch.testing.assert_close(model.normalize(lo), -torch.ones(1, 3))
    torch.testing.assert_close(model.normalize(hi), torch.ones(1, 3))
    no_domain = PirateNet(3, 1, width=4, blocks=1, fourier_features=2)
    x = torch.randn(4, 3)
    assert no_domain.normalize(x) is x


@pytest.mark.parametrize("name", BACKBONES)
def test_domain_applied_before_first_layer(name: str) -> None:
    """A model with a domain equals the same weights without one on normalised input."""
    domain = [(0.0, 10.0), (-4.0, 0.0)]
    with_domain = small(name, 2, 1, domain=domain)
    plain = small(name, 2, 1)
    plain.load_state_dict(with_domain.state_dict())
    x = torch.rand(8, 2) * torch.tensor([10.0, 4.0]) - torch.tensor([0.0, 4.0])
    x_norm = 2.0 * (x - torch.tensor([0.0, -4.0])) / torch.tensor([10.0, 4.0]) - 1.0
    torch.testing.assert_close(with_domain(x), plain(x_norm))

    seen: list[Tensor] = []
    original = with_domain._forward

    def spy(z: Tensor) -> Tensor:
        seen.append(z)
        return original(z)

    with_domain._forward = spy  # type: ignore[method-assign,assignment]
    corners = torch.tensor([[0.0, -4.0], [10.0, 0.0]])
    with_domain(corners)
    torch.testing.assert_close(seen[0], torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))


def test_pinnsformer_pseudo_sequence() -> None:
    model = PINNsFormer(3, 1, seq_len=4, step=0.5, shift_axis=1)
    x = torch.tensor([[1.0, 2.0, 3.0]])
    seq = model.pseudo_sequence(x)
    expected = torch.tensor([[[1.0, 2.0, 3.0], [1.0, 2.5, 3.0], [1.0, 3.0, 3.0], [1.0, 3.5, 3.0]]])
    torch.testing.assert_close(seq, expected)
    default = PINNsFormer(2, 1, seq_len=2, step=0.25)
    torch.testing.assert_close(
        default.pseudo_sequence(torch.zeros(1, 2)), torch.tensor([[[0.0, 0.0], [0.0, 0.25]]])
    )


# ----------------------------------------------------------------- high-order autodiff


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("axes", [(0, 0, 0, 0), (0, 1, 1, 0), (1, 0, 1, 1)])
def test_fourth_order_grad_matches_finite_differences(name: str, axes: tuple[int, ...]) -> None:
    torch.manual_seed(1)
    model = small(name, 2, 1, domain=[(0.0, 2.0), (-1.0, 1.0)]).double()
    x = torch.rand(4, 2, dtype=torch.float64) * 2 - torch.tensor([0.0, 1.0], dtype=torch.float64)
    exact = nested_grad(model, x, axes)
    h = 1e-5
    e = torch.zeros(2, dtype=torch.float64)
    e[axes[-1]] = h
    fd = (nested_grad(model, x + e, axes[:-1]) - nested_grad(model, x - e, axes[:-1])) / (2 * h)
    scale = exact.abs().max()
    assert scale > 0
    # central difference with h = 1e-5: truncation h^2/6 |f^(5)| ~ 2e-11 |f^(5)| and
    # rounding ~ eps |f'''| / h ~ 2e-11 |f'''|, relative to |f^(4)|: 1e-6
    # is a discretisation tolerance with room for the derivatives' ratios
    assert ((exact - fd).abs().max() / scale) < 1e-6


# torch loads its forward-AD decompositions through torch.jit.script on first use,
# which emits a DeprecationWarning from torch internals (not from mollifier).
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("name", BACKBONES)
def test_fourth_order_forward_mode_matches_reverse_mode(name: str) -> None:
    """Nested torch.func.jvp (forward mode) equals nested autograd.grad."""
    torch.manual_seed(2)
    model = small(name, 2, 1, domain=[(0.0, 2.0), (-1.0, 1.0)]).double()
    x = torch.rand(4, 2, dtype=torch.float64)
    v = torch.tensor([0.6, -0.8], dtype=torch.float64).expand_as(x)

    def directional(f: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
        return lambda z: torch.func.jvp(f, (z,), (v,))[1]

    f: Callable[[Tensor], Tensor] = lambda z: model(z)[:, 0]  # noqa: E731
    for _ in range(4):
        f = directional(f)
    forward = f(x)

    z = x.clone().requires_grad_(True)
    d = model(z)[:, 0]
    for _ in range(4):
        (g,) = torch.autograd.grad(d.sum(), z, create_graph=True)
        d = (g * v).sum(-1)
    # Two exact 4th derivatives computed in different orders: each sums <= 4^4 chain-rule
    # terms per hidden unit (width <= 16) with a few ulp each, ~1e4 eps of the terms'
    # size (O(1-10) here): 1e-9 (4.5e6 eps) leaves ample room.
    torch.testing.assert_close(forward, d.detach(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", BACKBONES)
def test_vmap_hessian_per_point(name: str) -> None:
    model = small(name, 2, 1).double()
    x = torch.rand(3, 2, dtype=torch.float64)
    hess = torch.func.vmap(torch.func.hessian(lambda p: model(p[None])[0, 0]))(x)
    assert hess.shape == (3, 2, 2)
    torch.testing.assert_close(hess[:, 0, 1], nested_grad(model, x, (0, 1)))
    torch.testing.assert_close(hess[:, 1, 1], nested_grad(model, x, (1, 1)))


@pytest.mark.parametrize("name", BACKBONES)
def test_second_order_grad_float32(name: str) -> None:
    model = small(name, 2, 1)
    x = torch.rand(5, 2)
    lap = nested_grad(model, x, (0, 0)) + nested_grad(model, x, (1, 1))
    assert lap.dtype == torch.float32 and torch.isfinite(lap).all()


# ------------------------------------------------------------ parameters and seeding


@pytest.mark.parametrize("name", BACKBONES)
def test_reproducible_under_seed(name: str) -> None:
    torch.manual_seed(1234)
    a = make_backbone(name, 2, 1, **SMALL[name])
    torch.manual_seed(1234)
    b = make_backbone(name, 2, 1, **SMALL[name])
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    x = torch.rand(4, 2)
    assert torch.equal(a(x), b(x))
    torch.manual_seed(4321)
    c = make_backbone(name, 2, 1, **SMALL[name])
    assert not all(torch.equal(sa[k], c.state_dict()[k]) for k in sa)


@pytest.mark.parametrize("name", BACKBONES)
def test_gradients_reach_all_parameters(name: str) -> None:
    model = small(name, 2, 2)  # PirateNet with alpha = 0.7
    x = torch.rand(16, 2, requires_grad=True)
    u = model(x)
    (du,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    loss = u.square().mean() + du.square().mean()
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert p.grad.abs().sum() > 0, pname


def test_piratenet_initialisation() -> None:
    """alpha starts at 0: the net is linear in the Fourier features at init."""
    model = PirateNet(2, 1, width=8, blocks=2, fourier_features=4, fourier_scale=3.0)
    alphas = [p for n, p in model.named_parameters() if n.endswith(".alpha")]
    assert len(alphas) == 2 and all(a.item() == 0.0 for a in alphas)
    assert "B" in model.state_dict() and "B" not in dict(model.named_parameters())
    assert not model.B.requires_grad and model.B.shape == (2, 4)
    x = torch.rand(5, 2)
    expected = model.output(model.embed(x))
    torch.testing.assert_close(model(x), expected)
    model(x).square().sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        nonzero = bool(p.grad.abs().sum() > 0)
        assert nonzero == (pname.endswith("alpha") or pname.startswith("output")), pname


def test_state_dict_roundtrip() -> None:
    for name in BACKBONES:
        a = small(name, 2, 1, domain=[(0, 1), (0, 2)])
        b = small(name, 2, 1, domain=[(0, 1), (0, 2)])
        b.load_state_dict(a.state_dict())
        x = torch.rand(3, 2)
        torch.testing.assert_close(a(x), b(x))


# --------------------------------------------------------------------------- factory


def test_factory_names() -> None:
    assert BACKBONES == ("mlp", "piratenet", "pinnsformer")
    for name in BACKBONES:
        model = make_backbone(name, 2, 3, **SMALL[name])
        assert isinstance(model, CLASSES[name]) and isinstance(model, AbstractBackbone)
        assert model.out_dim == 3
    assert isinstance(make_backbone(" PirateNet ", 1, 1, width=4, fourier_features=2), PirateNet)
    model = make_backbone("mlp", 1, 1, domain=[(0, 10)], width=7, activation="sin")
    assert isinstance(model, MLP) and model.width == 7 and model.activation == "sin"
    assert model.domain == ((0.0, 10.0),)


def test_factory_errors() -> None:
    with pytest.raises(ValueError, match=r"`name`.*'mlp', 'piratenet', 'pinnsformer'.*'resnet'"):
        make_backbone("resnet", 2, 1)
    with pytest.raises(TypeError, match=r"`name` must be a str"):
        make_backbone(MLP, 2, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"\['blocks'\].*'mlp'.*width"):
        make_backbone("mlp", 2, 1, blocks=3)
    with pytest.raises(ValueError, match=r"`width`"):
        make_backbone("piratenet", 2, 1, width=0)


def test_public_api() -> None:
    assert set(backbones_pkg.__all__) == {
        "AbstractBackbone",
        "BACKBONES",
        "GaussianProcessField",
        "MLP",
        "PINNsFormer",
        "PirateNet",
        "make_backbone",
    }
    with pytest.raises(TypeError):
        AbstractBackbone(1, 1)  # type: ignore[abstract]


@pytest.mark.parametrize("module", [backbones_pkg, _base, mlp, piratenet, pinnsformer])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0


@pytest.mark.parametrize("name", BACKBONES)
def test_device_follows_parameters(name: str) -> None:
    """No tensor is created on a fixed device: run on the 'meta' device as a proxy."""
    model = small(name, 2, 3, domain=[(0, 10), (0, 1)]).to("meta")
    assert all(t.device.type == "meta" for t in [*model.parameters(), *model.buffers()])
    out = model(torch.zeros(4, 2, device="meta"))
    assert out.device.type == "meta" and out.shape == (4, 3)
    with pytest.raises(ValueError, match=r"`coords` is on device cpu.*meta"):
        model(torch.zeros(4, 2))
