r"""Second-order benchmark: steady heat conduction with a variable diffusivity.

.. math::

    0 = \lambda(x, y)\, \Delta u + m(x, y) \quad \text{on } (0, 1)^2,
    \qquad u = 0 \text{ on the boundary},

i.e. :math:`\Delta u = f := -m / \lambda`. The unknown of the inverse problem is the
diffusivity :math:`\lambda`, read back by :math:`\lambda = -m / \Delta u`. The known
source is by default

.. math::

    m(x, y) = 1 + \tfrac12 \sin(2\pi x) \sin(\pi y) \in [0.5, 1.5],

and the default :math:`\lambda = 1 + \tfrac12 \tanh(g)` lies in (0.5, 1.5), with ``g`` a
:class:`~mollifier.problems.forward.FourierRandomField` of period 2 per axis (not
periodic on the unit square), squared-exponential covariance with length
``correlation_length``.

Discretisation: the fourth-order compact ("Mehrstellen") 9-point scheme

.. math::

    \Big(\delta_x^2 + \delta_y^2 + \tfrac{h^2}{6}\delta_x^2\delta_y^2\Big) u
    = f + \tfrac{h^2}{12}\big(\delta_x^2 + \delta_y^2\big) f ,

solved exactly (to round-off) by a type-I discrete sine transform, on a grid refined
``refine`` times and then subsampled to the ``n x n`` output nodes. For a smooth
solution the error is :math:`O(h^4)`; the default problem also converges at order ~4
(self-convergence, see the tests).

Corners: :math:`f \ne 0` there, so the exact solution has the usual weak corner
singularity (:math:`u \sim r^2 \log r` terms). :math:`\Delta u = f` holds and stays
bounded up to the corner, but :math:`u_{xx}` and :math:`u_{yy}` separately grow like
:math:`\log r`, so derivative *estimates* from data (finite differences, mollifiers)
are wrong by O(1) at the nodes next to a corner (a 5-point Laplacian gives ~5 % error
in :math:`\lambda` there at any resolution, against O(h^2) beyond ~0.1 from the
corners). Score recovered diffusivities away from the corners.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.fft as sfft

from ._checks import RngLike, int_at_least, positive_float
from .random_fields import FourierRandomField

__all__ = ["default_heat_source", "poisson_dirichlet", "simulate_heat"]

FieldSpec = float | np.ndarray | Callable[[np.ndarray, np.ndarray], np.ndarray]


def default_heat_source(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""The default known source :math:`m = 1 + 0.5 \sin(2\pi x)\sin(\pi y)`."""
    return 1.0 + 0.5 * np.sin(2.0 * np.pi * x) * np.sin(np.pi * y)


def poisson_dirichlet(f: np.ndarray, h: float, order: int = 4) -> np.ndarray:
    r"""Solve :math:`\Delta u = f` on a square grid with :math:`u = 0` on the boundary.

    Args:
        f: Right-hand side at all ``N x N`` nodes (boundary nodes included; the
            fourth-order scheme uses them).
        h: Grid spacing.
        order: 4 for the Mehrstellen scheme (default), 2 for the 5-point Laplacian.

    Returns:
        ``u`` at all ``N x N`` nodes (zeros on the boundary).
    """
    f = np.asarray(f, dtype=float)
    if f.ndim != 2 or f.shape[0] != f.shape[1] or f.shape[0] < 3:
        raise ValueError(f"`f` must be a square 2-D array with side >= 3, got {f.shape}")
    if order not in (2, 4):
        raise ValueError(f"`order` must be 2 or 4, got {order!r}")
    h = positive_float(h, "h")
    m = f.shape[0] - 2
    rhs = f[1:-1, 1:-1].copy()
    if order == 4:
        lap_f = (
            f[2:, 1:-1] + f[:-2, 1:-1] + f[1:-1, 2:] + f[1:-1, :-2] - 4.0 * f[1:-1, 1:-1]
        ) / h**2
        rhs += h**2 / 12.0 * lap_f
    k = np.arange(1, m + 1)
    sig = -(4.0 / h**2) * np.sin(0.5 * np.pi * k / (m + 1)) ** 2
    sx, sy = sig[:, None], sig[None, :]
    denom = sx + sy
    if order == 4:
        denom = denom + h**2 / 6.0 * sx * sy
    u = np.zeros_like(f)
    u[1:-1, 1:-1] = sfft.idstn(sfft.dstn(rhs, type=1) / denom, type=1)
    return u


