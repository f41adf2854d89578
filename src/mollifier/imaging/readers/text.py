"""Text localisation tables: ThunderSTORM, rapidSTORM, Zeiss Elyra, Nikon N-STORM, ONI
Nanoimager and plain CSV/TSV (optionally ``.gz``/``.xz``/``.bz2``-compressed).

Each format has a *sniffer* (does this header look like mine?) and an *opener* that
turns the header into a :class:`TextLayout` -- delimiter, where the rows start, which
column holds which quantity and its scale to nm. The rows themselves are parsed by one
streaming parser (:func:`layout_rows`): blocks of lines go through NumPy's C parser
(``numpy.loadtxt`` with ``usecols``), so a 2-million-row table is read in about a
second and never held as text.

Format details (column names in the file -> what is read):

* ThunderSTORM CSV: the header either as quoted fields (``"x [nm]","y [nm]",...``) or,
  as ThunderSTORM's own export writes it, as *one* quoted field holding the whole
  header with doubled quotes (``"id,""frame"",""x [nm]"",..."``); units from the names.
* rapidSTORM: no header row; the first line is an XML comment
  ``# <localizations ...><field identifier=... semantic=... unit=.../>...`` declaring
  the columns (semantics ``position in sample space in X``, ``frame number``,
  ``position uncertainty ...``) and units (``nanometer``, ``micrometer``, ``pixel``).
  Track exports nest the per-frame localisations of each track after the track's own
  fields; the track's (merged) position is read, the nested ones are not (noted).
* Zeiss Elyra (ZEN): tab-separated, CRLF, latin-1; ``Position X [nm]``, ``Precision
  [nm]``, ``First Frame``, ``Channel``, ``Number Photons``; the rows end at a NUL byte,
  after which a metadata trailer (``VoxelSizeX : 0.097 µm``) gives the camera pixel.
  ``Z Slice`` is a plane index, not a position (left out, noted).
* Nikon N-STORM (NIS-Elements "molecule list" export): tab-separated ``Channel Name, X,
  Y, Xc, Yc, Height, Area, Width, Phi, Ax, BG, I, Frame, Length, Link, Valid, Z, Zc,
  Photons, Lateral Localization Accuracy, Xw, Yw, Xwc, Ywc[, Zw, Zwc]`` in nm; the
  drift-corrected ``Xc, Yc, Zc`` are read (raw ``X, Y`` only when they are missing),
  ``Channel Name`` is a text label.
* ONI Nanoimager: CSV ``Channel, Frame, X (nm), Y (nm), Z (nm), Photons, Background``.
* Plain CSV/TSV/whitespace text: any header whose coordinate columns
  :func:`~.columns.detect_roles` recognises (e.g. locan's ``position_x``).
"""

from __future__ import annotations

import csv
import importlib
import io
import itertools
import lzma
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._common import ImagingError
from ..table import ReadOptions, TableStream
from .columns import UNIT_SCALE, detect_roles, match_axis, normalise, role_by_name

__all__ = [
    "COMPRESSED_SUFFIXES",
    "TextLayout",
    "layout_rows",
    "open_text",
    "split_header",
    "uncompressed_name",
]

_OPENERS = {".gz": "gzip", ".xz": "lzma", ".bz2": "bz2"}
#: Compressions opened transparently (by suffix).
COMPRESSED_SUFFIXES: tuple[str, ...] = tuple(_OPENERS)
_ATTR = {"x": "x_nm", "y": "y_nm", "z": "z_nm", "frame": "frame", "channel": "channel",
         "precision": "precision_nm", "photons": "photons"}
_LENGTH_ROLES = ("x", "y", "z", "precision")


def uncompressed_name(path: str | Path) -> str:
    """The file name without a compression suffix: ``cell.csv.xz`` -> ``cell.csv``."""
    p = Path(path)
    return p.name[: -len(p.suffix)] if p.suffix.lower() in _OPENERS else p.name


def open_binary(path: Path) -> Any:
    """Open a file for reading bytes, decompressing ``.gz``/``.xz``/``.bz2`` by suffix."""
    module = _OPENERS.get(path.suffix.lower())
    if module is None:
        return path.open("rb")
    return importlib.import_module(module).open(path, "rb")


def open_text(path: Path) -> io.TextIOWrapper:
    """The file as text lines. latin-1 decodes every byte, so a stray byte in a trailer
    never stops the numeric rows (which are ASCII) from being read."""
    return io.TextIOWrapper(open_binary(path), encoding="latin-1", newline=None)


