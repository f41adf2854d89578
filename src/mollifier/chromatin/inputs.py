"""Stage 1 of ``mollifier chromatin``: an input file -> a density map and what it rests on.

* Localisation tables (every format of :data:`mollifier.imaging.readers.READERS`) are
  streamed chunk by chunk: each chunk is filtered by the user's selection (channel, z
  slab, frames, precision limit) and rendered into a growing density map
  (:class:`~mollifier.imaging.render.DensityAccumulator`), so memory holds the map, not
  the table. Up to :data:`~mollifier.chromatin.options.KEEP_POINTS` localisations are
  also kept for the DBSCAN baseline (and Voronoi renders).
* Images (TIFF/PNG/NPY) are read whole; images with pixels finer than ~70 % of the
  working pixel are summed in blocks towards it (fourth derivatives of a fine render
  are dominated by counting noise).

The result, :class:`NucleusInput`, records everything the map rests on: the table's
format, the columns used and those left out (:attr:`NucleusInput.left_out`, also
printed on stderr by the CLI), units, the pixel size and its source, how many
localisations each selection removed, the z range projected, the channels.
:func:`inspect_input` gives the same facts without rendering a nucleus (``--inspect``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..imaging import ImagingError
from ..imaging.images import PNG_SUFFIXES, TIFF_SUFFIXES, block_downsample, read_image
from ..imaging.mask import load_mask, parse_roi, polygon_mask
from ..imaging.readers import READERS, Probe, detect_format, open_table, table_suffixes, uncompressed_name
from ..imaging.readers.text import sniff_csv
from ..imaging.render import DensityAccumulator, Extent, blur, density_map
from ..imaging.table import ReadOptions, SelectionCounts, select
from .options import KEEP_POINTS, InputOptions

__all__ = [
    "IMAGE_SUFFIXES",
    "NucleusInput",
    "TableFacts",
    "collect_inputs",
    "input_kind",
    "inspect_input",
    "load_input",
]

IMAGE_SUFFIXES = set(TIFF_SUFFIXES) | set(PNG_SUFFIXES) | {".npy"}
_AMBIGUOUS = {".txt", ".dat", ".xls"}  # also plain documents: a folder scan looks at the content


@dataclass
class TableFacts:
    """What reading a localisation table found (``--inspect`` and ``summary.json``).

    Attributes:
        format: Reader name.
        columns_used: Role -> column.
        columns_ignored: Columns not read.
        units: Role -> unit in the file.
        pixel_size_nm, pixel_size_source: The camera pixel and where it came from.
        counts: Localisations read, kept, removed per selection, channels, z and frame ranges.
        x_range_nm, y_range_nm: ``[min, max]`` of the kept localisations (nm).
        precision_range_nm: ``[min, max]`` precision of the kept localisations, if any.
        has_photons: The table has a photon column.
        dropped_nonfinite: Rows dropped for a non-finite x or y.
    """

    format: str
    columns_used: dict[str, str]
    columns_ignored: list[str]
    units: dict[str, str]
    pixel_size_nm: float | None
    pixel_size_source: str | None
    counts: SelectionCounts
    x_range_nm: list[float] = field(default_factory=list)
    y_range_nm: list[float] = field(default_factory=list)
    precision_range_nm: list[float] | None = None
    has_photons: bool = False
    dropped_nonfinite: int = 0

    def as_dict(self) -> dict[str, Any]:
        c = self.counts
        return {
            "format": self.format,
            "localizations": c.kept,
            "localizations_read": c.read,
            "removed": dict(c.removed),
            "dropped_nonfinite": self.dropped_nonfinite,
            "x_range_nm": self.x_range_nm,
            "y_range_nm": self.y_range_nm,
            "z_range_nm": None if c.z_min is None else [c.z_min, c.z_max],
            "frames": None if c.frame_min is None else [c.frame_min, c.frame_max],
            "channels": dict(sorted(c.channels.items())) or None,
            "precision_range_nm": self.precision_range_nm,
            "columns_used": dict(self.columns_used),
            "columns_ignored": list(self.columns_ignored),
            "units": dict(self.units),
            "pixel_size_nm": self.pixel_size_nm,
            "pixel_size_source": self.pixel_size_source,
        }


@dataclass
class NucleusInput:
    """A density map of one field of view and where it came from (maps ``[iy, ix]``).

    Attributes:
        density: Density map (localisations per pixel, or image intensity).
        pixel_size_nm: Pixel side in nm (None if unknown: image input only).
        kind: ``"localisations"`` or ``"image"``.
        source: Input file.
        extent_nm: ``(x0, x1, y0, y1)`` of the map (nm), None for images.
        points_nm: ``(N, 2)`` localisations kept for the DBSCAN baseline, or None.
        mask: The user's nucleus mask (``--mask``/``--roi``) on the map's grid, or None
            (nuclei found automatically).
        mask_source: ``"--mask FILE"``, ``"--roi"`` or None.
        counts: Whether ``density`` counts localisations (the sparsity rule applies).
        table: Facts of the table read (None for images).
        notes: Human-readable notes.
        left_out: Columns and dimensions of the data that the map does not use, in words.
    """

    density: np.ndarray
    pixel_size_nm: float | None
    kind: str
    source: Path | None = None
    extent_nm: Extent | None = None
    points_nm: np.ndarray | None = None
    mask: np.ndarray | None = None
    mask_source: str | None = None
    counts: bool = False
    table: TableFacts | None = None
    notes: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def _is_sidecar(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".truth.npz"):
        return "truth sidecar"
    if path.suffix.lower() in (".yaml", ".yml"):
        for suffix in (".hdf5", ".h5"):
            if path.with_suffix(suffix).is_file():
                return f"Picasso sidecar of {path.with_suffix(suffix).name}"
    return None


def input_kind(path: Path, *, strict: bool = False) -> str | None:
    """``"image"``, ``"localisations"`` or None.

    By suffix first (images; the table suffixes of :data:`~mollifier.imaging.readers.READERS`,
    also compressed), then by content. ``strict`` (folder scans): a ``.txt``/``.dat`` file,
    or one with another suffix, counts as a table only if a specific reader, or a header
    with coordinate columns, recognises it -- not any text (a LICENSE.txt).
    """
    path = Path(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    suffix = Path(uncompressed_name(path)).suffix.lower()
    if suffix in table_suffixes() and not (strict and suffix in _AMBIGUOUS):
        return "localisations"
    if not path.is_file():
        return None
    try:
        probe = Probe(path)
        for reader in READERS:
            if reader.name == "csv":
                ok = (probe.is_text and sniff_csv(probe.lines)) if strict else reader.sniff(probe)
            else:
                ok = reader.sniff(probe)
            if ok:
                return "localisations"
    except (ImagingError, ImportError):
        return None
    return None


def collect_inputs(items: list[str | Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files to analyse, and the files of the folders given that are left out (with why).

    Folders are expanded (sorted) into their tables and images; hidden files are
    ignored; sidecars (Picasso ``.yaml``, ``.truth.npz``) and unreadable kinds are
    returned as skipped. Files named directly are kept as given (a missing one is
    reported per input).

    Raises:
        FileNotFoundError: a folder holds no table or image.
    """
    paths: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = []
            for f in sorted(p.iterdir()):
                if f.name.startswith(".") or not f.is_file():
                    continue
                why = _is_sidecar(f)
                if why is None and input_kind(f, strict=True) is not None:
                    found.append(f)
                else:
                    skipped.append((f, why or "not a localisation table or image this version reads"))
            if not found:
                raise FileNotFoundError(
                    f"folder {str(item)!r} holds no localisation table or image"
                    + (f" (left out: {', '.join(f'{s.name} ({w})' for s, w in skipped)})" if skipped else "")
                )
            paths += found
        else:
            paths.append(p)
    return paths, skipped