def _field_on_grid(spec: FieldSpec, xf: np.ndarray, n: int, refine: int, name: str) -> np.ndarray:
    nf = xf.size
    if callable(spec):
        xx, yy = np.meshgrid(xf, xf, indexing="ij")
        out = np.asarray(spec(xx, yy), dtype=float)
        out = np.broadcast_to(out, (nf, nf)).copy()
    elif np.ndim(spec) == 0:
        out = np.full((nf, nf), float(spec))  # type: ignore[arg-type]
    else:
        arr = np.asarray(spec, dtype=float)
        if arr.shape == (nf, nf):
            out = arr.copy()
        elif arr.shape == (n, n) and refine == 1:
            out = arr.copy()
        else:
            raise ValueError(
                f"`{name}` as an array must have shape {(nf, nf)} (the refined grid) "
                f"or {(n, n)} with refine=1, got {arr.shape}; pass a callable f(x, y) "
                "to use it on a refined grid"
            )
    if not np.all(np.isfinite(out)):
        raise ValueError(f"`{name}` has non-finite values")
    return out


def simulate_heat(
    n: int = 64,
    correlation_length: float = 0.2,
    rng: RngLike = None,
    refine: int = 8,
    *,
    lambda_field: FieldSpec | None = None,
    source: FieldSpec | None = None,
    base: float = 1.0,
    amplitude: float = 0.5,
    order: int = 4,
) -> dict[str, Any]:
    r"""Solve :math:`0 = \lambda \Delta u + m` on the unit square, :math:`u|_{\partial} = 0`.

    Args:
        n: Output nodes per axis (>= 3), ``x = y = linspace(0, 1, n)`` including the
            boundary nodes.
        correlation_length: Correlation length of the random diffusivity.
        rng: Generator, int seed or None (used only for the random diffusivity).
        refine: The solve uses ``refine * (n - 1) + 1`` nodes per axis, then keeps every
            ``refine``-th node. With the default 8 and ``n = 64`` the max error
            relative to max|u| is ~2e-9 (observed order 4 under refinement).
        lambda_field: Instead of the random field: a positive constant, a callable
            ``lam(x, y)`` on arrays, or an array on the refined grid (or ``(n, n)`` with
            ``refine=1``).
        source: The known source ``m``: same forms; default
            :func:`default_heat_source`.
        base: Centre of the random diffusivity ``base + amplitude * tanh(g)``.
        amplitude: Half-range of the random diffusivity (< ``base``).
        order: 4 (Mehrstellen, default) or 2 (5-point) discretisation.

    Returns:
        dict with keys ``x`` (n,), ``y`` (n,), ``u`` (n, n) indexed ``[ix, iy]``,
        ``lambda`` (n, n), ``source`` (n, n) (the known ``m``), ``lambda_fn`` (callable
        ``lam(x, y)``, or None for an array input) and ``params`` (``n, refine,
        n_fine, order, correlation_length, base, amplitude, lambda_kind ('random' |
        'constant' | 'callable' | 'array'), source_kind ('default' | 'constant' |
        'callable' | 'array'), lambda_min, lambda_max``).

    Raises:
        ValueError: On bad arguments or a non-positive diffusivity.
    """
    n = int_at_least(n, "n", 3)
    refine = int_at_least(refine, "refine", 1)
    if order not in (2, 4):
        raise ValueError(f"`order` must be 2 or 4, got {order!r}")
    nf = refine * (n - 1) + 1
    xf = np.linspace(0.0, 1.0, nf)
    h = 1.0 / (nf - 1)
    params: dict[str, Any] = {"n": n, "refine": refine, "n_fine": nf, "order": order}

    lam_fn: Callable[..., np.ndarray] | None
    if lambda_field is None:
        ell = positive_float(correlation_length, "correlation_length")
        field = FourierRandomField(2, 2.0, ell, rng)
        lam_fn = field.bounded(base, amplitude)
        lam_f = lam_fn.on_grid(xf, xf)
        params.update(lambda_kind="random", correlation_length=ell, base=base,
                      amplitude=amplitude)
    else:
        lam_f = _field_on_grid(lambda_field, xf, n, refine, "lambda_field")
        if callable(lambda_field):
            lam_fn, kind = lambda_field, "callable"
        elif np.ndim(lambda_field) == 0:
            c = float(lambda_field)  # type: ignore[arg-type]

            def lam_fn(x: np.ndarray, y: np.ndarray) -> np.ndarray:
                return np.full(np.broadcast(x, y).shape, c)

            kind = "constant"
        else:
            lam_fn, kind = None, "array"
        params.update(lambda_kind=kind)
    if not np.all(lam_f > 0):
        raise ValueError("`lambda_field` must be strictly positive")

    if source is None:
        m_f = _field_on_grid(default_heat_source, xf, n, refine, "source")
        params.update(source_kind="default")
    else:
        m_f = _field_on_grid(source, xf, n, refine, "source")
        params.update(source_kind="callable" if callable(source) else
                      ("constant" if np.ndim(source) == 0 else "array"))

    u_f = poisson_dirichlet(-m_f / lam_f, h, order=order)
    sub = slice(None, None, refine)
    lam = lam_f[sub, sub]
    params.update(lambda_min=float(lam.min()), lambda_max=float(lam.max()))
    x = xf[sub]
    return {
        "x": x,
        "y": x.copy(),
        "u": u_f[sub, sub],
        "lambda": lam,
        "source": m_f[sub, sub],
        "lambda_fn": lam_fn,
        "params": params,
    }