@dataclass
class TextLayout:
    """Where the rows of a text table are and what each used column means.

    Attributes:
        delimiter: Field separator; None for runs of whitespace.
        skip_lines: Lines before the first row (header, comments).
        roles: Record attribute (``x_nm``, ``frame``, ...) -> ``(column index, scale)``;
            values are multiplied by ``scale`` (to nm for lengths).
        text_roles: Attributes parsed as text (channel names).
        stop_at_nul: Rows end at the first line holding a NUL byte (Elyra's trailer).
        columns_used, columns_ignored, units, notes, pixel_size_nm, pixel_size_source:
            Metadata for the :class:`~mollifier.imaging.table.TableStream`.
    """

    delimiter: str | None
    skip_lines: int
    roles: dict[str, tuple[int, float]]
    text_roles: frozenset[str] = frozenset()
    stop_at_nul: bool = False
    columns_used: dict[str, str] = field(default_factory=dict)
    columns_ignored: list[str] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    pixel_size_nm: float | None = None
    pixel_size_source: str | None = None

    def stream(self, fmt: str, path: Path) -> TableStream:
        """The :class:`TableStream` reading these rows."""
        return TableStream(
            format=fmt, source=path, rows=layout_rows(path, self), columns_used=self.columns_used,
            columns_ignored=self.columns_ignored, units=self.units, pixel_size_nm=self.pixel_size_nm,
            pixel_size_source=self.pixel_size_source, notes=self.notes,
        )


def _data_lines(fh: Any, skip: int, stop_at_nul: bool) -> Iterator[tuple[int, str]]:
    for _ in range(skip):
        fh.readline()
    number = skip
    for line in fh:
        number += 1
        if stop_at_nul and "\x00" in line:
            return
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        yield number, line


def layout_rows(path: Path, layout: TextLayout) -> Callable[[int], Iterator[dict[str, np.ndarray]]]:
    """The row parser of a text table: ``rows(chunk)`` yields dicts of arrays in nm."""

    def rows(chunk: int) -> Iterator[dict[str, np.ndarray]]:
        try:
            with open_text(path) as fh:
                lines = _data_lines(fh, layout.skip_lines, layout.stop_at_nul)
                while True:
                    block = list(itertools.islice(lines, chunk))
                    if not block:
                        return
                    yield _parse_block(path, block, layout)
        except (OSError, EOFError, lzma.LZMAError, UnicodeDecodeError) as exc:
            raise ImagingError(f"cannot read localisation file {str(path)!r}: {exc}") from exc

    return rows


def _parse_block(path: Path, block: list[tuple[int, str]], layout: TextLayout) -> dict[str, np.ndarray]:
    text = [line for _, line in block]
    delim = layout.delimiter
    numeric = [(attr, col, scale) for attr, (col, scale) in layout.roles.items() if attr not in layout.text_roles]
    try:
        data = np.loadtxt(text, delimiter=delim, usecols=[c for _, c, _ in numeric], ndmin=2, dtype=np.float64,
                          comments=None)
    except ValueError as exc:
        if "channel" in layout.roles and "channel" not in layout.text_roles:
            layout.text_roles = layout.text_roles | {"channel"}  # named channels ("647"): parse as text
            return _parse_block(path, block, layout)
        raise ImagingError(
            f"cannot parse localisation file {str(path)!r} (lines {block[0][0]}-{block[-1][0]}, columns "
            f"{list(layout.columns_used.values())}): {exc}"
        ) from exc
    out: dict[str, np.ndarray] = {}
    for k, (attr, _, scale) in enumerate(numeric):
        values = data[:, k]
        if attr == "frame":
            out[attr] = np.where(np.isfinite(values), values, -1).astype(np.int64)
        elif attr == "channel":
            whole = np.isfinite(values).all() and np.all(values == np.round(values))
            out[attr] = values.astype(np.int64) if whole else values
        else:
            out[attr] = values * scale if scale != 1.0 else values
    for attr in layout.text_roles:
        col = layout.roles[attr][0]
        try:
            labels = [(line.split(delim) if delim else line.split())[col].strip().strip('"') for line in text]
        except IndexError:
            raise ImagingError(f"localisation file {str(path)!r}: a row near line {block[0][0]} has no column {col + 1}") from None
        out[attr] = np.asarray(labels)
    return out


# ---------------------------------------------------------------- header helpers


