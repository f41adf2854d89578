"""The loss of an inverse problem: in one process, or on one slab of rows per rank.

``loss = w_data * mse(u - data)[observed] / var(data)
       + w_residual(step) * mse(residual / residual_scale)
       (+ w_boundary * mean(boundary_loss^2))``

where ``u`` is the engine's field (the mollified field for the ``mollifier`` engine) and
``w_residual(step)`` ramps up linearly over the residual warm-up. The weights are
resolved once (:class:`LossWeights`) from the problem's defaults and the training
settings.

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

import torch

from ..distributed.collectives import all_gather_rows, all_reduce_sum_, broadcast_module_
from ..distributed.context import DistributedContext
from ..distributed.tiling import Slab, TiledDerivatives, check_tileable, make_slabs, rows_of
from .model import InverseModel, as_tensor_on_grid
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

    def __init__(self, problem: InverseProblem, model: InverseModel, weights: LossWeights, device: torch.device, dtype: torch.dtype) -> None:
        self.problem, self.model, self.weights, self.device, self.dtype = problem, model, weights, device, dtype
        obs = problem.observations
        self.data_scale = float(max(obs.values[:, obs.mask].var(), 1e-12))  # of all data, on every rank
        self.known = {k: as_tensor_on_grid(v, dtype, device) for k, v in problem.known.items()}
        self._setup()

    def _setup(self) -> None:
        """Data, mask, observed count, known fields and coordinates of the part owned here."""
        obs, dtype, device = self.problem.observations, self.dtype, self.device
        self.data = torch.as_tensor(obs.values, dtype=dtype, device=device).unsqueeze(0)
        self.mask = torch.as_tensor(obs.mask, device=device).reshape(1, 1, *self.problem.grid.shape)
        self.observed_count = self.mask.sum() * self.data.shape[1]
        self.residual_known = self.known
        self.coords = self.problem.grid.coords(dtype=dtype, device=device)

    def fields(self) -> tuple[Fields, Fields]:
        """Derivatives of the field and the unknowns' values."""
        return self.model(self.dtype, self.device), self.model.unknowns(self.coords)

    def _mean_square(self, residual: torch.Tensor) -> torch.Tensor:
        return (residual**2).mean()

    def _parts(self, loss: torch.Tensor, data_loss: torch.Tensor, residual_loss: torch.Tensor, weight: float) -> dict[str, float]:
        """The loss terms as numbers for the history (the whole problem's)."""
        return {"loss": float(loss.detach()), "data": float(data_loss.detach()), "residual": float(residual_loss.detach())}

    def __call__(self, step: int) -> tuple[torch.Tensor, dict[str, float], Fields, Fields]:
        """``(loss, parts, d, p)`` at ``step``: the loss tensor, its terms as numbers, the
        engine's derivatives and the unknowns."""
        d, p = self.fields()
        misfit = (d["u"] - self.data) ** 2 * self.mask
        data_loss = misfit.sum() / self.observed_count / self.data_scale
        residual = self.problem.residual(d, p, self.residual_known) / self.problem.residual_scale
        residual_loss = self._mean_square(residual)
        weight = self.weights.residual_at(step)
        loss = self.weights.data * data_loss + weight * residual_loss
        boundary_loss = None
        if self.problem.boundary_loss is not None:
            boundary_loss = (self.problem.boundary_loss(d, p, self.known) ** 2).mean()
            loss = loss + self.weights.boundary * boundary_loss
        parts = self._parts(loss, data_loss, residual_loss, weight)
        if boundary_loss is not None:
            parts["boundary"] = float(boundary_loss.detach())
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
        if problem.boundary_loss is not None:
            raise ValueError(
                f"problem {problem.name!r} has a `boundary_loss`, which tiled (multi-process) training does not "
                "support; train it in one process"
            )
        check_tileable(model.engine)
        self.ctx = ctx
        self.slabs: list[Slab] = make_slabs(problem.grid.shape[0], ctx.world_size, model.engine.stencil_halo[0])  # type: ignore[attr-defined]
        self.slab = self.slabs[ctx.rank]
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

    def _parts(self, loss: torch.Tensor, data_loss: torch.Tensor, residual_loss: torch.Tensor, weight: float) -> dict[str, float]:
        """The global loss terms: every rank's shares summed (so all ranks decide alike)."""
        parts_t = torch.stack([data_loss.detach(), residual_loss.detach()]).to(torch.float64)
        all_reduce_sum_(self.ctx, [parts_t], "summing the loss over ranks")
        data, res = (float(v) for v in parts_t.cpu())
        return {"loss": self.weights.data * data + weight * res, "data": data, "residual": res}

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


def make_objective(
    problem: InverseProblem, model: InverseModel, weights: LossWeights, device: torch.device, dtype: torch.dtype, ctx: DistributedContext
) -> Objective:
    """The whole-grid objective, or this rank's tiled share under a multi-process launch."""
    if ctx.is_distributed:
        return TiledObjective(problem, model, weights, device, dtype, ctx)
    return Objective(problem, model, weights, device, dtype)


def _rows(value: torch.Tensor, rows: slice) -> torch.Tensor:
    return value if value.ndim == 0 else value[:, :, rows]


