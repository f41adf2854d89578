"""The loss of an inverse problem: in one process, or on one slab of rows per rank.

``loss = w_data * mse(u - data)[observed] / var(data)
       + w_residual(step) * mse(residual / residual_scale)[domain]
       (+ w_boundary * (mean(boundary_loss^2) + sum of the conditions' terms))``

where ``u`` is the engine's field (the mollified field for the ``mollifier`` engine) at
the observations: on grid nodes directly; at scattered points the network itself for
the ``autodiff`` and ``fd`` engines (their field), the multilinear interpolation of the
mollified field for the ``mollifier`` engine (weighted by the points' weights); and
``w_residual(step)`` ramps up linearly over the residual warm-up. Unknown fields with a
Gaussian-process prior add ``w_prior * |z|^2 / 2`` (:mod:`.priors`). The residual's mean
square counts the problem's ``domain`` only, when it has one; each boundary or initial
condition adds ``weight * mean((field - value)^2) / scale`` at its nodes
(:mod:`.conditions`). The weights are resolved once (:class:`LossWeights`) from the
problem's defaults and the training settings.

:class:`Objective` computes it on the whole grid. :class:`TiledObjective` computes, on
each rank of a ``torch.distributed`` launch, its share for one slab of grid rows
(:mod:`mollifier.distributed.tiling`), normalised by global counts so that the shares
sum to the whole loss (up to rounding): ``sum(misfit on its rows) / (global observed
count * C) / var(all data) + w(step) * sum(residual^2 on its rows) / (global residual
count)``. Its gradients are summed over ranks with one ``all_reduce(SUM)`` per step
(:meth:`TiledObjective.after_backward`; the model is not wrapped in DDP, which would
*average* them), and the loss terms are summed too, so every rank sees the global loss
and makes the same decisions (non-finite stop, early stopping, L-BFGS line search).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.engines import MollifierEngine
from ..core.grid import Grid
from ..distributed.collectives import all_gather_rows, all_reduce_sum_, broadcast_module_
from ..distributed.context import DistributedContext
from ..distributed.tiling import Slab, TiledDerivatives, check_tileable, make_slabs, rows_of
from .conditions import Dirichlet, condition_nodes, condition_values
from .model import InverseModel, as_tensor_on_grid, neumann_name, subgrid
from .priors import prior_penalty
from .problem import InverseProblem

__all__ = ["LossWeights", "Objective", "TiledObjective", "make_objective"]

Fields = dict[str, torch.Tensor]


@dataclass(frozen=True)
class LossWeights:
    """The loss weights of one training run, resolved once.

    Attributes:
        data: Weight of the data misfit.
        residual: Weight of the PDE residual once warmed up.
        warmup: Steps over which the residual weight ramps up linearly from 0.
        boundary: Weight of the problem's ``boundary_loss``.
    """

    data: float
    residual: float
    warmup: int = 0
    boundary: float = 1.0

    @classmethod
    def resolve(cls, problem: InverseProblem, data: float | None = None, residual: float | None = None, warmup: int = 0) -> "LossWeights":
        """The problem's default weights, overridden by the training settings where given."""
        return cls(
            data=problem.data_weight if data is None else data,
            residual=problem.residual_weight if residual is None else residual,
            warmup=warmup,
            boundary=problem.boundary_weight,
        )

    def residual_at(self, step: int) -> float:
        """The residual weight at ``step`` (0-based), ramped over the warm-up."""
        ramp = 1.0 if self.warmup <= 0 else min(1.0, (step + 1) / self.warmup)
        return self.residual * ramp


