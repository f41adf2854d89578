"""PINNsFormer backbone (Zhao, Ding, Prakash 2023)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._base import (
    AbstractBackbone,
    check_int_in_range,
    check_positive_float,
    check_positive_int,
)

__all__ = ["PINNsFormer", "WaveAct"]


def _linear(d_in: int, d_out: int, bias: float = 0.01) -> nn.Linear:
    """Linear layer with the reference implementation's init (Xavier-uniform, bias 0.01)."""
    layer = nn.Linear(d_in, d_out)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.constant_(layer.bias, bias)
    return layer


class WaveAct(nn.Module):
    """Wavelet activation ``w1 * sin(x) + w2 * cos(x)`` with trainable scalars.

    Both weights are initialised to 1, as in the reference implementation.

    Shape:
        - Input: ``(*)``.
        - Output: ``(*)``, same shape.

    Example:
        >>> import torch
        >>> act = WaveAct()
        >>> act(torch.zeros(3)).tolist()
        [1.0, 1.0, 1.0]
    """

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.ones(()))
        self.w2 = nn.Parameter(torch.ones(()))

    def forward(self, x: Tensor) -> Tensor:
        return self.w1 * torch.sin(x) + self.w2 * torch.cos(x)


class _Attention(nn.Module):
    """Multi-head scaled dot-product attention written with plain ops.

    Uses matmul + softmax only (no fused SDPA kernels), so nested reverse-mode
    and forward-mode autodiff work to any order.
    """

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = d_model // heads
        self.q_proj = _linear(d_model, d_model, bias=0.0)
        self.kv_proj = _linear(d_model, 2 * d_model, bias=0.0)
        self.out_proj = _linear(d_model, d_model)

    def _split(self, t: Tensor) -> Tensor:
        n, length, _ = t.shape
        return t.reshape(n, length, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, query: Tensor, context: Tensor) -> Tensor:
        # query: (N, Lq, D); context: (N, Lk, D)
        n, lq, d = query.shape
        q = self._split(self.q_proj(query))  # (N, H, Lq, dh)
        k, v = (self._split(t) for t in self.kv_proj(context).chunk(2, dim=-1))
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
        attn = torch.softmax(scores, dim=-1)  # (N, H, Lq, Lk)
        out: Tensor = self.out_proj((attn @ v).transpose(1, 2).reshape(n, lq, d))
        return out


class _FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _linear(d_model, d_ff),
            WaveAct(),
            _linear(d_ff, d_ff),
            WaveAct(),
            _linear(d_ff, d_model),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(x)
        return out


class _Layer(nn.Module):
    """Pre-activation residual layer: attention then feed-forward.

    Encoder layers attend to themselves (``context = x``); decoder layers only
    cross-attend to the encoder output, as in the reference implementation.
    """

    def __init__(self, d_model: int, heads: int, d_ff: int) -> None:
        super().__init__()
        self.act1 = WaveAct()
        self.attn = _Attention(d_model, heads)
        self.act2 = WaveAct()
        self.ff = _FeedForward(d_model, d_ff)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        x2 = self.act1(x)
        x = x + self.attn(x2, x2 if context is None else context)
        out: Tensor = x + self.ff(self.act2(x))
        return out


