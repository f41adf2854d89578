"""Who am I in a ``torchrun`` launch: rank, world size, device, process group.

``torchrun`` (``python -m torch.distributed.run``) starts one process per rank and
tells each its place through environment variables: ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. :func:`init` reads them, starts
the default process group (``gloo`` on the CPU, ``nccl`` on CUDA) with a finite
timeout, and returns a :class:`DistributedContext`. Without those variables (a plain
``python`` or ``mollifier`` run) it returns a single-process context and starts
nothing, so the same code runs launched or not.

Example:
    >>> from mollifier.distributed import current
    >>> ctx = current()  # not launched by torchrun: one process
    >>> ctx.rank, ctx.world_size, ctx.is_main, ctx.is_distributed
    (0, 1, True, False)
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..core.errors import check_choice
from ..runtime.devices import parse_device

__all__ = [
    "BACKENDS",
    "DEFAULT_TIMEOUT",
    "TIMEOUT_ENV",
    "DistributedContext",
    "current",
    "init",
    "launch_from_env",
    "session",
    "shutdown",
]

BACKENDS: tuple[str, ...] = ("gloo", "nccl")
"""Process-group backends: ``gloo`` (CPU tensors) and ``nccl`` (CUDA tensors)."""

DEFAULT_TIMEOUT = 1800.0
"""Seconds a rank waits for the others at one synchronisation point before failing."""

TIMEOUT_ENV = "MOLLIFIER_DIST_TIMEOUT"
"""Environment variable overriding :data:`DEFAULT_TIMEOUT` (seconds)."""


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a launch.

    Attributes:
        rank: Global rank, ``0 <= rank < world_size``.
        world_size: Number of processes.
        local_rank: Rank on this node (picks the GPU).
        backend: Process-group backend, ``None`` for a single process.
        timeout: Seconds a collective waits for the other ranks.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def is_distributed(self) -> bool:
        """More than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that prints and writes results."""
        return self.rank == 0

    def device_for(self, requested: str | torch.device = "auto") -> torch.device:
        """The device this rank computes on: ``auto`` picks the best one here
        (:func:`~mollifier.runtime.devices.resolve_device`), ``cuda`` becomes
        ``cuda:<local_rank>``.

        An explicit index (``cuda:1``) or a non-CUDA device is kept as given.
        """
        device = parse_device(requested)
        if device.type == "cuda" and device.index is None:
            return torch.device("cuda", self.local_rank)
        return device


_ACTIVE: DistributedContext | None = None
_STARTED_HERE = False  # whether init() started the process group (and shutdown() should end it)


def _env_int(env: Mapping[str, str], name: str, minimum: int, maximum: int | None = None) -> int | None:
    text = env.get(name)
    if text is None or text == "":
        return None
    allowed = f"an int >= {minimum}" if maximum is None else f"an int in [{minimum}, {maximum}]"
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"environment variable `{name}` must be {allowed} (torchrun sets it); got {text!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"environment variable `{name}` must be {allowed} (torchrun sets it); got {value}")
    return value


def launch_from_env(env: Mapping[str, str] | None = None) -> tuple[int, int, int] | None:
    """``(rank, world_size, local_rank)`` from a torchrun launch, or ``None`` if not launched.

    Raises:
        ValueError: A variable is malformed or inconsistent, naming it and what it holds.
    """
    env = os.environ if env is None else env
    world = _env_int(env, "WORLD_SIZE", 1)
    if world is None:
        if env.get("RANK") not in (None, ""):
            raise ValueError(
                f"environment variable `RANK` is set ({env['RANK']!r}) but `WORLD_SIZE` is not; "
                "launch with `torchrun --nproc_per_node N ...`, which sets both"
            )
        return None
    rank = _env_int(env, "RANK", 0, world - 1)
    if rank is None:
        raise ValueError(
            f"environment variable `WORLD_SIZE` is {world} but `RANK` is not set; "
            "launch with `torchrun --nproc_per_node N ...`, which sets both"
        )
    local = _env_int(env, "LOCAL_RANK", 0)
    return rank, world, rank if local is None else local


def _timeout(timeout: float | None, env: Mapping[str, str]) -> float:
    if timeout is None:
        text = env.get(TIMEOUT_ENV)
        if text is None or text == "":
            return DEFAULT_TIMEOUT
        try:
            timeout = float(text)
        except ValueError:
            raise ValueError(f"environment variable `{TIMEOUT_ENV}` must be a number of seconds > 0; got {text!r}") from None
        name = f"environment variable `{TIMEOUT_ENV}`"
    else:
        name = "`timeout`"
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0 or timeout != timeout:
        raise ValueError(f"{name} must be a number of seconds > 0; got {timeout!r}")
    return float(timeout)


def init(
    device: str | torch.device = "auto",
    *,
    backend: str | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> DistributedContext:
    """Join the launch described by the environment, or return a single-process context.

    Args:
        device: Where this run computes (``auto``: the best device here); ``cuda...`` picks
            ``nccl`` and binds this rank to ``cuda:<LOCAL_RANK>``, anything else ``gloo``.
        backend: Force ``gloo`` or ``nccl``.
        timeout: Seconds a collective waits for the other ranks (default:
            ``$MOLLIFIER_DIST_TIMEOUT`` or :data:`DEFAULT_TIMEOUT`); a rank that stops
            answering makes the others fail after this long instead of hanging.
        env: Environment to read (default: ``os.environ``).

    Returns:
        The context; it is also what :func:`current` returns from now on.

    Raises:
        ValueError: Malformed launch variables, an unknown backend, ``nccl`` without
            CUDA, or a ``LOCAL_RANK`` beyond the visible GPUs.
    """
    global _ACTIVE, _STARTED_HERE
    env = os.environ if env is None else env
    seconds = _timeout(timeout, env)
    if dist.is_available() and dist.is_initialized():  # started by the caller: adopt it
        _ACTIVE = _from_group(seconds)
        return _ACTIVE
    launch = launch_from_env(env)
    if launch is None or launch[1] == 1:
        _ACTIVE = DistributedContext(timeout=seconds)
        return _ACTIVE
    rank, world, local = launch
    wants_cuda = parse_device(device).type == "cuda"
    backend = check_choice("backend", backend, BACKENDS) if backend is not None else ("nccl" if wants_cuda else "gloo")
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not env.get(name):
            raise ValueError(f"environment variable `{name}` is not set (WORLD_SIZE={world}); launch with torchrun, which sets it")
    if backend == "nccl" or wants_cuda:
        if not torch.cuda.is_available():
            raise ValueError(f"`device` {str(device)!r} / backend {backend!r} need CUDA, which is not available here; use `--device cpu`")
        if local >= torch.cuda.device_count():
            raise ValueError(
                f"environment variable `LOCAL_RANK` is {local} but only {torch.cuda.device_count()} CUDA device(s) "
                f"are visible; start at most {torch.cuda.device_count()} processes per node (--nproc_per_node)"
            )
        torch.cuda.set_device(local)
    if not dist.is_available():  # pragma: no cover - torch built without distributed
        raise ValueError("this torch build has no torch.distributed; install a standard PyTorch build")
    # torch._dynamo (imported lazily, e.g. by the first torch.optim optimizer) keeps
    # references to a process group that exists when it is imported; that group then
    # outlives destroy_process_group, and its gloo threads can abort the process at exit
    # ("terminate called without an active exception"). Importing it first avoids that.
    importlib.import_module("torch._dynamo")

    dist.init_process_group(backend, rank=rank, world_size=world, timeout=datetime.timedelta(seconds=seconds))
    _STARTED_HERE = True
    _ACTIVE = DistributedContext(rank, world, local, backend, seconds)
    return _ACTIVE


def _from_group(seconds: float) -> DistributedContext:
    launch = launch_from_env()
    local = launch[2] if launch is not None else dist.get_rank()
    return DistributedContext(dist.get_rank(), dist.get_world_size(), local, str(dist.get_backend()), seconds)


def current() -> DistributedContext:
    """The context set by :func:`init`, one adopted from a process group the caller
    started, or a single-process context."""
    if _ACTIVE is not None and (not _ACTIVE.is_distributed or dist.is_initialized()):
        return _ACTIVE
    if dist.is_available() and dist.is_initialized():
        return _from_group(_ACTIVE.timeout if _ACTIVE is not None else DEFAULT_TIMEOUT)
    return DistributedContext()


def shutdown(*, wait_for_others: bool = True) -> None:
    """Leave the process group (if :func:`init` started one); safe to call twice.

    Args:
        wait_for_others: First meet the other ranks at a barrier, so that no rank tears
            down its connections while a peer still uses them (gloo can abort a process
            whose peer vanished). Skipped after an error; a failed barrier is ignored.
    """
    global _ACTIVE, _STARTED_HERE
    started_here, _STARTED_HERE, _ACTIVE = _STARTED_HERE, False, None
    if started_here and dist.is_available() and dist.is_initialized():
        if wait_for_others:
            try:
                dist.barrier()
            except Exception:  # noqa: BLE001 - a peer already failed; just leave
                pass
        dist.destroy_process_group()


@contextlib.contextmanager
def session(
    device: str | torch.device = "auto", *, backend: str | None = None, timeout: float | None = None
) -> Iterator[DistributedContext]:
    """:func:`init` on entry, :func:`shutdown` on exit (also after an error).

    Example:
        >>> from mollifier.distributed import session
        >>> with session() as ctx:
        ...     ctx.world_size
        1
    """
    ctx = init(device, backend=backend, timeout=timeout)
    failed = True
    try:
        yield ctx
        failed = False
    finally:
        shutdown(wait_for_others=not failed)
