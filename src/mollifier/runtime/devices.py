"""Device names: ``"auto"`` picks the best device this machine has."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["DEVICE_HELP", "available_device", "parse_device", "resolve_device", "seeded"]

DEVICE_HELP = "'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'"


def available_device() -> torch.device:
    """CUDA if a GPU is visible, else Apple's MPS if present, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def parse_device(name: str | torch.device | None) -> torch.device:
    """A :class:`torch.device` for ``name`` (``None`` and ``"auto"``: :func:`available_device`),
    without checking that this machine has it.

    Raises:
        ValueError: ``name`` is not a device torch knows.
    """
    if name is None or (isinstance(name, str) and name.strip().lower() == "auto"):
        return available_device()
    try:
        return torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"`device` must be {DEVICE_HELP}; got {name!r}") from exc


def resolve_device(name: str | torch.device | None) -> torch.device:
    """:func:`parse_device`, and a clear error when this machine lacks the device.

    Raises:
        ValueError: ``name`` is not a device torch knows, or names one this machine lacks.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    device = parse_device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`device` {name!r} asks for CUDA, but torch sees no GPU here; use 'auto' or 'cpu'")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"`device` {name!r} asks for MPS, which this machine lacks; use 'auto' or 'cpu'")
    return device


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Draw from torch's global RNG seeded with ``seed`` inside, and leave the caller's state
    (CPU, and the CUDA one for a CUDA ``device``) as it was afterwards.

    Example:
        >>> import torch
        >>> with seeded(0, torch.device("cpu")):
        ...     a = torch.rand(2)
        >>> with seeded(0, torch.device("cpu")):
        ...     b = torch.rand(2)
        >>> bool((a == b).all())
        True
    """
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield
