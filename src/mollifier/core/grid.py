"""Uniform grids and the halo-extended coordinates a backbone is evaluated on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .errors import check_per_axis, check_positive_int

__all__ = ["Grid"]


@dataclass(frozen=True)
class Grid:
    """A uniform grid: ``x_i[j] = lower[i] + j * spacing[i]`` for ``j < shape[i]``.

    Args:
        shape: Samples per axis (1-3 axes).
        lower: Coordinate of the first sample per axis.
        spacing: Distance between samples per axis.

    Example:
        >>> g = Grid.from_bounds([(0.0, 1.0), (0.0, 2.0)], (11, 21))
        >>> g.spacing
        (0.1, 0.1)
        >>> g.coords(halo=(1, 1)).shape
        torch.Size([299, 2])
    """

    shape: tuple[int, ...]
    lower: tuple[float, ...]
    spacing: tuple[float, ...]

    def __post_init__(self) -> None:
        shape = tuple(self.shape)
        if not 1 <= len(shape) <= 3:
            raise ValueError(f"`shape` must have 1 to 3 axes; got {shape!r}")
        for n in shape:
            check_positive_int("shape", n, minimum=1)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "spacing", check_per_axis("spacing", self.spacing, len(shape)))
        lower = tuple(float(v) for v in self.lower)
        if len(lower) != len(shape):
            raise ValueError(f"`lower` must have one entry per axis ({len(shape)}); got {lower!r}")
        object.__setattr__(self, "lower", lower)

    @classmethod
    def from_bounds(
        cls, bounds: Sequence[tuple[float, float]], shape: Sequence[int], *, periodic: bool = False
    ) -> "Grid":
        """Grid spanning ``bounds`` per axis.

        With ``periodic=False`` both ends are samples (``linspace``); with
        ``periodic=True`` the upper end is the image of the lower one and not sampled.
        """
        if len(bounds) != len(shape):
            raise ValueError(f"`bounds` ({len(bounds)} axes) and `shape` ({len(shape)} axes) must match")
        spacing = []
        for (lo, hi), n in zip(bounds, shape):
            if not hi > lo:
                raise ValueError(f"`bounds` must be (low, high) with high > low; got {(lo, hi)!r}")
            cells = n if periodic else n - 1
            if cells < 1:
                raise ValueError(f"`shape` needs at least 2 samples per axis; got {tuple(shape)!r}")
            spacing.append((hi - lo) / cells)
        return cls(tuple(shape), tuple(float(lo) for lo, _ in bounds), tuple(spacing))

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self.shape)

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        """``(first, last)`` sample coordinate per axis."""
        return tuple((lo, lo + (n - 1) * h) for lo, n, h in zip(self.lower, self.shape, self.spacing))

    def _halo(self, halo: int | Sequence[int]) -> tuple[int, ...]:
        if isinstance(halo, int):
            halo = (halo,) * self.ndim
        halo = tuple(halo)
        if len(halo) != self.ndim or any((not isinstance(m, int)) or m < 0 for m in halo):
            raise ValueError(f"`halo` must be a non-negative int or one per axis ({self.ndim}); got {halo!r}")
        return halo

    def extended_shape(self, halo: int | Sequence[int] = 0) -> tuple[int, ...]:
        """Shape of the grid with ``halo`` extra samples on each side of each axis."""
        return tuple(n + 2 * m for n, m in zip(self.shape, self._halo(halo)))

    def axes(
        self, halo: int | Sequence[int] = 0, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> list[torch.Tensor]:
        """1-D coordinate vectors per axis, extended by ``halo`` samples on each side."""
        return [
            lo + h * torch.arange(-m, n + m, dtype=torch.float64, device=device).to(dtype)
            for lo, h, n, m in zip(self.lower, self.spacing, self.shape, self._halo(halo))
        ]

    def coords(
        self, halo: int | Sequence[int] = 0, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """All sample coordinates as ``(N, ndim)``, axis 0 slowest (``indexing="ij"``)."""
        mesh = torch.meshgrid(*self.axes(halo, dtype=dtype, device=device), indexing="ij")
        return torch.stack([m.reshape(-1) for m in mesh], dim=-1)

    def mesh(
        self, halo: int | Sequence[int] = 0, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, ...]:
        """Coordinate arrays shaped like the (extended) grid, ``indexing="ij"``."""
        return torch.meshgrid(*self.axes(halo, dtype=dtype, device=device), indexing="ij")
