"""Binary localisation files: Picasso HDF5 (+ YAML), DECODE HDF5, SMAP ``.mat``, ShareLoc ``.smlm``.

HDF5 (Picasso, DECODE, SMAP's MATLAB v7.3 files) needs the optional ``h5py``, Picasso's
YAML sidecar ``pyyaml`` (``pip install 'mollifier[smlm]'``); older MATLAB ``.mat`` files
are read with :func:`scipy.io.loadmat`, ShareLoc's ZIP with the standard library.
HDF5 and ShareLoc tables are streamed in row blocks.

What is read (coordinates always converted to nm):

* Picasso ``*.hdf5``: the table ``locs`` (``frame, x, y, photons, sx, sy, bg, lpx, lpy,
  ...``); ``x, y, lpx, lpy`` are in camera pixels, converted with the ``Pixelsize`` of the
  YAML sidecar (``NAME.yaml``; the last YAML document that has one wins, as in Picasso);
  precision = ``sqrt((lpx^2 + lpy^2) / 2)``; ``z`` (3-D) is already in nm.
* DECODE ``*.h5``: ``data/xyz`` (N x 3), ``data/frame_ix``, ``data/phot``,
  ``data/xyz_sig``; ``meta`` attributes ``xy_unit`` (``px`` or ``nm``) and
  ``px_size`` (x, y in nm); z is in nm.
* SMAP ``*.mat``: ``saveloc.loc.xnm, ynm, znm, frame, channel, locprecnm, phot`` (nm).
* ShareLoc ``*.smlm``: a ZIP holding ``manifest.json`` (format 0.2: per table its
  ``headers``, ``dtype``, ``rows``) and packed row-major binary tables; several tables
  are several channels (the ``channel`` of each file entry).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._common import ImagingError, require_smlm
from ..table import ReadOptions, TableStream
from .columns import detect_roles, normalise, role_by_name

__all__ = [
    "HDF5_MAGIC",
    "MAT73_OFFSET",
    "open_decode",
    "open_picasso",
    "open_shareloc",
    "open_smap",
    "picasso_pixel_size",
]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: MATLAB v7.3 files are HDF5 with a 512-byte user block (the MATLAB header) in front.
MAT73_OFFSET = 512


def _h5py() -> Any:
    return require_smlm("h5py", "reading HDF5 localisation files (Picasso, DECODE, SMAP v7.3)")


def _px_value(pixel: float | None, source: str | None, options: ReadOptions, fmt: str, notes: list[str],
              what: str) -> tuple[float, str]:
    if options.pixel_size_nm is not None:
        if pixel is not None and abs(options.pixel_size_nm - pixel) > 1e-9:
            notes.append(f"--pixel-size-nm {options.pixel_size_nm:g} overrides the file's {pixel:g} nm ({source})")
        return float(options.pixel_size_nm), "--pixel-size-nm"
    if pixel is None:
        raise ImagingError(f"{what}; pass --pixel-size-nm (the camera pixel in nm; library: pixel_size_nm=)")
    return float(pixel), str(source)


# ---------------------------------------------------------------- Picasso


def picasso_pixel_size(hdf5: Path) -> tuple[float | None, str | None, Path]:
    """``(pixel size nm or None, its source, sidecar path)`` from Picasso's YAML sidecar."""
    sidecar = hdf5.with_suffix(".yaml")
    if not sidecar.is_file():
        return None, None, sidecar
    yaml = require_smlm("yaml", "reading Picasso's YAML sidecar")
    try:
        with sidecar.open("r", encoding="utf-8", errors="replace") as fh:
            docs = [d for d in yaml.safe_load_all(fh) if isinstance(d, dict)]
    except yaml.YAMLError as exc:
        raise ImagingError(f"Picasso sidecar {str(sidecar)!r} is not valid YAML: {exc}") from None
    for doc in reversed(docs):  # Picasso: the last document that has it wins
        value = doc.get("Pixelsize")
        if value:
            return float(value), f"Picasso YAML Pixelsize ({sidecar.name})", sidecar
    return None, None, sidecar


