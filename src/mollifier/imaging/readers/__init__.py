"""Reading SMLM localisation files: the one table of readers, and format detection.

:data:`READERS` is the single place a file format joins the library: one
:class:`Reader` row per format with its name, the suffixes it usually has, a *sniff*
function that recognises its content, the function that opens it and the optional
extra it needs. :func:`detect_format` tries the sniffers in table order on the first
64 KiB of the file (decompressed for ``.gz``/``.xz``/``.bz2``): binary signatures first
(ZIP + ``manifest.json``, HDF5 with ``locs`` / ``data/xyz`` / ``saveloc``, MATLAB),
then the text headers (rapidSTORM's XML line, Elyra, N-STORM, Nanoimager, ThunderSTORM),
then any text with recognisable coordinate columns. So a format is chosen from the
content; the suffix only breaks ties and decides whether an unreadable file was meant
to be a table (and is then reported, not skipped).

To add a format: write ``open_<name>(path, probe, options) -> TableStream`` (converting
to nm; see :mod:`.text` and :mod:`.binary`) and a sniff function, and add one
:class:`Reader` row to :data:`READERS` (before any reader whose sniff would also accept
the file). docs/chromatin.md lists what each reader reads.

Example:
    >>> from mollifier.imaging.readers import READERS
    >>> [r.name for r in READERS][:4]
    ['shareloc', 'picasso', 'decode', 'smap']
"""

from __future__ import annotations

import functools
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .._common import ImagingError, require_smlm
from ..table import LocalizationTable, ReadOptions, TableStream
from . import binary, text
from .text import COMPRESSED_SUFFIXES, open_binary, uncompressed_name

__all__ = [
    "COMPRESSED_SUFFIXES",
    "READERS",
    "Probe",
    "Reader",
    "detect_format",
    "open_table",
    "reader_named",
    "read_localizations",
    "table_suffixes",
    "uncompressed_name",
]

_HEAD_BYTES = 1 << 16


