"""Synthetic SMLM data with a known answer (ground-truth ``lambda``).

Pipeline of :func:`synthetic_nucleus`:

1. Simulate the chromatin model to steady state with a known ``lambda`` field
   (:func:`~mollifier.problems.forward.simulate_chromatin`, log-normal random by
   default) on an ``n x n`` periodic grid over ``[0, L]^2`` with
   ``L = field_nm / unit_nm``: one model length unit is ``unit_nm`` nm (default
   1000, one micrometre, the convention of :mod:`mollifier.chromatin.pipeline`).
2. Map the simulation square onto the field of view of ``field_nm`` nm: grid node
   ``(i, j)`` becomes the centre of image pixel ``[iy=j, ix=i]`` of side
   ``p = field_nm / n`` (default 12800 / 128 = 100 nm), i.e.
   ``x_nm = (x_sim / L * n + 0.5) * p``. All returned maps are in image order
   ``[iy, ix]`` (the simulation's ``[ix, iy]`` arrays transposed).
3. Emitter density = ``phi_h`` inside an elliptical nucleus (diameter ``diameter_nm``,
   ~10 um, centred), 0 outside: each pixel draws a Poisson number of emitters, placed
   uniformly in the pixel.
4. Microscope: each emitter blinks ``k ~ Geometric(1/mean_blinks)`` times (consecutive
   frames from a random start), each localisation jittered by a Gaussian of standard
   deviation drawn uniformly in ``precision_nm`` (10-20 nm); a ``background_fraction``
   of extra localisations is uniform over the field (``emitter = -1``).

The table is a dict of 1-D arrays in nm (keys ``id``, ``frame``, ``x_nm``, ``y_nm``,
``sigma_nm``, ``intensity_photon``, ``uncertainty_nm``, ``emitter``); write it with
:func:`write_csv` (ThunderSTORM columns) and render it with
:meth:`SyntheticNucleus.render`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..problems.chromatin import CHROMATIN, ChromatinConstants, simulate
from ._common import ImagingError
from .render import Extent, density_map
from .writers import write_csv

__all__ = ["SyntheticNucleus", "synthetic_nucleus", "ellipse_mask", "write_csv"]

_PSF_SIGMA_NM = 130.0


def ellipse_mask(
    n: int, pixel_size_nm: float, diameter_nm: float, aspect: float = 1.0, angle_deg: float = 0.0
) -> np.ndarray:
    """Centred elliptical mask on an ``n x n`` pixel grid (image order).

    Args:
        n: Pixels per side.
        pixel_size_nm: Pixel side in nm.
        diameter_nm: Major axis length in nm.
        aspect: Minor/major axis ratio in (0, 1].
        angle_deg: Rotation of the major axis from x, in degrees.

    Returns:
        ``(n, n)`` boolean mask.

    Raises:
        ImagingError: non-positive ``diameter_nm`` or ``aspect`` outside (0, 1].
    """
    if not diameter_nm > 0:
        raise ImagingError(f"diameter_nm must be > 0; got {diameter_nm}")
    if not 0 < aspect <= 1:
        raise ImagingError(f"aspect must be in (0, 1]; got {aspect}")
    c = (np.arange(n) + 0.5) * pixel_size_nm - 0.5 * n * pixel_size_nm
    X, Y = np.meshgrid(c, c)  # X varies along columns (ix), Y along rows (iy)
    t = np.deg2rad(angle_deg)
    u = X * np.cos(t) + Y * np.sin(t)
    v = -X * np.sin(t) + Y * np.cos(t)
    a = 0.5 * diameter_nm
    b = aspect * a
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


@dataclass
class SyntheticNucleus:
    """A synthetic SMLM data set and its ground truth (maps in image order ``[iy, ix]``).

    Attributes:
        table: Localisations, dict of 1-D arrays (nm).
        lambda_true: Ground-truth ``lambda`` on the simulation grid, ``(n, n)``.
        phi_h: Steady-state heterochromatin fraction, ``(n, n)``.
        phi_e: Steady-state euchromatin fraction, ``(n, n)``.
        mask: Nucleus mask, ``(n, n)`` boolean.
        pixel_size_nm: Side of one simulation cell in nm (``field_nm / n``).
        extent_nm: ``(0, field_nm, 0, field_nm)``.
        sim: The raw :func:`simulate_chromatin` output (arrays ``[ix, iy]``).
        params: All generator settings and counts.
    """

    table: dict[str, np.ndarray]
    lambda_true: np.ndarray
    phi_h: np.ndarray
    phi_e: np.ndarray
    mask: np.ndarray
    pixel_size_nm: float
    extent_nm: Extent
    sim: dict[str, Any] = field(repr=False, default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def points(self) -> np.ndarray:
        """``(N, 2)`` localisation coordinates ``(x, y)`` in nm."""
        return np.column_stack([self.table["x_nm"], self.table["y_nm"]])

    def render(self, pixel_size_nm: float | None = None, blur_nm: float | None = None) -> np.ndarray:
        """Density image of the localisations over the field of view.

        Args:
            pixel_size_nm: Output pixel; None for the simulation grid (then the image
                aligns pixel by pixel with ``lambda_true``).
            blur_nm: Gaussian blur sigma in nm (None = none).

        Returns:
            ``(ny, nx)`` localisations per pixel.
        """
        px = self.pixel_size_nm if pixel_size_nm is None else float(pixel_size_nm)
        return density_map(self.points, px, extent=self.extent_nm, blur_nm=blur_nm)  # type: ignore[return-value]

    def write_csv(self, path: Any) -> Any:
        """Write :attr:`table` as a ThunderSTORM CSV (see :func:`write_csv`)."""
        return write_csv(path, self.table)


def synthetic_nucleus(
    n: int = 128,
    *,
    seed: int | None = 0,
    lambda_field: float | np.ndarray | None = None,
    correlation_length: float = 0.6,
    sigma: float = 0.5,
    lambda_mean: float = 1.0,
    constants: ChromatinConstants = CHROMATIN,
    field_nm: float = 12_800.0,
    unit_nm: float = 1000.0,
    diameter_nm: float = 10_000.0,
    aspect: float = 1.0,
    angle_deg: float = 0.0,
    n_emitters: float = 1_000_000,
    mean_blinks: float = 2.0,
    precision_nm: tuple[float, float] = (10.0, 20.0),
    background_fraction: float = 0.05,
    n_frames: int = 20_000,
) -> SyntheticNucleus:
    """Generate SMLM localisations of a simulated nucleus with known ``lambda``.

    Args:
        n: Simulation grid points per axis.
        seed: Seed of everything (simulation and sampling); same seed, same data.
        lambda_field: None (log-normal random), a constant, or an ``(n, n)`` array in
            the simulation's ``[ix, iy]`` order.
        correlation_length: Of the random ``lambda`` (simulation units).
        sigma: Std of ``log lambda`` for the random field.
        lambda_mean: Mean of the random ``lambda``.
        constants: The model's constants (:data:`~mollifier.problems.chromatin.CHROMATIN`:
            the published ``phi_c``, ``phi_max`` and interface length ``l``).
        field_nm: Field of view side in nm (the simulation square maps onto it).
        unit_nm: Nanometres per model length unit (sets ``L = field_nm / unit_nm``).
        diameter_nm: Nucleus major axis in nm (must fit in ``field_nm``).
        aspect: Minor/major axis ratio of the nucleus ellipse.
        angle_deg: Rotation of the ellipse.
        n_emitters: Expected number of emitters inside the nucleus (the default, 10^6
            emitters and ~2.1 million localisations, is a typical STORM acquisition
            of a labelled nucleus).
        mean_blinks: Mean number of localisations per emitter (>= 1).
        precision_nm: ``(lo, hi)`` range of per-localisation precision (nm).
        background_fraction: Fraction of all localisations that are uniform background,
            in [0, 1).
        n_frames: Number of camera frames (for the ``frame`` column).

    Returns:
        The data set with ground truth.

    Raises:
        ImagingError: an argument out of range (the message names it).
    """
    if diameter_nm > field_nm:
        raise ImagingError(f"diameter_nm ({diameter_nm}) must not exceed field_nm ({field_nm})")
    if not unit_nm > 0:
        raise ImagingError(f"unit_nm must be > 0; got {unit_nm}")
    if not n_emitters > 0:
        raise ImagingError(f"n_emitters must be > 0; got {n_emitters}")
    if not mean_blinks >= 1:
        raise ImagingError(f"mean_blinks must be >= 1; got {mean_blinks}")
    lo, hi = (float(v) for v in precision_nm)
    if not 0 <= lo <= hi:
        raise ImagingError(f"precision_nm must be (lo, hi) with 0 <= lo <= hi; got {precision_nm}")
    if not 0 <= background_fraction < 1:
        raise ImagingError(f"background_fraction must be in [0, 1); got {background_fraction}")
    if int(n_frames) < 1:
        raise ImagingError(f"n_frames must be >= 1; got {n_frames}")

    L = float(field_nm) / float(unit_nm)
    rng = np.random.default_rng(seed)
    sim_seed = int(rng.integers(2**31 - 1))
    sim = simulate(
        n,
        L,
        constants,
        lambda_field=lambda_field,
        correlation_length=correlation_length,
        sigma=sigma,
        lambda_mean=lambda_mean,
        rng=sim_seed,
    )
    phi_h = np.asarray(sim["phi_h"]).T
    phi_e = np.asarray(sim["phi_e"]).T
    lam = np.asarray(sim["lambda"]).T
    px = float(field_nm) / n
    mask = ellipse_mask(n, px, diameter_nm, aspect, angle_deg)

    rate = np.where(mask, np.clip(phi_h, 0.0, None), 0.0)
    counts = rng.poisson(float(n_emitters) * rate / rate.sum())
    iy, ix = np.nonzero(counts)
    reps = counts[iy, ix]
    ex = (np.repeat(ix, reps) + rng.random(reps.sum())) * px
    ey = (np.repeat(iy, reps) + rng.random(reps.sum())) * px
    n_em = ex.size

    k = rng.geometric(1.0 / float(mean_blinks), size=n_em)
    emitter = np.repeat(np.arange(n_em), k)
    start = rng.integers(0, int(n_frames), size=n_em)
    blink = np.arange(emitter.size) - np.repeat(np.cumsum(k) - k, k)
    frame = (start[emitter] + blink) % int(n_frames)
    n_sig = emitter.size
    n_bg = int(rng.poisson(background_fraction / (1.0 - background_fraction) * n_sig)) if background_fraction > 0 else 0
    n_tot = n_sig + n_bg
    unc = rng.uniform(lo, hi, size=n_tot)
    x = np.concatenate([ex[emitter], rng.random(n_bg) * field_nm]) + rng.normal(size=n_tot) * unc
    y = np.concatenate([ey[emitter], rng.random(n_bg) * field_nm]) + rng.normal(size=n_tot) * unc
    frame = np.concatenate([frame, rng.integers(0, int(n_frames), size=n_bg)])
    emitter = np.concatenate([emitter, np.full(n_bg, -1)])
    order = np.argsort(frame, kind="stable")
    unc = unc[order]
    photons = (_PSF_SIGMA_NM / np.maximum(unc, 1e-3)) ** 2
    table = {
        "id": np.arange(1, n_tot + 1),
        "frame": frame[order].astype(np.int64) + 1,  # ThunderSTORM frames are 1-based
        "x_nm": x[order],
        "y_nm": y[order],
        "sigma_nm": np.full(n_tot, _PSF_SIGMA_NM),
        "intensity_photon": photons,
        "uncertainty_nm": unc,
        "emitter": emitter[order].astype(np.int64),
    }
    params = {
        "n": n, "seed": seed, "sim_seed": sim_seed, "L": L, "unit_nm": float(unit_nm), **constants.as_dict(),
        "field_nm": float(field_nm), "diameter_nm": float(diameter_nm), "aspect": aspect,
        "angle_deg": angle_deg, "n_emitters_expected": float(n_emitters),
        "n_emitters": int(n_em), "mean_blinks": float(mean_blinks),
        "precision_nm": (lo, hi), "background_fraction": float(background_fraction),
        "n_background": n_bg, "n_localizations": n_tot, "n_frames": int(n_frames),
        "sim_converged": bool(sim.get("converged", False)),
        "mapping": "x_nm = (x_sim / L * n + 0.5) * pixel_size_nm; maps are sim arrays transposed ([iy, ix])",
    }
    return SyntheticNucleus(
        table=table,
        lambda_true=lam,
        phi_h=phi_h,
        phi_e=phi_e,
        mask=mask,
        pixel_size_nm=px,
        extent_nm=(0.0, float(field_nm), 0.0, float(field_nm)),
        sim=sim,
        params=params,
    )
