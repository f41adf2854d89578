"""An exclusive lock on a results folder: two runs never write into the same folder.

:func:`folder_lock` takes an advisory ``flock`` on ``FOLDER/.lock`` for as long as the
``with`` block runs. A second run into the same folder (another process, or the same
process again) is refused at once with :class:`FolderBusyError`, which names the
folder and the process holding it. The operating system drops the lock when its holder
exits, however it exits (``SIGKILL`` included), so a killed run never leaves a stale
lock behind and ``--resume`` can start straight away.

Example:
    >>> import tempfile
    >>> from mollifier.runtime import FolderBusyError, folder_lock
    >>> folder = tempfile.mkdtemp()
    >>> with folder_lock(folder):
    ...     try:
    ...         with folder_lock(folder):
    ...             pass
    ...     except FolderBusyError as exc:
    ...         print("refused")
    refused
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LOCK_NAME", "FolderBusyError", "folder_lock"]

LOCK_NAME = ".lock"
"""Name of the lock file inside a locked folder."""


class FolderBusyError(RuntimeError):
    """Another run holds the results folder."""


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], what: str = "run") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if missing) for the ``with`` block.

    Args:
        folder: The results folder.
        what: What is running, for the error message (``"run"``, ``"batch"``, ...).

    Raises:
        FolderBusyError: Another process (or an enclosing ``with`` in this one) holds
            the folder; the message names the holder's host, process id and start time.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock on this platform: run unlocked
        yield Path(folder)
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    lock_file = path / LOCK_NAME
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            raise FolderBusyError(
                f"results folder {str(path)!r} is in use by another {what}{holder}; wait for it to finish, "
                "or choose another --out folder"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()} pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        try:
            yield path
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 200).decode(errors="replace").strip()
    except OSError:
        return ""
    return f" ({text})" if text else ""
