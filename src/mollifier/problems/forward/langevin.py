r"""First-order benchmark: the Langevin-type ODE with a time-varying forcing.

.. math::

    \frac{du}{dt} = u + \lambda(t), \qquad u(0) = u_0, \qquad t \in [0, T].

The unknown of the inverse problem is the forcing :math:`\lambda(t)`; it is read back
from the data by :math:`\lambda = u_t - u`.

The random forcing is ``amplitude * g(t)`` with ``g`` a
:class:`~mollifier.problems.forward.FourierRandomField` of period ``2 T`` (so it is
*not* periodic on ``[0, T]``), mean 0 and unit variance over its period, and squared
exponential covariance :math:`\exp(-(t-t')^2 / (2\ell^2))`. Being a finite Fourier
series it is evaluated exactly at every time the integrator asks for, and the ODE
then has the closed-form solution

.. math::

    u(t) = u_0 e^{t} + \operatorname{Re} \sum_m a\,c_m
    \frac{e^{i\omega_m t} - e^{t}}{i\omega_m - 1}
    \quad\text{for}\quad \lambda(t) = \operatorname{Re}\sum_m a\,c_m e^{i\omega_m t},

and :math:`u(t) = (u_0 + c) e^t - c` for a constant forcing ``c``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from ._checks import RngLike, finite_float, int_at_least, positive_float
from .random_fields import FourierRandomField

__all__ = ["simulate_langevin"]

_METHODS = ("ivp", "closed_form")


def _closed_form(
    t: np.ndarray, u0: float, field: FourierRandomField | None, amplitude: float, const: float
) -> np.ndarray:
    et = np.exp(t)
    u = u0 * et + const * (et - 1.0)
    if field is not None:
        w = field.wavenumbers[0]
        c = amplitude * field.coefficients
        num = np.exp(1j * np.outer(t, w)) - et[:, None]
        u = u + np.real(num @ (c / (1j * w - 1.0)))
    return u


def simulate_langevin(
    n: int = 256,
    T: float = 1.0,
    u0: float = 1.0,
    correlation_length: float | None = None,
    amplitude: float = 1.0,
    rng: RngLike = None,
    *,
    forcing: float | Callable[[float], float] | None = None,
    method: str = "ivp",
    rtol: float = 1e-11,
    atol: float = 1e-13,
) -> dict[str, Any]:
    r"""Simulate :math:`u_t = u + \lambda(t)` on ``n`` uniform times in ``[0, T]``.

    With ``method="ivp"`` (default) the ODE is integrated by
    ``scipy.integrate.solve_ivp`` (DOP853, ``rtol``/``atol``, ``max_step`` a quarter of
    the correlation length) and the solution read at the grid times; with
    ``method="closed_form"`` the exact solution above is evaluated instead (not
    available for a user callable forcing). The two agree to ~1e-12 relative.

    Args:
        n: Number of time points (>= 2), ``t = linspace(0, T, n)``.
        T: Final time > 0.
        u0: Initial value.
        correlation_length: :math:`\ell` of the random forcing; default ``0.1 * T``
            (several visible bumps over ``[0, T]``, each resolved by ~25 points at
            ``n = 256``).
        amplitude: Standard deviation of the random forcing (default 1.0, comparable
            to ``u``, which grows from ``u0`` like :math:`e^t`).
        rng: Generator, int seed or None (used only for the random forcing).
        forcing: Instead of a random forcing: a constant, or a callable
            ``lambda(t)`` of a float time. ``correlation_length``, ``amplitude`` and
            ``rng`` are then ignored.
        method: ``"ivp"`` or ``"closed_form"``.
        rtol: Relative tolerance of ``solve_ivp``.
        atol: Absolute tolerance of ``solve_ivp``.

    Returns:
        dict with keys

        * ``t`` (n,): times,
        * ``u`` (n,): solution,
        * ``lambda`` (n,): forcing at ``t`` (the ground truth),
        * ``lambda_fn``: callable evaluating the forcing at any times,
        * ``params``: dict of the scalar settings (``n, T, u0, correlation_length,
          amplitude, forcing ('random' | 'constant' | 'callable'), period, method,
          rtol, atol``) and, for ``method='ivp'``, ``nfev``.

    Raises:
        ValueError: On bad arguments (named in the message).
    """
    n = int_at_least(n, "n", 2)
    T = positive_float(T, "T")
    u0 = finite_float(u0, "u0")
    if method not in _METHODS:
        raise ValueError(f"`method` must be one of {_METHODS}, got {method!r}")
    rtol = positive_float(rtol, "rtol")
    atol = positive_float(atol, "atol")
    t = np.linspace(0.0, T, n)

    field: FourierRandomField | None = None
    const = 0.0
    params: dict[str, Any] = {"n": n, "T": T, "u0": u0, "method": method}
    if forcing is None:
        ell = 0.1 * T if correlation_length is None else correlation_length
        ell = positive_float(ell, "correlation_length")
        amp = positive_float(amplitude, "amplitude", allow_zero=True)
        field = FourierRandomField(1, 2.0 * T, ell, rng)
        lam_fn = field.scaled(amp)
        max_step = 0.25 * ell
        params.update(
            forcing="random", correlation_length=ell, amplitude=amp, period=2.0 * T
        )
    elif callable(forcing):
        if method == "closed_form":
            raise ValueError("`method='closed_form'` needs a random or constant `forcing`")
        amp = 0.0
        user = forcing

        def lam_fn(tt: np.ndarray | float) -> np.ndarray:
            return np.vectorize(lambda s: float(user(float(s))), otypes=[float])(tt)

        max_step = np.inf
        params.update(forcing="callable")
    else:
        const = finite_float(forcing, "forcing")
        amp = 0.0

        def lam_fn(tt: np.ndarray | float) -> np.ndarray:
            return np.full(np.shape(tt), const)

        max_step = np.inf
        params.update(forcing="constant", value=const)

    if method == "closed_form":
        u = _closed_form(t, u0, field, amp, const)
    else:
        if forcing is None:
            def rhs(s: float, y: np.ndarray) -> np.ndarray:
                return y + lam_fn(np.array([s]))
        elif callable(forcing):
            def rhs(s: float, y: np.ndarray) -> np.ndarray:
                return y + float(forcing(float(s)))
        else:
            def rhs(s: float, y: np.ndarray) -> np.ndarray:
                return y + const

        sol = solve_ivp(
            rhs, (0.0, T), [u0], method="DOP853", t_eval=t, rtol=rtol, atol=atol,
            max_step=max_step,
        )
        if not sol.success:  # pragma: no cover - DOP853 on a smooth linear ODE
            raise RuntimeError(f"solve_ivp failed: {sol.message}")
        u = sol.y[0]
        params.update(rtol=rtol, atol=atol, nfev=int(sol.nfev))

    return {"t": t, "u": u, "lambda": np.asarray(lam_fn(t), dtype=float), "lambda_fn": lam_fn,
            "params": params}