# ---------------------------------------------------------------- images


def _load_image(path: Path, options: InputOptions) -> NucleusInput:
    img = read_image(path, pixel_size_nm=options.pixel_size_nm, slice=options.slice, project=options.project)  # type: ignore[arg-type]
    notes = list(img.notes)
    image, px = img.data, img.pixel_size_nm
    user = load_mask(options.mask, shape=image.shape) if options.mask is not None else None
    target = options.pixel_nm
    if px is not None and px < target / 1.4:
        factor = int(round(target / px))
        image = block_downsample(image, factor) * factor**2
        notes.append(f"{px:g} nm pixels summed in blocks of {factor}x{factor} to {px * factor:g} nm")
        px *= factor
        if user is not None:
            user = block_downsample(user.astype(float), factor) >= 0.5
    source = f"--mask {options.mask}" if user is not None else None
    if options.roi is not None:
        if px is None:
            raise ImagingError(f"--roi is in nm, but image {str(path)!r} has no pixel size; give --pixel-size-nm")
        ny, nx = image.shape
        user = polygon_mask(parse_roi(options.roi), image.shape, (0.0, nx * px, 0.0, ny * px))
        source = "--roi"
    if options.render != "histogram" or options.blur_nm:
        notes.append("--render/--blur-nm apply to localisation tables; the image is used as it is")
    return NucleusInput(image, px, "image", path, None, None, user, source, False, None, notes, [])


