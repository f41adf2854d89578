"""Convergence rates: mollifier bias O(radius^2) at fixed cells per radius; FD O(h^accuracy).

At a fixed number of cells per radius, the stencil in units of ``m`` is the same at
every level (scaled by ``h^-k``), so its first error moment is exactly
``mu_{k+2} = C * delta^2`` and the max error on ``sin`` is
``|mu_{k+2}| + O(delta^4)``: the log-log slope vs the radius tends to 2. Levels are
chosen so that the finest level is still far above rounding
(``eps * ||c||_1 ~ 1e-9`` for k = 4 at n = 256, vs an error ~1e-3).
"""

from __future__ import annotations

import math

import pytest
import torch

import mollifier

from core_helpers import loglog_slope, sin_derivative

LEVELS = (32, 64, 128, 256)
CELLS_PER_RADIUS = 6


def _periodic_sin(n: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    h = 2 * math.pi / n
    x = torch.arange(n, dtype=torch.float64) * h
    return x, torch.sin(x).reshape(1, 1, n), h


@pytest.mark.parametrize("order", [1, 2, 4])
def test_mollifier_bias_is_second_order_in_radius(order: int) -> None:
    radii, errors = [], []
    for n in LEVELS:
        x, u, h = _periodic_sin(n)
        radius = CELLS_PER_RADIUS * h
        out = mollifier.derivative(u, (order,), h, radius, boundary="periodic")
        errors.append(float((out.flatten() - sin_derivative(x, 1.0, 0.0, order)).abs().max()))
        radii.append(radius)
    slope = loglog_slope(radii, errors)
    assert slope == pytest.approx(2.0, abs=0.25), (slope, errors)
    # and the error does decrease at every refinement (by ~4x)
    assert all(b < a / 3 for a, b in zip(errors, errors[1:])), errors


def test_mollifier_laplacian_2d_converges_second_order() -> None:
    radii, errors = [], []
    for n in (24, 48, 96):
        h = 2 * math.pi / n
        x = torch.arange(n, dtype=torch.float64) * h
        X, Y = torch.meshgrid(x, x, indexing="ij")
        u = (torch.sin(X) * torch.cos(2 * Y)).reshape(1, 1, n, n)
        radius = 5 * h
        lap = mollifier.derivative(u, mollifier.laplacian(2), h, radius, boundary="periodic")
        errors.append(float((lap[0, 0] + 5 * torch.sin(X) * torch.cos(2 * Y)).abs().max()))
        radii.append(radius)
    slope = loglog_slope(radii, errors)
    assert slope == pytest.approx(2.0, abs=0.25), (slope, errors)


@pytest.mark.parametrize("accuracy", [2, 4])
@pytest.mark.parametrize("order", [1, 2, 4])
def test_finite_difference_rate_equals_accuracy(order: int, accuracy: int) -> None:
    # Truncation error C h^accuracy u^(k + accuracy); at n = 128 it is ~1e-7 for
    # accuracy 4, far above rounding (eps * ||c||_1 ~ 2e-16 * 16 / h^4 ~ 1e-9).
    spacings, errors = [], []
    for n in (16, 32, 64, 128):
        x, u, h = _periodic_sin(n)
        out = mollifier.finite_differences(u, {"d": (order,)}, h, accuracy=accuracy, boundary="periodic")["d"]
        errors.append(float((out.flatten() - sin_derivative(x, 1.0, 0.0, order)).abs().max()))
        spacings.append(h)
    slope = loglog_slope(spacings, errors)
    assert slope == pytest.approx(float(accuracy), abs=0.25), (slope, errors)
