"""Choosing the mollifier radius from the data: a plug-in bias-variance rule.

For a derivative spec ``D`` (e.g. the bi-Laplacian) estimated by the mollified stencil
``K_r`` of radius ``r`` from data ``y = u + e`` with white noise of standard deviation
``sigma``, the mean squared error is modelled as

    MSE(r) = (B r^2)^2 + sigma^2 ||K_r||^2,

the leading smoothing bias (the moment correction removes all lower-order terms) plus the
noise gain of the stencil (``||K_r||^2``, the sum of squared weights, exact for white
noise). ``sigma`` is estimated from second differences of the data. The bias coefficient
``B`` comes from the data too: estimates of ``D`` at a pilot radius ``p`` and at ``2p``
differ by about ``B (4 p^2 - p^2)`` in rms once the noise's share of that difference is
subtracted. (Estimating the bias from a pilot derivative of order ``k + 2`` instead fails:
on noisy data that higher derivative is dominated by noise, and sampled bump kernels of
order 6 are inaccurate at wide radii.) The rule minimises ``MSE(r)`` over whole-cell
radii, re-centres the pilot on the minimiser and repeats (at most three times).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ..core.mollifiers import AbstractMollifier, get_mollifier
from ..core.operators import MultiIndex, derivatives, normalize_spec
from ..core.stencils import stencil_on

__all__ = ["auto_radius", "noise_gain", "noise_std"]


def noise_std(values: np.ndarray) -> float:
    """Noise level of gridded data from second differences: ``var(y[i+1] - 2 y[i] + y[i-1]) = 6 sigma^2``.

    Averaged over the axes; assumes the field is smooth at the grid scale.
    """
    y = np.asarray(values, dtype=np.float64)
    estimates = [np.mean(np.diff(y, n=2, axis=axis) ** 2) / 6.0 for axis in range(y.ndim) if y.shape[axis] > 2]
    return float(np.sqrt(np.mean(estimates))) if estimates else 0.0


def _noise_gain(spec: Mapping[MultiIndex, float], mollifier: AbstractMollifier, spacing: Sequence[float], cells: float) -> float:
    """``||K||^2`` of the separable linear-combination stencil ``sum_j w_j (x)_axis c^(a_ji)``."""
    def taps(axis: int, order: int) -> torch.Tensor:
        key = ("mollifier", mollifier, order, spacing[axis], cells * spacing[axis], True)
        return stencil_on(key, torch.float64, torch.device("cpu"))

    items = list(spec.items())
    total = 0.0
    for a, wa in items:
        for b, wb in items:
            product = 1.0
            for axis, (oa, ob) in enumerate(zip(a, b)):
                product *= float(taps(axis, oa) @ taps(axis, ob))
            total += wa * wb * product
    return total


def noise_gain(spec: object, spacing: Sequence[float], cells: float, kernel: str | AbstractMollifier = "bump") -> float:
    """``||K||^2``, the sum of squared weights of the mollified stencil of ``spec`` at a
    radius of ``cells`` grid cells: white noise of standard deviation ``sigma`` gives the
    derivative estimate a variance ``sigma^2 ||K||^2``.

    Example:
        >>> round(noise_gain((0,), (1.0,), 4.0), 3)  # smoothing 1-D white noise at 4 cells
        0.167
    """
    spacing = tuple(float(h) for h in spacing)
    return _noise_gain(normalize_spec("spec", spec, len(spacing)), get_mollifier(kernel), spacing, float(cells))


def _crop_like(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    slices = [slice(None), slice(None)]
    for n, m in zip(a.shape[2:], b.shape[2:]):
        cut = (n - m) // 2
        slices.append(slice(cut, n - cut))
    return a[tuple(slices)]


def auto_radius(
    values: np.ndarray,
    spec: object,
    spacing: Sequence[float],
    *,
    boundary: str = "periodic",
    kernel: str | AbstractMollifier = "bump",
    max_cells: float | None = None,
) -> tuple[float, ...]:
    """Radius per axis (physical units) minimising the predicted error of ``spec``.

    Args:
        values: Observed field on the grid (1-3 dims).
        spec: The derivative whose estimate matters most (multi-index or linear
            combination), usually the highest-order term of the residual.
        spacing: Grid spacing per axis (isotropic radius in cells is chosen).
        boundary: ``"periodic"``, or ``"valid"`` for data with edges (the pilot estimate
            then covers the interior only, free of edge artefacts).
        kernel: Mollifier kernel.
        max_cells: Largest radius considered, in cells (default: a quarter of the
            smallest axis).
    """
    y = np.asarray(values, dtype=np.float64)
    ndim = y.ndim
    spacing = tuple(float(h) for h in spacing)
    mollifier = get_mollifier(kernel)
    target = normalize_spec("spec", spec, ndim)
    order = max(sum(idx) for idx in target)
    smallest = min(y.shape)
    upper = max_cells if max_cells is not None else max(smallest / 4, 3.0)
    candidates = np.arange(max(2.0, np.ceil(order / 2) + 1), upper + 1e-9, 1.0)
    sigma = noise_std(y)
    field = torch.as_tensor(y).reshape(1, 1, *y.shape)

    def estimate(cells: float) -> torch.Tensor:
        radius = tuple(cells * h for h in spacing)
        return derivatives(field, {"d": target}, spacing, radius, kernel=mollifier, boundary=boundary)["d"]

    def gain_of_difference(a: float, b: float) -> float:
        # ||K_a - K_b||^2 = ||K_a||^2 + ||K_b||^2 - 2 <K_a, K_b>; the cross term is left out,
        # which overestimates the noise's share (the two responses are positively correlated).
        return _noise_gain(target, mollifier, spacing, a) + _noise_gain(target, mollifier, spacing, b)

    pilot = float(candidates[len(candidates) // 3])
    best = pilot
    for _ in range(3):
        wide = min(2.0 * pilot, float(candidates[-1]))
        if wide <= pilot:
            break
        a, b = estimate(pilot), estimate(wide)
        if boundary == "valid":  # align the interiors of the two valid outputs
            a = _crop_like(a, b)
        mean_square = float((a - b).pow(2).mean())
        noise_share = sigma**2 * gain_of_difference(pilot, wide)
        signal = max(mean_square - noise_share, 0.01 * mean_square)
        # bias(r) ~ B r^2: the two estimates differ by B (wide^2 - pilot^2) in rms.
        coefficient = float(np.sqrt(signal)) / (wide**2 - pilot**2)
        errors = [(coefficient * c * c) ** 2 + sigma**2 * _noise_gain(target, mollifier, spacing, c) for c in candidates]
        best = float(candidates[int(np.argmin(errors))])
        if abs(best - pilot) < 1:
            break
        pilot = best
    return tuple(best * h for h in spacing)
