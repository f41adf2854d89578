r"""Can these localisations support a ``lambda`` map? A rule from the counting noise.

A density map counts localisations per pixel; a pixel whose expected count is ``mu``
has Poisson noise ``sqrt(mu)``. After the background ``b`` per pixel is subtracted, the
signal ``s = mu - b`` carries relative noise

.. math::  \nu = \sqrt{s + b} / s .

The map is computed from the density through the fraction rule (``phi_h`` proportional
to ``s``, mean ``share * phi_c``) and the direct formula
``lambda = (phi_h - lap(mu_d)/2) / phi_e`` with derivatives of the mollified field.
Linearised around a uniform nucleus (``phi_h = h0 = share phi_c``,
``phi_e = e0 = (1 - share) phi_c``, ``lambda0 = h0 / e0``), a relative density error
``nu`` per pixel moves ``lambda`` by

.. math::  \delta\lambda / \lambda_0 = k * \nu,\qquad
           k = (1 + \lambda_0) S - \mu'(h_0) L + l^2 B,

where ``S``, ``L``, ``B`` are the mollifier's smoothing, Laplacian and bi-Laplacian
stencils at the run's pixel and radius (model units), ``mu'(h) = 1/2 + (a^2 - 6 a h +
6 h^2)/2`` and ``l`` the interface length. For independent pixel noise the standard
deviation is

.. math::  \sigma_\lambda / \lambda_0 = G \, \nu,\qquad G = \lVert k \rVert_2 ,

computed here exactly from the library's own stencils (:func:`noise_gain`). At the
defaults (100 nm pixels, 800 nm radius, 1 um model unit, ``l = 0.03``, share 0.5)
``G = 1.38``.

Thresholds (relative to the mean rate ratio ``lambda0``, 1 at the default share):

* **refuse** when ``sigma_lambda / lambda0 > 1`` (:data:`REFUSE`): the noise of a pixel
  of the map is as large as the mean value itself, so no pixel tells its ``lambda``
  from 0 or 2. At the defaults this is ``s < G^2 = 1.9`` localisations per 100 nm pixel
  (190 per um^2) without background.
* **warn** when ``sigma_lambda / lambda0 > 0.5`` (:data:`WARN`): ``s < 4 G^2 = 7.6``
  per pixel (760 per um^2).

Measured on the synthetic nucleus (seed 0, network-free estimate, Pearson against the
true map; emitters blink twice on average, which raises the variance above Poisson by
the Fano factor ``E[k^2]/E[k] = 3``, so this Poisson rule is a necessary condition, not
a sufficient one): 261 localisations per pixel 0.89, 78 -> 0.81, 26 -> 0.63, 7.8 -> 0.39
(the warning level), 2.6 -> 0.25, 0.8 -> 0.12 (refused).

A nucleus must also hold one whole mollifier disk: its analysed region (mask less rim)
must reach ``radius`` from its edge somewhere (otherwise no pixel has the kernel's full
support inside the nucleus). And before any mask is drawn, a table is refused when even
all its localisations inside the smallest analysable nucleus (a disk of that radius)
would fail the noise rule (:func:`precheck`; the Nanoimager sample: 14 localisations).
``--force`` analyses refused data anyway, with the reason as a warning in the summary.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from ..core.operators import biharmonic, derivatives, laplacian
from ..problems.chromatin import ChromatinConstants

__all__ = ["REFUSE", "WARN", "Sparsity", "assess", "noise_gain", "precheck"]

#: Refuse when the counting noise of lambda exceeds this fraction of its mean.
REFUSE = 1.0
#: Warn when it exceeds this fraction.
WARN = 0.5


@functools.lru_cache(maxsize=64)
def _gain(pixel_nm: float, radius_nm: float, unit_nm: float, phi_c: float, phi_max: float, l: float,  # noqa: E741
          share: float) -> float:
    spacing = pixel_nm / unit_nm
    radius = radius_nm / unit_nm
    cells = radius / spacing
    n = int(2 * math.ceil(cells)) + 11
    impulse = torch.zeros(1, 1, n, n, dtype=torch.float64)
    impulse[0, 0, n // 2, n // 2] = 1.0
    d = derivatives(impulse, {"s": (0, 0), "lap": laplacian(2), "bilap": biharmonic(2)}, spacing, radius,
                    boundary="zeros")
    h0, e0 = share * phi_c, (1.0 - share) * phi_c
    lam0 = h0 / e0
    d_mu = 0.5 + (phi_max**2 - 6 * phi_max * h0 + 6 * h0 * h0) / 2
    k = (1 + lam0) * d["s"] - d_mu * d["lap"] + l * l * d["bilap"]
    return float(k.pow(2).sum().sqrt())


def noise_gain(pixel_nm: float, radius_nm: float, unit_nm: float, constants: ChromatinConstants, share: float) -> float:
    """``G``: relative noise of lambda per unit relative noise of a pixel's density."""
    return _gain(float(pixel_nm), float(radius_nm), float(unit_nm), constants.phi_c, constants.phi_max, constants.l,
                 float(share))


