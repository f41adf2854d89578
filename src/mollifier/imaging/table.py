"""The typed record every localisation reader returns, and its selection rules.

:class:`LocalizationTable` holds the localisations of one file in **nanometres**
(``x_nm``, ``y_nm`` and, where the file has them, ``z_nm``, ``frame``, ``channel``,
``precision_nm``, ``photons``) together with what the reader knows about the file:
its ``format``, which of its columns were used for which quantity
(``columns_used``), which were left out (``columns_ignored``), the units found and
the camera pixel size with its source. A reader streams a large file as several such
tables (chunks) sharing that metadata (:class:`TableStream`).

:class:`Selection` is the user's choice of localisations (``--channel``,
``--z-range``, ``--frames``, ``--max-precision-nm``); :func:`select` applies it to a
chunk and counts what was removed, so the summary can say so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._common import ImagingError

__all__ = [
    "OPTIONAL_COLUMNS",
    "LocalizationTable",
    "ReadOptions",
    "Selection",
    "SelectionCounts",
    "TableStream",
    "select",
]

#: Per-localisation quantities beside ``x_nm``/``y_nm`` (attribute names of the record).
OPTIONAL_COLUMNS: tuple[str, ...] = ("z_nm", "frame", "channel", "precision_nm", "photons")
#: Role names used in ``columns_used`` (``"x"`` -> the file's column read as x, ...).
ROLES: tuple[str, ...] = ("x", "y", "z", "frame", "channel", "precision", "photons")
_ROLE_OF = {"x_nm": "x", "y_nm": "y", "z_nm": "z", "frame": "frame", "channel": "channel",
            "precision_nm": "precision", "photons": "photons"}

#: Rows per chunk when a table is streamed. A text chunk costs ~500 bytes per row while
#: it is parsed (the lines, NumPy's parse, the record): 2^17 rows ~ 70 MB.
CHUNK_ROWS = 1 << 17


@dataclass
class LocalizationTable:
    """Localisations of one file (or one chunk of it), coordinates in nm.

    Attributes:
        x_nm: x coordinates (nm), shape (N,).
        y_nm: y coordinates (nm), shape (N,).
        z_nm: z coordinates (nm) or None (2-D data, or a z column that is constant).
        frame: Frame numbers (int64) or None.
        channel: Channel labels (int64, or str for named channels) or None.
        precision_nm: Lateral localisation precision (nm) or None.
        photons: Photon counts or None.
        format: Name of the reader that read it (``"thunderstorm"``, ``"picasso"``, ...).
        source: The file read (None for tables made in memory).
        columns_used: Role (``"x"``, ``"y"``, ``"z"``, ``"frame"``, ``"channel"``,
            ``"precision"``, ``"photons"``) -> the file's column (or dataset) it came from.
        columns_ignored: The file's columns not used for any role.
        units: Role -> unit found in the file (``"nm"``, ``"um"``, ``"px"``).
        pixel_size_nm: Camera pixel size used to convert pixel units (None when the
            file needed none and declares none).
        pixel_size_source: Where ``pixel_size_nm`` came from (``"Picasso YAML Pixelsize"``,
            ``"--pixel-size-nm"``, ...).
        notes: Human-readable notes (assumed units, dropped rows, ignored dimensions, ...).
    """

    x_nm: np.ndarray
    y_nm: np.ndarray
    z_nm: np.ndarray | None = None
    frame: np.ndarray | None = None
    channel: np.ndarray | None = None
    precision_nm: np.ndarray | None = None
    photons: np.ndarray | None = None
    format: str = "array"
    source: Path | None = None
    columns_used: dict[str, str] = field(default_factory=dict)
    columns_ignored: list[str] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)
    pixel_size_nm: float | None = None
    pixel_size_source: str | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.x_nm = np.asarray(self.x_nm, dtype=np.float64).reshape(-1)
        self.y_nm = np.asarray(self.y_nm, dtype=np.float64).reshape(-1)
        n = self.x_nm.shape[0]
        if self.y_nm.shape[0] != n:
            raise ImagingError(f"x_nm has {n} values but y_nm has {self.y_nm.shape[0]}")
        for name in OPTIONAL_COLUMNS:
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value).reshape(-1)
                if value.shape[0] != n:
                    raise ImagingError(f"{name} has {value.shape[0]} values but the table has {n} localisations")
                setattr(self, name, value)

    def __len__(self) -> int:
        return int(self.x_nm.shape[0])

    @property
    def points(self) -> np.ndarray:
        """``(N, 2)`` array of ``(x, y)`` in nm."""
        return np.column_stack([self.x_nm, self.y_nm])

    @property
    def uncertainty_nm(self) -> np.ndarray | None:
        """Alias of :attr:`precision_nm` (the name ThunderSTORM uses)."""
        return self.precision_nm

    @property
    def columns(self) -> list[str]:
        """Every column of the source file: those used, then those left out."""
        return list(dict.fromkeys([*self.columns_used.values(), *self.columns_ignored]))

    def metadata(self) -> dict[str, Any]:
        """The record's metadata (everything but the per-localisation arrays)."""
        return _metadata(self)

    def take(self, keep: np.ndarray) -> "LocalizationTable":
        """The localisations where ``keep`` is True (or at the given indices), same metadata."""
        arrays = {name: (None if getattr(self, name) is None else getattr(self, name)[keep]) for name in OPTIONAL_COLUMNS}
        meta = self.metadata()
        meta["notes"] = list(self.notes)
        return LocalizationTable(self.x_nm[keep], self.y_nm[keep], **arrays, **meta)

    @classmethod
    def concat(cls, chunks: list["LocalizationTable"], metadata: dict[str, Any] | None = None) -> "LocalizationTable":
        """One table from chunks of one file (the first chunk's metadata unless given)."""
        if not chunks:
            raise ImagingError("no localisations to concatenate")
        meta = dict(metadata) if metadata is not None else chunks[0].metadata()
        arrays: dict[str, Any] = {}
        for name in OPTIONAL_COLUMNS:
            parts = [getattr(c, name) for c in chunks]
            if any(p is None for p in parts):
                arrays[name] = None
            elif len({p.dtype.kind for p in parts}) > 1:  # channel labels: numbers in some chunks, names in others
                arrays[name] = np.concatenate([channel_labels(p) for p in parts])
            else:
                arrays[name] = np.concatenate(parts)
        return cls(np.concatenate([c.x_nm for c in chunks]), np.concatenate([c.y_nm for c in chunks]), **arrays, **meta)