# ---------------------------------------------------------------- tables


def _read_options(options: InputOptions) -> ReadOptions:
    r = options.read
    return ReadOptions(r.x_col, r.y_col, r.coord_unit, options.pixel_size_nm if options.pixel_size_nm is not None
                       else r.pixel_size_nm, r.format)


def _left_out(facts: TableFacts, options: InputOptions) -> tuple[list[str], list[str]]:
    """What the map leaves out (columns, dimensions) and plain notes."""
    c = facts.counts
    out: list[str] = []
    notes: list[str] = []
    if facts.columns_ignored:
        out.append(f"columns not read: {', '.join(facts.columns_ignored)}")
    if c.z_min is not None:
        if c.z_max == c.z_min:
            notes.append(f"z column constant ({c.z_min:g} nm): 2-D data")
        elif options.selection.z_range_nm is None:
            out.append(
                f"z not used: the map is a 2-D projection of {c.kept:,} localisations over z {c.z_min:.0f}-{c.z_max:.0f} nm; "
                "use --z-range LO,HI for a slab"
            )
        else:
            lo, hi = options.selection.z_range_nm
            notes.append(f"z slab {lo:g}-{hi:g} nm of z {c.z_min:.0f}-{c.z_max:.0f} nm ({c.removed.get('z', 0):,} left out)")
    if len(c.channels) > 1 and options.selection.channel == "all":
        out.append(f"channels merged ({', '.join(f'{k}: {v:,}' for k, v in sorted(c.channels.items()))}): --channel all")
    elif len(c.channels) > 1:
        others = {k: v for k, v in c.channels.items() if k != options.selection.channel}
        out.append(f"other channels not used: {', '.join(f'{k} ({v:,} localisations)' for k, v in sorted(others.items()))}")
    if "precision" in facts.columns_used and options.render != "precision" and options.selection.max_precision_nm is None:
        out.append(f"precision ({facts.columns_used['precision']}) not used: --render precision blurs each localisation "
                   "by it, --max-precision-nm filters by it")
    if facts.has_photons:
        out.append(f"photons ({facts.columns_used['photons']}) not used: the map counts localisations")
    if c.frame_min is not None and options.selection.frames is None:
        notes.append(f"frames {c.frame_min}-{c.frame_max}: all used (--frames LO,HI to choose)")
    for reason, number in c.removed.items():
        flag = {"channel": "--channel", "z": "--z-range", "frames": "--frames", "precision": "--max-precision-nm"}[reason]
        if reason != "z":
            notes.append(f"{flag} left out {number:,} of {c.read:,} localisations")
    return out, notes


def _read_table(path: Path, options: InputOptions, *, render: bool, keep_points: bool,
                log: Callable[[str], None] | None = None, one_channel: bool = True) -> tuple[TableFacts, DensityAccumulator | None,
                                                                   np.ndarray | None, list[str], Any]:
    stream = open_table(path, _read_options(options))
    counts = SelectionCounts()
    method = "precision" if options.render == "precision" else "histogram"
    if options.render == "precision" and "precision" not in stream.columns_used:
        raise ImagingError(f"--render precision needs a precision column; {str(path)!r} ({stream.format}) has none "
                           f"(columns read: {list(stream.columns_used.values())})")
    acc = DensityAccumulator(options.pixel_nm, options.extent_nm, method) if render else None  # type: ignore[arg-type]
    kept: list[np.ndarray] | None = [] if keep_points else None
    n_kept = 0
    xr = [np.inf, -np.inf]
    yr = [np.inf, -np.inf]
    pr = [np.inf, -np.inf]
    has_precision = False
    for chunk in stream.chunks():
        part = select(chunk, options.selection, counts)
        if one_channel and options.selection.channel is None and len(counts.channels) > 1:
            listing = ", ".join(f"{k} ({v:,} localisations so far)" for k, v in sorted(counts.channels.items()))
            raise ImagingError(
                f"{str(path)!r} holds several channels ({listing}); a chromatin map is made from one label: "
                "pick one with --channel NAME, or merge them with --channel all"
            )
        if len(part) == 0:
            continue
        xr = [min(xr[0], float(part.x_nm.min())), max(xr[1], float(part.x_nm.max()))]
        yr = [min(yr[0], float(part.y_nm.min())), max(yr[1], float(part.y_nm.max()))]
        if part.precision_nm is not None:
            finite = part.precision_nm[np.isfinite(part.precision_nm)]
            if finite.size:
                has_precision = True
                pr = [min(pr[0], float(finite.min())), max(pr[1], float(finite.max()))]
        if acc is not None:
            acc.add(part.x_nm, part.y_nm, part.precision_nm)
        n_kept += len(part)
        if kept is not None:
            if n_kept <= KEEP_POINTS:
                kept.append(part.points)
            else:
                kept = None
                if log:
                    log(f"  {path.name}: more than {KEEP_POINTS:,} localisations: streamed (density map only)")
    facts = TableFacts(stream.format, dict(stream.columns_used), list(stream.columns_ignored), dict(stream.units),
                       stream.pixel_size_nm, stream.pixel_size_source, counts,
                       xr if n_kept else [], yr if n_kept else [], pr if has_precision else None,
                       "photons" in stream.columns_used, stream.dropped)
    if counts.read == 0:
        raise ImagingError(f"localisation file {str(path)!r} ({stream.format}) has no rows (no localisations)")
    if n_kept == 0:
        channels = (f"; channels in the file: {', '.join(f'{k} ({v:,})' for k, v in sorted(counts.channels.items()))}"
                    if counts.channels else "")
        raise ImagingError(
            f"no localisation of {str(path)!r} is left after the selection (read {counts.read:,}; left out by "
            + ", ".join(f"{k} {v:,}" for k, v in counts.removed.items()) + f"){channels}"
        )
    points = np.concatenate(kept) if kept else None
    return facts, acc, points, list(stream.notes), stream


