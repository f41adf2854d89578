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


def moment_condition(halfwidth: int, degree: int) -> float:
    """2-norm condition number of the moment rows ``s^q / q!`` (``s = m / M``, ``q <= degree``).

    The system :func:`mollifier.core.stencils.moment_correct` solves (in units where the
    offsets are ``m / M``); its rounding enters the taps through this number.
    """
    s = np.arange(-halfwidth, halfwidth + 1, dtype=np.float64) / halfwidth
    rows = np.stack([s**q / math.factorial(q) for q in range(degree + 1)])
    return float(np.linalg.cond(rows))


def product_bound(amplitudes: Sequence[float], tails: Sequence[float]) -> float:
    """``prod (A_i + T_i) - prod A_i`` (error of a separable filter on a product function)."""
    return float(np.prod([a + t for a, t in zip(amplitudes, tails)]) - np.prod(amplitudes))


def _abs_poly_max(coeffs: np.ndarray, xmax: Sequence[float]) -> float:
    """``sum |a_i| prod_a xmax_a^(i_a)``: bound on the terms of a polynomial on the box ``|x_a| <= xmax_a``."""
    value = np.abs(np.asarray(coeffs, dtype=np.float64))
    for x in xmax:
        value = np.tensordot(float(x) ** np.arange(value.shape[0]), value, axes=([0], [0]))
    return float(value)


def polynomial_exactness_tolerance(
    coeffs: np.ndarray,
    lowers: Sequence[float],
    spacing: Sequence[float],
    sizes: Sequence[int],
    orders: Sequence[int],
    stencils: Sequence[torch.Tensor],
    u_max: float,
    exact_degrees: Sequence[int] | None = None,
) -> float:
    """What separates a stencil result on sampled polynomial data from the exact derivative.

    ``coeffs`` (numpy layout, lowest degree first, one axis per dim) is sampled at
    ``lowers[a] + spacing[a] * j``, ``j < sizes[a]``, and filtered with ``stencils``
    (one per axis, orders ``orders``), which are exact on its degree up to their moment
    residuals. Three parts, all rounding:

    1. the passes: :func:`tolerances.stencil_rounding_bound` on ``max|u|``;
    2. the samples are not the polynomial at exact grid points: each coordinate rounds
       twice (``<= 2 eps |x|``, moving ``p`` by ``<= 2 deg_a eps`` of its terms' size
       ``P_abs``), and the evaluation rounds ``<= 2 deg_a + 2`` times per axis; seen
       through the gain ``prod ||c||_1``; the expected ``p^(k)`` likewise, directly;
    3. the taps' moment residuals ``r_q = |mu_q - [q == k]|`` (summed exactly, plus the
       ``q + 2`` roundings of each ``(m h)^q / q!``) for ``q <= exact_degrees[a]`` (the
       stencil's exactness range, default ``k_a + 1`` (mollifier stencils; ``2 M`` for finite
       differences); a higher moment is the smoothing bias, not rounding): axis ``a``
       errs by ``sum_q r_{a,q} max|d_a^q p|``, amplified by the other axes' gains.
    """
    from tolerances import EPS64, l1, stencil_rounding_bound

    coeffs = np.asarray(coeffs, dtype=np.float64)
    xmax = [abs(lo) + abs(lo + h * (n - 1)) for lo, h, n in zip(lowers, spacing, sizes)]
    degrees = [d - 1 for d in coeffs.shape]
    size = _abs_poly_max(coeffs, xmax)
    derivative = coeffs
    for axis, k in enumerate(orders):
        derivative = np.polynomial.polynomial.polyder(derivative, k, axis=axis) if k else derivative
    factor = sum(4 * d + 2 for d in degrees) * EPS64
    gains = [l1(s) for s in stencils]
    tol = stencil_rounding_bound(list(stencils), u_max, EPS64)
    tol += float(np.prod(gains)) * factor * size + factor * _abs_poly_max(derivative, xmax)
    for axis, (s, h, k) in enumerate(zip(stencils, spacing, orders)):
        degree = min(degrees[axis], k + 1 if exact_degrees is None else exact_degrees[axis])
        mu = moments(s, h, degree)
        c = s.detach().double().abs().numpy()
        half = (len(c) - 1) // 2
        m = np.abs(np.arange(-half, half + 1) * h)
        others = float(np.prod([g for b, g in enumerate(gains) if b != axis]))
        for q in range(degree + 1):
            r = abs(mu[q] - (q == k)) + (q + 2) * EPS64 * float(np.sum(c * m**q)) / math.factorial(q)
            dq = np.polynomial.polynomial.polyder(np.abs(coeffs), q, axis=axis) if q else np.abs(coeffs)
            tol += others * r * _abs_poly_max(dq, xmax)
    return tol


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
