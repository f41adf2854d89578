"""Atomic writes: a file is either its old version or its complete new one, never half."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

__all__ = ["atomic_write", "nan_to_none", "remove_stale_temporaries", "write_json", "write_npz", "write_torch"]

TEMPORARY_SUFFIX = ".tmp"
"""Suffix of the temporary files :func:`atomic_write` renames into place."""


def atomic_write(path: str | os.PathLike[str], writer: Callable[[BinaryIO], None]) -> Path:
    """Write through a temporary file in the same folder, fsync, then rename over ``path``.

    The file gets the permissions a plain ``open()`` would give (``0o666`` less the
    umask), not the owner-only mode of the temporary file.

    Raises:
        OSError: The write failed (full disk, read-only or missing folder, ...); the
            message names the file, and the previous version of it is untouched.
    """
    target = Path(path)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMPORARY_SUFFIX, dir=target.parent)
        with os.fdopen(fd, "wb") as handle:
            writer(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except OSError as exc:
        _discard(tmp)
        reason = exc.strerror or str(exc) or type(exc).__name__
        message = f"cannot write {target}: {reason} (its previous version, if any, is unchanged)"
        raise (OSError(exc.errno, message) if exc.errno is not None else OSError(message)) from exc
    except BaseException:
        _discard(tmp)
        raise
    return target


def _discard(tmp: str | None) -> None:
    if tmp is not None and os.path.exists(tmp):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files an :func:`atomic_write` killed mid-write left in ``folder``.

    Call it only while holding the folder (:func:`mollifier.runtime.lock.folder_lock`):
    another writer's temporary file would look the same.
    """
    removed = []
    for path in Path(folder).glob(f".*{TEMPORARY_SUFFIX}"):
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Atomically write ``data`` as indented JSON (NaN written as null)."""
    text = json.dumps(nan_to_none(data), indent=2, default=_default, sort_keys=False) + "\n"
    return atomic_write(path, lambda h: h.write(text.encode()))


def nan_to_none(data: Any) -> Any:
    if isinstance(data, float) and data != data:
        return None
    if isinstance(data, dict):
        return {k: nan_to_none(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [nan_to_none(v) for v in data]
    return data


def write_npz(path: str | os.PathLike[str], arrays: dict[str, Any]) -> Path:
    """Atomically write arrays to a compressed ``.npz``."""
    clean = {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in arrays.items()}
    return atomic_write(path, lambda h: np.savez_compressed(h, **clean))


def write_torch(path: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically ``torch.save`` an object."""
    return atomic_write(path, lambda h: torch.save(obj, h))
