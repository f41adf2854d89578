"""Shared helpers for the tests of ``mollifier.core`` (imported by ``tests/core/test_core_*.py``).

The central tool is :func:`tail_bound`. A 1-D correlation stencil ``c`` applied to a
smooth ``f`` gives, by Taylor expansion (convergent for the entire functions used here),

    sum_m c_m f(x + m h) = sum_q mu_q f^(q)(x),   mu_q = sum_m c_m (m h)^q / q!,

so for ``f = sin(w x + phi)`` (all derivatives bounded by ``w^q``)

    |C f(x) - f^(k)(x)| <= sum_q |mu_q - [q == k]| w^q =: T_k(c, h, w).

For the moment-corrected stencils the terms ``q <= k + 1`` vanish up to roundoff and
``T`` is led by ``|mu_{k+2}| w^{k+2}``: the true smoothing bias, so the bound is tight
(an implementation error of the size of the bias makes a test fail). On a product
``u = prod_i f_i(x_i)`` a separable filter acts axis by axis, hence

    |D u - prod_i f_i^(k_i)| <= prod_i (A_i + T_i) - prod_i A_i,   A_i = w_i^{k_i}.

Floating-point rounding of a correlation of ``n`` taps is at most
``(n + 1) * eps * ||c||_1 * ||u||_inf`` per pass (first order): see
``tests/tolerances.py`` (:func:`tolerances.stencil_rounding_bound`), which the tests add.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from mollifier.core.mollifiers import get_mollifier
from mollifier.core.stencils import finite_difference_stencil, halfwidth_for, mollifier_stencil

# Shared kernel instances: each new instance recomputes its normalisation (a 400-point
# Gauss-Legendre rule, an eigenvalue problem that is slow under a loaded BLAS).
BUMP = get_mollifier("bump")
POLY8 = get_mollifier("polynomial")

# Taylor terms kept in the tail bound: (M h w)^q / q! with M h w <= 4 is < 1e-40 at q = 80.
_TAIL_DEGREE = 80


def moments(stencil: torch.Tensor, spacing: float, degree: int) -> np.ndarray:
    """Discrete moments ``mu_q`` (q <= degree), computed independently of the library in float64.

    Uses exact Python-float sums per q, so it stays accurate for q up to ~100.
    """
    c = stencil.detach().double().cpu().numpy()
    half = (len(c) - 1) // 2
    m = np.arange(-half, half + 1, dtype=np.float64) * spacing
    out = []
    for q in range(degree + 1):
        out.append(math.fsum(float(ci) * float(mi) ** q / math.factorial(q) for ci, mi in zip(c, m)))
    return np.asarray(out)


def tail_bound(stencil: torch.Tensor, spacing: float, order: int, omega: float) -> float:
    """``T_k = sum_q |mu_q - [q == k]| omega^q``: bound on ``|C f - f^(k)|`` for ``|f^(q)| <= omega^q``."""
    mu = moments(stencil, spacing, _TAIL_DEGREE)
    target = np.zeros_like(mu)
    target[order] = 1.0
    return float(sum(abs(mu[q] - target[q]) * omega**q for q in range(len(mu))))


def product_bound(amplitudes: Sequence[float], tails: Sequence[float]) -> float:
    """``prod (A_i + T_i) - prod A_i`` (error of a separable filter on a product function)."""
    return float(np.prod([a + t for a, t in zip(amplitudes, tails)]) - np.prod(amplitudes))


def bump_stencil(order: int, spacing: float, radius: float, kernel: str = "bump") -> torch.Tensor:
    """The stencil ``derivative`` uses for one axis."""
    return mollifier_stencil(get_mollifier(kernel), order, spacing, radius)


def fd_stencil(order: int, spacing: float, halfwidth: int, accuracy: int = 2) -> torch.Tensor:
    return finite_difference_stencil(order, spacing, accuracy, halfwidth)


def halo(spacing: float, radius: float) -> int:
    return halfwidth_for(radius, spacing)


def sin_derivative(x: torch.Tensor, omega: float, phase: float, order: int) -> torch.Tensor:
    """``d^order/dx^order sin(omega x + phase)``."""
    return omega**order * torch.sin(omega * x + phase + order * math.pi / 2)


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    return float(np.polyfit(np.log(np.asarray(xs)), np.log(np.asarray(ys)), 1)[0])
