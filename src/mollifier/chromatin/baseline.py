"""Closed-form per-nucleus baseline: heterochromatin domain radius and spacing.

The Shenoy lab's earlier STORM pipeline (``method.md`` section 3): localisations ->
density map -> threshold -> DBSCAN clusters (``eps`` 30 nm, ``min_samples`` 3, clusters
of >= 35 localisations) -> domain radius ``R`` and spacing ``d`` -> the steady-state
relation of the reaction-diffusion model

    Gamma_ac = D / d^2,   Gamma_me = Gamma_ac / ((d / R)^2 - 1),

so the rate ratio is ``lambda_baseline = Gamma_me / Gamma_ac = 1 / ((d / R)^2 - 1)``
(one scalar per nucleus; undefined, reported as NaN, when ``d <= R``).

Definitions used here:

* Heterochromatin pixels: density above the Otsu threshold of the density values
  inside the nucleus mask.
* Localisation input: the localisations falling in heterochromatin pixels are clustered
  with :class:`sklearn.cluster.DBSCAN`; clusters with fewer than ``min_points``
  localisations are dropped. Image input: connected components (8-connectivity) of the
  thresholded map, at least ``min_pixels`` pixels.
* ``R``: mean equivalent radius ``sqrt(area / pi)`` of the domains, the area being the
  convex-hull area of a cluster's localisations (pixel count times pixel area for an
  image).
* ``d``: mean nearest-neighbour distance between domain centres (centroids).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, cKDTree

from ..imaging.mask import otsu_threshold

__all__ = ["BaselineResult", "domain_statistics", "baseline_from_points", "baseline_from_image", "heterochromatin_threshold"]


@dataclass
class BaselineResult:
    """Domain statistics and the closed-form rate ratio.

    Attributes:
        method: ``"dbscan"`` or ``"components"``.
        n_domains: Number of domains kept.
        radius_nm: Mean equivalent domain radius ``R`` (NaN without domains; in pixels
            when the pixel size is unknown, see ``unit``).
        spacing_nm: Mean nearest-neighbour distance ``d`` of domain centres (NaN with
            fewer than two domains).
        ratio: ``Gamma_me / Gamma_ac = 1 / ((d/R)^2 - 1)`` (NaN when undefined).
        gamma_ac_over_D: ``Gamma_ac / D = 1 / d^2`` (per nm^2, or per px^2).
        gamma_me_over_D: ``Gamma_me / D = ratio / d^2``.
        unit: ``"nm"`` or ``"px"``.
        centres: ``(n_domains, 2)`` domain centres ``(x, y)``.
        radii: ``(n_domains,)`` equivalent radii.
        notes: Human-readable notes (why something is NaN, ...).
        params: Settings used.
    """

    method: str
    n_domains: int
    radius_nm: float
    spacing_nm: float
    ratio: float
    gamma_ac_over_D: float
    gamma_me_over_D: float
    unit: str = "nm"
    centres: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    radii: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no per-domain arrays)."""
        return {
            "method": self.method,
            "n_domains": self.n_domains,
            "radius": self.radius_nm,
            "spacing": self.spacing_nm,
            "unit": self.unit,
            "ratio_gamma_me_over_gamma_ac": self.ratio,
            "gamma_ac_over_D": self.gamma_ac_over_D,
            "gamma_me_over_D": self.gamma_me_over_D,
            "notes": list(self.notes),
            "params": dict(self.params),
        }


def domain_statistics(centres: np.ndarray, radii: np.ndarray) -> tuple[float, float, float, float, float, list[str]]:
    """``(R, d, ratio, Gamma_ac/D, Gamma_me/D, notes)`` from domain centres and radii."""
    notes: list[str] = []
    centres = np.asarray(centres, dtype=float).reshape(-1, 2)
    radii = np.asarray(radii, dtype=float).reshape(-1)
    R = float(radii.mean()) if radii.size else float("nan")
    if len(centres) >= 2:
        dist, _ = cKDTree(centres).query(centres, k=2)
        d = float(dist[:, 1].mean())
    else:
        d = float("nan")
        notes.append(f"{len(centres)} domain(s) found: spacing needs at least 2")
    ratio = gamma_ac = gamma_me = float("nan")
    if np.isfinite(d) and np.isfinite(R) and R > 0:
        gamma_ac = 1.0 / d**2
        if d > R:
            ratio = 1.0 / ((d / R) ** 2 - 1.0)
            gamma_me = ratio * gamma_ac
        else:
            notes.append(f"spacing d = {d:.4g} <= radius R = {R:.4g}: Gamma_me/Gamma_ac undefined")
    return R, d, ratio, gamma_ac, gamma_me, notes


def heterochromatin_threshold(density: np.ndarray, mask: np.ndarray) -> float:
    """Otsu threshold of the density values inside the mask."""
    vals = np.asarray(density, dtype=float)[np.asarray(mask, dtype=bool)]
    return float(otsu_threshold(vals))