class Probe:
    """The first bytes of a file and what they say, for the sniff functions.

    Attributes:
        path: The file.
        head: Its first 64 KiB (decompressed when the name ends in ``.gz``/``.xz``/``.bz2``).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            with open_binary(self.path) as fh:
                self.head: bytes = fh.read(_HEAD_BYTES)
        except (OSError, EOFError, ValueError) as exc:  # corrupt archives: OSError/EOFError/LZMAError
            raise ImagingError(f"cannot read localisation file {str(self.path)!r}: {exc}") from exc
        self.truncated = len(self.head) == _HEAD_BYTES

    @property
    def is_hdf5(self) -> bool:
        """HDF5 signature at offset 0, or at 512 (a MATLAB v7.3 file)."""
        return self.head[:8] == binary.HDF5_MAGIC or self.head[binary.MAT73_OFFSET:binary.MAT73_OFFSET + 8] == binary.HDF5_MAGIC

    @property
    def is_zip(self) -> bool:
        return self.head[:4] == b"PK\x03\x04"

    @property
    def is_matlab(self) -> bool:
        return self.head[:10] == b"MATLAB 5.0" or self.head[:10] == b"MATLAB 7.3"

    @property
    def is_text(self) -> bool:
        """No binary signature and only text characters before any NUL byte."""
        if self.is_hdf5 or self.is_zip or self.is_matlab:
            return False
        body = self.head.split(b"\x00", 1)[0]
        if not body.strip():
            return False
        return not any(b < 32 and b not in (9, 10, 13) for b in body[:4096])

    @functools.cached_property
    def lines(self) -> list[str]:
        """The head as text lines (UTF-8, else latin-1), a truncated last line dropped."""
        body = self.head.split(b"\x00", 1)[0] if b"\x00" in self.head else self.head
        try:
            decoded = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            decoded = body.decode("latin-1")
        lines = re.split(r"\r\n|\r|\n", decoded)  # the newlines the row parser splits on, no others
        if lines and lines[-1] == "":
            lines.pop()
        if self.truncated and b"\x00" not in self.head and len(lines) > 1:
            lines = lines[:-1]
        return lines

    @functools.cached_property
    def hdf5_names(self) -> set[str]:
        """Names of the HDF5 file's top-level objects and their children (``data/xyz``).

        Raises:
            ImportError: ``h5py`` is missing (the message names the extra to install).
        """
        h5py = require_smlm("h5py", f"{self.path.name} is an HDF5 file (Picasso, DECODE or SMAP v7.3); reading it")
        names: set[str] = set()
        try:
            with h5py.File(self.path, "r") as h:
                for key in h:
                    names.add(key)
                    obj = h[key]
                    if isinstance(obj, h5py.Group):
                        names.update(f"{key}/{child}" for child in obj)
        except OSError as exc:
            raise ImagingError(f"cannot read HDF5 file {str(self.path)!r}: {exc}") from exc
        return names

    @functools.cached_property
    def zip_names(self) -> set[str]:
        try:
            with zipfile.ZipFile(self.path) as zf:
                return set(zf.namelist())
        except (zipfile.BadZipFile, OSError) as exc:
            raise ImagingError(f"cannot read ZIP file {str(self.path)!r}: {exc}") from exc

    @functools.cached_property
    def mat_variables(self) -> set[str]:
        """Variables of a MATLAB v5 file (scipy)."""
        from scipy import io as sio

        try:
            return {name for name, *_ in sio.whosmat(self.path)}
        except Exception as exc:  # scipy raises many types for corrupt files
            raise ImagingError(f"cannot read MATLAB file {str(self.path)!r}: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class Reader:
    """One localisation file format.

    Attributes:
        name: Short name (``--format``, ``format`` in summaries).
        label: Human name.
        suffixes: Usual suffixes (lower case; compressed variants of text formats too).
        sniff: ``sniff(probe) -> bool``: whether the content is this format.
        open: ``open(path, probe, options) -> TableStream``.
        extra: Optional dependency group needed (``"smlm"``) or None.
        reads: What is read, in words (for docs and ``--inspect``).
    """

    name: str
    label: str
    suffixes: tuple[str, ...]
    sniff: Callable[[Probe], bool]
    open: Callable[[Path, Probe, ReadOptions], TableStream]
    extra: str | None
    reads: str


def _text(sniff: Callable[[list[str]], bool]) -> Callable[[Probe], bool]:
    return lambda probe: probe.is_text and sniff(probe.lines)


def _open_text(opener: Callable[..., TableStream]) -> Callable[[Path, Probe, ReadOptions], TableStream]:
    return lambda path, probe, options: opener(path, probe.lines, options)


def _sniff_smap(probe: Probe) -> bool:
    if not probe.is_matlab:
        return False
    if probe.is_hdf5:
        return "saveloc" in probe.hdf5_names
    return "saveloc" in probe.mat_variables


_TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".dat", ".xls")

READERS: tuple[Reader, ...] = (
    Reader("shareloc", "ShareLoc.xyz .smlm", (".smlm",),
           lambda p: p.is_zip and "manifest.json" in p.zip_names,
           lambda path, probe, options: binary.open_shareloc(path, options), None,
           "ZIP: manifest.json (format 0.2) + binary tables; coordinates by header name; tables as channels"),
    Reader("picasso", "Picasso HDF5 (+ YAML sidecar)", (".hdf5", ".h5"),
           lambda p: p.is_hdf5 and not p.is_matlab and "locs" in p.hdf5_names,
           lambda path, probe, options: binary.open_picasso(path, options), "smlm",
           "locs: x, y (camera px x YAML Pixelsize), frame, photons, lpx/lpy -> precision (nm), z (nm)"),
    Reader("decode", "DECODE HDF5", (".h5", ".hdf5"),
           lambda p: p.is_hdf5 and not p.is_matlab and "data/xyz" in p.hdf5_names,
           lambda path, probe, options: binary.open_decode(path, options), "smlm",
           "data/xyz (px x meta px_size, z nm), frame_ix, phot, xyz_sig -> precision"),
    Reader("smap", "SMAP .mat", (".mat",), _sniff_smap,
           lambda path, probe, options: binary.open_smap(path, options, hdf5=probe.is_hdf5), "smlm",
           "saveloc.loc: xnm, ynm, znm, frame, channel, locprecnm, phot (h5py for v7.3 files)"),
    Reader("rapidstorm", "rapidSTORM", (".txt",), _text(text.sniff_rapidstorm), _open_text(text.open_rapidstorm), None,
           "columns and units from the '# <localizations>' XML line: positions X/Y/Z, frame number, uncertainty"),
    Reader("elyra", "Zeiss Elyra (ZEN)", (".txt", ".csv"), _text(text.sniff_elyra), _open_text(text.open_elyra), None,
           "Position X/Y [nm], Precision [nm], First Frame, Channel, Number Photons; rows end at a NUL byte"),
    Reader("nstorm", "Nikon N-STORM", (".txt", ".csv", ".tsv"), _text(text.sniff_nstorm), _open_text(text.open_nstorm),
           None, "drift-corrected Xc, Yc, Zc (nm), Frame, Channel Name, Lateral Localization Accuracy, Photons"),
    Reader("nanoimager", "ONI Nanoimager", (".csv",), _text(text.sniff_nanoimager), _open_text(text.open_nanoimager),
           None, "X (nm), Y (nm), Z (nm), Channel, Frame, Photons"),
    Reader("thunderstorm", "ThunderSTORM CSV", (".csv", ".tsv", ".txt"), _text(text.sniff_thunderstorm),
           _open_text(text.open_thunderstorm), None,
           "x/y/z [nm|um|px], frame, uncertainty [nm], intensity [photon]; either header quoting"),
    Reader("csv", "CSV/TSV/whitespace table", _TEXT_SUFFIXES, lambda p: p.is_text, _open_text(text.open_csv), None,
           "coordinate columns by name (x_nm, x (nm), position_x, X, ...), frame, channel, precision, photons"),
)


def reader_named(name: str) -> Reader:
    """The reader called ``name``.

    Raises:
        ImagingError: no such reader (the message lists them).
    """
    for reader in READERS:
        if reader.name == name:
            return reader
    raise ImagingError(f"format (--format) must be one of {[r.name for r in READERS]}; got {name!r}")


def table_suffixes() -> set[str]:
    """Suffixes (lower case) that mark a file as meant to be a localisation table."""
    return {s for r in READERS for s in r.suffixes}


def detect_format(path: str | Path, probe: Probe | None = None) -> Reader:
    """The reader for a file, chosen from its content (see the module docstring).

    Raises:
        ImagingError: the file is missing, unreadable, or no reader recognises it.
        ImportError: the file is HDF5 and ``h5py`` is missing (names the extra).
    """
    path = Path(path)
    if not path.is_file():
        raise ImagingError(f"localisation file {str(path)!r} not found")
    probe = probe or Probe(path)
    for reader in READERS:
        if reader.sniff(probe):
            return reader
    what = ("an HDF5 file without a 'locs' table (Picasso), 'data/xyz' (DECODE) or 'saveloc' (SMAP)" if probe.is_hdf5
            else "a ZIP without manifest.json (not a ShareLoc .smlm)" if probe.is_zip
            else "a MATLAB file without the variable 'saveloc' (not a SMAP file)" if probe.is_matlab
            else "empty" if not probe.head.strip() else "binary data of an unknown format")
    raise ImagingError(
        f"localisation file {str(path)!r} is {what}; readable formats: "
        + ", ".join(r.label for r in READERS)
    )


def open_table(path: str | Path, options: ReadOptions | None = None) -> TableStream:
    """Open a localisation file with the reader its content calls for (or ``options.format``).

    Returns:
        A :class:`~mollifier.imaging.table.TableStream`: metadata now, rows on demand.

    Raises:
        ImagingError: missing/unreadable/unrecognised file, columns not found, units
            without the pixel size they need, ... (the message names the file and flag).
        ImportError: an optional parser is missing (names ``mollifier[smlm]``).
    """
    path = Path(path)
    options = options or ReadOptions()
    if not path.is_file():
        raise ImagingError(f"localisation file {str(path)!r} not found")
    probe = Probe(path)
    reader = reader_named(options.format) if options.format else detect_format(path, probe)
    try:
        stream = reader.open(path, probe, options)
    except ImagingError:
        raise
    except ImportError:
        raise
    except Exception as exc:  # a corrupt file of a known type: h5py, zipfile, json, scipy raise many types
        raise ImagingError(f"cannot read {reader.label} file {str(path)!r}: {type(exc).__name__}: {exc}") from exc
    suffix = Path(uncompressed_name(path)).suffix.lower()
    if suffix and suffix not in reader.suffixes:
        stream.notes.insert(0, f"read as {reader.label} (from its content) although named {suffix}")
    return stream


def read_localizations(
    path: str | Path,
    x_col: str | None = None,
    y_col: str | None = None,
    *,
    unit: str | None = None,
    pixel_size_nm: float | None = None,
    format: str | None = None,  # noqa: A002 - mirrors --format
) -> LocalizationTable:
    """Read a whole localisation file (any format of :data:`READERS`), coordinates in nm.

    For files too large to hold, iterate ``open_table(path, options).chunks()`` instead.

    Args:
        path: The file.
        x_col, y_col: Coordinate column names of a text table (default: detected).
        unit: Unit of coordinate columns whose name/metadata carries none (``"nm"``,
            ``"um"``, ``"px"``); None: nm, with a note.
        pixel_size_nm: Camera pixel size for pixel units (overrides the file's).
        format: Reader name instead of detection.

    Returns:
        The table with its metadata (format, columns used and left out, notes).

    Raises:
        ImagingError: see :func:`open_table`; also a file without rows.
    """
    options = ReadOptions(x_col=x_col, y_col=y_col, coord_unit=unit, pixel_size_nm=pixel_size_nm, format=format)
    return open_table(path, options).read()


