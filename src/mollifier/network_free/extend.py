"""Gridded data beyond its edges, and smoothed there: what a field anchored to data needs.

A mollified derivative at a node within one radius of a non-periodic edge needs values
beyond the edge. :func:`extend_edges` continues the data along each axis by a
least-squares polynomial fitted to the samples next to the edge (low degree, so the
noise is averaged, not amplified), and :func:`smooth_on_halo` mollifies the continued
data, giving a smoothed field on the grid plus a halo of samples on every side (or on
the grid alone for periodic data).

Example:
    >>> import numpy as np
    >>> y = np.linspace(0.0, 1.0, 11)
    >>> np.round(extend_edges(y, 2)[[0, 1, -2, -1]], 6)
    array([-0.2, -0.1,  1.1,  1.2])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..core.operators import derivatives

__all__ = ["extend_edges", "smooth_on_halo"]


def extend_edges(values: np.ndarray, pad: int | Sequence[int], degree: int = 1, width: int | None = None) -> np.ndarray:
    """``values`` continued by ``pad`` samples beyond each edge of every axis.

    Along each axis in turn, the ``width`` samples next to an edge are fitted by a
    polynomial of ``degree`` (least squares) and the polynomial is evaluated beyond the
    edge; corners are filled by the later axes' fits of the already extended array.

    Args:
        values: Array on the grid (any number of axes).
        pad: Samples to add on each side, one value or one per axis.
        degree: Degree of the edge polynomial (1: linear continuation).
        width: Samples the fit uses (default: ``max(2 * degree + 2, min(n // 2, 8))``).
    """
    out = np.asarray(values, dtype=np.float64)
    pads = [int(pad)] * out.ndim if np.ndim(pad) == 0 else [int(p) for p in pad]  # type: ignore[arg-type]
    if len(pads) != out.ndim:
        raise ValueError(f"`pad` must be one value or one per axis ({out.ndim}); got {pad!r}")
    for axis, extra in enumerate(pads):
        if extra <= 0:
            continue
        moved = np.moveaxis(out, axis, -1)
        n = moved.shape[-1]
        w = min(n, width or max(2 * degree + 2, min(n // 2, 8)))
        deg = min(degree, w - 1)
        fit = np.linalg.pinv(np.vander(np.arange(w, dtype=np.float64), deg + 1))  # (deg + 1, w)
        beyond = np.vander(np.arange(w, w + extra, dtype=np.float64), deg + 1)  # (extra, deg + 1)
        right = (moved[..., n - w:] @ fit.T) @ beyond.T
        left = ((moved[..., :w][..., ::-1] @ fit.T) @ beyond.T)[..., ::-1]
        out = np.moveaxis(np.concatenate([left, moved, right], axis=-1), -1, axis)
    return out


def smooth_on_halo(
    values: np.ndarray,
    spacing: Sequence[float],
    radius: Sequence[float],
    halo: Sequence[int],
    periodic: bool = False,
    kernel: str = "bump",
) -> np.ndarray:
    """The mollified field on the grid extended by ``halo`` samples per side.

    Args:
        values: ``(*grid)`` or ``(C, *grid)`` data.
        spacing: Grid spacing per axis.
        radius: Mollifier radius per axis (physical units).
        halo: Samples beyond the grid per side and axis (ignored when ``periodic``).
        periodic: The data wrap around (the result is on the grid alone).
        kernel: Mollifier kernel.

    Returns:
        ``(C, *extended grid)`` (a leading channel axis is added for ``(*grid)`` input).
    """
    spacing = tuple(float(h) for h in spacing)
    ndim = len(spacing)
    data = np.asarray(values, dtype=np.float64)
    data = data[None] if data.ndim == ndim else data
    zero = (0,) * ndim
    out = []
    for channel in data:
        if periodic:
            field = torch.as_tensor(channel).reshape(1, 1, *channel.shape)
            out.append(derivatives(field, {"u": zero}, spacing, tuple(radius), kernel=kernel, boundary="periodic")["u"].numpy()[0, 0])
            continue
        reach = [int(np.ceil(r / h)) + 1 for r, h in zip(radius, spacing)]
        wide = extend_edges(channel, [m + k for m, k in zip(halo, reach)])
        field = torch.as_tensor(wide).reshape(1, 1, *wide.shape)
        smooth = derivatives(field, {"u": zero}, spacing, tuple(radius), kernel=kernel, boundary="valid")["u"].numpy()[0, 0]
        cut = tuple(slice((s - (n + 2 * m)) // 2, (s - (n + 2 * m)) // 2 + n + 2 * m) for s, n, m in zip(smooth.shape, channel.shape, halo))
        out.append(smooth[cut])
    return np.stack(out)