def split_header(line: str, delimiter: str | None = None) -> tuple[list[str], str | None]:
    """Column names of a header line and the delimiter (``,``, tab, ``;`` or None for
    whitespace). A header that is one quoted field holding the whole header (doubled
    quotes inside, as ThunderSTORM writes it) is unwrapped."""
    line = line.rstrip("\r\n")
    delim = delimiter
    if delim is None:
        for d in ("\t", ",", ";"):
            if d in line:
                delim = d
                break
    if delim is None:
        return [c.strip() for c in line.split()], None
    fields = next(csv.reader([line], delimiter=delim))
    if len(fields) == 1 and delim in fields[0]:
        fields = next(csv.reader([fields[0]], delimiter=delim))
    return [f.strip().strip('"').strip() for f in fields], delim


def _length_scale(role: str, column: str, unit: str | None, options: ReadOptions, file_pixel: float | None,
                  fmt: str, notes: list[str]) -> tuple[float, str]:
    """Scale to nm of a length column, and the unit used; pixel units need a pixel size."""
    if unit is None:
        if options.coord_unit is not None:
            unit = options.coord_unit
        else:
            unit = "nm"
            if role in ("x", "y"):
                notes.append(f"column {column!r} has no unit: assumed nm (give --coord-unit um|px if not)")
    if unit == "px":
        px = options.pixel_size_nm if options.pixel_size_nm is not None else file_pixel
        if px is None:
            raise ImagingError(
                f"column {column!r} of this {fmt} file is in camera pixels and the file gives no pixel size; "
                "pass --pixel-size-nm (the camera pixel in nm; library: pixel_size_nm=) to convert it"
            )
        return float(px), "px"
    if unit not in UNIT_SCALE:
        raise ImagingError(f"unit {unit!r} of column {column!r} not understood; use nm, um or px")
    return UNIT_SCALE[unit], "um" if unit != "nm" else "nm"


def build_layout(fmt: str, columns: list[str], delimiter: str | None, skip_lines: int, options: ReadOptions,
                 *, roles: dict[str, tuple[int, str | None]] | None = None, source: str = "the file",
                 text_roles: frozenset[str] = frozenset(), stop_at_nul: bool = False,
                 notes: list[str] | None = None, file_pixel: float | None = None,
                 file_pixel_source: str | None = None, ignored_notes: dict[str, str] | None = None) -> TextLayout:
    """A :class:`TextLayout` from a header: roles (detected unless given), user column
    choices (``x_col``/``y_col``), units and scales, used and ignored columns."""
    notes = list(notes or [])
    found = dict(roles) if roles is not None else detect_roles(columns, require_xy=options.x_col is None or options.y_col is None)
    for axis, name in (("x", options.x_col), ("y", options.y_col)):
        if name is not None:
            found[axis] = role_by_name(columns, name, axis, source)
    if "x" not in found or "y" not in found:
        detect_roles(columns, require_xy=True)  # raises with the columns listed
    layout_roles: dict[str, tuple[int, float]] = {}
    units: dict[str, str] = {}
    used: dict[str, str] = {}
    pixel_used = False
    for role, (col, unit) in found.items():
        attr = _ATTR[role]
        if role in _LENGTH_ROLES:
            if role == "precision" and unit is None:
                unit = units.get("x", "nm") if units.get("x") != "um" else "um"
            scale, used_unit = _length_scale(role, columns[col], unit, options, file_pixel, fmt, notes)
            pixel_used |= used_unit == "px"
            units[role] = used_unit
        else:
            scale = 1.0
        layout_roles[attr] = (col, scale)
        used[role] = columns[col]
    ignored = [c for i, c in enumerate(columns) if i not in {col for col, _ in found.values()} and c]
    for column, why in (ignored_notes or {}).items():
        if column in ignored:
            notes.append(f"column {column!r} not used: {why}")
    pixel = options.pixel_size_nm if options.pixel_size_nm is not None else file_pixel
    source_px = "--pixel-size-nm" if options.pixel_size_nm is not None else file_pixel_source
    if options.pixel_size_nm is not None and file_pixel is not None and abs(options.pixel_size_nm - file_pixel) > 1e-9:
        notes.append(f"--pixel-size-nm {options.pixel_size_nm:g} overrides the file's {file_pixel:g} nm ({file_pixel_source})")
    if not pixel_used and options.pixel_size_nm is not None and file_pixel is None:
        notes.append(f"--pixel-size-nm {options.pixel_size_nm:g} not used: no column of this file is in pixels")
        pixel, source_px = None, None
    return TextLayout(delimiter, skip_lines, layout_roles, frozenset(text_roles), stop_at_nul, used, ignored, units,
                      notes, pixel, source_px)


