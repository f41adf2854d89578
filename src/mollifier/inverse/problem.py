"""Declaring an inverse problem: grid, observations, unknowns, residual, direct recovery.

A problem is data, not a training loop. The residual is written once in terms of
named derivatives of the learned field (``d["u"]``, ``d["u_t"]``, ``d["lap"]``, ...), so
it runs unchanged on every derivative engine.

Example (a 1-D Poisson problem ``u'' = -s(x)`` with an unknown source field ``s``):
    >>> import numpy as np, torch, mollifier
    >>> from mollifier.inverse import InverseProblem, Observations, UnknownField
    >>> grid = mollifier.Grid.from_bounds([(0.0, 1.0)], (65,))
    >>> x = np.linspace(0, 1, 65)
    >>> problem = InverseProblem(
    ...     name="poisson-1d", grid=grid,
    ...     observations=Observations(np.sin(np.pi * x)),
    ...     derivatives={"u_xx": (2,)},
    ...     unknowns=[UnknownField("s")],
    ...     residual=lambda d, p, k: d["u_xx"] + p["s"],
    ...     direct=lambda d, k: {"s": -d["u_xx"]},
    ...     truth={"s": np.pi**2 * np.sin(np.pi * x)},
    ... )
    >>> problem.parameter
    's'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..core.errors import check_choice
from ..core.grid import Grid
from ..core.operators import DerivativeSpec, normalize_requests

__all__ = [
    "InverseProblem",
    "Observations",
    "UnknownField",
    "UnknownScalar",
    "add_relative_noise",
    "random_mask",
]

Tensors = Mapping[str, torch.Tensor]
Residual = Callable[[Tensors, Tensors, Tensors], torch.Tensor]
DirectRecovery = Callable[[Tensors, Tensors], dict[str, torch.Tensor]]


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
        noise: Relative noise level the data carry (informational).
        nan_policy: ``"mask"`` (default: NaN entries are treated as unobserved and
            reported) or ``"raise"``.
    """

    values: Any
    mask: Any = None
    noise: float = 0.0
    nan_policy: str = "mask"
    notes: list[str] = field(default_factory=list)

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
            noise: Relative noise level the data carry (informational).
            tolerance: Largest allowed distance to the nearest node, in cells; points
                farther away (off the grid) are an error naming how many.
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
                f"(first: {tuple(pts[off][0])}); interpolate them onto the grid first"
            )
        grid_values = np.full(grid.shape, np.nan)
        mask = np.zeros(grid.shape, dtype=bool)
        grid_values[tuple(index.T)] = vals
        mask[tuple(index.T)] = True
        observations = cls(np.where(mask, grid_values, 0.0), mask=mask, noise=noise)
        return observations

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


@dataclass(frozen=True)
class UnknownScalar:
    """An unknown constant, learned as a parameter.

    Args:
        name: Name used in the residual's ``p`` mapping and in the results.
        init: Initial value.
        positive: Keep it positive (learned through its logarithm).
    """

    name: str
    init: float = 1.0
    positive: bool = True


@dataclass(frozen=True)
class UnknownField:
    """An unknown field on the grid, learned as the output of a small backbone.

    Args:
        name: Name used in the residual's ``p`` mapping and in the results.
        init: Value the field starts near.
        positive: Keep it positive (softplus output).
        backbone: Backbone name.
        options: Backbone keyword arguments (default: 3 x 64 tanh MLP).
    """

    name: str
    init: float = 1.0
    positive: bool = True
    backbone: str = "mlp"
    options: Mapping[str, Any] = field(default_factory=lambda: {"width": 64, "depth": 3})


@dataclass
class InverseProblem:
    """Everything that defines an inverse problem; the trainer does the rest.

    Args:
        name: Short identifier.
        grid: Grid of the observations and of the residual.
        observations: The data.
        derivatives: Named derivatives the residual and direct recovery need.
        unknowns: Unknown scalars and fields.
        residual: ``residual(d, p, k) -> Tensor`` on the grid, with ``d`` the engine's
            derivatives (``d["u"]`` is the field, ``(1, C, *grid.shape)``), ``p`` the
            unknowns (fields ``(1, 1, *grid.shape)``, scalars 0-dim) and ``k`` the known
            fields.
        direct: Optional ``direct(d, k) -> {name: field}`` reading an unknown off the
            derivatives where the residual is linear in it.
        truth: Ground truth of unknowns (arrays on the grid or floats) for metrics.
        known: Known fields on the grid (e.g. a source term), as arrays.
        boundary: ``"valid"`` (the backbone is evaluated on a halo beyond the grid) or
            ``"periodic"`` (the field is periodic on the grid).
        radius: Default mollifier support radius in physical units (per axis or one).
        residual_scale: Typical size of the residual terms, to balance the losses.
        data_weight: Default weight of the data loss.
        residual_weight: Default weight of the residual loss.
        field_names: Names of the learned field's channels (for figures).
        metric_mask: Optional boolean mask where metrics are computed (default: all).
        boundary_loss: Optional ``boundary_loss(d, p, k) -> Tensor`` of boundary
            conditions (e.g. ``d["u"][..., 0] - 1``), squared and averaged into the loss.
        boundary_weight: Weight of the boundary loss.
        baselines: Estimates of the main unknown made without training (e.g. a
            derivative-free guess from the observations), scored beside the result.
    """

    name: str
    grid: Grid
    observations: Observations
    derivatives: Mapping[str, DerivativeSpec]
    unknowns: Sequence[UnknownScalar | UnknownField]
    residual: Residual
    direct: DirectRecovery | None = None
    truth: Mapping[str, Any] = field(default_factory=dict)
    known: Mapping[str, Any] = field(default_factory=dict)
    boundary: str = "valid"
    radius: float | Sequence[float] | None = None
    residual_scale: float = 1.0
    data_weight: float = 1.0
    residual_weight: float = 1.0
    field_names: Sequence[str] = ("u",)
    metric_mask: Any = None
    baselines: Mapping[str, Any] = field(default_factory=dict)
    boundary_loss: Callable[[Tensors, Tensors, Tensors], torch.Tensor] | None = None
    boundary_weight: float = 1.0
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.grid, Grid):
            raise TypeError(f"`grid` must be a mollifier.Grid; got {type(self.grid).__name__}")
        check_choice("boundary", self.boundary, ("valid", "periodic"))
        normalize_requests(self.derivatives, self.grid.ndim)
        names = [u.name for u in self.unknowns]
        if len(set(names)) != len(names):
            raise ValueError(f"`unknowns` names must be unique; got {names}")
        self.observations.validate(self.grid)
        for name, value in self.known.items():
            if np.asarray(value).shape not in ((), self.grid.shape):
                raise ValueError(f"known field {name!r} has shape {np.asarray(value).shape}; expected {self.grid.shape}")

    @property
    def parameter(self) -> str:
        """Name of the main unknown (the first one)."""
        if not self.unknowns:
            raise ValueError("the problem declares no unknowns")
        return self.unknowns[0].name

    @property
    def channels(self) -> int:
        """Channels of the learned field (= observed fields)."""
        return self.observations.channels
