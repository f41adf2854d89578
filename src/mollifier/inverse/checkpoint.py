"""Training checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint holds the model, the optimiser and the learning-rate schedule, the loss
history, the step reached, the training time so far, the peak memory measured, whether
L-BFGS is done and the run's settings (training draws no random numbers after the
seeded initialisation, so no random state is needed). It is written atomically
(:func:`mollifier.runtime.files.write_torch`: a kill during the write leaves the
previous checkpoint intact), and a resumed run on the CPU repeats the uninterrupted
run's arithmetic exactly (same state, same operations in the same order).

Reading is strict: a missing file, a file that is not a checkpoint (truncated,
corrupt, another program's) or one without the fields above is a clear error naming
the file -- ``--resume`` never silently starts over.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..runtime.files import write_torch

__all__ = [
    "CHECKPOINT_NAME",
    "RESUMABLE_CHANGES",
    "CheckpointError",
    "check_resumable",
    "load_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_NAME = "checkpoint.pt"
"""File name of the checkpoint inside a results folder."""

REQUIRED = ("model", "optimizer", "scheduler", "history", "step", "elapsed", "config")
"""Fields every checkpoint has."""

RESUMABLE_CHANGES = ("steps", "time_budget", "progress", "log_every", "checkpoint_every", "log", "device")
"""Training settings that may differ between a run and its resumption (how long to run,
what to report, where to compute); any other change refuses to resume."""


class CheckpointError(ValueError):
    """A checkpoint cannot be read, or does not belong to this run."""


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Atomically write ``state`` to ``path``."""
    return write_torch(path, state)


def load_checkpoint(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: No checkpoint at ``path``.
        CheckpointError: The file is unreadable (truncated, corrupt, not a checkpoint)
            or lacks fields; the message names the file and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--resume given but there is no checkpoint at {path}; run without --resume to start afresh")
    if not zipfile.is_zipfile(path):
        # torch.save writes a zip archive; anything else (truncated, overwritten, empty) is
        # refused before unpickling, which on random bytes can fail in any way (even MemoryError)
        raise CheckpointError(
            f"checkpoint {path} is unreadable (not the zip archive torch.save writes); it may be truncated or "
            "corrupt. Nothing was overwritten: delete it (or the whole folder) to start afresh, or restore a copy"
        )
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - a damaged archive can fail in many ways; each is "unreadable"
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(exc).__name__}: {_first_line(exc)}); it may be truncated or "
            "corrupt. Nothing was overwritten: delete it (or the whole folder) to start afresh, or restore a copy"
        ) from exc
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED):
        missing = [k for k in REQUIRED if not isinstance(state, dict) or k not in state]
        raise CheckpointError(f"{path} is not a mollifier training checkpoint (missing {missing})")
    return state


def check_resumable(path: str | os.PathLike[str], saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse to resume when a setting outside :data:`RESUMABLE_CHANGES` differs.

    Args:
        path: The checkpoint (for the message).
        saved: The training settings stored in the checkpoint.
        current: The settings of the run that wants to resume.
    """
    keys = set(saved) | set(current)
    changed = sorted(k for k in keys if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k))
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed)
        raise CheckpointError(
            f"cannot resume from {path}: it was made with different settings ({detail}); "
            "use the same options, or a new --out folder"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""