def _load_table(path: Path, options: InputOptions, log: Callable[[str], None] | None) -> NucleusInput:
    voronoi = options.render == "voronoi"
    facts, acc, points, notes, stream = _read_table(path, options, render=not voronoi, keep_points=True, log=log)
    if stream.dropped:
        notes.append(f"dropped {stream.dropped:,} rows with a non-finite x or y")
    if voronoi:
        if points is None:
            raise ImagingError(f"--render voronoi needs every localisation in memory; {str(path)!r} has more than "
                               f"{KEEP_POINTS:,}: use --render histogram or precision")
        image, extent = density_map(points, options.pixel_nm, options.extent_nm, method="voronoi", return_extent=True)
        notes.append("density map: Voronoi cell areas")
    else:
        image, extent = acc.image()  # type: ignore[union-attr]
        if acc.outside:  # type: ignore[union-attr]
            notes.append(f"{acc.outside:,} localisations outside the field of view {options.extent_nm} left out")  # type: ignore[union-attr]
        if acc.clipped:  # type: ignore[union-attr]
            notes.append(f"{acc.clipped:,} precisions wider than 3 render pixels clipped to 3 pixels in the render")  # type: ignore[union-attr]
        if acc.no_precision:  # type: ignore[union-attr]
            notes.append(f"{acc.no_precision:,} localisations without a finite precision rendered as points")  # type: ignore[union-attr]
        if options.render == "precision":
            notes.append("density map: each localisation blurred by its own precision")
    image = blur(image, options.blur_nm, options.pixel_nm)
    if options.blur_nm:
        notes.append(f"density map blurred by {options.blur_nm:g} nm (Gaussian sigma)")
    if options.render_pixel_nm is None:
        notes.append(f"density map pixel {options.pixel_nm:g} nm (the default; --render-pixel-nm to change)")
    if min(image.shape) < 16:
        raise ImagingError(
            f"density map is only {image.shape[0]}x{image.shape[1]} px at {options.pixel_nm:g} nm "
            f"(localisations over x {facts.x_range_nm[0]:.0f}-{facts.x_range_nm[1]:.0f}, "
            f"y {facts.y_range_nm[0]:.0f}-{facts.y_range_nm[1]:.0f} nm); use a smaller --render-pixel-nm"
        )
    left, more = _left_out(facts, options)
    notes += more
    user = mask_source = None
    if options.mask is not None:
        user, mask_source = load_mask(options.mask, shape=image.shape), f"--mask {options.mask}"
    elif options.roi is not None:
        user, mask_source = polygon_mask(parse_roi(options.roi), image.shape, extent), "--roi"
    return NucleusInput(image, options.pixel_nm, "localisations", path, tuple(float(e) for e in extent),  # type: ignore[arg-type]
                        points, user, mask_source, True, facts, notes, left)


