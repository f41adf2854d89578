r"""Stationary Gaussian random fields and positive fields built from them.

Convention used throughout: a zero-mean, unit-variance Gaussian field ``g`` with the
squared-exponential covariance

.. math::

    \operatorname{Cov}[g(x), g(x + r)] = \exp\!\left(-\frac{|r|^2}{2\,\ell^2}\right),

where :math:`\ell` is ``correlation_length``. Its spectral density is
:math:`S(k) \propto \exp(-\ell^2 |k|^2 / 2)` (``k`` angular wavenumber), so a sample is
white noise filtered in Fourier space by :math:`\sqrt{S(k)} \propto
\exp(-\ell^2 |k|^2 / 4)`.

Two forms are provided:

* :func:`gaussian_random_field` returns samples on a uniform **periodic** grid (FFT
  filtering of white noise; the sample is normalised to mean 0 and standard
  deviation 1 exactly).
* :class:`FourierRandomField` is a finite random Fourier series that can be
  evaluated exactly at any point (used where a solver needs the field off the data
  grid, e.g. inside an ODE integrator or on a refined grid).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import scipy.fft as sfft

from ._checks import (
    RngLike,
    as_generator,
    finite_float,
    int_at_least,
    per_axis,
    positive_float,
    shape_tuple,
)

__all__ = [
    "FourierRandomField",
    "gaussian_random_field",
    "lognormal_field",
    "smooth_positive_field",
]


def _filtered_noise(
    shape: tuple[int, ...], extent: tuple[float, ...], ell: float, gen: np.random.Generator
) -> np.ndarray:
    noise = gen.standard_normal(shape)
    axes = tuple(range(len(shape)))
    spec = sfft.rfftn(noise, axes=axes)
    k2 = np.zeros(spec.shape)
    for ax, (n, ext) in enumerate(zip(shape, extent, strict=True)):
        d = ext / n
        if ax == len(shape) - 1:
            k = 2.0 * np.pi * np.fft.rfftfreq(n, d=d)
        else:
            k = 2.0 * np.pi * np.fft.fftfreq(n, d=d)
        sh = [1] * len(shape)
        sh[ax] = k.size
        k2 = k2 + (k**2).reshape(sh)
    # Shift the exponent by the smallest non-zero |k|^2 so the filter never underflows
    # to all-zeros for very long correlation lengths (the scale is normalised away).
    k2min = np.min(k2[k2 > 0])
    k2.flat[0] = k2min  # placeholder; the mean mode is removed just below
    filt = np.exp(-0.25 * ell**2 * (k2 - k2min))
    filt.flat[0] = 0.0
    return sfft.irfftn(spec * filt, s=shape, axes=axes)


def gaussian_random_field(
    shape: int | Sequence[int],
    extent: float | Sequence[float],
    correlation_length: float,
    rng: RngLike = None,
) -> np.ndarray:
    r"""Sample a periodic stationary Gaussian random field on a uniform grid.

    White noise is filtered in Fourier space by :math:`\exp(-\ell^2 |k|^2 / 4)`, which
    gives the covariance :math:`\exp(-|r|^2 / (2 \ell^2))` (periodised), then the
    sample is normalised: its mean over the grid is exactly 0 and its (population)
    standard deviation exactly 1.

    The grid has ``shape[i]`` points per axis at ``x_j = j * extent[i] / shape[i]``
    (endpoint excluded, period ``extent[i]``). A ``correlation_length`` below the grid
    spacing gives close to white noise; one far above ``extent`` gives a field made of
    the lowest Fourier modes.

    Args:
        shape: Grid points per axis (any number of axes, each >= 2).
        extent: Physical period per axis (scalar for all axes, or one per axis).
        correlation_length: :math:`\ell` > 0, same units as ``extent``.
        rng: Generator, int seed or None.

    Returns:
        Array of ``shape``, float64, mean 0 and standard deviation 1.

    Raises:
        ValueError: On a bad ``shape``, ``extent`` or ``correlation_length``.
        TypeError: On an ``rng`` of the wrong type.

    Example:
        >>> g = gaussian_random_field((64, 64), 10.0, 1.0, rng=0)
        >>> g.shape, round(float(g.std()), 12)
        ((64, 64), 1.0)
    """
    shp = shape_tuple(shape)
    ext = per_axis(extent, len(shp), "extent")
    ell = positive_float(correlation_length, "correlation_length")
    gen = as_generator(rng)
    g = _filtered_noise(shp, ext, ell, gen)
    g = g - g.mean()
    std = g.std()
    if not std > 0.0:  # pragma: no cover - only for degenerate 2-point grids
        raise ValueError("`shape` is too small to hold a non-constant field")
    return g / std


def lognormal_field(
    shape: int | Sequence[int],
    extent: float | Sequence[float],
    correlation_length: float,
    mean: float = 1.0,
    sigma: float = 0.5,
    rng: RngLike = None,
) -> np.ndarray:
    r"""Sample a periodic log-normal random field.

    .. math::

        \lambda = \text{mean} \cdot \exp\!\left(\sigma g - \sigma^2 / 2\right),

    with ``g`` from :func:`gaussian_random_field` (sample mean 0, sample std 1). Since
    :math:`E[e^{\sigma g}] = e^{\sigma^2/2}` for a standard normal ``g``, the
    *expected* value of :math:`\lambda` is ``mean``; the sample mean of one finite grid
    differs from it by sampling error. :math:`\log \lambda` has sample standard
    deviation exactly ``sigma``, and the median of :math:`\lambda` is about
    :math:`\text{mean}\, e^{-\sigma^2/2}`.

    Args:
        shape: Grid points per axis.
        extent: Physical period per axis.
        correlation_length: Correlation length of ``g`` (:math:`\ell`).
        mean: Expected value of the field, > 0.
        sigma: Standard deviation of :math:`\log\lambda`, >= 0 (0 gives a constant).
        rng: Generator, int seed or None.

    Returns:
        Strictly positive array of ``shape``.
    """
    m = positive_float(mean, "mean")
    s = positive_float(sigma, "sigma", allow_zero=True)
    g = gaussian_random_field(shape, extent, correlation_length, rng)
    return m * np.exp(s * g - 0.5 * s * s)


def _bounded(g: np.ndarray, base: float, amplitude: float) -> np.ndarray:
    return base + amplitude * np.tanh(g)


def _check_bounded(base: object, amplitude: object) -> tuple[float, float]:
    b = positive_float(base, "base")
    a = positive_float(amplitude, "amplitude", allow_zero=True)
    if a >= b:
        raise ValueError(
            f"`amplitude` must be < `base` so the field stays positive, got amplitude={a}, "
            f"base={b}"
        )
    return b, a


def smooth_positive_field(
    shape: int | Sequence[int],
    extent: float | Sequence[float],
    correlation_length: float,
    base: float = 1.0,
    amplitude: float = 0.5,
    rng: RngLike = None,
) -> np.ndarray:
    r"""Sample a smooth, strictly bounded positive random field.

    .. math::

        \lambda = \text{base} + \text{amplitude} \cdot \tanh(g),

    with ``g`` from :func:`gaussian_random_field`. The field is bounded:
    ``base - amplitude < lambda < base + amplitude`` (the floor ``base - amplitude``
    must be > 0). Defaults give values in (0.5, 1.5).

    Args:
        shape: Grid points per axis.
        extent: Physical period per axis.
        correlation_length: Correlation length of ``g``.
        base: Centre value, > 0.
        amplitude: Half-width of the range, 0 <= amplitude < base.
        rng: Generator, int seed or None.

    Returns:
        Array of ``shape`` with values in ``(base - amplitude, base + amplitude)``.
    """
    b, a = _check_bounded(base, amplitude)
    g = gaussian_random_field(shape, extent, correlation_length, rng)
    return _bounded(g, b, a)


class FourierRandomField:
    r"""A stationary Gaussian random field as a finite random Fourier series.

    .. math::

        g(x) = \operatorname{Re} \sum_{m} c_m \, e^{i k_m \cdot x}, \qquad
        k_m = 2\pi\, (m_1 / P_1, \dots, m_d / P_d),

    with independent complex normal coefficients of variance
    :math:`\propto \exp(-\ell^2 |k_m|^2 / 2)` (the spectrum of the covariance
    :math:`\exp(-|r|^2/(2\ell^2))`), the mean mode removed, and modes with relative
    amplitude below ``cutoff`` dropped. The series is scaled so that ``g`` has mean
    exactly 0 and variance exactly 1 over one full period (Parseval). It can be
    evaluated exactly at any point, so solvers can query it off the data grid.

    Choose ``period`` larger than the region of interest (e.g. twice) to avoid
    imposing periodicity on it.

    Args:
        ndim: Number of spatial dimensions.
        period: Period per axis (scalar or one per axis).
        correlation_length: :math:`\ell` > 0.
        rng: Generator, int seed or None.
        cutoff: Relative amplitude below which modes are dropped (default 1e-12).
        max_modes: Refuse to build more coefficients than this (default 4_000_000).

    Attributes:
        period: Period per axis.
        correlation_length: :math:`\ell`.
        wavenumbers: Angular wavenumbers per axis (1-D arrays).
        coefficients: Complex coefficient array, one axis per dimension.
    """

    def __init__(
        self,
        ndim: int,
        period: float | Sequence[float],
        correlation_length: float,
        rng: RngLike = None,
        *,
        cutoff: float = 1e-12,
        max_modes: int = 4_000_000,
    ) -> None:
        ndim = int_at_least(ndim, "ndim", 1)
        self.period = per_axis(period, ndim, "period")
        self.correlation_length = positive_float(correlation_length, "correlation_length")
        cut = positive_float(cutoff, "cutoff")
        if cut >= 1.0:
            raise ValueError(f"`cutoff` must be in (0, 1), got {cutoff!r}")
        gen = as_generator(rng)
        ell = self.correlation_length
        kcut = 2.0 * math.sqrt(math.log(1.0 / cut)) / ell
        counts = [max(1, math.ceil(kcut * p / (2.0 * math.pi))) for p in self.period]
        total = math.prod(2 * c + 1 for c in counts)
        if total > max_modes:
            raise ValueError(
                f"`correlation_length`={ell} needs {total} Fourier modes for period "
                f"{self.period} (more than max_modes={max_modes}); use a longer "
                "correlation length or a shorter period"
            )
        self.wavenumbers = tuple(
            2.0 * math.pi * np.arange(-c, c + 1) / p for c, p in zip(counts, self.period, strict=True)
        )
        grids = np.meshgrid(*self.wavenumbers, indexing="ij")
        k2 = sum(g**2 for g in grids)
        k2min = min(float(np.min(np.abs(k[k != 0]))) ** 2 for k in self.wavenumbers)
        amp = np.exp(-0.25 * ell**2 * (np.maximum(k2, k2min) - k2min))
        amp[k2 == 0] = 0.0
        amp[amp < cut * amp.max()] = 0.0
        coef = amp * (gen.standard_normal(amp.shape) + 1j * gen.standard_normal(amp.shape))
        # Coefficient of exp(i k_m x) in Re(sum c e^{ikx}) is (c_m + conj(c_{-m})) / 2.
        sym = 0.5 * (coef + np.conj(np.flip(coef)))
        var = float(np.sum(np.abs(sym) ** 2))
        self.coefficients = coef / math.sqrt(var)

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions."""
        return len(self.period)

    def __call__(self, *coords: np.ndarray | float) -> np.ndarray:
        """Evaluate at points; ``coords`` are ``ndim`` arrays broadcast together."""
        if len(coords) != self.ndim:
            raise ValueError(f"expected {self.ndim} coordinate arrays, got {len(coords)}")
        arrs = np.broadcast_arrays(*[np.asarray(c, dtype=float) for c in coords])
        shape = arrs[0].shape
        flat = [a.reshape(-1) for a in arrs]
        out = np.empty(flat[0].size)
        chunk = max(1, 2_000_000 // self.coefficients.size)
        cf = self.coefficients.reshape(-1)
        kk = [g.reshape(-1) for g in np.meshgrid(*self.wavenumbers, indexing="ij")]
        for s in range(0, out.size, chunk):
            phase = sum(np.outer(f[s : s + chunk], k) for f, k in zip(flat, kk, strict=True))
            out[s : s + chunk] = np.real(np.exp(1j * phase) @ cf)
        return out.reshape(shape)

    def on_grid(self, *axes: np.ndarray) -> np.ndarray:
        """Evaluate on the tensor grid of the 1-D ``axes`` (``indexing='ij'``)."""
        if len(axes) != self.ndim:
            raise ValueError(f"expected {self.ndim} axes, got {len(axes)}")
        out = self.coefficients
        for ax, (x, k) in enumerate(zip(axes, self.wavenumbers, strict=True)):
            e = np.exp(1j * np.outer(np.asarray(x, dtype=float).reshape(-1), k))
            out = np.moveaxis(np.tensordot(e, out, axes=([1], [ax])), 0, ax)
        return np.real(out)

    def bounded(self, base: float = 1.0, amplitude: float = 0.5) -> _Transformed:
        """Return ``f(*coords) = base + amplitude * tanh(g(*coords))`` as a callable.

        The returned callable also has an ``on_grid(*axes)`` method; its values lie in
        ``(base - amplitude, base + amplitude)``.
        """
        b, a = _check_bounded(base, amplitude)
        return _Transformed(self, lambda g: _bounded(g, b, a))

    def scaled(self, scale: float, offset: float = 0.0) -> _Transformed:
        """Return ``f(*coords) = offset + scale * g(*coords)`` as a callable."""
        s = finite_float(scale, "scale")
        o = finite_float(offset, "offset")
        return _Transformed(self, lambda g: o + s * g)


class _Transformed:
    """A pointwise transform of a :class:`FourierRandomField` (callable + on_grid)."""

    def __init__(
        self, field: FourierRandomField, fn: Callable[[np.ndarray], np.ndarray]
    ) -> None:
        self.field = field
        self._fn = fn

    def __call__(self, *coords: np.ndarray | float) -> np.ndarray:
        return self._fn(self.field(*coords))

    def on_grid(self, *axes: np.ndarray) -> np.ndarray:
        return self._fn(self.field.on_grid(*axes))
