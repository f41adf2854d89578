"""Smoothed derivatives of gridded data, by one of several smoothers.

:func:`smoothed_derivatives` returns the smoothed field and named derivatives of data on
a grid; :func:`mollifier.inverse.estimate_parameter` applies a problem's direct formula
to them (a network-free estimate). Smoothers:

- ``mollifier``: the library's moment-corrected mollifier derivatives (radius chosen by
  :func:`~mollifier.network_free.radius.auto_radius` unless given);
- ``savgol``: Savitzky-Golay filters (``scipy.signal.savgol_filter``, local polynomials
  of degree ``order + 2``), applied separably;
- ``gaussian``: derivatives of a Gaussian filter (``scipy.ndimage.gaussian_filter`` with
  ``order=``), standard deviation ``radius / 3``;
- ``spline``: smoothing splines with the smoothing chosen by generalised cross-validation
  (``scipy.interpolate.make_smoothing_spline``), applied separably (1-D along each axis).

Non-periodic problems get no estimate within one radius of the edge (NaN there; metrics
skip NaN) for ``mollifier``, and none within the filter's reach (4 standard deviations,
``4/3`` of the radius) for ``gaussian``, whose constant extension at an edge gives wrong
derivatives there; ``savgol`` (polynomial fit at the edges) and ``spline`` use their own
edge handling.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..core.errors import check_choice
from ..core.operators import MultiIndex, derivatives, normalize_requests

__all__ = ["SMOOTHERS", "smoothed_derivatives"]

SMOOTHERS: tuple[str, ...] = ("mollifier", "savgol", "gaussian", "spline")
"""Smoothers available for network-free estimates."""


def _separable(values: np.ndarray, idx: MultiIndex, apply_1d) -> np.ndarray:
    out = values
    for axis, order in enumerate(idx):
        out = apply_1d(out, axis, order)
    return out


def smoothed_derivatives(
    values: np.ndarray,
    requests: Mapping[str, Any],
    spacing: tuple[float, ...],
    radius: tuple[float, ...],
    smoother: str = "mollifier",
    periodic: bool = False,
) -> dict[str, np.ndarray]:
    """Smoothed field (``"u"``) and named derivatives of gridded data, by one smoother."""
    check_choice("smoother", smoother, SMOOTHERS)
    ndim = values.ndim
    specs = normalize_requests({"u": (0,) * ndim, **requests}, ndim)
    if smoother == "mollifier":
        field = torch.as_tensor(values, dtype=torch.float64).reshape(1, 1, *values.shape)
        if periodic:
            out = derivatives(field, specs, spacing, radius, boundary="periodic")
            return {k: v.numpy()[0, 0] for k, v in out.items()}
        out = derivatives(field, specs, spacing, radius, boundary="valid")
        halo = [(values.shape[i] - next(iter(out.values())).shape[2 + i]) // 2 for i in range(ndim)]
        result = {}
        for k, v in out.items():
            full = np.full(values.shape, np.nan)
            full[tuple(slice(m, n - m) for m, n in zip(halo, values.shape))] = v.numpy()[0, 0]
            result[k] = full
        return result
    cache: dict[MultiIndex, np.ndarray] = {}

    def one(idx: MultiIndex) -> np.ndarray:
        if idx not in cache:
            cache[idx] = _separable(values, idx, _one_dimensional(smoother, spacing, radius, periodic, max(idx)))
        return cache[idx]

    return {name: sum(coeff * one(idx) for idx, coeff in spec.items()) for name, spec in specs.items()}


_GAUSSIAN_TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter's default truncation, in standard deviations


def _one_dimensional(smoother: str, spacing, radius, periodic: bool, max_order: int):
    from scipy import interpolate, ndimage, signal

    def savgol(y: np.ndarray, axis: int, order: int) -> np.ndarray:
        half = max(int(round(radius[axis] / spacing[axis])), (max_order + 3) // 2 + 1)
        degree = min(max_order + 2, 2 * half - 1)
        return signal.savgol_filter(
            y, 2 * half + 1, degree, deriv=order, delta=spacing[axis], axis=axis, mode="wrap" if periodic else "interp"
        )

    def gaussian(y: np.ndarray, axis: int, order: int) -> np.ndarray:
        sigma = [0.0] * y.ndim
        sigma[axis] = radius[axis] / spacing[axis] / 3.0
        orders = [0] * y.ndim
        orders[axis] = order
        out = ndimage.gaussian_filter(y, sigma, order=orders, mode="wrap" if periodic else "nearest") / spacing[axis] ** order
        if not periodic:  # within the filter's reach of an edge it sees the constant extension: wrong derivatives
            reach = int(np.ceil(_GAUSSIAN_TRUNCATE * sigma[axis]))
            edge = [slice(None)] * y.ndim
            for band in (slice(0, reach), slice(max(y.shape[axis] - reach, 0), None)):
                edge[axis] = band
                out[tuple(edge)] = np.nan
        return out

    def spline(y: np.ndarray, axis: int, order: int) -> np.ndarray:
        moved = np.moveaxis(y, axis, -1)
        x = np.arange(moved.shape[-1]) * spacing[axis]
        flat = moved.reshape(-1, moved.shape[-1])
        out = np.empty_like(flat)
        for i, row in enumerate(flat):
            fit = interpolate.make_smoothing_spline(x, row)
            out[i] = fit.derivative(order)(x) if order else fit(x)
        return np.moveaxis(out.reshape(moved.shape), -1, axis)

    if smoother == "spline" and max_order > 3:
        raise ValueError("`smoother`='spline' (cubic smoothing splines) supports derivatives up to order 3 per axis")
    return {"savgol": savgol, "gaussian": gaussian, "spline": spline}[smoother]
