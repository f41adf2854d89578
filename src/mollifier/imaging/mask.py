"""Nucleus masks: read from a file or found automatically.

Automatic segmentation (:func:`find_nucleus_mask`): Gaussian smoothing, Otsu threshold
(bright = inside), largest connected component (4-connectivity), hole filling. A mask
that is empty or covers (almost) the whole frame is rejected with a clear message:
both usually mean the threshold or the field of view is wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from ._common import ImagingError

__all__ = [
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