@dataclass(frozen=True)
class ReadOptions:
    """How to read a table where the file alone does not say.

    Attributes:
        x_col: Name of the x column (exact, case-insensitive); None to detect.
        y_col: Name of the y column; None to detect.
        coord_unit: Unit of coordinate columns whose name and metadata carry none
            (``"nm"``, ``"um"`` or ``"px"``); None: nm, with a note.
        pixel_size_nm: Camera pixel size (nm) for coordinates in pixels; overrides the
            file's own (Picasso YAML, DECODE ``px_size``), with a note.
        format: Name of the reader to use instead of detecting it.
    """

    x_col: str | None = None
    y_col: str | None = None
    coord_unit: str | None = None
    pixel_size_nm: float | None = None
    format: str | None = None

    def __post_init__(self) -> None:
        if self.coord_unit is not None and self.coord_unit not in ("nm", "um", "px"):
            raise ImagingError(f"coord_unit (--coord-unit) must be 'nm', 'um' or 'px'; got {self.coord_unit!r}")
        if self.pixel_size_nm is not None and not (isinstance(self.pixel_size_nm, (int, float)) and self.pixel_size_nm > 0):
            raise ImagingError(f"pixel_size_nm (--pixel-size-nm) must be a number > 0; got {self.pixel_size_nm!r}")


