"""Runtime utilities at the bottom of the package: nothing here imports the rest of mollifier.

- :mod:`.files`: atomic writes (a file is its old version or its complete new one) of
  bytes, JSON, NumPy archives and torch checkpoints; NaN-safe JSON.
- :mod:`.memory`: peak memory of one call (CUDA allocator, torch CPU allocations, RSS).
- :mod:`.lock`: an exclusive lock on a results folder, so two runs never write into one.
- :mod:`.devices`: resolving a device name (``"auto"``: CUDA, then MPS, then CPU).
"""

from .devices import resolve_device
from .files import atomic_write, nan_to_none, write_json, write_npz, write_torch
from .lock import FolderBusyError, folder_lock
from .memory import MemoryReading, measure_peak_memory, peak_rss_growth

__all__ = [
    "FolderBusyError",
    "MemoryReading",
    "atomic_write",
    "folder_lock",
    "measure_peak_memory",
    "nan_to_none",
    "peak_rss_growth",
    "resolve_device",
    "write_json",
    "write_npz",
    "write_torch",
]