class Objective:
    """The loss terms for the current model state, on the whole grid.

    Subclasses restrict it to part of the grid through :meth:`_setup` (the data and
    coordinates it owns), :meth:`fields`, :meth:`_mean_square` and :meth:`_parts`.
    """

    prior_weight: float = 0.0
    """Weight of the unknowns' Gaussian-process prior ``|z|^2 / 2`` (:func:`~mollifier.inverse.priors.prior_weight`;
    set by the trainer, 0: none)."""
    prior_share: float = 1.0
    """This process's share of the prior term (the tiled objective adds it on rank 0 only)."""

    def __init__(self, problem: InverseProblem, model: InverseModel, weights: LossWeights, device: torch.device, dtype: torch.dtype) -> None:
        self.problem, self.model, self.weights, self.device, self.dtype = problem, model, weights, device, dtype
        obs = problem.observations
        self.data_scale = float(max(obs.observed().var(), 1e-12))  # of all data, on every rank
        self.known = {k: as_tensor_on_grid(v, dtype, device) for k, v in problem.known.items()}
        self._setup()
        self.domain = None
        if problem.domain is not None:
            self.domain = torch.as_tensor(problem.domain, device=device).reshape(1, 1, *problem.grid.shape)
        self.conditions = [_PreparedCondition(c, problem, model, self.data_scale, dtype, device) for c in problem.conditions]

    def _setup(self) -> None:
        """Data, mask, observed count, known fields and coordinates of the part owned here."""
        obs, dtype, device = self.problem.observations, self.dtype, self.device
        self.coords = self.problem.grid.coords(dtype=dtype, device=device)
        self.residual_known = self.known
        if obs.scattered:
            self.points = torch.as_tensor(obs.points, dtype=dtype, device=device)
            self.data = torch.as_tensor(obs.values, dtype=dtype, device=device)
            self.point_weights = torch.as_tensor(obs.weights, dtype=dtype, device=device)[:, None]
            self.observed_count = float(obs.weights.sum()) * obs.channels
            # the mollifier engine's field is the mollified network: read it at the points
            # (the residual's field), not the raw network, which would differ by the smoothing
            self.interpolate = (
                GridInterpolation(self.problem.grid, obs.points, dtype, device) if isinstance(self.model.engine, MollifierEngine) else None
            )
            return
        self.data = torch.as_tensor(obs.values, dtype=dtype, device=device).unsqueeze(0)
        self.mask = torch.as_tensor(obs.mask, device=device).reshape(1, 1, *self.problem.grid.shape)
        self.observed_count = self.mask.sum() * self.data.shape[1]

    def fields(self) -> tuple[Fields, Fields]:
        """Derivatives of the fields and the unknowns' values."""
        d = self.model(self.dtype, self.device)
        extra, p = self.model.unknown_fields(self.dtype, self.device, self.coords)
        if extra:
            d = {**d, **extra}
        return d, p

    def _data_loss(self, d: Fields) -> torch.Tensor:
        if self.problem.observations.scattered:
            field = self.interpolate(d["u"]) if self.interpolate is not None else self.model.field(self.points)
            misfit = (field - self.data) ** 2 * self.point_weights
            return misfit.sum() / self.observed_count / self.data_scale
        misfit = (d["u"] - self.data) ** 2 * self.mask
        return misfit.sum() / self.observed_count / self.data_scale

    def _mean_square(self, residual: torch.Tensor) -> torch.Tensor:
        if self.domain is None:
            return (residual**2).mean()
        square = residual**2
        square = torch.broadcast_to(square, torch.broadcast_shapes(square.shape, self.domain.shape))
        return (square * self.domain).sum() / (self.domain.sum() * (square.numel() // self.domain.numel()))

    def _parts(self, loss: torch.Tensor, data_loss: torch.Tensor, residual_loss: torch.Tensor, weight: float, prior: float = 0.0) -> dict[str, float]:
        """The loss terms as numbers for the history (the whole problem's; ``loss`` holds the prior term)."""
        return {"loss": float(loss.detach()), "data": float(data_loss.detach()), "residual": float(residual_loss.detach())}

    def __call__(self, step: int) -> tuple[torch.Tensor, dict[str, float], Fields, Fields]:
        """``(loss, parts, d, p)`` at ``step``: the loss tensor, its terms as numbers, the
        engine's derivatives and the unknowns."""
        d, p = self.fields()
        data_loss = self._data_loss(d)
        residual = self.problem.residual(d, p, self.residual_known) / self.problem.residual_scale
        residual_loss = self._mean_square(residual)
        weight = self.weights.residual_at(step)
        loss = self.weights.data * data_loss + weight * residual_loss
        boundary_loss = None
        if self.problem.boundary_loss is not None:
            boundary_loss = (self.problem.boundary_loss(d, p, self.known) ** 2).mean()
            loss = loss + self.weights.boundary * boundary_loss
        condition_loss = None
        if self.conditions:
            condition_loss = sum(c.loss(d, p) for c in self.conditions)
            loss = loss + self.weights.boundary * condition_loss
        penalty = prior_penalty(self.model) if self.prior_weight else None
        prior = 0.0 if penalty is None else float(self.prior_weight * penalty.detach())
        if penalty is not None:
            loss = loss + self.prior_share * self.prior_weight * penalty
        parts = self._parts(loss, data_loss, residual_loss, weight, prior)
        if penalty is not None:
            parts["prior"] = prior
        if boundary_loss is not None:
            parts["boundary"] = float(boundary_loss.detach())
        if condition_loss is not None:
            parts["conditions"] = float(condition_loss.detach())
        return loss, parts, d, p

    def after_backward(self) -> None:
        """Hook after ``loss.backward()`` (the tiled objective sums gradients over ranks)."""

    def full(self, d: Fields, p: Fields) -> tuple[Fields, Fields]:
        """The fields on the whole grid (already whole here; gathered by the tiled objective)."""
        return d, p

    def summary(self) -> dict[str, Any]:
        """What the decomposition costs (nothing here)."""
        return {}


class TiledObjective(Objective):
    """The loss terms of this rank's slab of grid rows.

    Args:
        problem: The whole problem (every rank holds all data; only its rows are used).
        model: The model, identical on every rank (rank 0's parameters are broadcast).
        weights, device, dtype: As for :class:`Objective`.
        ctx: The distributed context.

    Raises:
        ValueError: The engine is not tileable, the problem has a ``boundary_loss``
            (it would need the whole field on every rank), or slabs would be thinner
            than the stencil halo.
    """

    def __init__(
        self,
        problem: InverseProblem,
        model: InverseModel,
        weights: LossWeights,
        device: torch.device,
        dtype: torch.dtype,
        ctx: DistributedContext,
    ) -> None:
        unsupported = [
            what
            for what, present in (
                ("a `boundary_loss`", problem.boundary_loss is not None),
                ("scattered observations", problem.observations.scattered),
                ("a `domain` mask", problem.domain is not None),
                ("boundary or initial `conditions`", bool(problem.conditions)),
                ("fields with derivatives or on some axes only", not model.simple),
            )
            if present
        ]
        if unsupported:
            raise ValueError(
                f"problem {problem.name!r} has {', '.join(unsupported)}, which tiled (multi-process) training does not "
                "support; train it in one process"
            )
        check_tileable(model.engine)
        self.ctx = ctx
        self.slabs: list[Slab] = make_slabs(problem.grid.shape[0], ctx.world_size, model.engine.stencil_halo[0])  # type: ignore[attr-defined]
        self.slab = self.slabs[ctx.rank]
        self.prior_share = 1.0 if ctx.is_main else 0.0  # the gradients are summed over ranks
        self.tile = TiledDerivatives(model.engine, self.slab)
        self.sync_seconds = 0.0
        self.sync_calls = 0
        super().__init__(problem, model, weights, device, dtype)
        broadcast_module_(ctx, [*model.parameters(), *model.buffers()], "broadcasting rank 0's initial parameters")

    def _setup(self) -> None:
        obs, dtype, device = self.problem.observations, self.dtype, self.device
        rows = slice(self.slab.start, self.slab.stop)
        self.data = torch.as_tensor(obs.values[:, rows], dtype=dtype, device=device).unsqueeze(0)
        self.mask = torch.as_tensor(obs.mask[rows], device=device).reshape(1, 1, *self.tile.shape(with_halo=False))
        self.observed_count = float(obs.mask.sum()) * obs.channels  # global
        self.residual_known = {k: _rows(v, rows) for k, v in self.known.items()}
        self.coords = self.tile.coords(with_halo=False, dtype=dtype, device=device)

    def fields(self) -> tuple[Fields, Fields]:
        """Derivatives and unknowns on this rank's rows."""
        d = self.tile(self.model.field, dtype=self.dtype, device=self.device)
        shape = self.tile.shape(with_halo=False)
        p = {name: m(self.coords).reshape(1, 1, *shape) for name, m in self.model.field_unknowns.items()}
        p.update({name: m() for name, m in self.model.scalar_unknowns.items()})
        return d, p

    def _mean_square(self, residual: torch.Tensor) -> torch.Tensor:
        """This rank's share of the whole grid's mean square (divided by the global count)."""
        return (residual**2).sum() / self._residual_count(residual)

    def _parts(self, loss: torch.Tensor, data_loss: torch.Tensor, residual_loss: torch.Tensor, weight: float, prior: float = 0.0) -> dict[str, float]:
        """The global loss terms: every rank's shares summed (so all ranks decide alike); the
        prior term (the same on every rank) once."""
        parts_t = torch.stack([data_loss.detach(), residual_loss.detach()]).to(torch.float64)
        all_reduce_sum_(self.ctx, [parts_t], "summing the loss over ranks")
        data, res = (float(v) for v in parts_t.cpu())
        return {"loss": self.weights.data * data + weight * res + prior, "data": data, "residual": res}

    def _residual_count(self, residual: torch.Tensor) -> float:
        ndim = self.problem.grid.ndim
        spatial = tuple(residual.shape[-ndim:]) if residual.ndim >= ndim else ()
        if spatial != self.tile.shape(with_halo=False):
            raise ValueError(
                f"the residual of problem {self.problem.name!r} has shape {tuple(residual.shape)}; tiled training "
                f"needs it on the grid (last axes {self.tile.shape(with_halo=False)} on this rank's rows)"
            )
        return residual.numel() / self.slab.rows * self.slab.n_rows

    def after_backward(self) -> None:
        """Sum the gradients over ranks (one all-reduce per dtype); missing grads count as zero."""
        params = [q for q in self.model.parameters() if q.requires_grad]
        for q in params:
            if q.grad is None:
                q.grad = torch.zeros_like(q)
        start = time.perf_counter()
        all_reduce_sum_(self.ctx, [q.grad for q in params], "summing gradients over ranks")
        self.sync_seconds += time.perf_counter() - start
        self.sync_calls += 1

    def full(self, d: Fields, p: Fields) -> tuple[Fields, Fields]:
        """The whole-grid fields, gathered from every rank's rows (detached)."""
        counts = rows_of(self.slabs)
        axis = 2  # (1, C, rows, ...): grid axis 0

        def gather(t: torch.Tensor) -> torch.Tensor:
            t = t.detach()
            return t if t.ndim == 0 else all_gather_rows(self.ctx, t.contiguous(), counts, axis, "gathering fields for metrics")

        return {k: gather(v) for k, v in d.items()}, {k: gather(v) for k, v in p.items()}

    def summary(self) -> dict[str, Any]:
        """What the decomposition costs: rows per rank, halo rows, the largest fraction of
        redundant rows, and the mean time of the gradient all-reduce per step (including
        the wait for the slowest rank)."""
        worst = max(self.slabs, key=lambda s: s.extra_fraction)
        return {
            "world_size": self.ctx.world_size,
            "backend": self.ctx.backend,
            "rows_per_rank": rows_of(self.slabs),
            "halo_rows": self.slab.halo,
            "extra_rows_fraction": worst.extra_fraction,
            "gradient_sync_seconds_per_step": self.sync_seconds / self.sync_calls if self.sync_calls else math.nan,
        }


class GridInterpolation:
    """Multilinear interpolation of grid values at fixed points (weights computed once).

    ``self(values)`` maps ``(1, C, *grid.shape)`` to ``(P, C)``; points up to half a cell
    beyond the grid use the edge cells' linear extension.
    """

    def __init__(self, grid: Grid, points: np.ndarray, dtype: torch.dtype, device: torch.device) -> None:
        cells = (np.asarray(points, dtype=np.float64) - np.asarray(grid.lower)) / np.asarray(grid.spacing)
        top = np.asarray(grid.shape) - 2
        lower = np.clip(np.floor(cells).astype(np.int64), 0, np.maximum(top, 0))
        frac = cells - lower
        self.corners: list[tuple[torch.Tensor, torch.Tensor]] = []
        for corner in np.ndindex(*(2,) * grid.ndim):
            index = lower + np.asarray(corner)
            weight = np.prod(np.where(np.asarray(corner) == 1, frac, 1.0 - frac), axis=1)
            flat = np.ravel_multi_index(tuple(np.minimum(index, np.asarray(grid.shape) - 1).T), grid.shape)
            self.corners.append((torch.as_tensor(flat, device=device), torch.as_tensor(weight, dtype=dtype, device=device)[:, None]))

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        flat = values.reshape(values.shape[1], -1).T  # (N, C)
        total = None
        for index, weight in self.corners:
            term = flat[index] * weight
            total = term if total is None else total + term
        return total


class _PreparedCondition:
    """One boundary or initial condition, ready to evaluate: nodes, targets, normals, scale."""

    def __init__(self, condition: Dirichlet, problem: InverseProblem, model: InverseModel, data_scale: float, dtype: torch.dtype, device: torch.device) -> None:
        grid = problem.grid
        self.condition = condition
        self.field = condition.field
        self.axes = tuple(range(grid.ndim)) if self.field == "u" else model.axes[self.field]
        own = subgrid(grid, self.axes)
        self.own_shape = own.shape
        domain = problem.domain if len(self.axes) == grid.ndim else None
        nodes, normals = condition_nodes(condition, own, domain, self.axes, grid.ndim)
        self.index = tuple(torch.as_tensor(i, device=device) for i in np.nonzero(nodes))
        target = condition_values(condition, own, nodes)
        self.target = torch.as_tensor(target, dtype=dtype, device=device)
        self.normals = None if normals is None else torch.as_tensor(normals, dtype=dtype, device=device)
        if self.field == "u":
            channels = problem.channels
            if condition.channel is not None and not 0 <= condition.channel < channels:
                raise ValueError(f"condition on 'u': `channel` {condition.channel} is not among the {channels} observed channel(s)")
            self.scale = data_scale
        else:
            if condition.channel not in (None, 0):
                raise ValueError(f"condition on field {self.field!r}: `channel` must be None or 0 (a field has one channel)")
            # the field's size: its values here, or where it starts (a value near 0 on the
            # boundary must not blow the weight up)
            init = next(s.init for s in problem.fields if s.name == self.field)
            scale = max(float(np.mean(target**2)), float(init) ** 2)
            self.scale = scale if scale > 0 else 1.0

    def _own(self, value: torch.Tensor) -> torch.Tensor:
        return value.reshape(*value.shape[:2], *self.own_shape)

    def loss(self, d: Fields, p: Fields) -> torch.Tensor:
        """``weight * mean((field - value)^2) / scale`` at the nodes."""
        if self.normals is None:
            source = d["u"] if self.field == "u" else p[self.field]
            values = self._own(source)
        else:
            parts = [self._own(d[neumann_name(self.field, i)]) for i in range(len(self.axes))]
            values = None
        channel = self.condition.channel
        if values is not None:
            picked = values[0][(slice(None), *self.index)]  # (C, N)
        else:
            picked = sum(self.normals[:, i] * part[0][(slice(None), *self.index)] for i, part in enumerate(parts))
        if channel is not None:
            picked = picked[channel : channel + 1]
        return self.condition.weight * ((picked - self.target) ** 2).mean() / self.scale


def make_objective(
    problem: InverseProblem, model: InverseModel, weights: LossWeights, device: torch.device, dtype: torch.dtype, ctx: DistributedContext
) -> Objective:
    """The whole-grid objective, or this rank's tiled share under a multi-process launch."""
    if ctx.is_distributed:
        return TiledObjective(problem, model, weights, device, dtype, ctx)
    return Objective(problem, model, weights, device, dtype)


def _rows(value: torch.Tensor, rows: slice) -> torch.Tensor:
    return value if value.ndim == 0 else value[:, :, rows]


