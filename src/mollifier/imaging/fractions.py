r"""From a chromatin density image to the model's volume fractions.

A density image only measures chromatin *relative* to itself, so the absolute volume
fractions of the chromatin model (``method.md`` section 3) need a stated rule. The rule
used here has two documented constants, ``phi_c`` and ``share``:

1. **Background.** Uniform background (unspecific binding, noise localisations) adds a
   constant to the density. It is estimated as the median density of the frame outside
   the nucleus (pixels at least ``background_margin`` pixels away from the mask) and
   subtracted; a frame without such pixels gets background 0 (noted in ``params``).
2. **Proportionality.** The background-free density is taken proportional to the
   heterochromatin fraction (dense chromatin is methylated heterochromatin), with the
   scale fixed by the mean heterochromatin share of chromatin inside the nucleus::

       phi_h = share * phi_c * rho / mean_mask(rho),     rho = density - background

3. Total chromatin is constant, ``phi_c = phi_h + phi_e`` (default 0.8, the default of
   :func:`~mollifier.problems.forward.simulate_chromatin`), so ``phi_e = phi_c - phi_h``,
   ``phi_d = phi_h - phi_e`` and the nucleoplasm is ``phi_w = 1 - phi_c``.

``share = 0.5`` (the default) says the nucleus holds as much heterochromatin as
euchromatin on average (mean ``phi_d = 0``); simulated steady states with log-normal
``lambda`` of unit mean have ``share`` 0.48-0.50.

Physical ranges are enforced: ``phi_h`` is clipped to ``[clip, 1 - clip] * phi_c``
(default ``clip = 0.02``; the fraction of clipped pixels is reported in ``params``), so
``phi_h, phi_e > 0`` and the direct recovery ``lambda = (phi_h - lap(mu_d)/2) / phi_e``
stays finite. Pixels outside the mask get ``outside`` (NaN by default).

Caveat: the inferred ``lambda`` depends on ``phi_c`` and ``share`` (at reaction
equilibrium ``lambda = phi_h / phi_e``); they are modelling assumptions, not
measurements, and are recorded with every map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ..problems.chromatin import CHROMATIN
from ._common import ImagingError

__all__ = ["VolumeFractions", "estimate_background", "fractions_from_density", "PHI_C", "SHARE"]

#: Default total chromatin fraction: the model's (:data:`~mollifier.problems.chromatin.CHROMATIN`).
PHI_C = CHROMATIN.phi_c
#: Default mean heterochromatin share of chromatin, ``mean(phi_h) / phi_c``.
SHARE = 0.5


@dataclass
class VolumeFractions:
    """Volume fraction maps on the image grid (``[iy, ix]``).

    Attributes:
        phi_h: Heterochromatin (methylated) fraction.
        phi_e: Euchromatin (acetylated) fraction.
        phi_d: ``phi_h - phi_e``.
        phi_w: Nucleoplasm ``1 - phi_c`` (inside the mask).
        mask: Boolean nucleus mask.
        params: ``phi_c``, ``share``, ``background``, ``clipped_fraction``, ``rule``.
    """

    phi_h: np.ndarray
    phi_e: np.ndarray
    phi_d: np.ndarray
    phi_w: np.ndarray
    mask: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)


def estimate_background(density: np.ndarray, mask: np.ndarray, margin: int = 3) -> tuple[float, str]:
    """Median density outside the nucleus, at least ``margin`` pixels from the mask.

    Returns:
        ``(background, how)``; ``(0.0, reason)`` when fewer than 1 % of the frame's
        pixels lie that far outside.
    """
    rho = np.asarray(density, dtype=float)
    far = ~ndimage.binary_dilation(np.asarray(mask, dtype=bool), iterations=max(int(margin), 1))
    if far.sum() < max(0.01 * rho.size, 16):
        return 0.0, "no frame outside the nucleus: background taken as 0"
    return float(np.median(rho[far])), f"median density of {int(far.sum())} pixels outside the nucleus"


def fractions_from_density(
    density: np.ndarray,
    mask: np.ndarray | None = None,
    phi_c: float = PHI_C,
    share: float = SHARE,
    *,
    background: float | None = None,
    background_margin: int = 3,
    clip: float = 0.02,
    outside: float = np.nan,
) -> VolumeFractions:
    """Map a chromatin density image to volume fractions (rule in the module docstring).

    Args:
        density: 2-D density image (localisations per pixel or intensity; only relative
            values matter).
        mask: Boolean nucleus mask (None = whole frame).
        phi_c: Total chromatin fraction, in (0, 1].
        share: Mean heterochromatin share of chromatin ``mean(phi_h) / phi_c``, in (0, 1).
        background: Density of the background; None estimates it outside the mask.
        background_margin: Pixels between the mask and the background pixels.
        clip: ``phi_h`` is kept within ``[clip, 1 - clip] * phi_c``, ``0 < clip < share``.
        outside: Value of every map outside the mask.

    Returns:
        The fraction maps and the parameters used.

    Raises:
        ImagingError: an argument out of range, a shape mismatch, an empty mask,
            non-finite density, or a nucleus no denser than the background.

    Example:
        >>> import numpy as np
        >>> rho = np.ones((8, 8)); rho[2:6, 2:6] = [[3, 5, 5, 3]] * 4
        >>> f = fractions_from_density(rho, rho > 1, background=1.0)
        >>> round(float(np.nanmean(f.phi_h)), 3), round(float(np.nanmax(f.phi_h)), 3)
        (0.4, 0.533)
    """
    if not 0.0 < phi_c <= 1.0:
        raise ImagingError(f"phi_c must be in (0, 1]; got {phi_c}")
    if not 0.0 < share < 1.0:
        raise ImagingError(f"share must be in (0, 1) (mean phi_h / phi_c); got {share}")
    if not 0.0 < clip < min(share, 1.0 - share):
        raise ImagingError(f"clip must be in (0, {min(share, 1.0 - share):g}) for share {share:g}; got {clip}")
    rho = np.asarray(density, dtype=float)
    if rho.ndim != 2:
        raise ImagingError(f"density must be a 2-D image; got shape {rho.shape}")
    m = np.ones(rho.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != rho.shape:
        raise ImagingError(f"mask has shape {m.shape} but density has shape {rho.shape}")
    if not m.any():
        raise ImagingError("mask is empty: no pixel inside the nucleus")
    if not np.isfinite(rho[m]).all():
        raise ImagingError("density has non-finite values inside the mask")
    if background is None:
        background, how = estimate_background(rho, m, background_margin)
    else:
        if not np.isfinite(background):
            raise ImagingError(f"background must be a finite number; got {background}")
        background, how = float(background), "given"
    signal = np.clip(rho[m] - background, 0.0, None)
    mean = float(signal.mean())
    if not mean > 0:
        raise ImagingError(
            f"the nucleus is no denser than the background ({background:g}): "
            "check the mask, or give the background explicitly"
        )
    raw = share * phi_c * signal / mean
    lo, hi = clip * phi_c, (1.0 - clip) * phi_c
    inside_h = np.clip(raw, lo, hi)
    phi_h = np.full(rho.shape, float(outside))
    phi_h[m] = inside_h
    phi_e = np.where(m, phi_c - phi_h, outside)
    phi_d = np.where(m, phi_h - phi_e, outside)
    phi_w = np.where(m, 1.0 - phi_c, outside)
    return VolumeFractions(
        phi_h=phi_h,
        phi_e=phi_e,
        phi_d=phi_d,
        phi_w=phi_w,
        mask=m,
        params={
            "phi_c": float(phi_c),
            "share": float(share),
            "background": float(background),
            "background_estimate": how,
            "clip": float(clip),
            "clipped_fraction": float(((raw < lo) | (raw > hi)).mean()),
            "rule": "phi_h = share*phi_c*(rho-background)/mean_mask(rho-background), clipped to "
            "[clip, 1-clip]*phi_c; phi_e = phi_c-phi_h; phi_d = phi_h-phi_e; phi_w = 1-phi_c",
        },
    )
