"""Writing localisations in the formats the readers read (tests, synthetic data, export).

:func:`write_localizations` writes a table (a :class:`~mollifier.imaging.table.LocalizationTable`
or a dict of arrays with ``x_nm``, ``y_nm`` and optionally ``z_nm``, ``frame``,
``channel``, ``precision_nm``/``uncertainty_nm``, ``photons``) as one of :data:`WRITERS`,
laid out the way the real software lays it out (column names, units, quoting, encoding,
sidecars). Pixel-based formats (Picasso, DECODE) store ``x / pixel_size_nm``.
:func:`write_csv` is the ThunderSTORM writer kept under its old name.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.files import atomic_write
from ._common import ImagingError, require_smlm
from .table import LocalizationTable

__all__ = ["THUNDERSTORM_COLUMNS", "WRITERS", "write_csv", "write_localizations"]

#: Column order written by :func:`write_csv` (ThunderSTORM export format).
THUNDERSTORM_COLUMNS: dict[str, str] = {
    "id": "id",
    "frame": "frame",
    "x_nm": "x [nm]",
    "y_nm": "y [nm]",
    "sigma_nm": "sigma [nm]",
    "intensity_photon": "intensity [photon]",
    "offset_photon": "offset [photon]",
    "bkgstd_photon": "bkgstd [photon]",
    "uncertainty_nm": "uncertainty [nm]",
}


def _columns(table: LocalizationTable | Mapping[str, Any]) -> dict[str, np.ndarray]:
    if isinstance(table, LocalizationTable):
        cols = {"x_nm": table.x_nm, "y_nm": table.y_nm}
        for name in ("z_nm", "frame", "channel", "precision_nm", "photons"):
            if getattr(table, name) is not None:
                cols[name] = getattr(table, name)
        return cols
    if "x_nm" not in table or "y_nm" not in table:
        raise ImagingError(f"table must contain 'x_nm' and 'y_nm'; got keys {list(table)}")
    cols = {k: np.asarray(v) for k, v in table.items()}
    n = cols["x_nm"].shape[0]
    for key, arr in cols.items():
        if arr.shape != (n,):
            raise ImagingError(f"table[{key!r}] has shape {arr.shape}, expected ({n},)")
    if "precision_nm" not in cols and "uncertainty_nm" in cols:
        cols["precision_nm"] = cols["uncertainty_nm"]
    if "photons" not in cols and "intensity_photon" in cols:
        cols["photons"] = cols["intensity_photon"]
    return cols


def _text_table(path: Path, header: list[str], rows: list[np.ndarray], fmts: list[str], *, delimiter: str = ",",
                quote: bool = False, newline: str = "\n", first_line: str | None = None, encoding: str = "utf-8",
                trailer: bytes = b"", block: int = 100_000) -> Path:
    """Write a delimited table block by block (memory bounded by ``block`` rows)."""
    n = rows[0].shape[0] if rows else 0

    def write(handle: Any) -> None:
        head = ""
        if first_line is not None:
            head += first_line + newline
        if header:
            head += delimiter.join(f'"{h}"' if quote else h for h in header) + newline
        handle.write(head.encode(encoding))
        for start in range(0, n, block):
            cols = [
                [fmt % v for v in col[start:start + block].tolist()] if col.dtype.kind not in "US"
                else [str(v) for v in col[start:start + block].tolist()]
                for col, fmt in zip(rows, fmts)
            ]
            text = newline.join(delimiter.join(r) for r in zip(*cols)) + newline
            handle.write(text.encode(encoding))
        handle.write(trailer)

    return atomic_write(path, write)


def _atomic_h5(path: Path, fill: Callable[[Any], None], *, userblock: int = 0, header: bytes = b"") -> Path:
    """Create an HDF5 file next to ``path`` and move it into place (h5py needs a real file)."""
    import os
    import tempfile

    h5py = require_smlm("h5py", f"writing {path.suffix} files")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w", userblock_size=userblock) if userblock else h5py.File(tmp, "w") as h:
            fill(h)
        if header:
            with open(tmp, "r+b") as fh:
                fh.write(header)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _fmt(arr: np.ndarray) -> str:
    return "%d" if arr.dtype.kind in "iub" else "%.3f"


def write_csv(path: str | Path, table: Mapping[str, np.ndarray] | LocalizationTable) -> Path:
    """Write localisations as a ThunderSTORM CSV (``"x [nm]"``, ``"y [nm]"``, ...).

    Keys found in :data:`THUNDERSTORM_COLUMNS` (``x_nm``, ``y_nm``, ``frame``,
    ``uncertainty_nm``, ...) are written under their ThunderSTORM names, in that order;
    ``precision_nm``/``photons`` of a record are written as ``uncertainty [nm]`` and
    ``intensity [photon]``; other keys are ignored. ``id`` is generated (1..N) when absent.

    Raises:
        ImagingError: ``table`` lacks ``x_nm``/``y_nm`` or has unequal lengths.
    """
    return _write_thunderstorm(Path(path), _columns(table), whole_header=False, raw=table)


def _write_thunderstorm(path: Path, cols: dict[str, np.ndarray], *, whole_header: bool,
                        raw: Any = None, **_: Any) -> Path:
    n = cols["x_nm"].shape[0]
    src = dict(raw) if isinstance(raw, Mapping) else {}
    src.update({"uncertainty_nm": cols.get("precision_nm", src.get("uncertainty_nm")),
                "intensity_photon": cols.get("photons", src.get("intensity_photon")),
                "x_nm": cols["x_nm"], "y_nm": cols["y_nm"]})
    if "frame" in cols:
        src["frame"] = cols["frame"]
    out: dict[str, np.ndarray] = {}
    for key, name in THUNDERSTORM_COLUMNS.items():
        value = src.get(key)
        if value is not None:
            out[name] = np.asarray(value)
        elif key == "id":
            out[name] = np.arange(1, n + 1)
    if "z_nm" in cols:
        out["z [nm]"] = cols["z_nm"]
    header = list(out)
    if whole_header:  # ThunderSTORM's own export: one quoted field, inner quotes doubled
        first = '"' + header[0] + "," + ",".join(f'""{h}""' for h in header[1:]) + '"'
        return _text_table(path, [], list(out.values()), [_fmt(a) for a in out.values()], first_line=first)
    return _text_table(path, header, list(out.values()), [_fmt(a) for a in out.values()], quote=True)


def _write_plain(path: Path, cols: dict[str, np.ndarray], **_: Any) -> Path:
    names = {"x_nm": "x_nm", "y_nm": "y_nm", "z_nm": "z_nm", "frame": "frame", "channel": "channel",
             "precision_nm": "precision_nm", "photons": "photons"}
    keys = [k for k in names if k in cols]
    return _text_table(path, [names[k] for k in keys], [cols[k] for k in keys], [_fmt(cols[k]) for k in keys])


def _write_rapidstorm(path: Path, cols: dict[str, np.ndarray], **_: Any) -> Path:
    syntax = 'syntax="floating point with . for decimals and optional scientific e-notation"'
    fields = [f'<field identifier="Position-0-0" {syntax} semantic="position in sample space in X" unit="nanometer" />',
              f'<field identifier="Position-1-0" {syntax} semantic="position in sample space in Y" unit="nanometer" />']
    rows, fmts = [cols["x_nm"], cols["y_nm"]], ["%.4f", "%.4f"]
    if "frame" in cols:
        fields.append('<field identifier="ImageNumber-0-0" syntax="integer" semantic="frame number" unit="frame" />')
        rows.append(cols["frame"])
        fmts.append("%d")
    if "precision_nm" in cols:
        fields.append(f'<field identifier="Position-0-0-uncertainty" {syntax} semantic="position uncertainty in sample '
                      'space in X" unit="nanometer" />')
        rows.append(cols["precision_nm"])
        fmts.append("%.4f")
    if "photons" in cols:
        fields.append(f'<field identifier="Amplitude-0-0" {syntax} semantic="emission strength" unit="A/D count" />')
        rows.append(cols["photons"])
        fmts.append("%.3f")
    first = '# <localizations insequence="true" repetitions="variable">' + "".join(fields) + "</localizations>"
    return _text_table(path, [], rows, fmts, delimiter=" ", first_line=first)


def _write_elyra(path: Path, cols: dict[str, np.ndarray], pixel_size_nm: float | None = None, **_: Any) -> Path:
    n = cols["x_nm"].shape[0]
    frame = cols.get("frame", np.ones(n, dtype=np.int64))
    rows = [np.arange(1, n + 1), frame, np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64), cols["x_nm"],
            cols["y_nm"], cols.get("precision_nm", np.full(n, np.nan)), cols.get("photons", np.zeros(n)),
            np.zeros(n), np.zeros(n), np.full(n, 130.0), cols.get("channel", np.ones(n, dtype=np.int64)),
            np.ones(n, dtype=np.int64)]
    header = ["Index", "First Frame", "Number Frames", "Frames Missing", "Position X [nm]", "Position Y [nm]",
              "Precision [nm]", "Number Photons", "Background variance", "Chi square", "PSF half width [nm]",
              "Channel", "Z Slice"]
    fmts = ["%d", "%d", "%d", "%d", "%.3f", "%.3f", "%.2f", "%d", "%.2f", "%.2f", "%.1f", "%d", "%d"]
    rows[7] = np.rint(rows[7]).astype(np.int64)
    voxel = (pixel_size_nm or 100.0) / 1000.0
    trailer = ("\x00\r\r\n" + f"VoxelSizeX : {voxel:.10f} \xb5m\r\r\nVoxelSizeY : {voxel:.10f} \xb5m\r\r\n"
               "SizeX : 3200\r\r\nSizeY : 3200\r\r\n\r\nROI List : \r\r\n").encode("latin-1")
    return _text_table(path, header, rows, fmts, delimiter="\t", newline="\r\n", encoding="latin-1", trailer=trailer)


def _write_nstorm(path: Path, cols: dict[str, np.ndarray], drift_nm: tuple[float, float] = (35.0, -20.0),
                  **_: Any) -> Path:
    """N-STORM molecule list; ``X, Y`` are the positions before drift correction (shifted
    by a frame-dependent drift ending at ``drift_nm``), ``Xc, Yc`` the corrected ones."""
    n = cols["x_nm"].shape[0]
    frame = cols.get("frame", np.arange(n, dtype=np.int64))
    t = (frame - frame.min()) / max(float(frame.max() - frame.min()), 1.0) if n else frame
    xr, yr = cols["x_nm"] + drift_nm[0] * t, cols["y_nm"] + drift_nm[1] * t
    z = cols.get("z_nm", np.zeros(n))
    channel = cols.get("channel")
    names = np.asarray([f"647" for _ in range(n)]) if channel is None else np.asarray([str(c) for c in channel.tolist()])
    zero = np.zeros(n)
    photons = cols.get("photons", np.zeros(n))
    prec = cols.get("precision_nm", np.zeros(n))
    header = ["Channel Name", "X", "Y", "Xc", "Yc", "Height", "Area", "Width", "Phi", "Ax", "BG", "I", "Frame",
              "Length", "Link", "Valid", "Z", "Zc", "Photons", "Lateral Localization Accuracy", "Xw", "Yw", "Xwc", "Ywc"]
    rows = [names, xr, yr, cols["x_nm"], cols["y_nm"], photons / 4, photons, np.full(n, 300.0), zero, np.ones(n),
            np.full(n, 100.0), photons, frame, np.ones(n, dtype=np.int64), -np.ones(n, dtype=np.int64),
            np.ones(n, dtype=np.int64), z + 5.0 * t, z, photons, prec, xr, yr, cols["x_nm"], cols["y_nm"]]
    fmts = ["%s", "%.1f", "%.1f", "%.1f", "%.1f", "%.5f", "%.5f", "%.5f", "%.5f", "%.5f", "%.5f", "%.5f", "%d", "%d",
            "%d", "%d", "%.1f", "%.1f", "%.5f", "%.5f", "%.1f", "%.1f", "%.1f", "%.1f"]
    return _text_table(path, header, rows, fmts, delimiter="\t", newline="\r\n")


def _write_nanoimager(path: Path, cols: dict[str, np.ndarray], **_: Any) -> Path:
    n = cols["x_nm"].shape[0]
    rows = [cols.get("channel", np.zeros(n, dtype=np.int64)), cols.get("frame", np.zeros(n, dtype=np.int64)),
            cols["x_nm"], cols["y_nm"], cols.get("z_nm", np.zeros(n)), cols.get("photons", np.zeros(n)), np.zeros(n)]
    header = ["Channel", "Frame", "X (nm)", "Y (nm)", "Z (nm)", "Photons", "Background"]
    return _text_table(path, header, rows, ["%d", "%d", "%.6f", "%.6f", "%.6f", "%.6f", "%.6f"])


def _pixel(pixel_size_nm: float | None, fmt: str) -> float:
    if pixel_size_nm is None or not pixel_size_nm > 0:
        raise ImagingError(f"the {fmt} format stores camera pixels: give pixel_size_nm > 0; got {pixel_size_nm!r}")
    return float(pixel_size_nm)


def _write_picasso(path: Path, cols: dict[str, np.ndarray], pixel_size_nm: float | None = None, **_: Any) -> Path:
    px = _pixel(pixel_size_nm, "Picasso")
    n = cols["x_nm"].shape[0]
    prec = cols.get("precision_nm", np.full(n, 10.0)) / px
    fields = [("frame", "<u4"), ("x", "<f4"), ("y", "<f4"), ("photons", "<f4"), ("sx", "<f4"), ("sy", "<f4"),
              ("bg", "<f4"), ("lpx", "<f4"), ("lpy", "<f4")]
    if "z_nm" in cols:
        fields.append(("z", "<f4"))
    locs = np.zeros(n, dtype=fields)
    locs["frame"] = cols.get("frame", np.zeros(n, dtype=np.int64))
    locs["x"], locs["y"] = cols["x_nm"] / px, cols["y_nm"] / px
    locs["photons"] = cols.get("photons", np.zeros(n))
    locs["sx"] = locs["sy"] = 1.0
    locs["lpx"] = locs["lpy"] = prec
    if "z_nm" in cols:
        locs["z"] = cols["z_nm"]

    _atomic_h5(path, lambda h: h.create_dataset("locs", data=locs))
    yaml_text = (f"Byte Order: <\nCamera: Simulation\nCamera.Pixelsize: {px:g}\nGenerated by: mollifier\n"
                 f"---\nGenerated by: mollifier writers (Picasso Localize layout)\nPixelsize: {px:g}\n")
    atomic_write(path.with_suffix(".yaml"), lambda h: h.write(yaml_text.encode()))
    return path


def _write_decode(path: Path, cols: dict[str, np.ndarray], pixel_size_nm: float | None = None, **_: Any) -> Path:
    h5py = require_smlm("h5py", "writing DECODE files")
    px = _pixel(pixel_size_nm, "DECODE")
    n = cols["x_nm"].shape[0]
    xyz = np.column_stack([cols["x_nm"] / px, cols["y_nm"] / px, cols.get("z_nm", np.zeros(n))]).astype(np.float32)
    sig = cols.get("precision_nm", np.full(n, 10.0)) / px
    xyz_sig = np.column_stack([sig, sig, np.full(n, 30.0)]).astype(np.float32)

    def fill(h: Any) -> None:
        d = h.create_group("data")
        d.create_dataset("xyz", data=xyz)
        d.create_dataset("xyz_sig", data=xyz_sig)
        d.create_dataset("frame_ix", data=cols.get("frame", np.zeros(n, dtype=np.int64)).astype(np.int64))
        d.create_dataset("phot", data=cols.get("photons", np.zeros(n)).astype(np.float32))
        d.create_dataset("id", data=np.arange(n, dtype=np.int64))
        d.create_dataset("prob", data=np.ones(n, dtype=np.float32))
        d.create_dataset("xyz_cr", data=h5py.Empty("f4"))
        m = h.create_group("meta")
        m.attrs["px_size"] = np.array([px, px], dtype=np.float32)
        m.attrs["xy_unit"] = "px"
        h.create_group("decode").attrs["version"] = "0.10.0"

    return _atomic_h5(path, fill)


def _write_smap(path: Path, cols: dict[str, np.ndarray], pixel_size_nm: float | None = None, **_: Any) -> Path:
    """SMAP ``saveloc`` as a MATLAB v7.3 file (HDF5 after a 512-byte MATLAB header)."""
    n = cols["x_nm"].shape[0]
    fields = {"xnm": cols["x_nm"], "ynm": cols["y_nm"], "frame": cols.get("frame", np.ones(n)),
              "locprecnm": cols.get("precision_nm", np.full(n, 10.0)), "phot": cols.get("photons", np.zeros(n)),
              "channel": cols.get("channel", np.zeros(n))}
    if "z_nm" in cols:
        fields["znm"] = cols["z_nm"]

    def fill(h: Any) -> None:
        loc = h.create_group("saveloc/loc")
        for name, values in fields.items():
            ds = loc.create_dataset(name, data=np.asarray(values, dtype=np.float64 if name == "frame" else np.float32)[None, :])
            ds.attrs["MATLAB_class"] = np.bytes_(b"double" if name == "frame" else b"single")
        info = h.create_group("saveloc/file/info")
        info.create_dataset("cam_pixelsize_um", data=np.array([[(pixel_size_nm or 100.0) / 1000.0] * 2]).T)

    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: mollifier HDF5 schema 1.00 ."
    return _atomic_h5(path, fill, userblock=512, header=text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM")


def _write_shareloc(path: Path, cols: dict[str, np.ndarray], **_: Any) -> Path:
    n = cols["x_nm"].shape[0]
    spec = [("position_x", cols["x_nm"], "float32"), ("position_y", cols["y_nm"], "float32")]
    if "z_nm" in cols:
        spec.append(("position_z", cols["z_nm"], "float32"))
    if "frame" in cols:
        spec.append(("frame", cols["frame"], "int32"))
    if "photons" in cols:
        spec.append(("intensity", cols["photons"], "float32"))
    if "precision_nm" in cols:
        spec.append(("uncertainty", cols["precision_nm"], "float32"))
    dtype = np.dtype({"names": [s[0] for s in spec], "formats": [s[2] for s in spec]})
    table = np.zeros(n, dtype=dtype)
    for name, values, _ in spec:
        table[name] = values
    manifest = {
        "format_version": "0.2",
        "formats": {"smlm-table(binary)-0": {
            "name": "smlm-table(binary)-0", "type": "table", "mode": "binary", "columns": len(spec),
            "headers": [s[0] for s in spec], "dtype": [s[2] for s in spec], "shape": [1] * len(spec),
            "units": ["nm" if s[0].startswith("position") or s[0] == "uncertainty" else "" for s in spec]}},
        "files": [{"name": "table-0.bin", "type": "table", "format": "smlm-table(binary)-0", "channel": "default",
                   "rows": n, "offset": {s[0]: 0 for s in spec}}],
        "name": path.stem, "tags": ["SMLM"],
    }

    def save(handle: Any) -> None:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.json", json.dumps(manifest, indent=2))
            zf.writestr("table-0.bin", table.tobytes())

    return atomic_write(path, save)


#: Format name -> ``(suffix, writer)``; the writer takes ``(path, columns, **options)``.
WRITERS: dict[str, tuple[str, Callable[..., Path]]] = {
    "thunderstorm": (".csv", lambda p, c, **o: _write_thunderstorm(p, c, whole_header=o.get("whole_header", True))),
    "rapidstorm": (".txt", _write_rapidstorm),
    "elyra": (".txt", _write_elyra),
    "nstorm": (".txt", _write_nstorm),
    "nanoimager": (".csv", _write_nanoimager),
    "picasso": (".hdf5", _write_picasso),
    "decode": (".h5", _write_decode),
    "smap": (".mat", _write_smap),
    "shareloc": (".smlm", _write_shareloc),
    "csv": (".csv", _write_plain),
}


def write_localizations(path: str | Path, table: LocalizationTable | Mapping[str, Any], format: str,  # noqa: A002
                        **options: Any) -> Path:
    """Write localisations in one of :data:`WRITERS`' formats.

    Args:
        path: Output file (its suffix is kept as given).
        table: A record or a dict of arrays (``x_nm``, ``y_nm``, ...).
        format: Format name (``thunderstorm``, ``picasso``, ...).
        **options: ``pixel_size_nm`` (Picasso, DECODE: required; Elyra, SMAP: recorded),
            ``whole_header`` (ThunderSTORM: the one-quoted-field header, default True).

    Returns:
        The path written (Picasso also writes ``NAME.yaml``).

    Raises:
        ImagingError: unknown format, missing ``x_nm``/``y_nm``, or a pixel format without ``pixel_size_nm``.
    """
    if format not in WRITERS:
        raise ImagingError(f"format must be one of {sorted(WRITERS)}; got {format!r}")
    return WRITERS[format][1](Path(path), _columns(table), **options)