def open_picasso(path: Path, options: ReadOptions) -> TableStream:
    """A Picasso ``locs`` HDF5 file (x, y in camera pixels)."""
    h5py = _h5py()
    with h5py.File(path, "r") as h:
        ds = h["locs"]
        names = list(ds.dtype.names or ())
        n = int(ds.shape[0])
    if "x" not in names or "y" not in names:
        raise ImagingError(f"Picasso file {str(path)!r}: table 'locs' has no x/y fields (fields: {names})")
    notes: list[str] = []
    file_px, source, sidecar = picasso_pixel_size(path)
    px, px_source = _px_value(file_px, source, options, "picasso", notes,
                              f"Picasso file {str(path)!r} is in camera pixels and its sidecar {sidecar.name!r} "
                              f"{'gives no Pixelsize' if sidecar.is_file() else 'is missing'}")
    used = {"x": "x", "y": "y"}
    units = {"x": "px", "y": "px"}
    for role, name in (("frame", "frame"), ("photons", "photons"), ("z", "z")):
        if name in names:
            used[role] = name
    if "z" in names:
        units["z"] = "nm"
    has_lp = "lpx" in names and "lpy" in names
    if has_lp:
        used["precision"] = "lpx, lpy"
        units["precision"] = "px"
    ignored = [c for c in names if c not in {"x", "y", "frame", "photons", "z", "lpx", "lpy"}]
    if "sx" in ignored:
        notes.append("sx, sy not used: PSF widths, not the localisation precision")

    def rows(chunk: int) -> Iterator[dict[str, np.ndarray]]:
        with h5py.File(path, "r") as h:
            ds = h["locs"]
            for start in range(0, n, chunk):
                block = ds[start:start + chunk]
                out = {"x_nm": block["x"].astype(np.float64) * px, "y_nm": block["y"].astype(np.float64) * px}
                if "frame" in used:
                    out["frame"] = block["frame"].astype(np.int64)
                if "photons" in used:
                    out["photons"] = block["photons"].astype(np.float64)
                if "z" in used:
                    out["z_nm"] = block["z"].astype(np.float64)
                if has_lp:
                    lpx, lpy = block["lpx"].astype(np.float64), block["lpy"].astype(np.float64)
                    out["precision_nm"] = np.sqrt((lpx**2 + lpy**2) / 2) * px
                yield out

    return TableStream("picasso", path, rows, used, ignored, units, px, px_source, notes, n)


# ---------------------------------------------------------------- DECODE


def _attr_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind in "SU" and value.size == 1:
        return _attr_text(value.reshape(-1)[0])
    return str(value)