@dataclass
class Sparsity:
    """The counting-noise check of one nucleus (or of a whole table, :func:`precheck`).

    Attributes:
        verdict: ``"ok"``, ``"warn"`` or ``"refuse"``.
        noise: Predicted ``sigma_lambda / lambda0`` from Poisson counting noise.
        gain: ``G`` at this pixel and radius.
        signal_per_px: Mean background-free localisations per pixel in the region.
        background_per_px: Background localisations per pixel.
        localisations: Localisations in the region (signal + background).
        area_um2: Area of the region.
        min_signal_per_px: Signal per pixel at which the noise reaches :data:`REFUSE`
            (no background).
        reach_nm: Largest distance from the region's edge (nm); needs ``>= radius_nm``.
        radius_nm: The mollifier radius checked against.
        message: Why not ``"ok"`` (empty when ok).
    """

    verdict: str
    noise: float
    gain: float
    signal_per_px: float
    background_per_px: float
    localisations: float
    area_um2: float
    min_signal_per_px: float
    reach_nm: float
    radius_nm: float
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "refuse_level": REFUSE, "warn_level": WARN}


def _noise(signal: float, background: float, gain: float) -> float:
    if not signal > 0:
        return math.inf
    return gain * math.sqrt(max(signal + background, 0.0)) / signal


def assess(density: np.ndarray, region: np.ndarray, background: float, *, pixel_nm: float, radius_nm: float,
           unit_nm: float, constants: ChromatinConstants, share: float, counts: bool = True) -> Sparsity:
    """The rule (module docstring) for one analysed region of a density map.

    Args:
        density: Localisations per pixel.
        region: The analysed region (nucleus mask less its rim).
        background: Background localisations per pixel (subtracted by the fraction rule).
        pixel_nm, radius_nm, unit_nm, constants, share: As in the analysis.
        counts: Whether ``density`` counts localisations (False for images: only the
            size rule applies).
    """
    gain = noise_gain(pixel_nm, radius_nm, unit_nm, constants, share)
    region = np.asarray(region, dtype=bool)
    n_px = int(region.sum())
    total = float(np.asarray(density, dtype=float)[region].sum()) if n_px else 0.0
    mean = total / n_px if n_px else 0.0
    signal = max(mean - float(background), 0.0)
    noise = _noise(signal, max(float(background), 0.0), gain) if counts else float("nan")
    reach = float(ndimage.distance_transform_edt(np.pad(region, 1)).max()) * pixel_nm if n_px else 0.0
    area = n_px * pixel_nm**2 / 1e6
    minimum = gain**2 / REFUSE**2
    messages = []
    verdict = "ok"
    if reach < radius_nm:
        verdict = "refuse"
        messages.append(
            f"the analysed region ({area:.3g} um^2) reaches at most {reach:.0f} nm from its edge, less than the "
            f"{radius_nm:.0f} nm mollifier radius: no pixel has the kernel's support inside the nucleus "
            "(use a smaller --radius-nm, or check the mask)"
        )
    if counts and noise > REFUSE:
        verdict = "refuse"
        messages.append(
            f"{total:.0f} localisations over {area:.3g} um^2 ({signal:.3g} per {pixel_nm:g} nm pixel above a background "
            f"of {background:.3g}): the counting noise of lambda would be {noise:.2f} of its mean (more than {REFUSE:g} "
            f"allowed; needs at least {minimum:.3g} localisations per pixel, {minimum / (pixel_nm / 1000) ** 2:.0f} "
            "per um^2)"
        )
    elif counts and noise > WARN and verdict == "ok":
        verdict = "warn"
        messages.append(
            f"sparse data: {signal:.3g} localisations per {pixel_nm:g} nm pixel give counting noise of lambda "
            f"{noise:.2f} of its mean (over {WARN:g}); the map is noisy"
        )
    return Sparsity(verdict, noise, gain, signal, float(background), total, area, minimum, reach, radius_nm,
                    "; ".join(messages))


def precheck(n_localisations: int, *, pixel_nm: float, radius_nm: float, unit_nm: float,
             constants: ChromatinConstants, share: float) -> Sparsity:
    """Best case for a whole table: every localisation inside the smallest analysable
    nucleus (a disk of the mollifier radius), no background. Refused -> no nucleus of
    this table can pass :func:`assess`."""
    gain = noise_gain(pixel_nm, radius_nm, unit_nm, constants, share)
    area_nm2 = math.pi * radius_nm**2
    signal = n_localisations * pixel_nm**2 / area_nm2
    noise = _noise(signal, 0.0, gain)
    minimum = gain**2 / REFUSE**2
    verdict, message = "ok", ""
    if noise > REFUSE:
        verdict = "refuse"
        need = math.ceil(minimum * area_nm2 / pixel_nm**2)
        message = (
            f"{n_localisations} localisations cannot support a map: even all inside one nucleus of the smallest "
            f"analysable size (a disk of the {radius_nm:.0f} nm mollifier radius, {area_nm2 / 1e6:.2g} um^2) the "
            f"counting noise of lambda would be {noise:.2f} of its mean (more than {REFUSE:g} allowed); that needs at "
            f"least {need} localisations ({minimum / (pixel_nm / 1000) ** 2:.0f} per um^2)"
        )
    return Sparsity(verdict, noise, gain, signal, 0.0, float(n_localisations), area_nm2 / 1e6, minimum, radius_nm,
                    radius_nm, message)