def load_input(path: str | Path, options: InputOptions | None = None, *,
               log: Callable[[str], None] | None = None, **legacy: Any) -> NucleusInput:
    """Read one input file into a density map (module docstring).

    Args:
        path: A localisation file (any reader's format, optionally ``.gz``/``.xz``/``.bz2``)
            or an image (TIFF/PNG/NPY).
        options: How (default :class:`~mollifier.chromatin.options.InputOptions`).
        log: Progress sink.
        **legacy: ``pixel_size_nm`` (tables: the density-map pixel, as before
            :class:`InputOptions`; images: the image's pixel), ``extent_nm``, ``mask``,
            ``x_col``, ``y_col``, ``density``, ``blur_nm``, ``slice``, ``project``.

    Raises:
        ImagingError: unreadable input, no coordinate columns, bad selection or mask, ...
        ImportError: a parser of an optional extra is missing (names the extra).
    """
    path = Path(path)
    options = _legacy_options(path, options or InputOptions(), legacy)
    options.check()
    if not path.exists():
        raise ImagingError(f"input {str(path)!r} not found")
    kind = input_kind(path)
    if kind is None:
        raise ImagingError(
            f"input {str(path)!r}: unknown file type; expected a localisation table ("
            + ", ".join(r.label for r in READERS) + f") or an image ({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    if kind == "image":
        return _load_image(path, options)
    return _load_table(path, options, log)


def _legacy_options(path: Path, options: InputOptions, legacy: dict[str, Any]) -> InputOptions:
    if not legacy:
        return options
    allowed = {"pixel_size_nm", "extent_nm", "mask", "x_col", "y_col", "density", "blur_nm", "slice", "project", "render"}
    unknown = sorted(set(legacy) - allowed)
    if unknown:
        raise TypeError(f"load_input() got unknown keyword(s) {unknown}; allowed: {sorted(allowed)}")
    changes: dict[str, Any] = {}
    px = legacy.get("pixel_size_nm")
    if px is not None:
        changes["pixel_size_nm" if path.suffix.lower() in IMAGE_SUFFIXES else "render_pixel_nm"] = px
    for key in ("extent_nm", "blur_nm", "slice", "project", "render"):
        if legacy.get(key) is not None:
            changes[key] = legacy[key]
    if legacy.get("density") is not None:
        changes["render"] = legacy["density"]
    if legacy.get("mask") is not None:
        changes["mask"] = Path(legacy["mask"])
    if legacy.get("x_col") is not None or legacy.get("y_col") is not None:
        changes["read"] = ReadOptions(legacy.get("x_col"), legacy.get("y_col"))
    return options.replace(**changes)


def inspect_input(path: str | Path, options: InputOptions | None = None) -> dict[str, Any]:
    """The facts of an input without any analysis (``mollifier chromatin FILE --inspect``).

    Tables are read once, streamed (selection applied, histogram rendered at the render
    pixel to report the map's size); images are read.

    Returns:
        A JSON-ready dict: ``format``, ``localizations``, ``x_range_nm``, ``y_range_nm``,
        ``z_range_nm``, ``channels``, ``frames``, ``columns_used``, ``columns_ignored``,
        ``pixel_size_nm`` and its source, ``left_out``, ``notes``, ``map_pixels``, ...

    Raises:
        ImagingError, ImportError: as :func:`load_input`.
    """
    path = Path(path)
    options = options or InputOptions()
    options.check()
    if not path.exists():
        raise ImagingError(f"input {str(path)!r} not found")
    kind = input_kind(path)
    if kind == "image":
        img = read_image(path, pixel_size_nm=options.pixel_size_nm, slice=options.slice, project=options.project,  # type: ignore[arg-type]
                         max_side=None)
        return {"input": str(path), "kind": "image", "format": path.suffix.lower().lstrip("."),
                "shape": list(img.original_shape), "dtype": img.dtype, "pixel_size_nm": img.pixel_size_nm,
                "pixel_size_source": "--pixel-size-nm" if options.pixel_size_nm is not None else
                ("file" if img.pixel_size_nm is not None else None), "notes": img.notes}
    if kind is None:
        detect_format(path)  # raises the reader table's message
    opts = options.replace(render="histogram", extent_nm=options.extent_nm)
    facts, acc, _, notes, stream = _read_table(path, opts, render=True, keep_points=False, one_channel=False)
    image, extent = acc.image()  # type: ignore[union-attr]
    left, more = _left_out(facts, options)
    area_um2 = (facts.x_range_nm[1] - facts.x_range_nm[0]) * (facts.y_range_nm[1] - facts.y_range_nm[0]) / 1e6
    return {
        "input": str(path),
        "kind": "localisations",
        **facts.as_dict(),
        "map_pixels": list(image.shape),
        "render_pixel_nm": options.pixel_nm,
        "map_extent_nm": [float(e) for e in extent],
        "localizations_per_um2_bbox": facts.counts.kept / area_um2 if area_um2 > 0 else None,
        "left_out": left,
        "notes": notes + more,
    }
