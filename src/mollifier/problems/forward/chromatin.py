r"""Fourth-order benchmark: the chromatin reaction-diffusion model (steady state).

Volume fractions on a periodic square :math:`[0, L]^2`: heterochromatin
:math:`\phi_h`, euchromatin :math:`\phi_e`, with a uniform total
:math:`\phi_c = \phi_h + \phi_e` and the difference :math:`\phi_d = \phi_h - \phi_e`, so
:math:`\phi_h = (\phi_c + \phi_d)/2`, :math:`\phi_e = (\phi_c - \phi_d)/2`. The model is

.. math::

    \mu_d &= -\phi_e + \phi_h(\phi_{max} - \phi_h)(\phi_{max} - 2\phi_h)
             - l^2 \Delta\phi_d, \\
    \partial_t \phi_d &= \Delta\mu_d + 2(\lambda\phi_e - \phi_h),

with :math:`\lambda(x, y) > 0` the methylation-to-acetylation rate ratio (the unknown
of the inverse problem). At steady state it is read back exactly by

.. math::

    \lambda = \frac{\phi_h - \tfrac12 \Delta\mu_d}{\phi_e}
    \qquad\text{(:func:`direct_recovery`)},

while the derivative-free guess :math:`\lambda \approx \phi_h / \phi_e`
(:func:`mollifier.problems.chromatin.equilibrium_guess`) is exact only where
:math:`\Delta\mu_d = 0` (reaction equilibrium).

Properties worth knowing (derived from the equations):

* The reaction term is linear, :math:`2(\lambda\phi_e - \phi_h) = (\lambda - 1)\phi_c -
  (\lambda + 1)\phi_d`, and damps :math:`\phi_d` at rate :math:`\lambda + 1`.
* :math:`\partial\mu_d/\partial\phi_d = (1 + f'(\phi_h))/2` with
  :math:`f'(h) = 6h^2 - 6\phi_{max}h + \phi_{max}^2 \ge -\phi_{max}^2/2`, so for
  :math:`\phi_{max} < \sqrt2` (0.7 by default: slope >= 0.378) the chemical potential is
  increasing in :math:`\phi_d`: no phase separation, a unique steady state, and for a
  constant :math:`\lambda` that state is uniform with :math:`\phi_h/\phi_e = \lambda`
  exactly. Spatial structure comes only from the heterogeneity of :math:`\lambda`;
  the steady :math:`\phi_d` is a smoothed image of :math:`\lambda` (linearised transfer
  :math:`(\lambda+1)/(\lambda + 1 + D k^2 + l^2 k^4)`, :math:`D \approx 0.4`), which is
  why the equilibrium guess degrades for short correlation lengths or larger ``l``.

Solver: semi-implicit Fourier stepping. With :math:`G(\phi_d)` the right-hand side,

.. math::

    \big(1/\Delta t + S k^2 + l^2 k^4 + A\big)\,(\hat\phi^{n+1} - \hat\phi^n)
    = \hat G(\phi^n),

i.e. the :math:`l^2\Delta^2` term implicit, a stabilising :math:`S\Delta` (and a
stabilising reaction shift :math:`A`) implicit minus explicit, the rest explicit.
The stabilisers cancel at steady state, so the fixed point is exactly
:math:`G = 0` whatever ``dt``, ``S``, ``A``. Defaults:
:math:`S = (D_{min} + D_{max})/2` over :math:`\phi_h \in [0, \phi_c]`,
:math:`A = 1 + (\lambda_{min} + \lambda_{max})/2`, and a large pseudo-time step
``dt = 1`` that is not time-accurate but reaches :math:`\max|G| < 10^{-10}` in ~50
steps (0.03 s at 128^2); ``dt <= 2e-3`` follows the true transient (~12k steps, a few
seconds at 128^2) and gives the same steady state.

The physical constants (``phi_c``, ``phi_max``, ``l``) have no defaults here: the
solver integrates whatever model it is given, and the values belong to the PDE's home,
:mod:`mollifier.problems.chromatin` (:data:`~mollifier.problems.chromatin.CHROMATIN`).

Regimes (``phi_c = 0.8``, ``sigma = 0.5``, n = 128, L = 10, mean over 5 seeds;
correlation length in the convention :math:`\exp(-r^2/(2\ell^2))`): Pearson of
the equilibrium guess against :math:`\lambda`

=========  ==========  =========  =========
ell        l = 0.03    l = 0.1    l = 0.2
=========  ==========  =========  =========
1.5        0.994       0.993      0.991
0.6        0.934       0.919      0.883
0.3        0.803       0.743      0.654
=========  ==========  =========  =========

With ``l = 0.03`` the :math:`l^2\Delta^2` term barely matters (dropping it from
:func:`direct_recovery` still gives Pearson 1.000); with ``l >= 0.2`` it does. A
benchmark regime where the derivative-free guess is clearly beaten while
:math:`\lambda` stays well resolved (7.7 cells per correlation length at 128^2) is
``correlation_length=0.6, l=0.3`` (guess Pearson ~0.85, 0.79-0.89 over seeds).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.fft as sfft

from ._checks import RngLike, as_generator, int_at_least, per_axis, positive_float
from .random_fields import lognormal_field

__all__ = [
    "chemical_potential",
    "chromatin_rhs",
    "direct_recovery",
    "simulate_chromatin",
]

ProgressFn = Callable[[int, float, float], None]


def _k2(shape: tuple[int, int], L: tuple[float, float]) -> np.ndarray:
    """|k|^2 on the rfft2 grid of a periodic ``shape`` grid with periods ``L``."""
    kx = 2.0 * np.pi * np.fft.fftfreq(shape[0], d=L[0] / shape[0])
    ky = 2.0 * np.pi * np.fft.rfftfreq(shape[1], d=L[1] / shape[1])
    return kx[:, None] ** 2 + ky[None, :] ** 2


def _rfft2(a: np.ndarray) -> np.ndarray:
    return sfft.rfft2(a)


def _irfft2(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return sfft.irfft2(a, s=shape)


def _nonlinear_potential(phi_h: np.ndarray, phi_e: np.ndarray, phi_max: float) -> np.ndarray:
    return -phi_e + phi_h * (phi_max - phi_h) * (phi_max - 2.0 * phi_h)


def _check_pair(phi_h: np.ndarray, phi_e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ph = np.asarray(phi_h, dtype=float)
    pe = np.asarray(phi_e, dtype=float)
    if ph.ndim != 2 or ph.shape != pe.shape:
        raise ValueError(
            f"`phi_h` and `phi_e` must be 2-D arrays of the same shape, got {ph.shape} "
            f"and {pe.shape}"
        )
    if min(ph.shape) < 2:
        raise ValueError(f"`phi_h` must have at least 2 points per axis, got {ph.shape}")
    return ph, pe


def chemical_potential(
    phi_h: np.ndarray,
    phi_e: np.ndarray,
    phi_max: float,
    l: float,  # noqa: E741
    L: float | Sequence[float] = 10.0,
) -> np.ndarray:
    r"""Chemical potential :math:`\mu_d` on the periodic grid (spectral Laplacian).

    .. math::

        \mu_d = -\phi_e + \phi_h(\phi_{max} - \phi_h)(\phi_{max} - 2\phi_h)
                - l^2 \Delta(\phi_h - \phi_e).

    Args:
        phi_h: Heterochromatin fraction, shape ``(nx, ny)`` on the grid
            ``x_i = i L / nx`` (periodic).
        phi_e: Euchromatin fraction, same shape.
        phi_max: :math:`\phi_{max}`.
        l: Interface length :math:`l`.
        L: Domain period (scalar or per axis).

    Returns:
        :math:`\mu_d`, same shape.
    """
    ph, pe = _check_pair(phi_h, phi_e)
    pm = positive_float(phi_max, "phi_max")
    ll = positive_float(l, "l", allow_zero=True)
    per = per_axis(L, 2, "L")
    k2 = _k2(ph.shape, per)
    lap_d = _irfft2(-k2 * _rfft2(ph - pe), ph.shape)
    return _nonlinear_potential(ph, pe, pm) - ll**2 * lap_d


def direct_recovery(
    phi_h: np.ndarray,
    phi_e: np.ndarray,
    phi_max: float,
    l: float,  # noqa: E741
    L: float | Sequence[float] = 10.0,
) -> np.ndarray:
    r"""Recover :math:`\lambda` from steady fields with spectral derivatives.

    .. math::

        \lambda = \frac{\phi_h - \tfrac12 \Delta\mu_d}{\phi_e}.

    Exact (to round-off) on a steady state of :func:`simulate_chromatin` with the same
    ``phi_max``, ``l``, ``L``; this is the consistency check of the forward model, not
    an inverse method for noisy data.

    Args:
        phi_h: Heterochromatin fraction on the periodic grid.
        phi_e: Euchromatin fraction, same shape (must not vanish).
        phi_max: :math:`\phi_{max}`.
        l: Interface length.
        L: Domain period.

    Returns:
        :math:`\lambda`, same shape.
    """
    ph, pe = _check_pair(phi_h, phi_e)
    mu = chemical_potential(ph, pe, phi_max, l, L)
    k2 = _k2(ph.shape, per_axis(L, 2, "L"))
    lap_mu = _irfft2(-k2 * _rfft2(mu), ph.shape)
    return (ph - 0.5 * lap_mu) / pe


def chromatin_rhs(
    phi_d: np.ndarray,
    lam: np.ndarray,
    phi_c: float,
    phi_max: float,
    l: float,  # noqa: E741
    L: float | Sequence[float] = 10.0,
) -> np.ndarray:
    r"""Right-hand side :math:`\partial_t\phi_d = \Delta\mu_d + 2(\lambda\phi_e - \phi_h)`.

    Args:
        phi_d: :math:`\phi_h - \phi_e` on the periodic grid.
        lam: :math:`\lambda`, same shape (or a scalar).
        phi_c: Total chromatin fraction.
        phi_max: :math:`\phi_{max}`.
        l: Interface length.
        L: Domain period.

    Returns:
        :math:`\partial_t \phi_d`, same shape as ``phi_d``.
    """
    pd = np.asarray(phi_d, dtype=float)
    pc = positive_float(phi_c, "phi_c")
    ph, pe = 0.5 * (pc + pd), 0.5 * (pc - pd)
    mu = chemical_potential(ph, pe, phi_max, l, L)
    k2 = _k2(pd.shape, per_axis(L, 2, "L"))
    return _irfft2(-k2 * _rfft2(mu), pd.shape) + 2.0 * (np.asarray(lam) * pe - ph)


def _lambda_array(
    lambda_field: float | np.ndarray | None,
    n: int,
    L: float,
    correlation_length: float,
    sigma: float,
    lambda_mean: float,
    gen: np.random.Generator,
) -> tuple[np.ndarray, str]:
    if lambda_field is None:
        lam = lognormal_field((n, n), L, correlation_length, lambda_mean, sigma, gen)
        return lam, "lognormal"
    if np.ndim(lambda_field) == 0:
        c = positive_float(lambda_field, "lambda_field")  # type: ignore[arg-type]
        return np.full((n, n), c), "constant"
    lam = np.array(lambda_field, dtype=float)
    if lam.shape != (n, n):
        raise ValueError(f"`lambda_field` must have shape {(n, n)}, got {lam.shape}")
    if not (np.all(np.isfinite(lam)) and np.all(lam > 0)):
        raise ValueError("`lambda_field` must be finite and strictly positive")
    return lam, "array"


def simulate_chromatin(
    n: int = 128,
    L: float = 10.0,
    *,
    phi_c: float,
    phi_max: float,
    l: float,  # noqa: E741
    lambda_field: float | np.ndarray | None = None,
    correlation_length: float = 0.6,
    sigma: float = 0.5,
    dt: float = 1.0,
    tol: float = 1e-10,
    t_max: float = 1e4,
    rng: RngLike = None,
    progress: ProgressFn | None = None,
    lambda_mean: float = 1.0,
    initial: str | np.ndarray = "equilibrium",
    noise: float = 0.0,
    max_steps: int = 100_000,
    stabilization: tuple[float, float] | None = None,
    progress_every: int = 100,
) -> dict[str, Any]:
    r"""Integrate the chromatin model to steady state on the periodic square.

    The grid is ``x_i = i L / n`` (periodic, endpoint excluded), arrays indexed
    ``[ix, iy]``. Stepping stops when ``max|d phi_d/dt| < tol`` (``converged=True``,
    ``params['stop_reason'] == 'tol'``), at ``t_max`` (``'t_max'``) or after
    ``max_steps`` steps (``'max_steps'``). The returned state is always the one whose
    residual is reported.

    Initial condition (``initial``): ``"equilibrium"`` (default) the pointwise reaction
    equilibrium :math:`\phi_d = \phi_c(\lambda-1)/(\lambda+1)` (i.e.
    :math:`\phi_h/\phi_e = \lambda`); ``"uniform"`` the same with the mean of
    :math:`\lambda`; or an ``(n, n)`` array of :math:`\phi_d`. ``noise`` adds Gaussian
    white noise of that standard deviation (drawn from ``rng`` after :math:`\lambda`).
    The steady state does not depend on the initial condition (see module notes).

    Args:
        n: Grid points per axis (>= 4).
        L: Domain side (period).
        phi_c: Total chromatin fraction :math:`\phi_h + \phi_e`, in (0, 1].
        phi_max: :math:`\phi_{max}`.
        l: Interface length :math:`l` (>= 0). Larger ``l`` smooths the steady state more
            and makes the 4th-order term matter.
        lambda_field: None (log-normal random field), a positive constant, or an
            ``(n, n)`` positive array.
        correlation_length: Of the random :math:`\lambda` (squared-exponential
            covariance, see :mod:`~mollifier.problems.forward.random_fields`).
        sigma: Standard deviation of :math:`\log\lambda` for the random field.
        dt: (Pseudo-)time step. The default 1.0 is only for the steady state; use
            ``<= 2e-3`` for a time-accurate transient.
        tol: Convergence threshold on :math:`\max|\partial_t\phi_d|`.
        t_max: Stop at this (pseudo-)time.
        rng: Generator, int seed or None.
        progress: Optional ``progress(step, t, residual_max)``, called every
            ``progress_every`` steps and at the end.
        lambda_mean: Expected value of the random :math:`\lambda`.
        initial: ``"equilibrium"``, ``"uniform"`` or an array (see above).
        noise: Std of the white-noise perturbation of the initial :math:`\phi_d`.
        max_steps: Hard cap on the number of steps.
        stabilization: ``(S, A)`` to override the default stabilisers.
        progress_every: Steps between ``progress`` calls.

    Returns:
        dict with keys ``x`` (n,), ``y`` (n,), ``phi_h``, ``phi_e``, ``phi_d``, ``mu_d``,
        ``lambda`` (each (n, n)), ``residual_max`` (float, max|d phi_d/dt| of the
        returned state), ``t_final`` (float, steps * dt), ``converged`` (bool) and
        ``params`` (all settings plus ``steps``, ``stop_reason``, ``S``, ``A``,
        ``wall_time``, ``lambda_kind``).

    Raises:
        ValueError: On bad arguments (named in the message).
    """
    n = int_at_least(n, "n", 4)
    L = positive_float(L, "L")
    pc = positive_float(phi_c, "phi_c")
    if pc > 1.0:
        raise ValueError(f"`phi_c` must be in (0, 1] (a volume fraction), got {phi_c}")
    pm = positive_float(phi_max, "phi_max")
    ll = positive_float(l, "l", allow_zero=True)
    ell = positive_float(correlation_length, "correlation_length")
    sig = positive_float(sigma, "sigma", allow_zero=True)
    dt = positive_float(dt, "dt")
    tol = positive_float(tol, "tol")
    t_max = positive_float(t_max, "t_max")
    noise = positive_float(noise, "noise", allow_zero=True)
    max_steps = int_at_least(max_steps, "max_steps", 1)
    progress_every = int_at_least(progress_every, "progress_every", 1)
    if progress is not None and not callable(progress):
        raise TypeError(f"`progress` must be callable or None, got {type(progress).__name__}")
    gen = as_generator(rng)

    lam, kind = _lambda_array(lambda_field, n, L, ell, sig, lambda_mean, gen)

    if isinstance(initial, str):
        if initial == "equilibrium":
            phi = pc * (lam - 1.0) / (lam + 1.0)
        elif initial == "uniform":
            lm = float(lam.mean())
            phi = np.full((n, n), pc * (lm - 1.0) / (lm + 1.0))
        else:
            raise ValueError(
                f"`initial` must be 'equilibrium', 'uniform' or an array, got {initial!r}"
            )
    else:
        phi = np.array(initial, dtype=float)
        if phi.shape != (n, n) or not np.all(np.isfinite(phi)):
            raise ValueError(f"`initial` as an array must be finite with shape {(n, n)}")
    if noise > 0:
        phi = phi + noise * gen.standard_normal((n, n))

    if stabilization is None:
        h = np.linspace(0.0, pc, 1001)
        dmu = 0.5 * (1.0 + 6.0 * h * h - 6.0 * pm * h + pm * pm)
        S = 0.5 * (dmu.min() + dmu.max()) if dmu.min() > 0 else float(dmu.max())
        A = 1.0 + 0.5 * (float(lam.min()) + float(lam.max()))
    else:
        S = positive_float(stabilization[0], "stabilization[0]", allow_zero=True)
        A = positive_float(stabilization[1], "stabilization[1]", allow_zero=True)

    shape = (n, n)
    k2 = _k2(shape, (L, L))
    bih = ll**2 * k2 * k2
    denom = 1.0 / dt + S * k2 + bih + A
    phi_hat = _rfft2(phi)
    phi = _irfft2(phi_hat, shape)

    start = time.perf_counter()
    step = 0
    while True:
        ph, pe = 0.5 * (pc + phi), 0.5 * (pc - phi)
        mu_hat = _rfft2(_nonlinear_potential(ph, pe, pm))
        g_hat = -k2 * mu_hat - bih * phi_hat + _rfft2(2.0 * (lam * pe - ph))
        res = float(np.max(np.abs(_irfft2(g_hat, shape))))
        if not math.isfinite(res):
            raise FloatingPointError(
                f"chromatin stepping diverged at step {step}; reduce `dt` or raise "
                "`stabilization`"
            )
        if res < tol:
            reason = "tol"
        elif step >= max_steps:
            reason = "max_steps"
        elif (step + 1) * dt > t_max * (1.0 + 1e-12):
            reason = "t_max"
        else:
            reason = ""
        if progress is not None and (reason or step % progress_every == 0):
            progress(step, step * dt, res)
        if reason:
            break
        phi_hat = phi_hat + g_hat / denom
        phi = _irfft2(phi_hat, shape)
        step += 1
    wall = time.perf_counter() - start

    ph, pe = 0.5 * (pc + phi), 0.5 * (pc - phi)
    mu = _irfft2(mu_hat + ll**2 * k2 * phi_hat, shape)
    x = L * np.arange(n) / n
    params = {
        "n": n, "L": L, "phi_c": pc, "phi_max": pm, "l": ll, "lambda_kind": kind,
        "correlation_length": ell if kind == "lognormal" else None,
        "sigma": sig if kind == "lognormal" else None,
        "lambda_mean": lambda_mean if kind == "lognormal" else None,
        "dt": dt, "tol": tol, "t_max": t_max, "max_steps": max_steps,
        "initial": initial if isinstance(initial, str) else "array", "noise": noise,
        "S": float(S), "A": float(A), "steps": step, "stop_reason": reason,
        "wall_time": wall,
    }
    return {
        "x": x,
        "y": x.copy(),
        "phi_h": ph,
        "phi_e": pe,
        "phi_d": phi,
        "mu_d": mu,
        "lambda": lam,
        "residual_max": res,
        "t_final": step * dt,
        "converged": reason == "tol",
        "params": params,
    }
