"""Measured data of the learned field: on grid nodes, or scattered anywhere in the domain.

- :class:`Observations`: values on the grid's nodes, with a mask of the observed ones
  (NaN entries are dropped and reported). The data loss compares the engine's field
  there (the mollified field for the ``mollifier`` engine).
- :class:`ScatteredObservations`: values at arbitrary coordinates inside the grid's
  bounds, with optional per-point weights. The data loss evaluates the field's network
  at those coordinates; the PDE residual stays on the grid.

Helpers for synthetic data: :func:`add_relative_noise` and :func:`random_mask`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import check_choice
from ..core.grid import Grid

__all__ = ["Observations", "ScatteredObservations", "add_relative_noise", "random_mask"]


def add_relative_noise(field: np.ndarray, level: float, rng: np.random.Generator | int | None) -> np.ndarray:
    """``field + level * std(field) * N(0, 1)``: Gaussian noise relative to the field's spread.

    The noise scale is the standard deviation of the clean field (its variation, not its
    mean offset), so ``level=0.05`` is "5 % noise" whatever the field's offset.
    """
    if not isinstance(level, (int, float)) or isinstance(level, bool) or not np.isfinite(level) or level < 0:
        raise ValueError(f"`noise` must be a finite number >= 0 (0.05 for 5 %); got {level!r}")
    field = np.asarray(field, dtype=np.float64)
    if level == 0:
        return field.copy()
    rng = np.random.default_rng(rng)
    scale = float(field.std())
    return field + level * scale * rng.standard_normal(field.shape)


def random_mask(shape: Sequence[int], density: float, rng: np.random.Generator | int | None) -> np.ndarray:
    """Boolean mask observing a random fraction ``density`` of the grid points (at least one)."""
    if not isinstance(density, (int, float)) or not 0 < density <= 1:
        raise ValueError(f"`density` must be in (0, 1]; got {density!r}")
    if density == 1:
        return np.ones(shape, dtype=bool)
    rng = np.random.default_rng(rng)
    mask = rng.random(shape) < density
    if not mask.any():
        mask.flat[rng.integers(mask.size)] = True
    return mask


@dataclass
class Observations:
    """Measured values of the learned field on the grid.

    Args:
        values: ``(*grid.shape)`` for one field or ``(C, *grid.shape)`` for several.
        mask: Boolean ``(*grid.shape)``, True where observed (default: everywhere).
            Entries that are NaN in ``values`` are dropped from the mask; see
            ``nan_policy``.
        noise: Relative noise level the data carry (informational, except for a Gaussian-process
            prior on an unknown where the data do not show their noise level: :mod:`.priors`).
        nan_policy: ``"mask"`` (default: NaN entries are treated as unobserved and
            reported) or ``"raise"``.
    """

    values: Any
    mask: Any = None
    noise: float = 0.0
    nan_policy: str = "mask"
    notes: list[str] = field(default_factory=list)

    scattered = False

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64)
        check_choice("nan_policy", self.nan_policy, ("mask", "raise"))
        finite = np.isfinite(values)
        if values.ndim == 0:
            raise ValueError("`values` must be an array on the grid; got a scalar")
        if not finite.all():
            bad = np.argwhere(~finite)
            where = ", ".join(str(tuple(int(i) for i in b)) for b in bad[:5])
            message = f"{len(bad)} NaN/inf observation(s) at index {where}{' ...' if len(bad) > 5 else ''}"
            if self.nan_policy == "raise":
                raise ValueError(f"`values` holds {message}")
            self.notes.append(f"masked {message}")
        self.values = values

    @classmethod
    def from_points(
        cls, grid: Grid, points: Any, values: Any, *, noise: float = 0.0, tolerance: float = 0.25
    ) -> "Observations":
        """Observations given as a point list, placed on the nearest grid nodes.

        Args:
            grid: The problem's grid.
            points: ``(P, ndim)`` physical coordinates.
            values: ``(P,)`` measured values.
            noise: Relative noise level the data carry (informational, except for a Gaussian-process
            prior on an unknown where the data do not show their noise level: :mod:`.priors`).
            tolerance: Largest allowed distance to the nearest node, in cells; points
                farther away are an error naming how many (use
                :class:`ScatteredObservations` for data off the grid's nodes).
        """
        pts = np.asarray(points, dtype=np.float64).reshape(-1, grid.ndim)
        vals = np.asarray(values, dtype=np.float64).reshape(-1)
        if pts.shape[0] != vals.shape[0]:
            raise ValueError(f"`points` ({pts.shape[0]}) and `values` ({vals.shape[0]}) must have the same length")
        if pts.shape[0] == 0:
            raise ValueError("the observation set is empty: `points` holds no point")
        lower = np.asarray(grid.lower)
        spacing = np.asarray(grid.spacing)
        cells = (pts - lower) / spacing
        index = np.rint(cells).astype(int)
        off = (np.abs(cells - index) > tolerance).any(axis=1) | (index < 0).any(axis=1) | (index >= np.asarray(grid.shape)).any(axis=1)
        if off.any():
            raise ValueError(
                f"{int(off.sum())} of {len(pts)} `points` are not within {tolerance} cells of a grid node "
                f"(first: {tuple(pts[off][0])}); give data off the grid's nodes as ScatteredObservations"
            )
        grid_values = np.full(grid.shape, np.nan)
        mask = np.zeros(grid.shape, dtype=bool)
        grid_values[tuple(index.T)] = vals
        mask[tuple(index.T)] = True
        return cls(np.where(mask, grid_values, 0.0), mask=mask, noise=noise)

    def validate(self, grid: Grid) -> None:
        """Check shapes against ``grid``; finish the mask."""
        values = self.values
        if values.shape == grid.shape:
            values = values[None]
        finite = np.isfinite(values)  # recomputed, so validating again (a reused object) is harmless
        if values.shape[1:] != grid.shape:
            raise ValueError(
                f"`values` shape {self.values.shape} does not match the grid {grid.shape} "
                f"(expected {grid.shape} or (channels, *{grid.shape}))"
            )
        mask = np.ones(grid.shape, dtype=bool) if self.mask is None else np.asarray(self.mask)
        if mask.shape != grid.shape:
            raise ValueError(f"`mask` shape {mask.shape} does not match the grid {grid.shape}")
        if mask.dtype != bool:
            raise TypeError(f"`mask` must be boolean; got dtype {mask.dtype}")
        mask = mask & finite.all(axis=0)
        if not mask.any():
            raise ValueError("the observation set is empty: no finite value is observed inside `mask`")
        self.values = np.where(finite, values, 0.0)
        self.mask = mask
        self.noise = float(self.noise)
        if self.noise < 0:
            raise ValueError(f"`noise` must be >= 0; got {self.noise}")

    @property
    def channels(self) -> int:
        """Number of observed fields (valid once the problem has checked the observations)."""
        return int(self.values.shape[0])

    def observed(self) -> np.ndarray:
        """The observed values, ``(C, N)``."""
        return self.values[:, self.mask]


@dataclass
class ScatteredObservations:
    """Measured values of the learned field at arbitrary points inside the grid's bounds.

    Args:
        points: ``(P, ndim)`` physical coordinates (inside the grid's bounds, up to
            ``tolerance`` cells beyond them).
        values: ``(P,)`` for one field or ``(P, C)`` for several.
        weights: Optional ``(P,)`` non-negative weights of the points in the data loss
            (e.g. inverse variances); default all 1.
        noise: Noise level the data carry (informational; a Gaussian-process prior on an
            unknown takes its noise level as ``options={"noise_std": ...}``: :mod:`.priors`).
        nan_policy: ``"mask"`` (rows with a NaN are dropped and reported) or ``"raise"``.
        tolerance: How far beyond the grid's bounds a point may lie, in cells.

    Example:
        >>> import numpy as np, mollifier
        >>> grid = mollifier.Grid.from_bounds([(0.0, 1.0), (0.0, 1.0)], (17, 17))
        >>> pts = np.random.default_rng(0).random((50, 2))
        >>> obs = ScatteredObservations(pts, np.sin(pts[:, 0]))
        >>> obs.validate(grid); obs.channels, obs.points.shape
        (1, (50, 2))
    """

    points: Any
    values: Any
    weights: Any = None
    noise: float = 0.0
    nan_policy: str = "mask"
    tolerance: float = 0.5
    notes: list[str] = field(default_factory=list)

    scattered = True

    def validate(self, grid: Grid) -> None:
        """Check the points against ``grid``'s bounds and the values' shape; drop NaN rows."""
        check_choice("nan_policy", self.nan_policy, ("mask", "raise"))
        pts = np.asarray(self.points, dtype=np.float64)
        if pts.ndim == 1 and grid.ndim == 1:
            pts = pts[:, None]
        if pts.ndim != 2 or pts.shape[1] != grid.ndim:
            raise ValueError(f"`points` must have shape (P, {grid.ndim}) on this {grid.ndim}-D grid; got {pts.shape}")
        vals = np.asarray(self.values, dtype=np.float64)
        if vals.ndim == 1:
            vals = vals[:, None]
        if vals.ndim != 2 or vals.shape[0] != pts.shape[0]:
            raise ValueError(f"`values` must have shape (P,) or (P, C) with P = {pts.shape[0]} points; got {np.shape(self.values)}")
        weights = np.ones(pts.shape[0]) if self.weights is None else np.asarray(self.weights, dtype=np.float64).reshape(-1)
        if weights.shape != (pts.shape[0],):
            raise ValueError(f"`weights` must have one entry per point ({pts.shape[0]}); got shape {np.shape(self.weights)}")
        if not np.isfinite(weights).all() or (weights < 0).any() or not weights.sum() > 0:
            raise ValueError("`weights` must be finite, >= 0 and not all 0")
        good = np.isfinite(pts).all(axis=1) & np.isfinite(vals).all(axis=1)
        if not good.all():
            message = f"{int((~good).sum())} of {len(good)} scattered observation(s) hold NaN/inf (first row {int(np.argmin(good))})"
            if self.nan_policy == "raise":
                raise ValueError(f"`points`/`values`: {message}")
            self.notes.append(f"dropped {message}")
        pts, vals, weights = pts[good], vals[good], weights[good]
        if pts.shape[0] == 0:
            raise ValueError("the observation set is empty: no scattered point with finite coordinates and values")
        lower = np.asarray([lo for lo, _ in grid.bounds]) - self.tolerance * np.asarray(grid.spacing)
        upper = np.asarray([hi for _, hi in grid.bounds]) + self.tolerance * np.asarray(grid.spacing)
        outside = ((pts < lower) | (pts > upper)).any(axis=1)
        if outside.any():
            first = tuple(float(v) for v in pts[outside][0])
            raise ValueError(
                f"{int(outside.sum())} of {len(pts)} scattered `points` lie outside the grid's bounds "
                f"{[tuple(b) for b in grid.bounds]} (first: {first}); extend the grid to cover the data"
            )
        self.points, self.values, self.weights = pts, vals, weights
        self.noise = float(self.noise)
        if self.noise < 0:
            raise ValueError(f"`noise` must be >= 0; got {self.noise}")

    @property
    def channels(self) -> int:
        """Number of observed fields."""
        return int(np.asarray(self.values).reshape(len(self.points), -1).shape[1])

    def observed(self) -> np.ndarray:
        """The observed values, ``(C, P)``."""
        return np.asarray(self.values).T
