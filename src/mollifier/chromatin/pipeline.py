"""One input file -> a results folder per nucleus: the stages of ``mollifier chromatin`` in order.

:func:`process_input` runs, for one file: the truth sidecar (synthetic inputs are
rendered on the truth's grid and scored), :func:`~.inputs.load_input` (density map and
the facts it rests on), the table-level sparsity check (:func:`~.sparsity.precheck`),
:func:`~.nuclei.locate_nuclei` (every nucleus, or ``--nucleus K``, or the user's mask),
then for each nucleus :func:`~.analysis.analyse_nucleus` and
:func:`~.outputs.write_nucleus`. One nucleus goes to ``OUT/<stem>/``; several to
``OUT/<stem>/nucleus-K/``. A failing nucleus becomes an error row; the others go on.
Training checkpoints land in ``<nucleus folder>/training/`` (``seed-S/`` per seed when
``seeds > 1``); with ``resume`` complete nuclei are skipped (and reported so) and
unfinished ones continue from their checkpoints. ``OUT/<stem>/input.json`` records the
input's nuclei once all are done.

Figures are drawn afterwards from the written files by the CLI
(:mod:`mollifier.plotting.chromatin`).

The names of the first version (``load_input``, ``analyse_nucleus``,
``build_problem``, ``write_outputs``, ``check_options``, the constants) are re-exported
here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..imaging import ImagingError
from ..imaging.readers import uncompressed_name
from ..runtime.files import write_json
from .analysis import NucleusResult, analyse_nucleus, build_problem
from .inputs import IMAGE_SUFFIXES, NucleusInput, input_kind, load_input
from .nuclei import locate_nuclei, pick_nucleus
from .options import (
    ASSUMED_DIAMETER_NM,
    PIXEL_NM,
    RADIUS_NM,
    RIM_NM,
    TRAINING,
    UNIT_NM,
    AnalysisOptions,
    InputOptions,
    check_options,
)
from .outputs import completed, write_nucleus
from .sparsity import precheck
from .truth import read_truth

__all__ = [
    "ASSUMED_DIAMETER_NM",
    "IMAGE_SUFFIXES",
    "PIXEL_NM",
    "RADIUS_NM",
    "RIM_NM",
    "TRAINING",
    "UNIT_NM",
    "NucleusInput",
    "NucleusResult",
    "analyse_nucleus",
    "build_problem",
    "check_options",
    "input_kind",
    "load_input",
    "nucleus_folder",
    "process_input",
    "write_outputs",
]

Log = Callable[[str], None]


def write_outputs(result: NucleusResult, out_dir: str | Path) -> dict[str, Any]:
    """Write one nucleus's results folder (:func:`~.outputs.write_nucleus`); returns its summary."""
    return write_nucleus(result, out_dir)


def nucleus_folder(out: Path, stem: str, index: int, count: int) -> Path:
    """``OUT/<stem>`` for a field with one nucleus, ``OUT/<stem>/nucleus-K`` otherwise."""
    return out / stem if count == 1 else out / stem / f"nucleus-{index}"


def _fingerprint(input_options: InputOptions, options: AnalysisOptions) -> dict[str, Any]:
    return json.loads(json.dumps({"input": input_options.fingerprint(), "analysis": options.fingerprint(),
                                  "nucleus": options.nucleus}, default=str))


