"""Spread a batch of independent inputs over ranks; every input comes back exactly once.

:func:`map_inputs` gives each rank a disjoint share of the inputs (round-robin by index,
or by a ``key`` so related inputs stay on one rank and keep their order), runs ``fn`` on
each with per-input protection (an exception becomes ``on_error(item, exc)``, a row, not
a crash), and gathers the results in the original order on every rank.

If a rank fails *outside* that protection (``on_error`` itself raises, ``SystemExit``),
it stops its share, still joins the gather, and raises afterwards; its unprocessed
inputs come back as ``on_error(item, RankFailedError(...))`` rows naming the rank and
the cause. If a rank dies outright (killed, segfault), the others' gather fails within
the process group's timeout with a :class:`~.collectives.RankFailedError` instead of
hanging (under ``torchrun`` the agent also stops the remaining ranks).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .collectives import RankFailedError, all_gather_objects, report_failure
from .context import DistributedContext, current

__all__ = ["ItemError", "assign_ranks", "map_inputs"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class ItemError:
    """Default result for an input whose processing raised.

    Attributes:
        item: The input.
        error: ``"<Type>: <message>"``.
    """

    item: Any
    error: str


def _default_on_error(item: Any, exc: BaseException) -> ItemError:
    return ItemError(item, " ".join(f"{type(exc).__name__}: {exc}".split()))


def assign_ranks(items: Sequence[Any], world_size: int, key: Callable[[Any], Hashable] | None = None) -> list[int]:
    """The rank that processes each item.

    Without ``key``: round-robin by index. With ``key``: the distinct keys, in order of
    first appearance, are dealt round-robin, so items sharing a key land on one rank.

    Example:
        >>> assign_ranks("abcde", 2)
        [0, 1, 0, 1, 0]
        >>> assign_ranks([1, 1, 2, 3, 3], 2, key=lambda x: x)
        [0, 0, 1, 0, 0]
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"`world_size` must be an int >= 1; got {world_size!r}")
    if key is None:
        return [i % world_size for i in range(len(items))]
    order: dict[Hashable, int] = {}
    for item in items:
        order.setdefault(key(item), len(order))
    return [order[key(item)] % world_size for item in items]


def map_inputs(
    items: Sequence[T],
    fn: Callable[[T], R],
    *,
    on_error: Callable[[T, BaseException], R] | None = None,
    key: Callable[[T], Hashable] | None = None,
    ctx: DistributedContext | None = None,
) -> list[R | ItemError]:
    """``[fn(item) for item in items]``, spread over the ranks, on every rank.

    Args:
        items: The inputs (the same sequence on every rank).
        fn: Processes one input; runs on exactly one rank. Results must pickle (a
            result that does not is that input's error).
        on_error: Turns an input's exception into its result (default:
            :class:`ItemError`). ``KeyboardInterrupt`` is not caught.
        key: Inputs with equal keys go to the same rank, in their original order.
        ctx: The distributed context (default: :func:`~.context.current`).

    Returns:
        One result per input, in input order (the same list on every rank).

    Raises:
        RankFailedError: On a rank whose own loop failed outside the per-input
            protection (after the gather), or when another rank died.

    Example:
        >>> map_inputs([1, 2, 0, 4], lambda x: 12 // x, on_error=lambda x, e: -1)
        [12, 6, -1, 3]
    """
    ctx = ctx or current()
    handle = on_error or _default_on_error
    items = list(items)
    owners = assign_ranks(items, ctx.world_size, key)
    done: dict[int, Any] = {}
    failure: BaseException | None = None
    failed_at = -1
    for index, item in enumerate(items):
        if owners[index] != ctx.rank:
            continue
        try:
            try:
                result = fn(item)
                if ctx.is_distributed:
                    pickle.dumps(result)  # fails here, as this input's error, not in the gather
                done[index] = result
            except Exception as exc:  # noqa: BLE001 - one bad input must not stop the batch
                done[index] = handle(item, exc)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - the rank stops, but still joins the gather
            if not ctx.is_distributed:
                raise
            failure, failed_at = exc, index
            report_failure(ctx, exc)
            break
    cause = None if failure is None else " ".join(f"{type(failure).__name__}: {failure}".split())
    shares = all_gather_objects(ctx, (done, cause, failed_at), "gathering batch results")
    results: dict[int, Any] = {}
    for share, _, _ in shares:
        results.update(share)
    out: list[Any] = []
    for index, item in enumerate(items):
        if index in results:
            out.append(results[index])
            continue
        owner = owners[index]
        _, reason, stopped_at = shares[owner]
        where = "while processing this input" if index == stopped_at else "at an earlier input; this one was not processed"
        out.append(handle(item, RankFailedError(f"rank {owner} failed {where} ({reason or 'no result came back'})")))
    if failure is not None:
        raise RankFailedError(
            f"rank {ctx.rank} stopped its share of the batch after {len(done)} input(s): {cause}; "
            "its remaining inputs are reported as errors"
        ) from failure
    return out
