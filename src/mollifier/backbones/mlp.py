"""Fully connected PINN backbone (Raissi, Perdikaris, Karniadakis 2019)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import AbstractBackbone, check_positive_int

__all__ = ["MLP", "ACTIVATIONS"]

#: Activations available to :class:`MLP`, by name. All are smooth and support
#: nested reverse-mode and forward-mode autodiff to arbitrary order.
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "sin": torch.sin,
    "gelu": F.gelu,
    "silu": F.silu,
}


def get_activation(name: object) -> tuple[str, Callable[[Tensor], Tensor]]:
    """Look up an activation by (case-insensitive) name.

    Args:
        name: One of the keys of :data:`ACTIVATIONS`.

    Returns:
        The normalised name and the activation function.

    Raises:
        TypeError: If ``name`` is not a string.
        ValueError: If ``name`` is not a known activation.
    """
    allowed = ", ".join(repr(k) for k in ACTIVATIONS)
    if not isinstance(name, str):
        raise TypeError(
            f"`activation` must be a str, one of {allowed}; got {name!r} "
            f"(type {type(name).__name__})"
        )
    key = name.strip().lower()
    if key not in ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {allowed}; got {name!r}")
    return key, ACTIVATIONS[key]


class MLP(AbstractBackbone):
    """Classic PINN multilayer perceptron.

    ``depth`` hidden layers of ``width`` units with a smooth activation,
    followed by a linear output layer. Weights use Xavier (Glorot) normal
    initialisation and biases are zero, as in Raissi et al. (2019).
    Initialisation draws from torch's global RNG (seed with
    ``torch.manual_seed`` for reproducibility).

    Args:
        in_dim: Number of input coordinates.
        out_dim: Number of output fields.
        width: Units per hidden layer.
        depth: Number of hidden layers.
        activation: One of ``"tanh"``, ``"sin"``, ``"gelu"``, ``"silu"``.
        domain: Optional per-input-dimension ``(low, high)`` bounds; inputs are
            mapped affinely onto ``[-1, 1]`` before the first layer.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If an argument has an invalid value.

    Shape:
        - Input: ``(N, in_dim)`` physical coordinates.
        - Output: ``(N, out_dim)``.

    Example:
        >>> import torch
        >>> from mollifier.backbones import MLP
        >>> model = MLP(2, 1, width=32, depth=3, domain=[(0, 10), (0, 10)])
        >>> x = torch.rand(8, 2, requires_grad=True) * 10
        >>> u = model(x)
        >>> u.shape
        torch.Size([8, 1])
        >>> (du,) = torch.autograd.grad(u.sum(), x, create_graph=True)
        >>> du.shape
        torch.Size([8, 2])
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        width: int = 128,
        depth: int = 4,
        activation: str = "tanh",
        domain: Sequence[tuple[float, float]] | None = None,
    ) -> None:
        super().__init__(in_dim, out_dim, domain)
        self.width = check_positive_int("width", width)
        self.depth = check_positive_int("depth", depth)
        self.activation, self._act = get_activation(activation)

        dims = [self.in_dim] + [self.width] * self.depth
        self.hidden = nn.ModuleList(
            nn.Linear(d_in, d_out) for d_in, d_out in zip(dims[:-1], dims[1:], strict=True)
        )
        self.output = nn.Linear(self.width, self.out_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise: Xavier-normal weights, zero biases (global RNG)."""
        for layer in [*self.hidden, self.output]:
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _forward(self, x: Tensor) -> Tensor:
        for layer in self.hidden:
            x = self._act(layer(x))
        out: Tensor = self.output(x)
        return out

    def extra_repr(self) -> str:
        """Summary shown by ``repr``."""
        return (
            f"{super().extra_repr()}, width={self.width}, depth={self.depth}, "
            f"activation={self.activation!r}"
        )
