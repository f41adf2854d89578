"""The results folder of a run: one writer for every way of recovering, one reader.

``write_results(out, result, record)`` writes, each file atomically:

- ``config.json``: the settings (``record``);
- ``arrays.npz``: :attr:`Result.arrays`;
- ``history.json``: the per-step loss terms;
- ``metrics.json``: the scores, written last, so its presence marks a complete run.

A failed write (full disk, read-only folder) raises an ``OSError`` naming the file and
leaves the previous version of every file intact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.files import write_json, write_npz
from .recovery import Result

__all__ = ["RESULT_FILES", "read_results", "write_config", "write_results"]

RESULT_FILES = ("config.json", "arrays.npz", "history.json", "metrics.json")
"""The files a complete results folder holds (``checkpoint.pt`` and ``figures/`` beside them)."""


def write_config(out: str | os.PathLike[str], record: dict[str, Any]) -> Path:
    """Write ``config.json`` (at the start of a run, so an interrupted one says what it was)."""
    return write_json(Path(out) / "config.json", record)


def write_results(out: str | os.PathLike[str], result: Result, record: dict[str, Any] | None = None) -> Path:
    """Write a result into the folder ``out`` (``metrics.json`` last); returns the folder."""
    folder = Path(out)
    if record is not None:
        write_config(folder, record)
    write_npz(folder / "arrays.npz", result.arrays)
    write_json(folder / "history.json", result.history)
    write_json(folder / "metrics.json", result.metrics)
    return folder


def read_results(run_dir: str | os.PathLike[str]) -> Result:
    """Read a complete results folder back (without the model; see :func:`mollifier.load`).

    Raises:
        FileNotFoundError: The folder, or one of its result files, is missing (an
            interrupted run has no ``metrics.json`` yet: resume it first).
    """
    folder = Path(run_dir)
    missing = [name for name in RESULT_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} is not a complete results folder (missing {missing}); "
            "an interrupted run completes with `mollifier run ... --resume --out FOLDER`"
        )
    with np.load(folder / "arrays.npz") as data:
        arrays = {k: data[k] for k in data.files}
    metrics = json.loads((folder / "metrics.json").read_text())
    history = json.loads((folder / "history.json").read_text())
    return Result(metrics=metrics, arrays=arrays, history=history, out_dir=folder)
