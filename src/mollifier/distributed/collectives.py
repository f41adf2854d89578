"""Collectives that fail with a clear error instead of hanging, and failure reports.

When one rank raises, the others are usually waiting in a collective. Two things turn
that into a readable error rather than a hang or a bare socket message:

- :func:`guard` wraps a rank's work: on an exception it writes ``"<Type>: <message>"``
  under ``mollifier/failure/<rank>`` in the process group's key-value store (the one
  torchrun or rank 0 hosts) before re-raising.
- Every collective here runs inside :func:`_collective`: when it fails (the failing
  rank's exit closed its connections, or nothing arrived within the process group's
  timeout), it raises :class:`RankFailedError` naming the operation, this rank, and
  the failed rank(s) with their reported cause.

All functions are no-ops (or identities) in a single-process context.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist

from .context import DistributedContext

__all__ = [
    "RankFailedError",
    "all_gather_objects",
    "all_gather_rows",
    "all_reduce_max",
    "all_reduce_sum_",
    "broadcast_module_",
    "guard",
    "report_failure",
    "reported_failures",
]

_KEY = "mollifier/failure/{rank}"


class RankFailedError(RuntimeError):
    """A collective could not complete because another rank failed or stopped answering."""


def _store() -> Any:
    try:
        return dist.distributed_c10d._get_default_store()
    except Exception:  # noqa: BLE001 - no store, no report: the error says so
        return None


def report_failure(ctx: DistributedContext, exc: BaseException) -> None:
    """Tell the other ranks why this one is failing (best effort, never raises)."""
    if not ctx.is_distributed or isinstance(exc, RankFailedError):
        return  # a RankFailedError is a consequence of another rank's failure, not a cause
    store = _store()
    if store is None:
        return
    text = " ".join(f"{type(exc).__name__}: {exc}".split())[:1000]
    try:
        store.set(_KEY.format(rank=ctx.rank), text)
    except Exception:  # noqa: BLE001 - the store may be gone already
        pass


def reported_failures(ctx: DistributedContext, wait: float = 2.0) -> dict[int, str]:
    """Causes reported by other ranks, ``{rank: "Type: message"}`` (waits up to ``wait`` s)."""
    store = _store()
    if store is None or not ctx.is_distributed:
        return {}
    deadline = time.monotonic() + wait
    while True:
        found: dict[int, str] = {}
        try:
            for rank in range(ctx.world_size):
                key = _KEY.format(rank=rank)
                if rank != ctx.rank and store.check([key]):
                    found[rank] = store.get(key).decode(errors="replace")
        except Exception:  # noqa: BLE001 - store unreachable (its host rank is gone)
            return found
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.1)


def _describe(ctx: DistributedContext, what: str, exc: BaseException) -> str:
    causes = reported_failures(ctx)
    detail = " ".join(str(exc).split())[:300] or type(exc).__name__
    head = f"{what} failed on rank {ctx.rank} of {ctx.world_size}"
    if causes:
        named = "; ".join(f"rank {r} failed with {text}" for r, text in sorted(causes.items()))
        return f"{head}: {named}"
    return (
        f"{head}: another rank stopped answering (it crashed, was killed, or did not reach this point "
        f"within the {ctx.timeout:g} s timeout; see that rank's output). Backend said: {detail}"
    )


@contextlib.contextmanager
def _collective(ctx: DistributedContext, what: str) -> Iterator[None]:
    try:
        yield
    except RankFailedError:
        raise
    except Exception as exc:  # gloo/nccl raise RuntimeError subclasses (DistBackendError, ...)
        raise RankFailedError(_describe(ctx, what, exc)) from exc


@contextlib.contextmanager
def guard(ctx: DistributedContext) -> Iterator[None]:
    """Run a rank's share of the work; if it raises, report the cause to the others first."""
    try:
        yield
    except BaseException as exc:
        report_failure(ctx, exc)
        raise


def all_reduce_sum_(ctx: DistributedContext, tensors: Sequence[torch.Tensor], what: str) -> None:
    """Sum ``tensors`` over ranks in place, one collective per dtype (flattened together)."""
    if not ctx.is_distributed or not tensors:
        return
    groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    for members in groups.values():
        flat = torch.cat([t.reshape(-1) for t in members])
        with _collective(ctx, what):
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for t in members:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()


def all_reduce_max(ctx: DistributedContext, value: float, what: str, device: torch.device | None = None) -> float:
    """The largest ``value`` over ranks."""
    if not ctx.is_distributed:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    with _collective(ctx, what):
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def broadcast_module_(ctx: DistributedContext, tensors: Iterable[torch.Tensor], what: str) -> None:
    """Overwrite ``tensors`` (parameters, buffers) with rank 0's values."""
    if not ctx.is_distributed:
        return
    with _collective(ctx, what), torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, src=0)


def all_gather_rows(ctx: DistributedContext, tensor: torch.Tensor, counts: Sequence[int], dim: int, what: str) -> torch.Tensor:
    """Concatenate each rank's ``tensor`` along ``dim``; rank ``r`` holds ``counts[r]`` rows.

    Slabs of unequal size are padded to the largest for the collective and trimmed.
    """
    if not ctx.is_distributed:
        return tensor
    if len(counts) != ctx.world_size or tensor.shape[dim] != counts[ctx.rank]:
        raise ValueError(
            f"`counts` must give each of the {ctx.world_size} ranks' row count, this rank's ({ctx.rank}) "
            f"being tensor.shape[{dim}] = {tensor.shape[dim]}; got {list(counts)}"
        )
    width = max(counts)
    pad = list(tensor.shape)
    pad[dim] = width - tensor.shape[dim]
    padded = torch.cat([tensor, tensor.new_zeros(pad)], dim=dim).contiguous()
    pieces = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    with _collective(ctx, what):
        dist.all_gather(pieces, padded)
    return torch.cat([p.narrow(dim, 0, n) for p, n in zip(pieces, counts)], dim=dim)


def all_gather_objects(ctx: DistributedContext, obj: Any, what: str) -> list[Any]:
    """Every rank's picklable ``obj``, in rank order, on every rank."""
    if not ctx.is_distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    with _collective(ctx, what):
        dist.all_gather_object(out, obj)
    return out