def _hull_area(p: np.ndarray) -> float:
    try:
        return float(ConvexHull(p).volume)  # in 2-D, "volume" is the area
    except Exception:  # degenerate (collinear) cluster
        return 0.0


def baseline_from_points(
    points_nm: np.ndarray,
    density: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    extent: tuple[float, float, float, float] | None = None,
    pixel_size_nm: float | None = None,
    *,
    eps_nm: float = 30.0,
    min_samples: int = 3,
    min_points: int = 35,
) -> BaselineResult:
    """DBSCAN baseline on localisations.

    Args:
        points_nm: ``(N, 2)`` localisations ``(x, y)`` in nm.
        density: Density map ``[iy, ix]`` to threshold (None: cluster every point).
        mask: Nucleus mask of ``density``.
        extent: ``(x0, x1, y0, y1)`` of ``density`` in nm.
        pixel_size_nm: Pixel side of ``density``.
        eps_nm: DBSCAN neighbourhood radius.
        min_samples: DBSCAN core-point threshold.
        min_points: Smallest cluster kept.

    Returns:
        The domain statistics.
    """
    try:
        from sklearn.cluster import DBSCAN
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError("the DBSCAN baseline needs scikit-learn: pip install 'mollifier[imaging]'") from exc
    pts = np.asarray(points_nm, dtype=float).reshape(-1, 2)
    notes: list[str] = []
    params: dict[str, Any] = {"eps_nm": eps_nm, "min_samples": min_samples, "min_points": min_points}
    if density is not None:
        if mask is None or extent is None or pixel_size_nm is None:
            raise ValueError("density needs mask, extent and pixel_size_nm")
        t = heterochromatin_threshold(density, mask)
        params["threshold"] = t
        hetero = (np.asarray(density) > t) & np.asarray(mask, dtype=bool)
        ix = np.floor((pts[:, 0] - extent[0]) / pixel_size_nm).astype(int)
        iy = np.floor((pts[:, 1] - extent[2]) / pixel_size_nm).astype(int)
        ok = (ix >= 0) & (iy >= 0) & (ix < hetero.shape[1]) & (iy < hetero.shape[0])
        keep = np.zeros(len(pts), dtype=bool)
        keep[ok] = hetero[iy[ok], ix[ok]]
        pts = pts[keep]
    params["n_points_clustered"] = int(len(pts))
    centres: list[np.ndarray] = []
    radii: list[float] = []
    if len(pts) >= min_samples:
        labels = DBSCAN(eps=eps_nm, min_samples=min_samples).fit_predict(pts)
        counts = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(0, int)
        for lab in np.nonzero(counts >= min_points)[0]:
            p = pts[labels == lab]
            centres.append(p.mean(axis=0))
            radii.append(np.sqrt(_hull_area(p) / np.pi))
    else:
        notes.append("too few heterochromatin localisations to cluster")
    R, d, ratio, gac, gme, more = domain_statistics(np.array(centres).reshape(-1, 2), np.array(radii))
    return BaselineResult("dbscan", len(radii), R, d, ratio, gac, gme, "nm", np.array(centres).reshape(-1, 2), np.array(radii), notes + more, params)


def baseline_from_image(
    density: np.ndarray,
    mask: np.ndarray,
    pixel_size_nm: float | None = None,
    *,
    min_pixels: int = 2,
) -> BaselineResult:
    """Connected-component baseline on a density image (no localisations).

    Args:
        density: ``[iy, ix]`` density image.
        mask: Nucleus mask.
        pixel_size_nm: Pixel side (None: lengths in pixels).
        min_pixels: Smallest component kept.

    Returns:
        The domain statistics.
    """
    m = np.asarray(mask, dtype=bool)
    t = heterochromatin_threshold(density, m)
    hetero = (np.asarray(density, dtype=float) > t) & m
    labels, n = ndimage.label(hetero, structure=np.ones((3, 3)))
    px = float(pixel_size_nm) if pixel_size_nm else 1.0
    centres: list[tuple[float, float]] = []
    radii: list[float] = []
    if n:
        sizes = np.bincount(labels.ravel())[1:]
        com = ndimage.center_of_mass(hetero, labels, np.arange(1, n + 1))
        for k in range(n):
            if sizes[k] >= min_pixels:
                cy, cx = com[k]
                centres.append(((cx + 0.5) * px, (cy + 0.5) * px))
                radii.append(np.sqrt(sizes[k] * px * px / np.pi))
    R, d, ratio, gac, gme, notes = domain_statistics(np.array(centres).reshape(-1, 2), np.array(radii))
    return BaselineResult(
        "components", len(radii), R, d, ratio, gac, gme, "nm" if pixel_size_nm else "px",
        np.array(centres).reshape(-1, 2), np.array(radii), notes,
        {"threshold": t, "min_pixels": min_pixels, "connectivity": 8},
    )
