"""Peak memory of one call, beyond what was allocated before it.

- CUDA: the caching allocator's peak (``torch.cuda.max_memory_allocated``) minus the
  memory allocated when the call starts.
- CPU: the peak of torch's live tensor bytes during the call, read from the
  profiler's allocation events (the CPU analogue of the CUDA figure), and, where Linux
  allows it, the growth of the process's peak resident set (``VmHWM`` after resetting
  it through ``/proc/self/clear_refs``) -- what a user sees in ``top``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import torch

__all__ = ["MemoryReading", "measure_peak_memory", "peak_memory_with_python", "peak_rss_growth"]

T = TypeVar("T")


@dataclass(frozen=True)
class MemoryReading:
    """Peak bytes allocated by a call beyond its starting point."""

    peak_bytes: int
    method: str


def measure_peak_memory(fn: Callable[[], T], device: torch.device) -> tuple[T, MemoryReading]:
    """Run ``fn()`` once and return its result with the peak extra memory it needed."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        result = fn()
        torch.cuda.synchronize(device)
        return result, MemoryReading(int(torch.cuda.max_memory_allocated(device) - start), "cuda-allocator")
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    events = prof.profiler.kineto_results.events()  # type: ignore[union-attr]
    changes = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    peak = max(itertools.accumulate(n for _, n in changes), default=0)
    return result, MemoryReading(int(max(peak, 0)), "torch-cpu-allocations")


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the profiler's native log lines (file descriptor 2) for the duration."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            sys.stderr.flush()
            os.dup2(null.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_rss_growth(fn: Callable[[], T]) -> tuple[T, int | None]:
    """Run ``fn()`` and return how far the process's peak RSS rose above its RSS at start.

    Returns ``None`` for the growth where ``/proc/self/clear_refs`` is unavailable.
    """
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # reset VmHWM to the current RSS
    except OSError:
        return fn(), None
    start = _status_kb("VmRSS")
    result = fn()
    peak = _status_kb("VmHWM")
    if start is None or peak is None or not os.path.exists("/proc/self/status"):
        return result, None
    return result, max(peak - start, 0)


def peak_memory_with_python(fn: Callable[[], T]) -> tuple[T, int]:
    """Run ``fn()`` on the CPU; its peak extra bytes: Python and NumPy allocations
    (``tracemalloc``) plus torch's CPU tensor allocations (:func:`measure_peak_memory`), added."""
    import tracemalloc

    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    result, reading = measure_peak_memory(fn, torch.device("cpu"))
    python_peak = tracemalloc.get_traced_memory()[1] - base
    if not tracing:
        tracemalloc.stop()
    return result, int(max(python_peak, 0) + reading.peak_bytes)
