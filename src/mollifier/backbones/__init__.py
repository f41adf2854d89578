"""Coordinate-network backbones compared in the project.

Three backbones map physical coordinates ``(N, in_dim)`` to fields
``(N, out_dim)``: a classic PINN :class:`MLP`, :class:`PirateNet` (Wang et al.
2024) and :class:`PINNsFormer` (Zhao et al. 2023). All support nested
reverse-mode autodiff (tested to 4th order) and ``torch.func`` forward mode
with respect to the input coordinates, in float32 and float64.

Example:
    >>> import torch
    >>> from mollifier.backbones import make_backbone
    >>> model = make_backbone("mlp", 2, 1, domain=[(0, 10), (0, 10)], width=16)
    >>> model(torch.rand(4, 2)).shape
    torch.Size([4, 1])
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from ._base import AbstractBackbone
from .mlp import MLP
from .pinnsformer import PINNsFormer
from .piratenet import PirateNet
from .spectral import GaussianProcessField

__all__ = [
    "AbstractBackbone",
    "BACKBONES",
    "GaussianProcessField",
    "MLP",
    "PINNsFormer",
    "PirateNet",
    "make_backbone",
]

#: The coordinate networks compared in the project (for the observed field).
BACKBONES: tuple[str, ...] = ("mlp", "piratenet", "pinnsformer")

_REGISTRY: dict[str, type[AbstractBackbone]] = {
    "mlp": MLP,
    "piratenet": PirateNet,
    "pinnsformer": PINNsFormer,
    # a Gaussian-process prior for an unknown field (UnknownField(backbone="gp"))
    "gp": GaussianProcessField,
}


def make_backbone(
    name: str,
    in_dim: int,
    out_dim: int,
    domain: Sequence[tuple[float, float]] | None = None,
    **kwargs: Any,
) -> AbstractBackbone:
    """Build a backbone by name.

    Args:
        name: One of :data:`BACKBONES` (``"mlp"``, ``"piratenet"``,
            ``"pinnsformer"``) or ``"gp"`` (:class:`GaussianProcessField`, a prior for
            an unknown field); case-insensitive.
        in_dim: Number of input coordinates.
        out_dim: Number of output fields.
        domain: Optional per-input-dimension ``(low, high)`` bounds.
        **kwargs: Keyword arguments of the chosen backbone's constructor
            (e.g. ``width=64`` for ``"mlp"``).

    Returns:
        The initialised backbone (uses torch's global RNG).

    Raises:
        TypeError: If ``name`` is not a string or a keyword is not accepted by
            the chosen backbone.
        ValueError: If ``name`` is unknown or an argument is invalid.

    Shape:
        The returned module maps ``(N, in_dim)`` to ``(N, out_dim)``.

    Example:
        >>> import torch
        >>> from mollifier.backbones import make_backbone
        >>> net = make_backbone("piratenet", 1, 2, domain=[(0, 10)], width=16,
        ...                     fourier_features=8)
        >>> net(torch.linspace(0, 10, 5)[:, None]).shape
        torch.Size([5, 2])
    """
    allowed = ", ".join(repr(n) for n in _REGISTRY)
    if not isinstance(name, str):
        raise TypeError(
            f"`name` must be a str, one of {allowed}; got {name!r} (type {type(name).__name__})"
        )
    key = name.strip().lower()
    if key not in _REGISTRY:
        raise ValueError(f"`name` must be one of {allowed}; got {name!r}")
    cls = _REGISTRY[key]
    params = inspect.signature(cls.__init__).parameters
    accepted = [
        p.name
        for p in params.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "domain"
    ]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(
            f"unexpected keyword argument(s) {unknown} for backbone {key!r}; allowed: {accepted}"
        )
    return cls(in_dim, out_dim, domain=domain, **kwargs)
