"""Nucleus masks: read from a file, drawn as a polygon (ROI), or found automatically.

Automatic segmentation: Gaussian smoothing, Otsu threshold (bright = inside),
connected components (4-connectivity), hole filling. :func:`find_nuclei` returns every
component at least :data:`MIN_NUCLEUS_FRACTION` of the largest one's area (several
nuclei in one field of view), largest first, and names the smaller ones it left out;
:func:`find_nucleus_mask` keeps only the largest. A mask that is empty or covers
(almost) the whole frame is rejected with a clear message: both usually mean the
threshold or the field of view is wrong.

A region of interest can be given as a polygon in nm (:func:`parse_roi`: ``"x1,y1 x2,y2
..."``, or a JSON/CSV file of vertices) and rasterised on the density map's grid
(:func:`polygon_mask`: pixels whose centre lies inside).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from ._common import ImagingError

#: Components smaller than this fraction of the largest one are not taken as nuclei.
MIN_NUCLEUS_FRACTION = 0.2

__all__ = [
    "MIN_NUCLEUS_FRACTION",
    "find_nuclei",
    "parse_roi",
    "polygon_mask",
    "otsu_threshold",
    "largest_component",
    "find_nucleus_mask",
    "load_mask",
    "check_mask",
    "nucleus_mask",
]


def otsu_threshold(values: np.ndarray, nbins: int = 256) -> float:
    """Otsu's threshold (maximum between-class variance) of a set of values.

    Args:
        values: Any array; non-finite entries are ignored.
        nbins: Histogram bins.

    Returns:
        The threshold t; "foreground" is ``values > t``.

    Raises:
        ImagingError: no finite value, or all values equal (nothing to separate).
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ImagingError("values has no finite entry; cannot compute an Otsu threshold")
    if v.min() == v.max():
        raise ImagingError(f"values are all equal ({v.min():g}); the image is flat, no threshold exists")
    hist, edges = np.histogram(v, bins=int(nbins))
    centers = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist).astype(float)  # weight of class <= bin i
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.where(w0 > 0, w0, 1)
    mu1 = (m0[-1] - m0) / np.where(w1 > 0, w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    i = int(np.argmax(between[:-1]))
    return float(edges[i + 1])


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 4-connected component of a boolean mask.

    Args:
        mask: 2-D boolean array.

    Returns:
        Boolean array, all False when ``mask`` is.
    """
    labels, n = ndimage.label(np.asarray(mask, dtype=bool))
    if n == 0:
        return np.zeros(labels.shape, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def check_mask(mask: np.ndarray, name: str = "mask", max_fraction: float = 0.99) -> np.ndarray:
    """Validate a nucleus mask: 2-D, not empty, not the whole frame.

    Args:
        mask: Array; nonzero = inside.
        name: How to call it in error messages.
        max_fraction: Largest accepted fraction of the frame inside the mask.

    Returns:
        The mask as a boolean array.

    Raises:
        ImagingError: not 2-D, empty, or covering more than ``max_fraction``.
    """
    m = np.asarray(mask) != 0
    if m.ndim != 2:
        raise ImagingError(f"{name} must be 2-D; got shape {m.shape}")
    n_in = int(m.sum())
    if n_in == 0:
        raise ImagingError(
            f"{name} is empty: no pixel inside the nucleus (threshold too high, wrong file, "
            "or an inverted mask?)"
        )
    frac = n_in / m.size
    if frac > max_fraction:
        raise ImagingError(
            f"{name} covers {100 * frac:.1f}% of the frame: the nucleus must be surrounded "
            "by background (crop less tightly, give a mask file, or check that the image "
            "is not inverted)"
        )
    return m


def find_nucleus_mask(
    image: np.ndarray,
    smooth_px: float = 2.0,
    *,
    threshold: float | None = None,
    fill_holes: bool = True,
    max_fraction: float = 0.99,
) -> np.ndarray:
    """Segment the nucleus in a density image (bright = nucleus).

    Steps: Gaussian smoothing (sigma ``smooth_px`` pixels), threshold (Otsu unless
    given), largest connected component, hole filling, then :func:`check_mask`.

    Args:
        image: 2-D density image.
        smooth_px: Smoothing sigma in pixels (0 for none).
        threshold: Fixed threshold on the smoothed image instead of Otsu.
        fill_holes: Fill holes inside the component (nucleoli, low-density regions).
        max_fraction: Largest accepted fraction of the frame inside the mask.

    Returns:
        Boolean mask of the image's shape.

    Raises:
        ImagingError: ``image`` not 2-D, a flat image, or an empty / full-frame mask.
    """
    img = np.asarray(image, dtype=float)
    if img.ndim != 2:
        raise ImagingError(f"image must be 2-D; got shape {img.shape}")
    if smooth_px < 0:
        raise ImagingError(f"smooth_px must be >= 0; got {smooth_px}")
    sm = ndimage.gaussian_filter(img, smooth_px, mode="nearest") if smooth_px > 0 else img
    try:
        t = otsu_threshold(sm) if threshold is None else float(threshold)
    except ImagingError as exc:
        raise ImagingError(f"automatic nucleus mask failed: {exc}") from exc
    m = largest_component(sm > t)
    if fill_holes:
        m = ndimage.binary_fill_holes(m)
    return check_mask(m, name="automatic nucleus mask", max_fraction=max_fraction)


def load_mask(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask file (TIFF/PNG/NPY; nonzero = inside) and validate it.

    Args:
        path: The mask file.
        shape: Expected ``(ny, nx)``; None to skip the check.

    Returns:
        Boolean mask.

    Raises:
        ImagingError: unreadable file, wrong shape, empty or full-frame mask.
    """
    from .images import read_image

    img = read_image(path, max_side=None)
    m = img.data != 0
    if shape is not None and m.shape != tuple(shape):
        raise ImagingError(
            f"mask file {str(path)!r} has shape {m.shape} but the image has shape {tuple(shape)}"
        )
    return check_mask(m, name=f"mask file {str(path)!r}")


def nucleus_mask(
    image: np.ndarray,
    mask: str | Path | np.ndarray | None = None,
    smooth_px: float = 2.0,
) -> np.ndarray:
    """Get the nucleus mask: from a file/array when given, otherwise automatically.

    Args:
        image: 2-D density image.
        mask: Mask file path, boolean/nonzero array, or None for :func:`find_nucleus_mask`.
        smooth_px: Smoothing for the automatic mask.

    Returns:
        Boolean mask of ``image``'s shape.

    Raises:
        ImagingError: see :func:`load_mask`, :func:`check_mask`, :func:`find_nucleus_mask`.
    """
    img = np.asarray(image)
    if mask is None:
        return find_nucleus_mask(img, smooth_px)
    if isinstance(mask, (str, Path)):
        return load_mask(mask, shape=img.shape)
    m = np.asarray(mask)
    if m.shape != img.shape:
        raise ImagingError(f"mask has shape {m.shape} but the image has shape {img.shape}")
    return check_mask(m)


def find_nuclei(
    image: np.ndarray,
    smooth_px: float = 2.0,
    *,
    threshold: float | None = None,
    min_fraction: float = MIN_NUCLEUS_FRACTION,
    max_fraction: float = 0.99,
) -> tuple[list[np.ndarray], list[str]]:
    """Every nucleus in a density image (bright = nucleus), largest first.

    Steps: Gaussian smoothing (sigma ``smooth_px`` pixels), threshold (Otsu unless
    given), holes filled, connected components; components of at least
    ``min_fraction`` times the largest one's area are nuclei.

    Args:
        image: 2-D density image.
        smooth_px: Smoothing sigma in pixels (0 for none).
        threshold: Fixed threshold on the smoothed image instead of Otsu.
        min_fraction: Smallest nucleus area relative to the largest, in (0, 1].
        max_fraction: Largest accepted fraction of the frame inside all nuclei.

    Returns:
        ``(masks, notes)``: one boolean mask per nucleus (largest first) and notes naming
        the smaller bright regions left out.

    Raises:
        ImagingError: ``image`` not 2-D, no finite value, a flat image, or an empty /
            full-frame foreground.
    """
    img = np.asarray(image, dtype=float)
    if img.ndim != 2:
        raise ImagingError(f"image must be 2-D; got shape {img.shape}")
    if smooth_px < 0:
        raise ImagingError(f"smooth_px must be >= 0; got {smooth_px}")
    if not 0 < min_fraction <= 1:
        raise ImagingError(f"min_fraction must be in (0, 1]; got {min_fraction}")
    if not np.isfinite(img).any():
        raise ImagingError("automatic nucleus mask failed: the image holds no finite values")
    sm = ndimage.gaussian_filter(np.nan_to_num(img), smooth_px, mode="nearest") if smooth_px > 0 else np.nan_to_num(img)
    try:
        t = otsu_threshold(sm) if threshold is None else float(threshold)
    except ImagingError as exc:
        raise ImagingError(f"automatic nucleus mask failed: {exc}") from exc
    fg = ndimage.binary_fill_holes(sm > t)
    check_mask(fg, name="automatic nucleus mask", max_fraction=max_fraction)
    labels, n = ndimage.label(fg)
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(-sizes, kind="stable")
    keep = [int(k) for k in order if sizes[k] >= min_fraction * sizes[order[0]]]
    dropped = [int(sizes[k]) for k in order if int(k) not in keep]
    notes = []
    if dropped:
        shown = ", ".join(str(d) for d in dropped[:5]) + (", ..." if len(dropped) > 5 else "")
        notes.append(
            f"{len(dropped)} smaller bright region(s) ({shown} px) left out: under {min_fraction:.0%} of the "
            f"largest nucleus ({int(sizes[order[0]])} px)"
        )
    return [labels == k + 1 for k in keep], notes


def parse_roi(roi: str | Path) -> np.ndarray:
    """Vertices ``(K, 2)`` (x, y in nm) of a polygonal region of interest.

    Accepted: a string ``"x1,y1 x2,y2 x3,y3 ..."`` (``;`` also separates vertices), or a
    file: ``.json`` (a list of ``[x, y]`` pairs, ``{"polygon": [...]}`` or ``{"x": [...],
    "y": [...]}``) or ``.csv``/``.txt`` (two columns x, y; a header line is skipped).

    Raises:
        ImagingError: unreadable file, fewer than 3 vertices, or non-numeric values
            (the message names --roi and what was received).
    """
    import json

    text = str(roi).strip()
    path = Path(text)
    try:
        is_file = path.suffix.lower() in (".json", ".csv", ".txt") and path.is_file()
    except OSError:
        is_file = False
    try:
        if is_file and path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            if isinstance(data, dict) and "polygon" in data:
                data = data["polygon"]
            if isinstance(data, dict) and "x" in data and "y" in data:
                data = list(zip(data["x"], data["y"]))
            verts = np.asarray(data, dtype=float)
        elif is_file:
            rows = []
            for line in path.read_text().splitlines():
                parts = [p for p in line.replace(";", ",").replace("\t", ",").split(",") if p.strip()]
                if len(parts) < 2:
                    continue
                try:
                    rows.append([float(parts[0]), float(parts[1])])
                except ValueError:
                    if rows:
                        raise
            verts = np.asarray(rows, dtype=float)
        else:
            pairs = [p for p in text.replace(";", " ").split() if p]
            verts = np.asarray([[float(v) for v in pair.split(",")] for pair in pairs], dtype=float)
    except (ValueError, TypeError, OSError, json.JSONDecodeError) as exc:
        raise ImagingError(
            f"--roi must be vertices 'x1,y1 x2,y2 x3,y3 ...' in nm or a .json/.csv file of them; got {text!r} ({exc})"
        ) from None
    if verts.ndim != 2 or verts.shape[1] != 2 or verts.shape[0] < 3 or not np.isfinite(verts).all():
        raise ImagingError(f"--roi needs at least 3 finite (x, y) vertices in nm; got {verts.tolist()!r} from {text!r}")
    return verts


def polygon_mask(vertices_nm: np.ndarray, shape: tuple[int, int], extent: tuple[float, float, float, float]) -> np.ndarray:
    """Pixels of a ``shape`` grid over ``extent`` (nm) whose centre lies inside the polygon.

    Even-odd rule; the polygon is closed automatically.

    Raises:
        ImagingError: the polygon covers no pixel centre, or the whole frame.
    """
    verts = np.asarray(vertices_nm, dtype=float)
    ny, nx = shape
    x0, x1, y0, y1 = extent
    px, py = (x1 - x0) / nx, (y1 - y0) / ny
    xc = x0 + (np.arange(nx) + 0.5) * px
    yc = y0 + (np.arange(ny) + 0.5) * py
    X, Y = np.meshgrid(xc, yc)
    inside = np.zeros(shape, dtype=bool)
    xa, ya = verts[:, 0], verts[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    for ax, ay, bx, by in zip(xa, ya, xb, yb):
        crosses = (ay > Y) != (by > Y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = ax + (Y - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (X < x_at)
    if not inside.any():
        raise ImagingError(
            f"--roi polygon (x {xa.min():.0f}-{xa.max():.0f} nm, y {ya.min():.0f}-{ya.max():.0f} nm) covers no pixel of "
            f"the map (x {x0:.0f}-{x1:.0f} nm, y {y0:.0f}-{y1:.0f} nm)"
        )
    return check_mask(inside, name="--roi polygon")
