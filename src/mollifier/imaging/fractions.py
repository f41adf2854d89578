r"""From a normalised chromatin density to the model's volume fractions.

A density image only measures *relative* chromatin compaction, so the absolute volume
fractions of the chromatin model (``method.md`` section 3) require a stated rule. The
rule used here, with the two documented constants ``phi_c`` and ``contrast`` (``a``):

1. Normalise the density inside the nucleus mask to [0, 1] by robust percentiles
   (default 1st and 99th), clipping the tails::

       rho_norm = clip((rho - p_lo) / (p_hi - p_lo), 0, 1)

2. Total chromatin is constant, ``phi_c = phi_h + phi_e`` (default 0.8, the default of
   :func:`~mollifier.problems.forward.simulate_chromatin`); the nucleoplasm is
   ``phi_w = 1 - phi_c``.
3. The methylated/acetylated difference is linear in the density::

       phi_d = a * phi_c * (2 * rho_norm - 1),      0 < a < 1  (default a = 0.4)
       phi_h = (phi_c + phi_d) / 2,   phi_e = (phi_c - phi_d) / 2

   so dense regions are heterochromatin. ``a = 0.4`` reproduces the range of
   ``phi_d / phi_c`` (about -0.35..0.38) of simulated steady states with
   ``phi_c = 0.8`` and log-normal ``lambda`` of unit mean.

Physical ranges are guaranteed: ``|phi_d| <= a phi_c < phi_c``, hence
``(1 - a) phi_c / 2 <= phi_h, phi_e <= (1 + a) phi_c / 2``, all in (0, phi_c), and
``phi_h + phi_e + phi_w = 1`` exactly. ``phi_e > 0`` keeps the direct recovery
``lambda = (phi_h - lap(mu_d)/2) / phi_e`` finite. Pixels outside the mask get
``outside`` (NaN by default).

Caveat: the inferred ``lambda`` depends on ``phi_c`` and ``a`` (the equilibrium
``lambda = phi_h / phi_e = (1 + a s) / (1 - a s)`` with ``s = 2 rho_norm - 1``); they
are modelling assumptions, not measurements, and should be reported with any map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._common import ImagingError

__all__ = ["VolumeFractions", "normalise_density", "fractions_from_density", "PHI_C", "CONTRAST"]

#: Default total chromatin fraction.
PHI_C = 0.8
#: Default contrast ``a`` of the density -> phi_d rule.
CONTRAST = 0.4


@dataclass
class VolumeFractions:
    """Volume fraction maps on the image grid (``[iy, ix]``).

    Attributes:
        phi_h: Heterochromatin (methylated) fraction.
        phi_e: Euchromatin (acetylated) fraction.
        phi_d: ``phi_h - phi_e``.
        phi_w: Nucleoplasm ``1 - phi_c`` (inside the mask).
        rho_norm: The normalised density in [0, 1].
        mask: Boolean nucleus mask.
        params: ``phi_c``, ``contrast``, ``percentiles``, ``p_lo``, ``p_hi``.
    """

    phi_h: np.ndarray
    phi_e: np.ndarray
    phi_d: np.ndarray
    phi_w: np.ndarray
    rho_norm: np.ndarray
    mask: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)


def normalise_density(
    density: np.ndarray,
    mask: np.ndarray | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    outside: float = np.nan,
) -> tuple[np.ndarray, float, float]:
    """Normalise a density to [0, 1] inside a mask by robust percentiles.

    Args:
        density: 2-D density image.
        mask: Boolean mask (None = everything).
        percentiles: ``(lo, hi)`` percentiles mapped to 0 and 1, ``0 <= lo < hi <= 100``.
        outside: Value outside the mask.

    Returns:
        ``(rho_norm, p_lo, p_hi)``.

    Raises:
        ImagingError: shape mismatch, empty mask, bad ``percentiles`` or a flat density.
    """
    rho = np.asarray(density, dtype=float)
    m = np.ones(rho.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != rho.shape:
        raise ImagingError(f"mask has shape {m.shape} but density has shape {rho.shape}")
    if not m.any():
        raise ImagingError("mask is empty: no pixel to normalise")
    lo, hi = (float(p) for p in percentiles)
    if not 0.0 <= lo < hi <= 100.0:
        raise ImagingError(f"percentiles must satisfy 0 <= lo < hi <= 100; got {percentiles}")
    vals = rho[m]
    if not np.isfinite(vals).all():
        raise ImagingError("density has non-finite values inside the mask")
    p_lo, p_hi = (float(v) for v in np.percentile(vals, [lo, hi]))
    if not p_hi > p_lo:
        raise ImagingError(
            f"density is flat inside the mask (percentiles {lo:g}/{hi:g} both {p_lo:g}); "
            "use a larger pixel or blur, or more localisations"
        )
    out = np.full(rho.shape, float(outside))
    out[m] = np.clip((vals - p_lo) / (p_hi - p_lo), 0.0, 1.0)
    return out, p_lo, p_hi


def fractions_from_density(
    density: np.ndarray,
    mask: np.ndarray | None = None,
    phi_c: float = PHI_C,
    contrast: float = CONTRAST,
    *,
    percentiles: tuple[float, float] = (1.0, 99.0),
    outside: float = np.nan,
) -> VolumeFractions:
    """Map a chromatin density image to volume fractions (rule in the module docstring).

    Args:
        density: 2-D density image (any units; only relative values matter).
        mask: Boolean nucleus mask (None = whole frame).
        phi_c: Total chromatin fraction, in (0, 1].
        contrast: ``a`` in (0, 1): ``phi_d = a phi_c (2 rho_norm - 1)``.
        percentiles: Percentiles of the density inside the mask mapped to 0 and 1.
        outside: Value of every map outside the mask.

    Returns:
        The fraction maps and the parameters used.

    Raises:
        ImagingError: ``phi_c`` or ``contrast`` out of range, or see
            :func:`normalise_density`.
    """
    if not 0.0 < phi_c <= 1.0:
        raise ImagingError(f"phi_c must be in (0, 1]; got {phi_c}")
    if not 0.0 < contrast < 1.0:
        raise ImagingError(f"contrast must be in (0, 1) so that phi_h, phi_e > 0; got {contrast}")
    rho_n, p_lo, p_hi = normalise_density(density, mask, percentiles, outside=np.nan)
    m = np.isfinite(rho_n)
    phi_d = contrast * phi_c * (2.0 * rho_n - 1.0)
    phi_h = 0.5 * (phi_c + phi_d)
    phi_e = 0.5 * (phi_c - phi_d)
    phi_w = np.where(m, 1.0 - phi_c, np.nan)
    maps = [phi_h, phi_e, phi_d, phi_w, rho_n]
    for a in maps:
        a[~m] = outside
    return VolumeFractions(
        phi_h=phi_h,
        phi_e=phi_e,
        phi_d=phi_d,
        phi_w=phi_w,
        rho_norm=rho_n,
        mask=m,
        params={
            "phi_c": float(phi_c),
            "contrast": float(contrast),
            "percentiles": tuple(float(p) for p in percentiles),
            "p_lo": p_lo,
            "p_hi": p_hi,
            "rule": "phi_d = contrast*phi_c*(2*rho_norm-1); phi_h=(phi_c+phi_d)/2; phi_e=(phi_c-phi_d)/2; phi_w=1-phi_c",
        },
    )