def open_decode(path: Path, options: ReadOptions) -> TableStream:
    """A DECODE emitter HDF5 file (``data/xyz`` in ``meta.xy_unit``; z in nm)."""
    h5py = _h5py()
    with h5py.File(path, "r") as h:
        data = h["data"]
        meta = dict(h["meta"].attrs) if "meta" in h else {}
        shapes = {k: data[k].shape for k in data}
    xyz_shape = shapes.get("xyz")
    if not xyz_shape or len(xyz_shape) != 2 or xyz_shape[1] < 2:
        raise ImagingError(f"DECODE file {str(path)!r}: data/xyz has shape {xyz_shape}; expected (N, 2 or 3)")
    n = int(xyz_shape[0])
    unit = _attr_text(meta.get("xy_unit", "px")).strip().lower()
    notes: list[str] = []
    if unit == "nm":
        sx = sy = 1.0
        px_meta = None
        px_source = None
        if meta.get("px_size") is not None:
            px_meta = float(np.asarray(meta["px_size"], dtype=float).reshape(-1)[0])
            px_source = "DECODE meta px_size"
    elif unit == "px":
        size = meta.get("px_size")
        pair = None if size is None else np.asarray(size, dtype=float).reshape(-1)
        if options.pixel_size_nm is not None:
            sx = sy = float(options.pixel_size_nm)
            px_meta, px_source = sx, "--pixel-size-nm"
            if pair is not None:
                notes.append(f"--pixel-size-nm {sx:g} overrides the file's px_size {pair.tolist()} nm")
        elif pair is None or pair.size == 0:
            raise ImagingError(f"DECODE file {str(path)!r} is in px and gives no meta px_size; pass --pixel-size-nm "
                               "(the camera pixel in nm; library: pixel_size_nm=)")
        else:
            sx, sy = float(pair[0]), float(pair[-1])
            px_meta, px_source = sx, "DECODE meta px_size"
            if sx != sy:
                notes.append(f"pixels are {sx:g} x {sy:g} nm (x, y; DECODE meta px_size)")
    else:
        raise ImagingError(f"DECODE file {str(path)!r}: meta xy_unit {unit!r} not understood (expected 'px' or 'nm')")
    has_z = xyz_shape[1] >= 3
    used = {"x": "data/xyz[:, 0]", "y": "data/xyz[:, 1]"}
    units = {"x": unit, "y": unit}
    if has_z:
        used["z"] = "data/xyz[:, 2]"
        units["z"] = "nm"
    if shapes.get("frame_ix") is not None:
        used["frame"] = "data/frame_ix"
    if shapes.get("phot") is not None:
        used["photons"] = "data/phot"
    sig = shapes.get("xyz_sig")
    if sig is not None and len(sig) == 2 and sig[0] == n:
        used["precision"] = "data/xyz_sig[:, 0:2]"
        units["precision"] = unit
    empty = sorted(k for k, s in shapes.items() if s is None)
    ignored = sorted(k for k, s in shapes.items() if s is not None and f"data/{k}" not in "".join(used.values()))
    if empty:
        notes.append(f"empty datasets {empty} skipped")

    def rows(chunk: int) -> Iterator[dict[str, np.ndarray]]:
        with h5py.File(path, "r") as h:
            d = h["data"]
            for start in range(0, n, chunk):
                stop = min(start + chunk, n)
                xyz = d["xyz"][start:stop].astype(np.float64)
                out = {"x_nm": xyz[:, 0] * sx, "y_nm": xyz[:, 1] * sy}
                if has_z:
                    out["z_nm"] = xyz[:, 2]
                if "frame" in used:
                    out["frame"] = d["frame_ix"][start:stop].astype(np.int64)
                if "photons" in used:
                    out["photons"] = d["phot"][start:stop].astype(np.float64)
                if "precision" in used:
                    s = d["xyz_sig"][start:stop].astype(np.float64)
                    out["precision_nm"] = np.sqrt(((s[:, 0] * sx) ** 2 + (s[:, 1] * sy) ** 2) / 2)
                yield out

    return TableStream("decode", path, rows, used, ignored, units, px_meta, px_source, notes, n)


# ---------------------------------------------------------------- SMAP

_SMAP_ROLES = {"x": "xnm", "y": "ynm", "z": "znm", "frame": "frame", "channel": "channel",
               "precision": "locprecnm", "photons": "phot"}
_ATTR = {"x": "x_nm", "y": "y_nm", "z": "z_nm", "frame": "frame", "channel": "channel",
         "precision": "precision_nm", "photons": "photons"}


