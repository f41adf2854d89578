"""Boundary and initial conditions, for the observed field and for unknown and latent fields.

- :class:`Dirichlet` ``(field, value, on)``: the field equals ``value`` on the nodes ``on``.
- :class:`Neumann` ``(field, value, on)``: its outward normal derivative equals ``value``.
- :func:`Initial` ``(field, value, axis)``: Dirichlet on the lower face of a time axis.

``on`` selects grid nodes of the field's own grid (its ``axes``):

- ``"boundary"`` (default): the edge of the problem's ``domain`` mask when it has one
  (and the field spans every axis), else every face of the box;
- ``"edge"``: the edge of the ``domain`` mask (nodes inside with a neighbour outside,
  diagonal neighbours included, so re-entrant corners belong to it);
- a face, ``"x<axis>-"`` or ``"x<axis>+"`` (``"x0-"`` is the lower end of grid axis 0),
  or a sequence of faces.

``value`` is a number, an array on the field's grid (read at the selected nodes), or a
function of the nodes' coordinates, ``value(coords)`` with ``coords`` ``(N, k)`` (one
column per axis of the field) returning ``(N,)``.

The condition compares the engine's field (the mollified field for the ``mollifier``
engine, which is defined on the boundary nodes because the network is evaluated on a
halo beyond them) with the value there; each condition's mean square, relative to the
field's scale (the data's variance for the observed field, the value's mean square
otherwise, or the square of the field's ``init`` where that is larger, so that a
condition ``value = 0`` does not get an unbounded weight), is weighted by ``weight`` and
summed into the loss term ``conditions``.

Example:
    >>> from mollifier.inverse import Dirichlet, Initial, Neumann
    >>> conditions = [Dirichlet("a", 2.0), Neumann("u", 0.0, on="x1+"), Initial("u", 0.0, axis=2)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..core.grid import Grid

__all__ = ["Condition", "Dirichlet", "Initial", "Neumann", "condition_nodes", "condition_values", "edge_normals"]


@dataclass(frozen=True)
class Dirichlet:
    """The field equals ``value`` on the nodes ``on`` (see the module docstring).

    Args:
        field: ``"u"`` (the observed field) or an unknown or latent field's name.
        value: Number, array on the field's grid, or ``value(coords) -> (N,)``.
        on: ``"boundary"``, ``"edge"``, a face ``"x<axis>-"``/``"x<axis>+"`` or several faces.
        weight: Weight of this condition in the loss.
        channel: For a multi-channel observed field, the channel (default: every channel).
    """

    field: str
    value: Any = 0.0
    on: str | Sequence[str] = "boundary"
    weight: float = 1.0
    channel: int | None = None

    kind = "dirichlet"


@dataclass(frozen=True)
class Neumann(Dirichlet):
    """The field's outward normal derivative equals ``value`` on the nodes ``on``.

    On a box face the normal is the axis (``-`` face: ``-d/dx``); on the edge of the
    ``domain`` mask it is the outward normal of the mask, from the gradient of its
    smoothed indicator.
    """

    kind = "neumann"


def Initial(field: str, value: Any = 0.0, axis: int = -1, weight: float = 1.0, channel: int | None = None) -> Dirichlet:  # noqa: N802
    """The field equals ``value`` at the start of the time axis ``axis`` (its lower face)."""
    return Dirichlet(field, value, on=f"x{axis}-", weight=weight, channel=channel)


Condition = Dirichlet
"""Any condition (:class:`Dirichlet` or :class:`Neumann`)."""


def _faces(on: str | Sequence[str], ndim: int, domain: np.ndarray | None) -> list[tuple[int, int]] | str:
    if isinstance(on, str):
        if on in ("boundary", "edge"):
            if on == "edge" and domain is None:
                raise ValueError("`on`='edge' needs the problem's `domain` mask")
            return "edge" if domain is not None else "box"
        on = [on]
    faces = []
    for face in on:
        text = str(face)
        if len(text) < 3 or text[0] != "x" or text[-1] not in "+-":
            raise ValueError(f"`on` must be 'boundary', 'edge' or faces like 'x0-', 'x1+'; got {face!r}")
        try:
            axis = int(text[1:-1])
        except ValueError:
            raise ValueError(f"`on` must be 'boundary', 'edge' or faces like 'x0-', 'x1+'; got {face!r}") from None
        if not -ndim <= axis < ndim:
            raise ValueError(f"`on` face {face!r} names axis {axis}, but the grid has {ndim} axes")
        faces.append((axis % ndim, -1 if text[-1] == "-" else 1))
    return faces


def condition_nodes(
    condition: Dirichlet, grid: Grid, domain: np.ndarray | None, axes_map: Sequence[int], problem_ndim: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """The nodes of ``grid`` (the field's own grid) where ``condition`` holds, and the
    outward normal there (``(N, ndim)``, for Neumann conditions; None for Dirichlet).

    Args:
        condition: The condition.
        grid: The field's grid (its own axes).
        domain: The problem's domain mask on this grid (None: the whole box).
        axes_map: The problem's grid axis of each of the field's axes (face names count
            the problem's axes).
        problem_ndim: Number of axes of the problem's grid.
    """
    faces = _faces(condition.on, problem_ndim, domain)
    nodes = np.zeros(grid.shape, dtype=bool)
    normals = np.zeros((*grid.shape, grid.ndim))
    if faces == "box":
        faces = [(a, s) for a in axes_map for s in (-1, 1)]
    if faces == "edge":
        assert domain is not None
        full = ndimage.generate_binary_structure(domain.ndim, domain.ndim)  # diagonals too
        nodes = domain & ~ndimage.binary_erosion(domain, structure=full, border_value=0)
        normals = edge_normals(domain, grid.spacing)
    else:
        for axis, side in faces:
            if axis not in axes_map:
                raise ValueError(
                    f"condition on field {condition.field!r}: face x{axis}{'-' if side < 0 else '+'} is along axis "
                    f"{axis}, which the field does not depend on (its axes: {list(axes_map)})"
                )
            own = list(axes_map).index(axis)
            index: list[Any] = [slice(None)] * grid.ndim
            index[own] = 0 if side < 0 else -1
            nodes[tuple(index)] = True
            normals[tuple(index) + (own,)] = side
        if domain is not None:
            nodes &= domain
    if not nodes.any():
        raise ValueError(f"condition on field {condition.field!r} with on={condition.on!r} selects no grid node")
    index = np.nonzero(nodes)
    if condition.kind == "dirichlet":
        return nodes, None
    normal = normals[index]
    length = np.linalg.norm(normal, axis=1, keepdims=True)
    return nodes, normal / np.maximum(length, 1e-300)


def edge_normals(domain: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Outward unit normals of a mask's edge, ``(*shape, ndim)``: minus the gradient of the
    mask's indicator smoothed over about one cell."""
    smooth = ndimage.gaussian_filter(domain.astype(float), sigma=1.0, mode="nearest")
    grads = np.gradient(smooth, *spacing)
    grads = [grads] if isinstance(grads, np.ndarray) else list(grads)  # 1-D: one array
    return -np.stack(grads, axis=-1)


def condition_values(condition: Dirichlet, grid: Grid, nodes: np.ndarray) -> np.ndarray:
    """The condition's value at ``nodes`` (a boolean mask on the field's grid), ``(N,)``."""
    value = condition.value
    count = int(nodes.sum())
    if callable(value):
        coords = np.stack([m[nodes] for m in np.meshgrid(*[a.numpy() for a in _axes(grid)], indexing="ij")], axis=1)
        out = np.asarray(value(coords), dtype=np.float64).reshape(-1)
        if out.shape != (count,):
            raise ValueError(
                f"condition on field {condition.field!r}: `value(coords)` must return one value per node ({count}); got shape {out.shape}"
            )
    else:
        array = np.asarray(value, dtype=np.float64)
        if array.ndim == 0:
            out = np.full(count, float(array))
        elif array.shape == grid.shape:
            out = array[nodes]
        else:
            raise ValueError(
                f"condition on field {condition.field!r}: `value` must be a number, an array of the field's grid shape "
                f"{grid.shape} or a function of the coordinates; got shape {array.shape}"
            )
    if not np.isfinite(out).all():
        raise ValueError(f"condition on field {condition.field!r}: `value` holds NaN or inf at the selected nodes")
    return out


def _axes(grid: Grid):
    import torch

    return grid.axes(dtype=torch.float64)