def header_line(lines: list[str]) -> tuple[int, str]:
    """Index and text of the first line that is neither blank nor a ``#`` comment."""
    for i, line in enumerate(lines):
        if line.strip() and not line.lstrip().startswith("#"):
            return i, line
    raise ImagingError("the file has no header line (empty, or only comments)")


# ---------------------------------------------------------------- formats


def _header_columns(lines: list[str]) -> tuple[int, list[str], str | None]:
    i, line = header_line(lines)
    columns, delim = split_header(line)
    return i, columns, delim


def _norm_set(lines: list[str]) -> set[str]:
    try:
        _, columns, _ = _header_columns(lines)
    except ImagingError:
        return set()
    return {normalise(c) for c in columns}


_TS_UNIT = re.compile(r"^[xyz] \[(nm|px|um|µm)\]$")


def sniff_thunderstorm(lines: list[str]) -> bool:
    """A header with ThunderSTORM's ``x [nm]``-style names (either quoting style)."""
    cols = _norm_set(lines)
    return any(_TS_UNIT.match(c) for c in cols) and ("frame" in cols or "id" in cols)


def sniff_elyra(lines: list[str]) -> bool:
    """Zeiss Elyra: ``Position X [nm]`` and ``First Frame``."""
    cols = _norm_set(lines)
    return "position x [nm]" in cols and "first frame" in cols


def sniff_nstorm(lines: list[str]) -> bool:
    """Nikon N-STORM: ``Channel Name`` with ``X``/``Y`` (and ``Xc``/``Yc``)."""
    cols = _norm_set(lines)
    return "channel name" in cols and {"x", "y"} <= cols and ({"xc", "yc"} <= cols or "lateral localization accuracy" in cols)


def sniff_nanoimager(lines: list[str]) -> bool:
    """ONI Nanoimager: ``X (nm)``, ``Y (nm)``, ``Channel`` and ``Frame``."""
    cols = _norm_set(lines)
    return {"x (nm)", "y (nm)", "channel", "frame"} <= cols


def sniff_rapidstorm(lines: list[str]) -> bool:
    """rapidSTORM: the first line is ``# <localizations ...>``."""
    return bool(lines) and lines[0].lstrip().startswith("# <localizations")


def sniff_csv(lines: list[str]) -> bool:
    """Any text whose header names recognisable x and y columns."""
    try:
        _, columns, _ = _header_columns(lines)
        detect_roles(columns, require_xy=True)
    except ImagingError:
        return False
    return True


def open_csv(path: Path, lines: list[str], options: ReadOptions, fmt: str = "csv", **kwargs: Any) -> TableStream:
    """Plain CSV/TSV/whitespace text with a header row (also ThunderSTORM and Nanoimager)."""
    i, columns, delim = _header_columns(lines)
    return build_layout(fmt, columns, delim, i + 1, options, source=f"{str(path)!r}", **kwargs).stream(fmt, path)


def open_thunderstorm(path: Path, lines: list[str], options: ReadOptions) -> TableStream:
    """ThunderSTORM CSV (units from the column names)."""
    return open_csv(path, lines, options, "thunderstorm",
                    ignored_notes={"sigma [nm]": "PSF width, not the localisation precision"})


def open_nanoimager(path: Path, lines: list[str], options: ReadOptions) -> TableStream:
    """ONI Nanoimager CSV."""
    return open_csv(path, lines, options, "nanoimager")


def open_nstorm(path: Path, lines: list[str], options: ReadOptions) -> TableStream:
    """Nikon N-STORM molecule list: drift-corrected ``Xc``/``Yc``/``Zc`` in nm."""
    i, columns, delim = _header_columns(lines)
    norm = [normalise(c) for c in columns]

    def col(*names: str) -> int | None:
        return next((norm.index(n) for n in names if n in norm), None)

    roles: dict[str, tuple[int, str | None]] = {}
    notes: list[str] = []
    for role, corrected, raw in (("x", "xc", "x"), ("y", "yc", "y"), ("z", "zc", "z")):
        k = col(corrected, raw)
        if k is not None:
            roles[role] = (k, "nm")
            if norm[k] == raw and role != "z":
                notes.append(f"no drift-corrected {corrected.upper()} column: raw {raw.upper()} used")
    for role, names in (("frame", ("frame",)), ("channel", ("channel name",)), ("photons", ("photons",)),
                        ("precision", ("lateral localization accuracy",))):
        k = col(*names)
        if k is not None:
            roles[role] = (k, "nm" if role == "precision" else None)
    why = {c: "warped (chromatic-registration) coordinates; the drift-corrected Xc/Yc are used"
           for c in columns if normalise(c) in ("xw", "yw", "xwc", "ywc", "zw", "zwc")}
    why.update({c: "raw position before drift correction" for c in columns if normalise(c) in ("x", "y", "z")})
    return build_layout("nstorm", columns, delim, i + 1, options, roles=roles, notes=notes,
                        source=f"{str(path)!r}", ignored_notes=why).stream("nstorm", path)