class PINNsFormer(AbstractBackbone):
    """Transformer-based PINN backbone (PINNsFormer).

    Zhao, Ding, Prakash (2023), "PINNsFormer: A Transformer-Based Framework for
    Physics-Informed Neural Networks". Each (normalised) point ``x`` is turned
    into a pseudo-sequence ``[x, x + step e, ..., x + (seq_len-1) step e]``
    where ``e`` is the unit vector of axis ``shift_axis`` (time, by convention
    the last coordinate). A linear spatio-temporal mixer embeds every element
    into ``d_model`` channels; an encoder (self-attention) and a decoder
    (cross-attention to the encoder output), each of ``layers`` pre-activation
    residual layers with Wavelet activations ``w1 sin + w2 cos`` and a final
    Wavelet activation, follow; an output head ``Linear -> Wave -> Linear ->
    Wave -> Linear`` maps the first sequence element to ``out_dim``.

    Deviations from the paper / reference code:

    * The output is the prediction at the first pseudo-sequence element only
      (the original point), so the backbone is a plain point-wise map
      ``(N, in_dim) -> (N, out_dim)``. The reference code returns all
      ``seq_len`` predictions and applies the PINN loss to each of them.
      Because decoder layers have no self-attention, decoding only the first
      element gives exactly the reference prediction at that element.
    * Attention is written with plain matmul + softmax instead of
      ``nn.MultiheadAttention`` (fused kernels do not support high-order
      autodiff); the maths is identical. There is no LayerNorm and no
      dropout, as in the reference implementation.
    * ``d_hidden`` sets the width of both the output head and the
      feed-forward blocks inside the encoder/decoder layers (the reference
      code uses 512 and a hard-coded 256, respectively).
    * When ``domain`` is given, ``step`` is measured in normalised ``[-1, 1]``
      units (the pseudo-sequence is built after normalisation), i.e. a
      physical step of ``step * (high - low) / 2`` along ``shift_axis``.

    Initialisation follows the reference code: Xavier-uniform weights, biases
    0.01 (0 for the query/key/value projections), wavelet weights 1.

    Args:
        in_dim: Number of input coordinates.
        out_dim: Number of output fields.
        d_model: Embedding size of the sequence elements.
        heads: Number of attention heads; must divide ``d_model``.
        layers: Number of encoder layers (and of decoder layers).
        seq_len: Length ``k`` of the pseudo-sequence.
        step: Pseudo-sequence increment (normalised units when ``domain`` is
            given).
        d_hidden: Hidden width of the feed-forward blocks and output head.
        domain: Optional per-input-dimension ``(low, high)`` bounds; inputs are
            mapped affinely onto ``[-1, 1]`` before the first layer.
        shift_axis: Input coordinate along which the pseudo-sequence is built
            (negative values count from the end).

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If an argument has an invalid value.

    Shape:
        - Input: ``(N, in_dim)`` physical coordinates.
        - Output: ``(N, out_dim)``.

    Example:
        >>> import torch
        >>> from mollifier.backbones import PINNsFormer
        >>> model = PINNsFormer(2, 1, d_model=16, heads=2, d_hidden=32,
        ...                     domain=[(0, 1), (0, 2)])
        >>> model(torch.rand(8, 2)).shape
        torch.Size([8, 1])
        >>> model.pseudo_sequence(torch.zeros(1, 2)).shape
        torch.Size([1, 5, 2])
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        d_model: int = 32,
        heads: int = 2,
        layers: int = 1,
        seq_len: int = 5,
        step: float = 1e-2,
        d_hidden: int = 64,
        domain: Sequence[tuple[float, float]] | None = None,
        shift_axis: int = -1,
    ) -> None:
        super().__init__(in_dim, out_dim, domain)
        self.d_model = check_positive_int("d_model", d_model)
        self.heads = check_positive_int("heads", heads)
        if self.d_model % self.heads != 0:
            raise ValueError(
                f"`d_model` must be divisible by `heads`, got d_model={d_model}, heads={heads}"
            )
        self.n_layers = check_positive_int("layers", layers)
        self.seq_len = check_positive_int("seq_len", seq_len)
        self.step = check_positive_float("step", step)
        self.d_hidden = check_positive_int("d_hidden", d_hidden)
        axis = check_int_in_range("shift_axis", shift_axis, -self.in_dim, self.in_dim - 1)
        self.shift_axis = axis % self.in_dim

        self.embedding = _linear(self.in_dim, self.d_model)
        self.encoder = nn.ModuleList(
            _Layer(self.d_model, self.heads, self.d_hidden) for _ in range(self.n_layers)
        )
        self.encoder_act = WaveAct()
        self.decoder = nn.ModuleList(
            _Layer(self.d_model, self.heads, self.d_hidden) for _ in range(self.n_layers)
        )
        self.decoder_act = WaveAct()
        self.head = nn.Sequential(
            _linear(self.d_model, self.d_hidden),
            WaveAct(),
            _linear(self.d_hidden, self.d_hidden),
            WaveAct(),
            _linear(self.d_hidden, self.out_dim),
        )

    def pseudo_sequence(self, x: Tensor) -> Tensor:
        """Build the pseudo-sequence of each (normalised) point.

        Element ``i`` is ``x + i * step * e_shift_axis``.

        Args:
            x: Normalised coordinates.

        Returns:
            The pseudo-sequences.

        Shape:
            - Input: ``(N, in_dim)``.
            - Output: ``(N, seq_len, in_dim)``.
        """
        offsets = torch.zeros(self.seq_len, self.in_dim, dtype=x.dtype, device=x.device)
        offsets[:, self.shift_axis] = (
            torch.arange(self.seq_len, dtype=x.dtype, device=x.device) * self.step
        )
        return x.unsqueeze(1) + offsets

    def _forward(self, x: Tensor) -> Tensor:
        src = self.embedding(self.pseudo_sequence(x))  # (N, k, d_model)
        enc = src
        for layer in self.encoder:
            enc = layer(enc)
        enc = self.encoder_act(enc)
        # Decoder layers have no self-attention, so each element is decoded
        # independently; only the first (the original point) is needed.
        dec = src[:, :1]
        for layer in self.decoder:
            dec = layer(dec, enc)
        dec = self.decoder_act(dec)
        out: Tensor = self.head(dec[:, 0])
        return out

    def extra_repr(self) -> str:
        """Summary shown by ``repr``."""
        return (
            f"{super().extra_repr()}, d_model={self.d_model}, heads={self.heads}, "
            f"layers={self.n_layers}, seq_len={self.seq_len}, step={self.step}, "
            f"d_hidden={self.d_hidden}, shift_axis={self.shift_axis}"
        )
