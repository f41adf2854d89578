"""PirateNet backbone (Wang, Sankaran, Perdikaris 2024)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._base import AbstractBackbone, check_positive_float, check_positive_int

__all__ = ["PirateNet"]


def _xavier_linear(d_in: int, d_out: int) -> nn.Linear:
    layer = nn.Linear(d_in, d_out)
    nn.init.xavier_normal_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class _PirateBlock(nn.Module):
    """One adaptive residual block (the paper's Eq. 4.3-4.8).

    ``f = tanh(W1 x)``, ``z1 = f*U + (1-f)*V``, ``g = tanh(W2 z1)``,
    ``z2 = g*U + (1-g)*V``, ``h = tanh(W3 z2)``, ``out = alpha*h + (1-alpha)*x``.
    """

    def __init__(self, embed_dim: int, width: int) -> None:
        super().__init__()
        self.dense1 = _xavier_linear(embed_dim, width)
        self.dense2 = _xavier_linear(width, width)
        self.dense3 = _xavier_linear(width, embed_dim)
        # Trainable skip weight, 0 at init: every block starts as the identity.
        self.alpha = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        f = torch.tanh(self.dense1(x))
        z1 = f * u + (1.0 - f) * v
        g = torch.tanh(self.dense2(z1))
        z2 = g * u + (1.0 - g) * v
        h = torch.tanh(self.dense3(z2))
        return self.alpha * h + (1.0 - self.alpha) * x


class PirateNet(AbstractBackbone):
    """Physics-informed residual adaptive network (PirateNet).

    Wang, Sankaran, Perdikaris (2024), "PirateNets: Physics-informed Deep
    Learning with Residual Adaptive Networks". The input (normalised to
    ``[-1, 1]`` when a ``domain`` is given) is embedded with fixed random Fourier
    features ``Phi(x) = [cos(x B), sin(x B)]``, ``B ~ N(0, fourier_scale^2)`` of
    shape ``(in_dim, fourier_features)`` (a non-trainable buffer, saved in the
    ``state_dict``). Two gates ``U = tanh(W_u Phi)``, ``V = tanh(W_v Phi)`` of
    size ``width`` are fed to every block; each block computes

    .. code-block:: text

        f  = tanh(W1 x + b1);  z1 = f * U + (1 - f) * V
        g  = tanh(W2 z1 + b2); z2 = g * U + (1 - g) * V
        h  = tanh(W3 z2 + b3)
        x' = alpha * h + (1 - alpha) * x        (alpha trainable, init 0)

    starting from ``x = Phi``, and a final linear layer maps to ``out_dim``.
    Because every ``alpha`` starts at 0 the network is initially a linear
    model of the Fourier features and "grows" depth during training.

    As in the reference implementation (jaxpi), the block's hidden layers have
    ``width`` units and its last layer maps back to the embedding size
    ``2 * fourier_features`` so the residual connection is well defined.

    Deviations from the paper / jaxpi: plain Xavier-normal weights with zero
    biases instead of random weight factorisation (RWF); the final layer is
    Xavier-initialised instead of the paper's physics-informed least-squares
    initialisation (which needs problem data; a caller can overwrite
    ``model.output`` after fitting it); and ``B`` is a fixed buffer whereas
    the jaxpi code registers the Fourier matrix as a trainable parameter.

    Note:
        Since every ``alpha`` is 0 at initialisation, the loss gradients with
        respect to the block weights and the gate layers ``W_u``, ``W_v`` are
        exactly zero at the first step (only the ``alpha`` values and the output
        layer receive signal); they become non-zero once ``alpha`` moves. This
        is the intended behaviour of the paper.

    Args:
        in_dim: Number of input coordinates.
        out_dim: Number of output fields.
        width: Hidden units of the gates and of the blocks' inner layers.
        blocks: Number of residual blocks.
        fourier_features: Number of random frequencies ``m``; the embedding
            (and the residual stream) has ``2 * m`` channels.
        fourier_scale: Standard deviation ``s`` of the random frequencies
            (applied to normalised coordinates when ``domain`` is given).
        domain: Optional per-input-dimension ``(low, high)`` bounds; inputs are
            mapped affinely onto ``[-1, 1]`` before the embedding.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If an argument has an invalid value.

    Shape:
        - Input: ``(N, in_dim)`` physical coordinates.
        - Output: ``(N, out_dim)``.

    Example:
        >>> import torch
        >>> from mollifier.backbones import PirateNet
        >>> model = PirateNet(2, 1, width=32, blocks=2, fourier_features=16)
        >>> model(torch.rand(8, 2)).shape
        torch.Size([8, 1])
        >>> model.B.shape, model.B.requires_grad
        (torch.Size([2, 16]), False)
    """

    B: Tensor

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        width: int = 128,
        blocks: int = 3,
        fourier_features: int = 64,
        fourier_scale: float = 1.0,
        domain: Sequence[tuple[float, float]] | None = None,
    ) -> None:
        super().__init__(in_dim, out_dim, domain)
        self.width = check_positive_int("width", width)
        self.n_blocks = check_positive_int("blocks", blocks)
        self.fourier_features = check_positive_int("fourier_features", fourier_features)
        self.fourier_scale = check_positive_float("fourier_scale", fourier_scale)

        embed_dim = 2 * self.fourier_features
        self.register_buffer(
            "B", torch.randn(self.in_dim, self.fourier_features) * self.fourier_scale
        )
        self.gate_u = _xavier_linear(embed_dim, self.width)
        self.gate_v = _xavier_linear(embed_dim, self.width)
        self.blocks = nn.ModuleList(
            _PirateBlock(embed_dim, self.width) for _ in range(self.n_blocks)
        )
        self.output = _xavier_linear(embed_dim, self.out_dim)

    def embed(self, x: Tensor) -> Tensor:
        """Random Fourier feature embedding of normalised coordinates.

        Args:
            x: Normalised coordinates.

        Returns:
            ``[cos(x B), sin(x B)]``.

        Shape:
            - Input: ``(N, in_dim)``.
            - Output: ``(N, 2 * fourier_features)``.
        """
        proj = x @ self.B
        return torch.cat([torch.cos(proj), torch.sin(proj)], dim=-1)

    def _forward(self, x: Tensor) -> Tensor:
        phi = self.embed(x)
        u = torch.tanh(self.gate_u(phi))
        v = torch.tanh(self.gate_v(phi))
        h = phi
        for block in self.blocks:
            h = block(h, u, v)
        out: Tensor = self.output(h)
        return out

    def extra_repr(self) -> str:
        """Summary shown by ``repr``."""
        return (
            f"{super().extra_repr()}, width={self.width}, blocks={self.n_blocks}, "
            f"fourier_features={self.fourier_features}, "
            f"fourier_scale={self.fourier_scale}"
        )
