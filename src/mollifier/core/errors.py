"""Argument checks shared by the public entry points.

Every check raises a :class:`ValueError` or :class:`TypeError` whose message names
the argument in backticks, says what was received and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

__all__ = [
    "check_choice",
    "check_finite_tensor",
    "check_floating_tensor",
    "check_multi_index",
    "check_per_axis",
    "check_positive_int",
]


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed`` (strings), else raise."""
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be a string, one of {list(allowed)}; got {value!r}")
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {list(allowed)}; got {value!r}")
    return value


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer ``>= minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}; got {value}")
    return value


def check_floating_tensor(name: str, u: Any, ndims: Sequence[int] | None = None) -> torch.Tensor:
    """Check that ``u`` is a floating-point tensor with an allowed number of dims."""
    if not isinstance(u, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor; got {type(u).__name__}")
    if not (u.is_floating_point()):
        raise TypeError(
            f"`{name}` must be a floating-point tensor (float32 or float64); got dtype {u.dtype}. "
            f"Convert with `{name}.float()` or `{name}.double()`."
        )
    if ndims is not None and u.ndim not in ndims:
        raise ValueError(
            f"`{name}` must have {' or '.join(str(n) for n in ndims)} dims "
            f"(batch, channel, *spatial); got shape {tuple(u.shape)}"
        )
    return u


def check_finite_tensor(name: str, u: torch.Tensor) -> None:
    """Raise if ``u`` holds NaN or infinite values, saying how many and where."""
    finite = torch.isfinite(u.detach())
    if bool(finite.all()):
        return
    bad = (~finite).nonzero()
    count = bad.shape[0]
    first = tuple(int(i) for i in bad[0])
    raise ValueError(
        f"`{name}` holds {count} NaN or infinite value(s) out of {u.numel()} "
        f"(first at index {first}); mask or fill them before differentiating"
    )


def check_multi_index(name: str, index: Any, ndim: int) -> tuple[int, ...]:
    """Check a derivative multi-index: one non-negative integer per spatial dim."""
    if isinstance(index, int) and not isinstance(index, bool) and ndim == 1:
        index = (index,)
    if not isinstance(index, Sequence) or isinstance(index, str):
        raise TypeError(
            f"`{name}` must be a tuple of {ndim} non-negative ints (one per spatial dim), "
            f"e.g. {(2,) + (0,) * (ndim - 1)}; got {index!r}"
        )
    if len(index) != ndim:
        raise ValueError(
            f"`{name}` must have one entry per spatial dim ({ndim}); got {tuple(index)!r} "
            f"of length {len(index)}"
        )
    out = []
    for a in index:
        if isinstance(a, bool) or not isinstance(a, int):
            raise TypeError(f"`{name}` entries must be non-negative ints; got {tuple(index)!r}")
        if a < 0:
            raise ValueError(f"`{name}` entries must be non-negative ints; got {tuple(index)!r}")
        out.append(int(a))
    return tuple(out)


def check_per_axis(name: str, value: Any, ndim: int) -> tuple[float, ...]:
    """Expand a positive float, or one positive float per axis, into a tuple."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = float(value.detach())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        values: tuple[Any, ...] = (value,) * ndim
    elif isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(value)
        if len(values) != ndim:
            raise ValueError(
                f"`{name}` must be a positive float or one per spatial dim ({ndim}); "
                f"got {len(values)} values {values!r}"
            )
    else:
        raise TypeError(f"`{name}` must be a positive float or a sequence of {ndim}; got {value!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"`{name}` must hold positive floats; got {values!r}")
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"`{name}` must be positive and finite; got {values!r}")
        out.append(float(v))
    return tuple(out)
