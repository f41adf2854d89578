"""Localisations -> density map (localisations per pixel), in memory or chunk by chunk.

Three renderings, all in localisations per pixel:

* ``histogram``: each localisation counts 1 in the pixel that holds it.
* ``precision``: each localisation is a 2-D Gaussian of standard deviation its own
  precision, integrated exactly over the pixels (differences of the normal CDF at the
  pixel edges, per axis, over +-4 standard deviations), so its unit mass is shared
  among the pixels it overlaps and the map still sums to the number of localisations.
  Precisions above :data:`MAX_SPLAT_PX` pixels are clipped there (a note says how many).
* ``voronoi``: 1 / (Voronoi cell area) of the localisation nearest each pixel centre,
  times the pixel area (needs every localisation in memory).

Grid. Without a given extent the pixels are aligned to whole multiples of the pixel
size (pixel ``i`` spans ``[i p, (i + 1) p)``), so a table rendered whole or chunk by
chunk (:class:`DensityAccumulator` grows its grid as chunks arrive) gives the same
image. Images are indexed ``[iy, ix]``; ``extent = (x0, x1, y0, y1)`` in nm gives the
outer pixel edges, so pixel ``(iy, ix)`` is centred at ``(x0 + (ix + 0.5) p, y0 + (iy + 0.5) p)``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from scipy import ndimage
from scipy.special import ndtr

from ._common import ImagingError
from .table import LocalizationTable

__all__ = [
    "MAX_PIXELS",
    "MAX_SPLAT_PX",
    "METHODS",
    "DensityAccumulator",
    "Extent",
    "density_map",
    "voronoi_density",
]

Extent = tuple[float, float, float, float]
#: Renderings known to :func:`density_map`.
METHODS = ("histogram", "precision", "voronoi")
#: Largest density map (pixels).
MAX_PIXELS = 10**8
#: Precisions wider than this many pixels are clipped to it in ``precision`` renders.
MAX_SPLAT_PX = 3.0
_SPLAT_ENTRIES = 1 << 22  # weights per batch of a precision render (~32 MB)


def _as_points(points_nm: np.ndarray | LocalizationTable) -> np.ndarray:
    if isinstance(points_nm, LocalizationTable):
        return points_nm.points
    pts = np.asarray(points_nm, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ImagingError(f"points_nm must have shape (N, 2); got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ImagingError("points_nm contains non-finite coordinates")
    return pts


def _check_pixel(pixel_size_nm: float) -> float:
    if not (isinstance(pixel_size_nm, (int, float, np.floating)) and pixel_size_nm > 0 and math.isfinite(pixel_size_nm)):
        raise ImagingError(f"pixel_size_nm must be a number > 0; got {pixel_size_nm!r}")
    return float(pixel_size_nm)


class DensityAccumulator:
    """A density map built chunk by chunk (memory: the image, not the localisations).

    Args:
        pixel_size_nm: Pixel side (nm).
        extent: ``(x0, x1, y0, y1)`` in nm (rounded to whole pixels from ``x0``, ``y0``);
            localisations outside are counted in :attr:`outside` and left out. None: the
            grid is aligned to multiples of the pixel and grows to hold every localisation.
        method: ``"histogram"`` or ``"precision"``.

    Attributes:
        added: Localisations rendered into the map.
        outside: Localisations outside a given extent.
        clipped: Localisations whose precision was clipped (``precision`` only).
        no_precision: Localisations without a finite positive precision, counted as points.

    Raises:
        ImagingError: bad pixel size, extent or method.
    """

    def __init__(self, pixel_size_nm: float, extent: Extent | None = None,
                 method: Literal["histogram", "precision"] = "histogram") -> None:
        self.pixel = _check_pixel(pixel_size_nm)
        if method not in ("histogram", "precision"):
            raise ImagingError(f"method must be 'histogram' or 'precision' for chunked rendering; got {method!r}")
        self.method = method
        self.fixed = extent is not None
        self.added = self.outside = self.clipped = self.no_precision = 0
        self._img: np.ndarray | None = None
        if extent is not None:
            x0, x1, y0, y1 = (float(v) for v in extent)
            if not (x1 > x0 and y1 > y0) or not all(math.isfinite(v) for v in (x0, x1, y0, y1)):
                raise ImagingError(f"extent must be (x0, x1, y0, y1) with x1 > x0, y1 > y0; got {extent}")
            self.x0, self.y0 = x0, y0
            nx = max(1, int(round((x1 - x0) / self.pixel)))
            ny = max(1, int(round((y1 - y0) / self.pixel)))
            self._check_size(ny, nx)
            self._img = np.zeros((ny, nx))
            self._ix0 = self._iy0 = 0

    def _check_size(self, ny: int, nx: int) -> None:
        if ny * nx > MAX_PIXELS:
            raise ImagingError(
                f"density map of {ny} x {nx} pixels is too large (more than {MAX_PIXELS:.0e}); increase the render "
                f"pixel (--render-pixel-nm, now {self.pixel:g} nm) or select a region"
            )

    def _grow(self, ix_lo: int, ix_hi: int, iy_lo: int, iy_hi: int) -> None:
        """Make the (aligned) grid cover pixel indices ``[ix_lo, ix_hi] x [iy_lo, iy_hi]``."""
        if self._img is None:
            self._ix0, self._iy0 = ix_lo, iy_lo
            self._check_size(iy_hi - iy_lo + 1, ix_hi - ix_lo + 1)
            self._img = np.zeros((iy_hi - iy_lo + 1, ix_hi - ix_lo + 1))
            return
        ny, nx = self._img.shape
        lo_x, lo_y = min(ix_lo, self._ix0), min(iy_lo, self._iy0)
        hi_x, hi_y = max(ix_hi, self._ix0 + nx - 1), max(iy_hi, self._iy0 + ny - 1)
        if (lo_x, lo_y, hi_x, hi_y) == (self._ix0, self._iy0, self._ix0 + nx - 1, self._iy0 + ny - 1):
            return
        self._check_size(hi_y - lo_y + 1, hi_x - lo_x + 1)
        img = np.zeros((hi_y - lo_y + 1, hi_x - lo_x + 1))
        img[self._iy0 - lo_y:self._iy0 - lo_y + ny, self._ix0 - lo_x:self._ix0 - lo_x + nx] = self._img
        self._img, self._ix0, self._iy0 = img, lo_x, lo_y

    def add(self, x_nm: np.ndarray, y_nm: np.ndarray, precision_nm: np.ndarray | None = None) -> None:
        """Render one chunk of localisations (finite coordinates, nm)."""
        x = np.asarray(x_nm, dtype=np.float64)
        y = np.asarray(y_nm, dtype=np.float64)
        if x.size == 0:
            return
        if self.method == "precision":
            if precision_nm is None:
                raise ImagingError("a precision render needs each localisation's precision; this table has none")
            self._add_precision(x, y, np.asarray(precision_nm, dtype=np.float64))
            return
        if self.fixed:
            u = (x - self.x0) / self.pixel
            v = (y - self.y0) / self.pixel
            ny, nx = self._img.shape  # type: ignore[union-attr]
            keep = (u >= 0) & (u < nx) & (v >= 0) & (v < ny)
            self.outside += int((~keep).sum())
            ix = np.floor(u[keep]).astype(np.int64)
            iy = np.floor(v[keep]).astype(np.int64)
        else:
            ix = np.floor(x / self.pixel).astype(np.int64)
            iy = np.floor(y / self.pixel).astype(np.int64)
            self._grow(int(ix.min()), int(ix.max()), int(iy.min()), int(iy.max()))
            ix -= self._ix0
            iy -= self._iy0
        ny, nx = self._img.shape  # type: ignore[union-attr]
        counts = np.bincount(iy * nx + ix, minlength=ny * nx)
        self._img += counts.reshape(ny, nx)  # type: ignore[operator]
        self.added += int(ix.size)

    def _add_precision(self, x: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> None:
        s = sigma / self.pixel
        bad = ~(np.isfinite(s) & (s > 0))
        self.no_precision += int(bad.sum())
        s = np.where(bad, 0.0, s)
        wide = s > MAX_SPLAT_PX
        self.clipped += int(wide.sum())
        s = np.minimum(s, MAX_SPLAT_PX)
        if self.fixed:
            u = (x - self.x0) / self.pixel
            v = (y - self.y0) / self.pixel
        else:
            u = x / self.pixel
            v = y / self.pixel
        reach = np.ceil(4.0 * s).astype(np.int64)
        cu, cv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
        if not self.fixed:
            self._grow(int((cu - reach).min()), int((cu + reach).max()), int((cv - reach).min()), int((cv + reach).max()))
            cu, cv = cu - self._ix0, cv - self._iy0
            u, v = u - self._ix0, v - self._iy0
        ny, nx = self._img.shape  # type: ignore[union-attr]
        flat = self._img.reshape(-1)  # type: ignore[union-attr]
        inside_mass = 0.0
        for k in np.unique(reach):
            sel = np.nonzero(reach == k)[0]
            width = 2 * int(k) + 1
            batch = max(1, _SPLAT_ENTRIES // (width * width))
            offsets = np.arange(-int(k), int(k) + 1)
            for start in range(0, sel.size, batch):
                idx = sel[start:start + batch]
                px = cu[idx, None] + offsets  # (n, width) pixel indices per axis
                py = cv[idx, None] + offsets
                wx = _pixel_weights(u[idx], s[idx], px)
                wy = _pixel_weights(v[idx], s[idx], py)
                ok_x = (px >= 0) & (px < nx)
                ok_y = (py >= 0) & (py < ny)
                w = (wy * ok_y)[:, :, None] * (wx * ok_x)[:, None, :]
                flat_idx = np.clip(py, 0, ny - 1)[:, :, None] * nx + np.clip(px, 0, nx - 1)[:, None, :]
                flat += np.bincount(flat_idx.reshape(-1), weights=w.reshape(-1), minlength=ny * nx)
                inside_mass += float(w.sum())
        self.added += x.size
        self.outside += int(round(x.size - inside_mass)) if self.fixed else 0

    def image(self) -> tuple[np.ndarray, Extent]:
        """The density map and its extent (nm).

        Raises:
            ImagingError: nothing was rendered and no extent was given.
        """
        if self._img is None:
            raise ImagingError("no localisations to render and no extent given")
        ny, nx = self._img.shape
        if self.fixed:
            x0, y0 = self.x0, self.y0
        else:
            x0, y0 = self._ix0 * self.pixel, self._iy0 * self.pixel
        return self._img, (x0, x0 + nx * self.pixel, y0, y0 + ny * self.pixel)


def _pixel_weights(u: np.ndarray, s: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Mass of N(u, s^2) in pixels ``[i, i + 1)`` (point masses where ``s == 0``), scaled
    to sum to 1 over the window (the tails beyond 4 s, < 1e-4, are folded back in)."""
    pos = s[:, None] > 0
    safe = np.where(pos, s[:, None], 1.0)
    w = ndtr((pixels + 1 - u[:, None]) / safe) - ndtr((pixels - u[:, None]) / safe)
    w /= w.sum(axis=1, keepdims=True)
    point = (pixels == np.floor(u)[:, None]).astype(np.float64)
    return np.where(pos, w, point)