@dataclass
class TableStream:
    """An opened localisation file: its metadata now, its rows chunk by chunk.

    Readers build one; :meth:`chunks` yields :class:`LocalizationTable` chunks that
    share the metadata, :meth:`read` the whole table.

    Attributes:
        format: Reader name.
        source: The file.
        columns_used, columns_ignored, units, pixel_size_nm, pixel_size_source, notes:
            As in :class:`LocalizationTable`.
        n_rows: Number of rows when the file says so before reading (binary formats),
            else None.
        dropped: Rows dropped so far for a non-finite x or y (counted while chunking).
        rows: ``rows(chunk_rows)`` -> iterator of ``{attribute: array}`` dicts in nm
            (keys ``x_nm``, ``y_nm`` and any of :data:`OPTIONAL_COLUMNS`).
    """

    format: str
    source: Path
    rows: Callable[[int], Iterator[dict[str, np.ndarray]]]
    columns_used: dict[str, str] = field(default_factory=dict)
    columns_ignored: list[str] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)
    pixel_size_nm: float | None = None
    pixel_size_source: str | None = None
    notes: list[str] = field(default_factory=list)
    n_rows: int | None = None
    dropped: int = 0

    def metadata(self) -> dict[str, Any]:
        """Metadata shared by every chunk."""
        return _metadata(self)

    def chunks(self, chunk_rows: int | None = None) -> Iterator[LocalizationTable]:
        """The rows as tables of at most ``chunk_rows`` (default :data:`CHUNK_ROWS`)
        localisations; rows with a non-finite x or y are dropped (counted in :attr:`dropped`)."""
        meta = self.metadata()
        for arrays in self.rows(int(chunk_rows or CHUNK_ROWS)):
            x, y = arrays["x_nm"], arrays["y_nm"]
            ok = np.isfinite(x) & np.isfinite(y)
            extra = {name: arrays.get(name) for name in OPTIONAL_COLUMNS}
            table = LocalizationTable(x, y, **extra, **meta)
            if not ok.all():
                self.dropped += int((~ok).sum())
                table = table.take(ok)
            yield table

    def read(self) -> LocalizationTable:
        """The whole file as one table (notes of the chunks merged into the metadata's)."""
        chunks = list(self.chunks())
        meta = self.metadata()
        if self.dropped:
            meta["notes"].append(f"dropped {self.dropped} rows with a non-finite x or y")
        if not chunks or sum(len(c) for c in chunks) == 0:
            raise ImagingError(f"localisation file {str(self.source)!r} ({self.format}) has no rows (no localisations)")
        return LocalizationTable.concat(chunks, meta)


def _parse_range(text: Any, flag: str, kind: type = float) -> tuple[float, float] | None:
    if text is None:
        return None
    if isinstance(text, (tuple, list)):
        parts = list(text)
    else:
        parts = [p for p in str(text).replace(";", ",").split(",")]
    try:
        if len(parts) != 2:
            raise ValueError
        lo, hi = (kind(float(p)) if kind is int else float(p) for p in parts)
    except (TypeError, ValueError):
        raise ImagingError(f"{flag} must be two numbers LO,HI; got {text!r}") from None
    if not lo <= hi:
        raise ImagingError(f"{flag} must have LO <= HI; got {lo:g},{hi:g}")
    return (lo, hi)


@dataclass(frozen=True)
class Selection:
    """Which localisations go into the map.

    Attributes:
        channel: The channel to keep (a file's label: ``"1"``, ``"647"``...), ``"all"``
            to merge every channel, or None (an error if the file has several).
        z_range_nm: ``(lo, hi)`` slab of a 3-D table in nm (inclusive), or None (all z,
            projected; a note says so).
        frames: ``(first, last)`` inclusive frame range, or None.
        max_precision_nm: Drop localisations whose precision exceeds this (nm), or None.
    """

    channel: str | None = None
    z_range_nm: tuple[float, float] | None = None
    frames: tuple[int, int] | None = None
    max_precision_nm: float | None = None

    @classmethod
    def from_flags(cls, channel: Any = None, z_range: Any = None, frames: Any = None,
                   max_precision_nm: Any = None) -> "Selection":
        """Build from CLI strings (``"LO,HI"``), checking them.

        Raises:
            ImagingError: a range that is not two numbers LO <= HI, or a precision <= 0.
        """
        z = _parse_range(z_range, "--z-range")
        f = _parse_range(frames, "--frames", int)
        if max_precision_nm is not None and not (isinstance(max_precision_nm, (int, float)) and max_precision_nm > 0):
            raise ImagingError(f"--max-precision-nm must be a number > 0; got {max_precision_nm!r}")
        return cls(None if channel is None else str(channel).strip(), z,
                   None if f is None else (int(f[0]), int(f[1])), max_precision_nm)

    def is_default(self) -> bool:
        """Nothing chosen."""
        return self == Selection()


@dataclass
class SelectionCounts:
    """What :func:`select` saw and removed, summed over chunks.

    Attributes:
        read: Localisations read.
        kept: Localisations kept.
        removed: Reason (``"channel"``, ``"z"``, ``"frames"``, ``"precision"``) -> count.
        channels: Channel label -> localisations read with it (files with a channel column).
        z_min, z_max: Range of z over the localisations read (nm), if any.
        frame_min, frame_max: Range of frames read, if any.
    """

    read: int = 0
    kept: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=dict)
    z_min: float | None = None
    z_max: float | None = None
    frame_min: int | None = None
    frame_max: int | None = None

    def add_range(self, name: str, values: np.ndarray) -> None:
        finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        if finite.size == 0:
            return
        lo, hi = finite.min(), finite.max()
        cur_lo, cur_hi = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
        cast = int if name == "frame" else float
        setattr(self, f"{name}_min", cast(lo) if cur_lo is None else min(cur_lo, cast(lo)))
        setattr(self, f"{name}_max", cast(hi) if cur_hi is None else max(cur_hi, cast(hi)))


