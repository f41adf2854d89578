"""Building blocks for residuals in divergence form, one line each.

Derivative names follow one convention: ``"<field>_x<axis>"`` for first derivatives and
``"lap_<field>"`` for the Laplacian over the chosen axes (``<field>`` is ``u`` for the
observed field, or an unknown or latent field's name). The ``*_requests`` functions
return the requests to declare (on the problem for ``u``, on the field otherwise), and
the operators read them back from the engine's output ``d``.

Example (PoissonInv, ``div(a grad u) + f = 0`` with ``a`` unknown):
    >>> from mollifier.inverse import UnknownField
    >>> from mollifier.inverse.residuals import div_a_grad, gradient_requests, laplacian_requests
    >>> derivatives = {**gradient_requests("u", 2), **laplacian_requests("u", 2)}
    >>> a = UnknownField("a", derivatives=gradient_requests("a", 2))
    >>> residual = lambda d, p, k: div_a_grad(d, "a", "u", axes=2) + k["f"]
    >>> sorted(derivatives), sorted(a.derivatives)
    (['lap_u', 'u_x0', 'u_x1'], ['a_x0', 'a_x1'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ..core.operators import MultiIndex

__all__ = [
    "div_a_grad",
    "divergence",
    "gradient",
    "gradient_name",
    "gradient_requests",
    "laplacian_name",
    "laplacian_requests",
]

Tensors = Mapping[str, torch.Tensor]


def _axes(axes: int | Sequence[int]) -> tuple[int, ...]:
    return tuple(range(axes)) if isinstance(axes, int) else tuple(axes)


def _unit(axis: int, ndim: int, order: int = 1) -> MultiIndex:
    return tuple(order if i == axis else 0 for i in range(ndim))


def gradient_name(field: str, axis: int) -> str:
    """``"<field>_x<axis>"``."""
    return f"{field}_x{axis}"


def laplacian_name(field: str) -> str:
    """``"lap_<field>"``."""
    return f"lap_{field}"


def gradient_requests(field: str, axes: int | Sequence[int], ndim: int | None = None) -> dict[str, MultiIndex]:
    """First derivatives of ``field`` along ``axes`` (an int ``n``: axes ``0..n-1``).

    Args:
        field: The field's name.
        axes: Which grid axes.
        ndim: Axes of the grid (default: ``max(axes) + 1``); multi-indices span them all.

    Example:
        >>> gradient_requests("a", (0, 1), ndim=3)
        {'a_x0': (1, 0, 0), 'a_x1': (0, 1, 0)}
    """
    chosen = _axes(axes)
    ndim = ndim if ndim is not None else max(chosen) + 1
    return {gradient_name(field, a): _unit(a, ndim) for a in chosen}


def laplacian_requests(field: str, axes: int | Sequence[int], ndim: int | None = None) -> dict[str, dict[MultiIndex, float]]:
    """The Laplacian of ``field`` over ``axes`` (e.g. the spatial axes of a space-time grid).

    Example:
        >>> laplacian_requests("u", (0, 1), ndim=3)
        {'lap_u': {(2, 0, 0): 1.0, (0, 2, 0): 1.0}}
    """
    chosen = _axes(axes)
    ndim = ndim if ndim is not None else max(chosen) + 1
    return {laplacian_name(field): {_unit(a, ndim, 2): 1.0 for a in chosen}}


def gradient(d: Tensors, field: str, axes: int | Sequence[int]) -> list[torch.Tensor]:
    """``[d field / dx_a for a in axes]`` from ``d`` (declared with :func:`gradient_requests`)."""
    return [d[gradient_name(field, a)] for a in _axes(axes)]


def divergence(d: Tensors, components: Sequence[str], axes: int | Sequence[int]) -> torch.Tensor:
    """``sum_i d components[i] / dx_{axes[i]}`` of a vector field given as one field per component
    (each declared with the gradient along its axis)."""
    chosen = _axes(axes)
    if len(chosen) != len(components):
        raise ValueError(f"`components` ({len(components)}) and `axes` ({len(chosen)}) must match")
    terms = [d[gradient_name(c, a)] for c, a in zip(components, chosen)]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def div_a_grad(d: Tensors, a: str, u: str = "u", axes: int | Sequence[int] = 2) -> torch.Tensor:
    """``div(a grad u) = a lap(u) + grad(a) . grad(u)`` over ``axes``.

    Reads ``d[a]``, ``d["<a>_x<i>"]``, ``d["<u>_x<i>"]`` and ``d["lap_<u>"]`` (declare them
    with :func:`gradient_requests` and :func:`laplacian_requests`). ``a`` may be a field
    on fewer axes (broadcast), e.g. ``a(x, y)`` in a problem on ``(x, y, t)``.
    """
    total = d[a] * d[laplacian_name(u)]
    for axis in _axes(axes):
        total = total + d[gradient_name(a, axis)] * d[gradient_name(u, axis)]
    return total