def _skipped_rows(out: Path, stem: str, fingerprint: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Rows of an input whose every nucleus is complete with the same options, else None."""
    try:
        record = json.loads((out / stem / "input.json").read_text())
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != fingerprint or not record.get("folders"):
        return None
    rows = []
    for folder in record["folders"]:
        done = completed(folder, fingerprint["analysis"])
        if done is None:
            return None
        rows.append({**done, "status": "skipped", "output": str(folder), "message": "complete from an earlier run"})
    return rows


def process_input(
    path: Path,
    stem: str,
    out: Path,
    input_options: InputOptions,
    options: AnalysisOptions,
    *,
    resume: bool = False,
    log: Log | None = None,
) -> list[dict[str, Any]]:
    """Analyse every nucleus of one input; one row (dict) per nucleus.

    Rows: the nucleus's summary record with ``"output"`` (its folder); ``"status"`` is
    ``"ok"``, ``"skipped"`` (complete from an earlier run, with ``resume``) or
    ``"error"`` (with ``"message"``; raised errors of the input as a whole propagate).

    Raises:
        ImagingError, ImportError, ValueError: the input cannot be read or holds no
            analysable nucleus (the caller turns this into an error row).
    """
    say = log or (lambda line: None)
    fingerprint = _fingerprint(input_options, options)
    if resume:
        rows = _skipped_rows(out, stem, fingerprint)
        if rows is not None:
            say(f"{path.name}: complete from an earlier run ({len(rows)} nucleus folder(s)): skipped")
            return rows
    truth = read_truth(path) if path.exists() and path.suffix.lower() not in IMAGE_SUFFIXES else None
    opts = input_options
    if truth is not None:
        if input_options.render_pixel_nm is not None and abs(input_options.render_pixel_nm - truth.pixel_size_nm) > 1e-6:
            say(f"{path.name}: --render-pixel-nm {input_options.render_pixel_nm:g} differs from the truth's grid "
                f"({truth.pixel_size_nm:g} nm): not scored")
            truth = None
        else:
            opts = input_options.replace(render_pixel_nm=truth.pixel_size_nm, extent_nm=truth.extent_nm)
    inp = load_input(path, opts, log=say)
    for item in inp.left_out:
        say(f"{path.name}: {item}")
    warnings: list[str] = []
    if inp.counts and inp.table is not None:
        check = precheck(inp.table.counts.kept, pixel_nm=opts.pixel_nm, radius_nm=max(options.radius_nm, 3 * opts.pixel_nm),
                         unit_nm=options.unit_nm, constants=options.constants, share=options.share)
        if check.verdict == "refuse":
            if not options.force:
                raise ImagingError(f"data too sparse for a lambda map: {check.message}; --force analyses it anyway")
            warnings.append(f"analysed with --force although refused: {check.message}")
    found, notes = locate_nuclei(inp)
    for note in notes:
        say(f"{path.name}: {note}")
    nuclei = pick_nucleus(found, options.nucleus)
    masks = [n.mask for n in found]
    count = len(found)
    rows: list[dict[str, Any]] = []
    folders: list[str] = []
    for nucleus in nuclei:
        nucleus.notes = list(notes)
        folder = nucleus_folder(out, stem, nucleus.index, count)
        folders.append(str(folder))
        label = path.name if count == 1 else f"{path.name} nucleus {nucleus.index}/{count}"
        if resume:
            done = completed(folder, fingerprint["analysis"])
            if done is not None:
                say(f"{label}: complete from an earlier run: skipped")
                rows.append({**done, "status": "skipped", "output": str(folder), "message": "complete from an earlier run"})
                continue
        start = time.perf_counter()
        try:
            result = analyse_nucleus(inp, nucleus, options, nuclei_masks=masks,
                                     truth=None if truth is None else truth.lambda_map, training_dir=folder / "training",
                                     resume=resume, log=say)
            result.warnings[:0] = warnings
            record = write_nucleus(result, folder)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one bad nucleus must not stop the others
            message = " ".join(str(exc).split()) or type(exc).__name__
            if count == 1:
                raise
            say(f"{label}: error: {message}")
            rows.append({"input": str(path), "nucleus": nucleus.index, "status": "error", "message": message,
                         "runtime_seconds": time.perf_counter() - start, "output": str(folder)})
            continue
        for warning in record["warnings"]:
            say(f"{label}: warning: {warning}")
        rows.append({**record, "output": str(folder)})
    if all(r["status"] in ("ok", "skipped") for r in rows):
        write_json(out / stem / "input.json", {"input": str(path), "fingerprint": fingerprint, "folders": folders,
                                               "nuclei_in_field": count})
    return rows


def output_stem(path: Path) -> str:
    """The results folder name of an input: its name without suffixes (``cell.csv.xz`` -> ``cell``)."""
    return Path(uncompressed_name(path)).stem or "input"