def voronoi_density(points_nm: np.ndarray) -> np.ndarray:
    """Local density of each localisation as ``1 / (Voronoi cell area)`` (per nm^2).

    Duplicate points share one cell (density = multiplicity / area). Points with an
    unbounded cell (on the convex hull) get density 0.

    Args:
        points_nm: ``(N, 2)`` coordinates in nm, N >= 4.

    Returns:
        ``(N,)`` densities in localisations / nm^2.

    Raises:
        ImagingError: fewer than 4 distinct points.
    """
    from scipy.spatial import QhullError, Voronoi

    pts = _as_points(points_nm)
    uniq, inverse, counts = np.unique(pts, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    if uniq.shape[0] < 4:
        raise ImagingError(f"points_nm needs at least 4 distinct points for Voronoi; got {uniq.shape[0]}")
    try:
        vor = Voronoi(uniq)
    except QhullError as exc:
        raise ImagingError(f"Voronoi tessellation failed (degenerate points?): {exc}") from exc
    dens = np.zeros(uniq.shape[0])
    verts = vor.vertices
    for i, reg_idx in enumerate(vor.point_region):
        region = vor.regions[reg_idx]
        if not region or -1 in region:
            continue
        poly = verts[region]
        c = poly.mean(axis=0)
        order = np.argsort(np.arctan2(poly[:, 1] - c[1], poly[:, 0] - c[0]))
        px, py = poly[order, 0], poly[order, 1]
        area = 0.5 * abs(np.dot(px, np.roll(py, -1)) - np.dot(py, np.roll(px, -1)))
        if area > 0:
            dens[i] = counts[i] / area
    return dens[inverse]


def density_map(
    points_nm: np.ndarray | LocalizationTable,
    pixel_size_nm: float,
    extent: Extent | None = None,
    blur_nm: float | None = None,
    *,
    method: Literal["histogram", "precision", "voronoi"] = "histogram",
    precision_nm: np.ndarray | None = None,
    return_extent: bool = False,
) -> np.ndarray | tuple[np.ndarray, Extent]:
    """Render localisations held in memory to a density image (localisations per pixel).

    ``histogram`` and ``precision`` conserve the count of localisations inside the
    extent; ``voronoi`` gives ``1 / area`` of the cell holding each pixel centre times
    the pixel area (pixels farther than 3 pixels from any localisation, or in unbounded
    cells, are 0). ``blur_nm`` then applies a Gaussian blur of that standard deviation
    with reflecting borders (sum preserved).

    Args:
        points_nm: ``(N, 2)`` ``(x, y)`` in nm, or a :class:`LocalizationTable` (whose
            precision a ``precision`` render uses).
        pixel_size_nm: Output pixel size in nm.
        extent: ``(x0, x1, y0, y1)`` in nm; None for the pixel-aligned bounding box.
        blur_nm: Gaussian blur sigma in nm; None or 0 for no blur.
        method: ``"histogram"``, ``"precision"`` or ``"voronoi"``.
        precision_nm: Per-localisation precision for ``precision`` (default: the table's).
        return_extent: Also return the extent actually used.

    Returns:
        ``(ny, nx)`` float image indexed ``[iy, ix]``, or ``(image, extent)``.

    Raises:
        ImagingError: bad ``points_nm``, ``pixel_size_nm``, ``extent``, ``blur_nm``,
            ``method`` or a missing precision.
    """
    pts = _as_points(points_nm)
    pixel = _check_pixel(pixel_size_nm)
    if method not in METHODS:
        raise ImagingError(f"method must be one of {METHODS}; got {method!r}")
    if extent is None and pts.shape[0] == 0:
        raise ImagingError("points_nm is empty and no extent is given")
    if method == "voronoi":
        from scipy.spatial import cKDTree

        acc = DensityAccumulator(pixel, extent)
        if extent is None:
            acc.add(pts[:, 0], pts[:, 1])
        img, ext = acc.image()
        ny, nx = img.shape
        dens = voronoi_density(pts)
        xc = ext[0] + (np.arange(nx) + 0.5) * pixel
        yc = ext[2] + (np.arange(ny) + 0.5) * pixel
        gx, gy = np.meshgrid(xc, yc)
        dist, idx = cKDTree(pts).query(np.column_stack([gx.ravel(), gy.ravel()]))
        vals = dens[idx] * pixel**2
        vals[dist > 3 * pixel] = 0.0
        img = vals.reshape(ny, nx)
    else:
        if method == "precision" and precision_nm is None and isinstance(points_nm, LocalizationTable):
            precision_nm = points_nm.precision_nm
        acc = DensityAccumulator(pixel, extent, method)  # type: ignore[arg-type]
        acc.add(pts[:, 0], pts[:, 1], precision_nm)
        img, ext = acc.image()
    img = blur(img, blur_nm, pixel)
    return (img, ext) if return_extent else img


def blur(image: np.ndarray, blur_nm: float | None, pixel_size_nm: float) -> np.ndarray:
    """Gaussian blur of standard deviation ``blur_nm`` (reflecting borders); None/0: unchanged.

    Raises:
        ImagingError: a negative ``blur_nm`` (names --blur-nm).
    """
    if blur_nm is None or blur_nm == 0:
        return np.asarray(image, dtype=float)
    if not blur_nm > 0:
        raise ImagingError(f"blur_nm (--blur-nm) must be >= 0; got {blur_nm}")
    return ndimage.gaussian_filter(np.asarray(image, dtype=float), sigma=float(blur_nm) / float(pixel_size_nm), mode="reflect")