def _elyra_pixel(path: Path) -> tuple[float | None, str | None]:
    """The camera pixel from Elyra's trailer (``VoxelSizeX : 0.097 µm``), read from the file's end."""
    if path.suffix.lower() in _OPENERS:
        return None, None
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(size - 8192, 0))
            tail = fh.read().decode("latin-1")
    except OSError:
        return None, None
    m = re.search(r"VoxelSizeX\s*:\s*([0-9.eE+-]+)\s*(\S+)", tail)
    if m is None:
        return None, None
    unit = m.group(2).replace("\xb5", "u").replace("µ", "u").strip().lower()
    scale = {"um": 1000.0, "nm": 1.0, "m": 1e9}.get(unit)
    if scale is None:
        return None, None
    return float(m.group(1)) * scale, "Elyra trailer VoxelSizeX"


def open_elyra(path: Path, lines: list[str], options: ReadOptions) -> TableStream:
    """Zeiss Elyra text export (rows end at a NUL byte, trailer after it)."""
    i, columns, delim = _header_columns(lines)
    pixel, source = _elyra_pixel(path)
    notes = []
    if pixel is not None:
        notes.append(f"camera pixel {pixel:.4g} nm ({source}); the positions are already in nm")
    return build_layout("elyra", columns, delim, i + 1, options, source=f"{str(path)!r}", stop_at_nul=True,
                        notes=notes, file_pixel=pixel, file_pixel_source=source,
                        ignored_notes={"Z Slice": "a plane index, not a z position",
                                       "PSF half width [nm]": "PSF width, not the localisation precision"}
                        ).stream("elyra", path)


_RS_UNITS = {"nanometer": "nm", "micrometer": "um", "pixel": "px", "meter": "m"}


def open_rapidstorm(path: Path, lines: list[str], options: ReadOptions) -> TableStream:
    """rapidSTORM: columns from the XML comment line, no header row, whitespace-separated."""
    text = lines[0].lstrip()[1:].strip()
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ImagingError(f"rapidSTORM file {str(path)!r}: the '# <localizations>' line is not valid XML: {exc}") from None
    fields = [f for f in root if f.tag == "field"]
    nested = [f for f in root if f.tag == "localizations"]
    columns = [f.get("identifier", f"field{k}") for k, f in enumerate(fields)]
    roles: dict[str, tuple[int, str | None]] = {}
    notes: list[str] = []
    for k, f in enumerate(fields):
        semantic = (f.get("semantic") or "").lower()
        unit = _RS_UNITS.get((f.get("unit") or "").lower())
        if unit == "m":
            unit = None
            notes.append(f"field {columns[k]!r} in metres: taken as nm only if --coord-unit says so")
        for axis, name in (("x", "in x"), ("y", "in y"), ("z", "in z")):
            if semantic == f"position in sample space {name}":
                roles[axis] = (k, unit)
            if semantic == f"position uncertainty in sample space {name}" and axis == "x":
                roles["precision"] = (k, unit)
        if semantic == "frame number":
            roles["frame"] = (k, None)
    if "x" not in roles or "y" not in roles:
        raise ImagingError(f"rapidSTORM file {str(path)!r} declares no X/Y position fields; fields: {columns}")
    if nested:
        n_inner = len([f for f in nested[0] if f.tag == "field"])
        notes.append(
            f"track export: each row is a track; its merged position is read, the {n_inner}-field per-frame "
            "localisations nested after it are not"
        )
    why = {c: "amplitude in A/D counts, not photons" for k, c in enumerate(columns)
           if (fields[k].get("semantic") or "").lower() == "emission strength"}
    return build_layout("rapidstorm", columns, None, 1, options, roles=roles, notes=notes, source=f"{str(path)!r}",
                        ignored_notes=why).stream("rapidstorm", path)


def unit_of_axis(name: str) -> str | None:
    """The unit in a coordinate column's name (``x [px]`` -> ``px``), or None."""
    for axis in ("x", "y", "z"):
        ok, unit, _ = match_axis(axis, name)
        if ok:
            return unit
    return None