def channel_labels(values: np.ndarray) -> np.ndarray:
    """Channel labels as strings (``1.0`` -> ``"1"``), for matching ``--channel``."""
    if values.dtype.kind in "iu":
        return values.astype(str)
    if values.dtype.kind == "f":
        whole = np.isfinite(values) & (values == np.round(values))
        return np.where(whole, np.round(np.nan_to_num(values)).astype(np.int64).astype(str), values.astype(str))
    return np.char.strip(values.astype(str))


def select(table: LocalizationTable, selection: Selection, counts: SelectionCounts) -> LocalizationTable:
    """Apply ``selection`` to one chunk, adding to ``counts``.

    Args:
        table: A chunk (or a whole table).
        selection: What to keep.
        counts: Running totals, updated in place.

    Returns:
        The kept localisations.

    Raises:
        ImagingError: a selection that needs a column the file lacks (``--z-range``
            without z, ``--frames`` without frames, ``--max-precision-nm`` without
            precision, ``--channel`` without channels), naming the flag and the file's
            columns.
    """
    n = len(table)
    counts.read += n
    keep = np.ones(n, dtype=bool)
    cols = table.columns or ["x", "y"]
    if table.channel is not None:
        labels = channel_labels(table.channel)
        uniq, num = np.unique(labels, return_counts=True)
        for u, c in zip(uniq.tolist(), num.tolist()):
            counts.channels[u] = counts.channels.get(u, 0) + int(c)
        if selection.channel not in (None, "all"):
            hit = labels == selection.channel
            counts.removed["channel"] = counts.removed.get("channel", 0) + int((keep & ~hit).sum())
            keep &= hit
    elif selection.channel not in (None, "all"):
        raise ImagingError(f"--channel {selection.channel} given, but {_name(table)} has no channel column (columns: {cols})")
    if table.z_nm is not None:
        counts.add_range("z", table.z_nm)
    if selection.z_range_nm is not None:
        if table.z_nm is None:
            raise ImagingError(f"--z-range given, but {_name(table)} has no z column (columns: {cols})")
        lo, hi = selection.z_range_nm
        hit = (table.z_nm >= lo) & (table.z_nm <= hi)
        counts.removed["z"] = counts.removed.get("z", 0) + int((keep & ~hit).sum())
        keep &= hit
    if table.frame is not None:
        counts.add_range("frame", table.frame)
    if selection.frames is not None:
        if table.frame is None:
            raise ImagingError(f"--frames given, but {_name(table)} has no frame column (columns: {cols})")
        lo, hi = selection.frames
        hit = (table.frame >= lo) & (table.frame <= hi)
        counts.removed["frames"] = counts.removed.get("frames", 0) + int((keep & ~hit).sum())
        keep &= hit
    if selection.max_precision_nm is not None:
        if table.precision_nm is None:
            raise ImagingError(f"--max-precision-nm given, but {_name(table)} has no precision column (columns: {cols})")
        hit = table.precision_nm <= selection.max_precision_nm  # NaN precision fails
        counts.removed["precision"] = counts.removed.get("precision", 0) + int((keep & ~hit).sum())
        keep &= hit
    kept = table if keep.all() else table.take(keep)
    counts.kept += len(kept)
    return kept


def _name(table: LocalizationTable) -> str:
    return f"{str(table.source)!r}" if table.source is not None else "the table"


def replace_meta(table: LocalizationTable, **changes: Any) -> LocalizationTable:
    """A copy of ``table`` with some metadata fields changed."""
    return dataclasses.replace(table, **changes)


def _metadata(record: Any) -> dict[str, Any]:
    """The metadata fields a table and a chunked source share, as plain copies."""
    return {
        "format": record.format,
        "source": record.source,
        "columns_used": dict(record.columns_used),
        "columns_ignored": list(record.columns_ignored),
        "units": dict(record.units),
        "pixel_size_nm": record.pixel_size_nm,
        "pixel_size_source": record.pixel_size_source,
        "notes": list(record.notes),
    }
