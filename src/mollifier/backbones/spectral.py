"""A Gaussian-process prior as a backbone: a truncated, prior-weighted Fourier series.

A stationary Gaussian process with the squared-exponential covariance
``scale^2 exp(-|r|^2 / (2 ell^2))`` is, on a box, a random Fourier series whose cosine and
sine coefficients are independent normals with variances that fall like
``exp(-ell^2 |k|^2 / 2)``. :class:`GaussianProcessField` holds that series with its
coefficients written as ``scale sqrt(v_k) z_k``, plus a constant mean (flat prior): the
field is linear in its parameters, and the process's prior is ``z ~ N(0, I)``, i.e. the penalty
:meth:`~GaussianProcessField.prior_penalty` ``= |z|^2 / 2`` added to a data misfit in
units of the noise variance makes the trained field the maximum a posteriori estimate.
The trainer adds it with that weight (:mod:`mollifier.inverse.priors`); used as an
unknown field's backbone (``UnknownField(backbone="gp")``) it is the unknown's prior.

The series is periodic with ``period`` per axis (default twice the domain, so that the
field is not forced to be periodic on it; a periodic problem passes its own extent).
Modes whose prior variance is below ``cutoff`` of the largest are left out.

Example:
    >>> import torch
    >>> from mollifier.backbones import make_backbone
    >>> gp = make_backbone("gp", 2, 1, domain=[(0, 1), (0, 1)], correlation_length=0.2)
    >>> gp(torch.rand(5, 2)).shape, float(gp.prior_penalty().detach())
    (torch.Size([5, 1]), 0.0)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ._base import AbstractBackbone, check_positive_float

__all__ = ["GaussianProcessField", "fourier_modes"]

MAX_MODES = 200_000
"""Refuse series with more cosine/sine pairs than this (a correlation length far below the
domain's size in 3-D)."""


def fourier_modes(period: Sequence[float], correlation_length: float, cutoff: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """Wavevectors of a half space (no zero, no ``-k`` twin) and each mode's prior variance.

    Args:
        period: Period per axis.
        correlation_length: ``ell`` of the covariance ``exp(-|r|^2 / (2 ell^2))``.
        cutoff: Modes with variance below this fraction of the largest are dropped.

    Returns:
        ``(k, v)``: ``(M, ndim)`` angular wavevectors and ``(M,)`` variances of each of a
        mode's cosine and sine coefficients, summing to 1 (unit pointwise variance).

    Raises:
        ValueError: Too many modes (more than :data:`MAX_MODES`).
    """
    ndim = len(period)
    tops = [int(math.ceil(math.sqrt(2.0 * math.log(1.0 / cutoff)) / correlation_length * p / (2.0 * math.pi))) for p in period]
    count = math.prod(2 * t + 1 for t in tops) // 2
    if count > 4 * MAX_MODES:
        raise ValueError(
            f"`correlation_length`={correlation_length:g} is too short for a domain of period {tuple(period)}: "
            f"about {count} Fourier modes (at most {MAX_MODES}); use a longer correlation length"
        )
    axes = [range(-t, t + 1) for t in tops]
    index = np.array([m for m in itertools.product(*axes) if next((v for v in m if v != 0), 0) > 0], dtype=float).reshape(-1, ndim)
    k = 2.0 * math.pi * index / np.asarray(period, dtype=float)
    variance = np.exp(-0.5 * correlation_length**2 * np.sum(k**2, axis=1))
    keep = variance >= cutoff * variance.max()
    if keep.sum() > MAX_MODES:
        raise ValueError(
            f"`correlation_length`={correlation_length:g} is too short for a domain of period {tuple(period)}: "
            f"{int(keep.sum())} Fourier modes (at most {MAX_MODES}); use a longer correlation length"
        )
    return k[keep], variance[keep] / variance[keep].sum()


class GaussianProcessField(AbstractBackbone):
    """A field with a Gaussian-process prior, as a truncated Fourier series (linear in ``z``).

    ``mean + sum_k scale sqrt(v_k) (z_k cos(k x) + z'_k sin(k x))`` with ``x`` measured from
    the domain's lower corner; ``z`` has the prior ``N(0, I)`` (:meth:`prior_penalty`), the
    constant ``mean`` a flat one.

    Args:
        in_dim: Number of input coordinates.
        out_dim: Number of output fields (each its own series).
        correlation_length: ``ell`` of the prior covariance, in the coordinates' physical units.
        scale: Prior standard deviation of the field.
        period: Period per axis (scalar or one per axis); default twice the domain's extent.
        cutoff: Prior variance below which a mode is left out (relative to the largest).
        domain: Per-axis ``(low, high)`` bounds; required unless ``period`` is given.

    Raises:
        TypeError, ValueError: On bad arguments (named in the message).

    Shape:
        - Input: ``(N, in_dim)`` physical coordinates.
        - Output: ``(N, out_dim)``.

    Example:
        >>> import torch
        >>> from mollifier.backbones import GaussianProcessField
        >>> gp = GaussianProcessField(1, 1, correlation_length=0.1, scale=2.0, domain=[(0.0, 1.0)])
        >>> with torch.no_grad():
        ...     _ = gp.z.normal_(generator=torch.Generator().manual_seed(0))
        >>> u = gp(torch.linspace(0, 1, 2001)[:, None]).detach()
        >>> 1.0 < float(u.std()) < 3.0       # a draw from the prior: spread about `scale`
        True
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        correlation_length: float = 0.1,
        scale: float = 1.0,
        period: float | Sequence[float] | None = None,
        cutoff: float = 1e-8,
        domain: Sequence[tuple[float, float]] | None = None,
    ) -> None:
        super().__init__(in_dim, out_dim, domain)
        self.correlation_length = check_positive_float("correlation_length", correlation_length)
        self.scale = check_positive_float("scale", scale)
        self.cutoff = check_positive_float("cutoff", cutoff)
        if not self.cutoff < 1.0:
            raise ValueError(f"`cutoff` must be in (0, 1), got {cutoff}")
        if period is None:
            if self.domain is None:
                raise ValueError("`period` or `domain` is needed: the series' period defaults to twice the domain's extent")
            periods = [2.0 * (high - low) for low, high in self.domain]
        else:
            values = [period] * in_dim if isinstance(period, (int, float)) else list(period)
            if len(values) != in_dim:
                raise ValueError(f"`period` must be one number or {in_dim} (one per input), got {period!r}")
            periods = [check_positive_float("period", p) for p in values]
        self.period = tuple(periods)
        k, variance = fourier_modes(self.period, self.correlation_length, self.cutoff)
        # _forward sees coordinates mapped onto [-1, 1] when there is a domain:
        # (x_normalised + 1) * half-width = x - low, the distance from the domain's corner
        half = [0.5 * (high - low) for low, high in self.domain] if self.domain is not None else [1.0] * in_dim
        self.register_buffer("wavevectors", torch.as_tensor(k * np.asarray(half), dtype=torch.float32))
        self.shift = 1.0 if self.domain is not None else 0.0
        amplitude = self.scale * np.sqrt(np.concatenate([variance, variance]))
        self.register_buffer("amplitude", torch.as_tensor(amplitude, dtype=torch.float32))
        self.z = nn.Parameter(torch.zeros(2 * len(variance), out_dim))
        # the series has no constant mode (zero mean over a period): the field's own mean is a
        # parameter with a flat prior, as in a Gaussian process with an unknown constant mean
        self.mean = nn.Parameter(torch.zeros(out_dim))

    @property
    def modes(self) -> int:
        """Number of cosine and sine coefficients per output."""
        return int(self.z.shape[0])

    def reset_parameters(self) -> None:
        """The prior's mean: every coefficient and the constant zero."""
        with torch.no_grad():
            self.z.zero_()
            self.mean.zero_()

    def prior_penalty(self) -> Tensor:
        """``|z|^2 / 2``: minus the log prior density, up to a constant."""
        return 0.5 * self.z.pow(2).sum()

    def _forward(self, x: Tensor) -> Tensor:
        phase = (x + self.shift) @ self.wavevectors.T
        features = torch.cat([torch.cos(phase), torch.sin(phase)], dim=1) * self.amplitude
        return features @ self.z + self.mean

    def extra_repr(self) -> str:
        """Summary shown by ``repr``."""
        return (
            f"{super().extra_repr()}, correlation_length={self.correlation_length:g}, scale={self.scale:g}, "
            f"period={self.period}, modes={self.modes}"
        )
