"""Reading rendered super-resolution images (TIFF, PNG, NPY) as 2-D float arrays.

* TIFF (8/16/32-bit, via the optional :mod:`tifffile`): the pixel size is taken from
  ImageJ metadata (``unit`` + X resolution) or the TIFF resolution tags (cm / inch
  units) when present; 72 and 96 dpi in inches are treated as "no calibration".
* PNG/JPEG: :mod:`matplotlib.image` or PIL, whichever is installed; RGB(A) is
  converted to grey (mean of R, G, B).
* NPY: ``numpy.load(allow_pickle=False)``.

A 3-D stack must be reduced to one plane with ``slice=`` (CLI ``--slice``) or
``project="max"|"mean"`` (CLI ``--project``); see :func:`reduce_stack`. Images with a
side above ``max_side`` (2048 by default) are block-averaged by an integer factor and
the pixel size scaled; a note says so. Arrays are indexed ``[row, col] = [iy, ix]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ._common import ImagingError, require_tifffile

__all__ = [
    "ImageData",
    "read_image",
    "read_array",
    "reduce_stack",
    "block_downsample",
    "write_tiff",
    "TIFF_SUFFIXES",
    "PNG_SUFFIXES",
]

TIFF_SUFFIXES = (".tif", ".tiff")
PNG_SUFFIXES = (".png", ".jpg", ".jpeg")
_UNIT_NM = {
    "nm": 1.0, "nanometer": 1.0, "nanometre": 1.0,
    "um": 1e3, "µm": 1e3, "μm": 1e3, "micron": 1e3, "microns": 1e3,
    "micrometer": 1e3, "micrometre": 1e3, "\\u00b5m": 1e3,
    "mm": 1e6, "cm": 1e7,
}


@dataclass
class ImageData:
    """A 2-D image and what is known about it.

    Attributes:
        data: ``(ny, nx)`` float64 image.
        pixel_size_nm: Pixel size in nm, None when unknown.
        source: The file read, or None.
        notes: Human-readable notes (projection, downsampling, colour conversion, ...).
        original_shape: Shape of the array in the file (before reduction).
        dtype: dtype of the array in the file.
    """

    data: np.ndarray
    pixel_size_nm: float | None = None
    source: Path | None = None
    notes: list[str] = field(default_factory=list)
    original_shape: tuple[int, ...] = ()
    dtype: str = "float64"

    @property
    def note(self) -> str:
        """All notes joined by ``"; "`` (empty string when none)."""
        return "; ".join(self.notes)


def _resolution_to_nm(value: Any) -> float | None:
    """Pixels-per-unit (a rational ``(num, den)`` or float) to unit-per-pixel."""
    try:
        if isinstance(value, tuple) and len(value) == 2:
            num, den = float(value[0]), float(value[1])
            ppu = num / den if den else 0.0
        else:
            ppu = float(value)
    except (TypeError, ValueError):
        return None
    return 1.0 / ppu if ppu > 0 else None


def _tiff_pixel_size(tif: Any) -> float | None:
    page = tif.pages[0]
    tags = page.tags
    xres = tags.get("XResolution")
    upp = _resolution_to_nm(xres.value) if xres is not None else None
    ij = getattr(tif, "imagej_metadata", None) or {}
    unit = str(ij.get("unit", "")).strip().lower() if ij else ""
    if unit and upp is not None and unit in _UNIT_NM:
        return upp * _UNIT_NM[unit]
    runit = tags.get("ResolutionUnit")
    rval = int(getattr(runit.value, "value", runit.value)) if runit is not None else 2
    if upp is None:
        return None
    if rval == 3:  # centimetre
        return upp * 1e7
    if rval == 2:  # inch; 72/96 dpi are writer defaults, not a calibration
        if round(1.0 / upp, 6) in (1.0, 72.0, 96.0, 300.0):
            return None
        return upp * 2.54e7
    return None  # no absolute unit


def _read_tiff(path: Path) -> tuple[np.ndarray, float | None, str]:
    tifffile = require_tifffile()
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        arr = series.asarray()
        axes = series.axes
        px = _tiff_pixel_size(tif)
    if axes.endswith("S") and arr.shape[-1] in (3, 4):
        axes = "RGB"
    return arr, px, axes


def _read_png(path: Path) -> np.ndarray:
    try:
        from PIL import Image

        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im)
            if im.mode == "P":
                arr = np.asarray(im.convert("RGB"))
        return arr
    except ImportError:
        pass
    try:
        import matplotlib.image as mpimg
    except ImportError as exc:  # pragma: no cover
        raise ImportError(
            "reading PNG/JPEG needs Pillow or matplotlib: pip install 'mollifier[plot]'"
        ) from exc
    return np.asarray(mpimg.imread(path))


def read_array(path: str | Path) -> tuple[np.ndarray, float | None, bool]:
    """Read the raw array of an image file, without any reduction.

    Args:
        path: ``.tif``/``.tiff``, ``.png``/``.jpg``/``.jpeg`` or ``.npy`` file.

    Returns:
        ``(array, pixel_size_nm or None, is_rgb)``.

    Raises:
        ImagingError: missing, unsupported or unreadable/corrupt file (the message
            names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise ImagingError(f"image file {str(path)!r} not found")
    suffix = path.suffix.lower()
    px: float | None = None
    rgb = False
    try:
        if suffix in TIFF_SUFFIXES:
            arr, px, axes = _read_tiff(path)
            rgb = axes == "RGB"
        elif suffix in PNG_SUFFIXES:
            arr = _read_png(path)
            rgb = arr.ndim == 3 and arr.shape[-1] in (3, 4)
        elif suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            raise ImagingError(
                f"image file {str(path)!r}: unsupported suffix {suffix!r}; use .tif/.tiff, "
                ".png/.jpg or .npy (localisation tables: .csv)"
            )
    except ImagingError:
        raise
    except ImportError:
        raise
    except Exception as exc:  # corrupt files raise many different types
        raise ImagingError(
            f"cannot read image file {str(path)!r} (corrupt or not a {suffix} file?): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise ImagingError(f"image file {str(path)!r} holds non-numeric data (dtype {arr.dtype})")
    return arr, px, rgb


def reduce_stack(
    stack: np.ndarray,
    slice: int | None = None,  # noqa: A002 - mirrors the CLI flag --slice
    project: Literal["max", "mean"] | None = None,
) -> np.ndarray:
    """Reduce a 3-D stack ``(n, ny, nx)`` to one 2-D plane.

    Args:
        stack: ``(n, ny, nx)`` array (2-D arrays are returned unchanged).
        slice: Index of the plane to keep (negative counts from the end).
        project: ``"max"`` or ``"mean"`` projection along the first axis.

    Returns:
        ``(ny, nx)`` array.

    Raises:
        ImagingError: both or neither of ``slice``/``project`` for a stack, ``slice``
            out of range, unknown ``project`` or an array that is not 2-D/3-D.
    """
    arr = np.asarray(stack)
    if arr.ndim == 2:
        return arr
    if arr.ndim != 3:
        raise ImagingError(f"stack must be 2-D or 3-D; got shape {arr.shape}")
    if slice is not None and project is not None:
        raise ImagingError("give either slice= (--slice) or project= (--project), not both")
    if slice is not None:
        n = arr.shape[0]
        if not -n <= int(slice) < n:
            raise ImagingError(f"slice={slice} is out of range for a stack of {n} planes")
        return arr[int(slice)]
    if project == "max":
        return arr.max(axis=0)
    if project == "mean":
        return arr.mean(axis=0)
    if project is not None:
        raise ImagingError(f"project must be 'max' or 'mean'; got {project!r}")
    raise ImagingError(
        f"the image is a 3-D stack of shape {arr.shape}; pick a plane with --slice N "
        "(slice=N) or project it with --project max|mean (project='max'|'mean')"
    )


def block_downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Block-average a 2-D image by an integer ``factor`` (edges padded by reflection).

    Args:
        image: ``(ny, nx)`` array.
        factor: Block side (>= 1).

    Returns:
        ``(ceil(ny/factor), ceil(nx/factor))`` float array.

    Raises:
        ImagingError: ``factor < 1`` or ``image`` not 2-D.
    """
    img = np.asarray(image, dtype=float)
    if img.ndim != 2:
        raise ImagingError(f"image must be 2-D; got shape {img.shape}")
    factor = int(factor)
    if factor < 1:
        raise ImagingError(f"factor must be >= 1; got {factor}")
    if factor == 1:
        return img
    ny, nx = img.shape
    py, pxp = (-ny) % factor, (-nx) % factor
    if py or pxp:
        img = np.pad(img, ((0, py), (0, pxp)), mode="reflect" if min(ny, nx) > 1 else "edge")
    return img.reshape(img.shape[0] // factor, factor, img.shape[1] // factor, factor).mean(axis=(1, 3))


def read_image(
    path: str | Path,
    *,
    slice: int | None = None,  # noqa: A002
    project: Literal["max", "mean"] | None = None,
    max_side: int | None = 2048,
    pixel_size_nm: float | None = None,
) -> ImageData:
    """Read a rendered image as a 2-D float array.

    Args:
        path: Image file (TIFF, PNG/JPEG or NPY).
        slice: For a 3-D stack, the plane to use.
        project: For a 3-D stack, ``"max"`` or ``"mean"`` projection.
        max_side: Larger images are block-averaged by ``ceil(side / max_side)``;
            None disables.
        pixel_size_nm: Pixel size in nm; overrides the file's calibration.

    Returns:
        The image, its pixel size (None if unknown) and notes.

    Raises:
        ImagingError: unreadable/corrupt file, a 3-D stack without ``slice`` or
            ``project``, a >3-D array, or an empty/non-finite image.
    """
    path = Path(path)
    arr, px_file, rgb = read_array(path)
    notes: list[str] = []
    original_shape = tuple(arr.shape)
    dtype = str(arr.dtype)
    if rgb:
        arr = arr[..., :3].astype(float).mean(axis=-1)
        notes.append("RGB image converted to grey (mean of R, G, B)")
    arr = np.squeeze(arr)
    if arr.ndim == 3:
        try:
            arr = reduce_stack(arr, slice=slice, project=project)
        except ImagingError as exc:
            raise ImagingError(f"image file {str(path)!r}: {exc}") from exc
        notes.append(f"stack {original_shape}: " + (f"plane {slice}" if slice is not None else f"{project} projection"))
    elif arr.ndim != 2:
        raise ImagingError(
            f"image file {str(path)!r} has shape {original_shape}; expected a 2-D image or a 3-D stack"
        )
    if arr.size == 0:
        raise ImagingError(f"image file {str(path)!r} is empty (shape {original_shape})")
    data = np.asarray(arr, dtype=float)
    if not np.isfinite(data).any():
        raise ImagingError(
            f"image file {str(path)!r} holds no finite values (all {data.size} pixels are NaN or infinite)"
        )
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
        notes.append(f"{bad} non-finite pixels set to 0")
    px = float(pixel_size_nm) if pixel_size_nm is not None else px_file
    if pixel_size_nm is not None and px_file is not None and abs(px_file - pixel_size_nm) > 1e-6 * pixel_size_nm:
        notes.append(f"pixel size {pixel_size_nm:g} nm given overrides {px_file:g} nm from the file")
    if max_side is not None and max(data.shape) > max_side:
        factor = int(np.ceil(max(data.shape) / max_side))
        shape0 = data.shape
        data = block_downsample(data, factor)
        if px is not None:
            px *= factor
        notes.append(
            f"image {shape0[0]}x{shape0[1]} exceeds {max_side} px a side: block-averaged by "
            f"{factor} to {data.shape[0]}x{data.shape[1]}"
            + (f" (pixel size now {px:g} nm)" if px is not None else "")
        )
    return ImageData(data=data, pixel_size_nm=px, source=path, notes=notes, original_shape=original_shape, dtype=dtype)


def write_tiff(path: str | Path | Any, image: np.ndarray, pixel_size_nm: float | None = None) -> Path | Any:
    """Write a 2-D (or 3-D stack) image as an ImageJ TIFF with the pixel size in microns.

    Args:
        path: Output file, or a seekable binary file object.
        image: Array (uint8, uint16 or float32 are stored as such; others as float32).
        pixel_size_nm: Pixel size to record; None for none.

    Returns:
        The path written.

    Raises:
        ImagingError: ``pixel_size_nm`` is not positive.
    """
    tifffile = require_tifffile()
    arr = np.asarray(image)
    if arr.dtype not in (np.uint8, np.uint16, np.float32):
        arr = arr.astype(np.float32)
    kwargs: dict[str, Any] = {"imagej": True}
    if pixel_size_nm is not None:
        if not pixel_size_nm > 0:
            raise ImagingError(f"pixel_size_nm must be > 0; got {pixel_size_nm}")
        ppu = 1000.0 / float(pixel_size_nm)  # pixels per micron
        kwargs["resolution"] = (ppu, ppu)
        kwargs["metadata"] = {"unit": "um", "axes": "ZYX" if arr.ndim == 3 else "YX"}
    target = path if hasattr(path, "write") else Path(path)
    tifffile.imwrite(target, arr, **kwargs)
    return target
