"""Stage 4 of ``mollifier chromatin``: the one writer of a nucleus's results folder.

:func:`write_nucleus` writes, atomically, everything a reader (or the figure,
:mod:`mollifier.plotting.chromatin`, which draws from these files alone) needs:

=====================  ===================================================================
``lambda.npy``/``.tif`` the rate-ratio map (float32; NaN outside the analysed region)
``lambda_std.*``        with ``seeds > 1``: per-pixel standard deviation over the seeds
``mask.npy``            the analysed region (nucleus less its rim)
``nucleus.npy``         the whole nucleus mask
``density.npy``         the input's density map (float32)
``phi_h.npy``           the heterochromatin fraction (NaN outside the region)
``truth_lambda.npy``    the true map, for inputs with a truth sidecar
``domains.csv``         DBSCAN domain centres and radii (``x``, ``y``, ``radius``; ``domain_unit``)
``summary.json``        statistics, baseline, the data's facts, every assumption, notes, warnings
=====================  ===================================================================

``summary.json`` is written last: its presence with ``"status": "ok"`` and the same
options (:func:`completed`) marks the folder complete for ``--resume``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.files import atomic_write, write_json
from .analysis import NucleusResult, training_record_dict

__all__ = ["MAP_FILES", "completed", "summary_record", "write_nucleus"]

#: Files every complete nucleus folder holds (``lambda.tif`` too when tifffile is installed).
MAP_FILES = ("lambda.npy", "mask.npy", "nucleus.npy", "density.npy", "phi_h.npy", "domains.csv", "summary.json")


def summary_record(result: NucleusResult) -> dict[str, Any]:
    """The JSON record of one nucleus (``summary.json``; one row of the batch table)."""
    inp, nuc, s, b = result.input, result.nucleus, result.stats, result.baseline
    pixel = result.region.pixel_nm
    record: dict[str, Any] = {
        "input": str(inp.source) if inp.source else None,
        "status": "ok",
        "kind": inp.kind,
        "nucleus": nuc.index,
        "nuclei_in_field": nuc.of,
        "nucleus_source": nuc.source,
        "nucleus_centroid_nm": list(nuc.centroid_nm),
        "mode": result.estimate.mode,
        "shape": list(result.region.mask.shape),
        "pixel_size_nm": inp.pixel_size_nm,
        "extent_nm": None if inp.extent_nm is None else list(inp.extent_nm),
        "nucleus_pixels": int(nuc.mask.sum()),
        "analysed_pixels": int(result.region.mask.sum()),
        "nucleus_area_um2": float(nuc.mask.sum() * pixel**2 / 1e6),
        "localizations": None if inp.table is None else inp.table.counts.kept,
        "lambda_mean": s.mean,
        "lambda_median": s.median,
        "lambda_p10": s.p10,
        "lambda_p90": s.p90,
        "lambda_spread_median": s.spread_median,
        "heterochromatin_fraction": result.heterochromatin_fraction,
        "phi_h_mean": float(np.nanmean(result.fractions.phi_h[result.region.mask])),
        "equilibrium_lambda_mean": float(np.nanmean((result.fractions.phi_h / result.fractions.phi_e)[result.region.mask])),
        "domain_count": b.n_domains,
        "domain_radius": b.radius_nm,
        "domain_spacing": b.spacing_nm,
        "domain_unit": b.unit,
        "baseline_ratio": b.ratio,
        "baseline": b.as_dict(),
        "runtime_seconds": result.runtime_seconds,
        "training": training_record_dict(result.estimate.training),
        "sparsity": result.sparsity.as_dict(),
        "model": dict(result.model),
        "data": None if inp.table is None else inp.table.as_dict(),
        "left_out": list(inp.left_out),
        "warnings": list(result.warnings),
        "notes": list(inp.notes) + list(nuc.notes) + list(result.notes),
        "options": result.options.fingerprint(),
    }
    if result.pearson is not None:
        record["pearson"] = result.pearson
        record["pearson_equilibrium_guess"] = result.pearson_equilibrium_guess
    return record


def _save_npy(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda h: np.save(h, array))


def write_nucleus(result: NucleusResult, folder: str | Path) -> dict[str, Any]:
    """Write one nucleus's files (module docstring) into ``folder``, ``summary.json`` last.

    Returns:
        The summary record, with ``"files"`` (kind -> file name in ``folder``) added.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    record = summary_record(result)
    files: dict[str, str] = {}

    def save(name: str, array: np.ndarray, key: str) -> None:
        _save_npy(out / name, array)
        files[key] = name

    lam = np.asarray(result.lambda_map, dtype=np.float32)
    save("lambda.npy", lam, "lambda_npy")
    save("mask.npy", result.region.mask, "mask_npy")
    save("nucleus.npy", result.nucleus.mask, "nucleus_npy")
    save("density.npy", np.asarray(result.input.density, dtype=np.float32), "density_npy")
    save("phi_h.npy", np.where(result.region.mask, result.fractions.phi_h, np.nan).astype(np.float32), "phi_h_npy")
    maps = {"lambda": lam}
    if result.lambda_std is not None:
        spread = np.asarray(result.lambda_std, dtype=np.float32)
        save("lambda_std.npy", spread, "lambda_std_npy")
        maps["lambda_std"] = spread
    if result.truth is not None:
        save("truth_lambda.npy", np.asarray(result.truth, dtype=np.float32), "truth_npy")
    buf = io.StringIO()
    buf.write(f"x,y,radius  # domain centres and equivalent radii, in {result.baseline.unit}\n")
    for (x, y), r in zip(result.baseline.centres.reshape(-1, 2).tolist(), result.baseline.radii.tolist()):
        buf.write(f"{x:.3f},{y:.3f},{r:.3f}\n")
    text = buf.getvalue().encode()
    atomic_write(out / "domains.csv", lambda h: h.write(text))
    files["domains_csv"] = "domains.csv"
    try:
        from ..imaging.images import write_tiff

        for name, array in maps.items():
            buffer = io.BytesIO()
            write_tiff(buffer, array, result.region.pixel_nm)
            payload = buffer.getvalue()
            atomic_write(out / f"{name}.tif", lambda h, b=payload: h.write(b))
            files[f"{name}_tif"] = f"{name}.tif"
    except ImportError as exc:
        record["notes"].append(f"lambda.tif not written: {exc}")
    record["files"] = files
    write_json(out / "summary.json", record)
    return record


def completed(folder: str | Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The summary of a complete results folder made with the same options, else None.

    Complete: ``summary.json`` says ``"status": "ok"``, its ``options`` equal
    ``fingerprint`` (JSON-normalised), and every file it lists (names relative to the
    folder) exists.
    """
    path = Path(folder) / "summary.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("status") != "ok" or record.get("options") != json.loads(json.dumps(fingerprint)):
        return None
    files = record.get("files") or {}
    if not all((Path(folder) / name).is_file() for name in files.values()):
        return None
    return record
