"""Argument validation shared by the forward solvers (private)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

RngLike = np.random.Generator | int | None


def as_generator(rng: RngLike, name: str = "rng") -> np.random.Generator:
    """Return a ``numpy.random.Generator`` for ``rng``.

    ``None`` gives a fresh, OS-seeded generator; an int seeds ``default_rng``; a
    Generator is returned unchanged (and is advanced by whoever uses it).
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if int(rng) < 0:
            raise ValueError(f"`{name}` must be a non-negative int seed, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"`{name}` must be a numpy.random.Generator, an int seed or None, "
        f"got {type(rng).__name__}"
    )


def positive_float(value: object, name: str, *, allow_zero: bool = False) -> float:
    """Check that ``value`` is a finite real number > 0 (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__}")
    v = float(value)
    ok = math.isfinite(v) and (v >= 0.0 if allow_zero else v > 0.0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be finite and {bound}, got {value!r}")
    return v


def finite_float(value: object, name: str) -> float:
    """Check that ``value`` is a finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"`{name}` must be finite, got {value!r}")
    return v


def int_at_least(value: object, name: str, minimum: int) -> int:
    """Check that ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if int(value) < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return int(value)


def shape_tuple(shape: object, name: str = "shape") -> tuple[int, ...]:
    """Check a grid shape: an int or a non-empty sequence of ints >= 2."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (int(shape),)
    if not isinstance(shape, Sequence) or len(shape) == 0:
        raise ValueError(f"`{name}` must be an int or a non-empty sequence of ints, got {shape!r}")
    out = []
    for s in shape:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or int(s) < 2:
            raise ValueError(f"`{name}` entries must be ints >= 2, got {tuple(shape)!r}")
        out.append(int(s))
    return tuple(out)


def per_axis(value: object, ndim: int, name: str) -> tuple[float, ...]:
    """Broadcast a positive scalar or a length-``ndim`` sequence to a tuple of floats."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return (positive_float(value, name),) * ndim
    if isinstance(value, Sequence | np.ndarray) and len(value) == ndim:
        return tuple(positive_float(v, name) for v in value)
    raise ValueError(
        f"`{name}` must be a positive number or a sequence of {ndim} positive numbers, "
        f"got {value!r}"
    )