def _smap_arrays_v5(path: Path) -> tuple[dict[str, np.ndarray], float | None]:
    from scipy import io as sio

    try:
        mat = sio.loadmat(path, variable_names=["saveloc"], squeeze_me=True, struct_as_record=False)
    except (ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise ImagingError(f"cannot read SMAP file {str(path)!r}: {exc}") from None
    if "saveloc" not in mat:
        raise ImagingError(f"MATLAB file {str(path)!r} has no variable 'saveloc' (not a SMAP localisation file)")
    loc = mat["saveloc"].loc
    arrays = {name: np.atleast_1d(np.asarray(getattr(loc, name))).ravel() for name in loc._fieldnames}
    pixel = None
    try:
        cam = np.asarray(mat["saveloc"].file.info.cam_pixelsize_um, dtype=float).ravel()
        pixel = float(cam[0]) * 1000.0
    except (AttributeError, TypeError, ValueError, IndexError):
        pass
    return arrays, pixel


def open_smap(path: Path, options: ReadOptions, *, hdf5: bool) -> TableStream:
    """A SMAP ``saveloc`` file: MATLAB v7.3 (HDF5, streamed) or older (read whole)."""
    notes: list[str] = []
    if hdf5:
        h5py = _h5py()
        with h5py.File(path, "r") as h:
            if "saveloc" not in h or "loc" not in h["saveloc"]:
                raise ImagingError(f"MATLAB file {str(path)!r} has no saveloc.loc (not a SMAP localisation file)")
            loc = h["saveloc/loc"]
            fields = {k: loc[k].shape for k in loc}
            pixel = None
            try:
                pixel = float(np.asarray(h["saveloc/file/info/cam_pixelsize_um"][()]).ravel()[0]) * 1000.0
            except (KeyError, IndexError, TypeError, ValueError):
                pass
        n = max((int(np.prod(s)) for k, s in fields.items() if k in ("xnm", "ynm")), default=0)
        arrays_v5 = None
    else:
        arrays_v5, pixel = _smap_arrays_v5(path)
        fields = {k: v.shape for k, v in arrays_v5.items()}
        n = int(arrays_v5["xnm"].size) if "xnm" in arrays_v5 else 0
    if "xnm" not in fields or "ynm" not in fields:
        raise ImagingError(f"SMAP file {str(path)!r}: saveloc.loc has no xnm/ynm (fields: {sorted(fields)})")
    used = {role: name for role, name in _SMAP_ROLES.items() if name in fields and int(np.prod(fields[name] or (0,))) == n}
    units = {r: "nm" for r in ("x", "y", "z", "precision") if r in used}
    ignored = sorted(k for k in fields if k not in used.values())
    if pixel is not None:
        notes.append(f"camera pixel {pixel:.4g} nm (SMAP file.info.cam_pixelsize_um); positions are already in nm")

    def convert(role: str, values: np.ndarray) -> np.ndarray:
        if role == "frame":
            return values.astype(np.int64)
        if role == "channel":
            return values.astype(np.int64) if np.all(values == np.round(values)) else values
        return values.astype(np.float64)

    def rows(chunk: int) -> Iterator[dict[str, np.ndarray]]:
        if arrays_v5 is not None:
            for start in range(0, n, chunk):
                yield {_ATTR[r]: convert(r, arrays_v5[name][start:start + chunk]) for r, name in used.items()}
            return
        with _h5py().File(path, "r") as h:
            loc = h["saveloc/loc"]
            for start in range(0, n, chunk):
                out = {}
                for r, name in used.items():
                    ds = loc[name]
                    block = ds[0, start:start + chunk] if ds.ndim == 2 and ds.shape[0] == 1 else np.asarray(ds).ravel()[start:start + chunk]
                    out[_ATTR[r]] = convert(r, np.asarray(block))
                yield out

    return TableStream("smap", path, rows, used, ignored, units, pixel,
                       "SMAP file.info.cam_pixelsize_um" if pixel is not None else None, notes, n)


# ---------------------------------------------------------------- ShareLoc

_DTYPES = {"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"}


def open_shareloc(path: Path, options: ReadOptions) -> TableStream:
    """A ShareLoc.xyz ``.smlm`` ZIP (manifest format 0.2, binary tables)."""
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            names = set(zf.namelist())
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError) as exc:
        raise ImagingError(f"cannot read ShareLoc file {str(path)!r}: {exc}") from None
    tables = [f for f in manifest.get("files", []) if f.get("type") == "table"]
    if not tables:
        raise ImagingError(f"ShareLoc file {str(path)!r}: the manifest lists no table")
    layouts = []
    for info in tables:
        fmt = manifest.get("formats", {}).get(info.get("format"), {})
        if fmt.get("mode") != "binary":
            raise ImagingError(f"ShareLoc file {str(path)!r}: table format mode {fmt.get('mode')!r} not supported "
                               "(only 'binary')")
        headers, dtypes = list(fmt.get("headers", [])), list(fmt.get("dtype", []))
        shapes = [int(s) for s in fmt.get("shape", [1] * len(headers))]
        if len(headers) != len(dtypes) or any(d not in _DTYPES for d in dtypes) or any(s != 1 for s in shapes):
            raise ImagingError(f"ShareLoc file {str(path)!r}: table columns {headers} with dtypes {dtypes} "
                               f"and shapes {shapes} not supported")
        if info.get("name") not in names:
            raise ImagingError(f"ShareLoc file {str(path)!r}: table {info.get('name')!r} missing from the archive")
        layouts.append((info, headers, np.dtype({"names": headers, "formats": dtypes}), fmt.get("units", [])))
    headers = layouts[0][1]
    roles = detect_roles(headers, require_xy=options.x_col is None or options.y_col is None)
    for axis, name in (("x", options.x_col), ("y", options.y_col)):
        if name is not None:
            roles[axis] = role_by_name(headers, name, axis, f"{str(path)!r}")
    notes: list[str] = []
    units: dict[str, str] = {}
    scale: dict[str, float] = {}
    manifest_units = list(layouts[0][3]) + [""] * len(headers)
    for role in ("x", "y", "z", "precision"):
        if role not in roles:
            continue
        col, unit = roles[role]
        unit = unit or normalise(manifest_units[col]) or None
        if unit is None:
            unit = options.coord_unit or "nm"
            if role == "x" and options.coord_unit is None:
                notes.append("the manifest gives no unit for the positions: taken as nm (give --coord-unit if not)")
        if unit in ("px", "pixel", "pixels"):
            px, _ = _px_value(None, None, options, "shareloc", notes, f"ShareLoc file {str(path)!r} is in pixels")
            scale[role], units[role] = px, "px"
        else:
            factor = {"nm": 1.0, "um": 1000.0, "µm": 1000.0, "micrometer": 1000.0, "nanometer": 1.0}.get(unit)
            if factor is None:
                raise ImagingError(f"ShareLoc file {str(path)!r}: unit {unit!r} of column {headers[col]!r} not understood")
            scale[role], units[role] = factor, "nm" if factor == 1.0 else "um"
    used = {role: headers[col] for role, (col, _) in roles.items()}
    channels = [str(info.get("channel", k)) for k, (info, *_rest) in enumerate(layouts)]
    if len(layouts) > 1:
        used["channel"] = "manifest files[].channel"
        notes.append(f"{len(layouts)} tables: read as channels {channels}")
    ignored = [h for h in headers if h not in used.values()]
    if any(any(v for v in (info.get("offset") or {}).values()) for info, *_ in layouts):
        notes.append("non-zero 'offset' entries of the manifest not applied (their meaning is not specified)")
    n = sum(int(info.get("rows", 0)) for info, *_ in layouts)

    def rows(chunk: int) -> Iterator[dict[str, np.ndarray]]:
        with zipfile.ZipFile(path) as zf:
            for k, (info, hdrs, dtype, _) in enumerate(layouts):
                total = int(info.get("rows", 0))
                with zf.open(info["name"]) as fh:
                    done = 0
                    while done < total:
                        count = min(chunk, total - done)
                        raw = fh.read(count * dtype.itemsize)
                        if len(raw) < count * dtype.itemsize:
                            raise ImagingError(f"ShareLoc file {str(path)!r}: table {info['name']!r} holds fewer rows "
                                               f"than the manifest's {total}")
                        block = np.frombuffer(raw, dtype=dtype, count=count)
                        done += count
                        out: dict[str, np.ndarray] = {}
                        for role, (col, _) in roles.items():
                            values = block[hdrs[col]]
                            if role in scale:
                                out[_ATTR[role]] = values.astype(np.float64) * scale[role]
                            elif role in ("frame",):
                                out["frame"] = values.astype(np.int64)
                            else:
                                out[_ATTR[role]] = values.astype(np.float64) if role == "photons" else values
                        if len(layouts) > 1:
                            out["channel"] = np.full(count, channels[k])
                        yield out

    return TableStream("shareloc", path, rows, used, ignored, units, None, None, notes, n)
