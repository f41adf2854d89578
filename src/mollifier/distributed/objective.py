"""The training loss of one slab, normalised so that the sum over ranks is the whole loss.

Each rank owns a slab of grid rows (:mod:`.tiling`) and computes

``data_weight * sum(misfit on its observed points) / (global observed count * C) / var(all data)
+ w(step) * sum(residual^2 on its rows) / (global residual count)``

so the sum over ranks equals the single-process loss (up to rounding). The gradients of
these partial losses are summed over ranks with one ``all_reduce(SUM)`` per step
(:meth:`TiledObjective.after_backward`); the model is not wrapped in DDP, which would
*average* them. The loss terms themselves are summed too, so every rank sees the global
loss and makes the same decisions (non-finite stop, early stopping, L-BFGS line search).
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from ..inverse.model import InverseModel, as_tensor_on_grid
from ..inverse.problem import InverseProblem
from ..inverse.training import _Objective
from .collectives import all_gather_rows, all_reduce_sum_, broadcast_module_
from .context import DistributedContext
from .tiling import Slab, TiledDerivatives, make_slabs, rows_of

__all__ = ["TiledObjective"]


class TiledObjective(_Objective):
    """Loss terms of this rank's slab: the single-process objective's loss, on one slab.

    Args:
        problem: The whole problem (every rank holds all data; only its rows are used).
        model: The model, identical on every rank (rank 0's parameters are broadcast).
        data_weight, residual_weight, warmup: As resolved by the trainer.
        device, dtype: Where and in what precision to compute.
        ctx: The distributed context.

    Raises:
        ValueError: The engine is not tileable, the problem has a ``boundary_loss``
            (it would need the whole field on every rank), or slabs would be thinner
            than the kernel's half-width.
    """

    def __init__(
        self,
        problem: InverseProblem,
        model: InverseModel,
        *,
        data_weight: float,
        residual_weight: float,
        warmup: int,
        device: torch.device,
        dtype: torch.dtype,
        ctx: DistributedContext,
    ) -> None:
        # _Objective.__init__ is not called: it would build the whole grid's data and
        # coordinates on every rank; this sets the same attributes for the slab.
        if problem.boundary_loss is not None:
            raise ValueError(
                f"problem {problem.name!r} has a `boundary_loss`, which tiled (multi-process) training does not "
                "support; train it in one process"
            )
        self.problem, self.model, self.device, self.dtype, self.ctx = problem, model, device, dtype, ctx
        self.data_weight, self.residual_weight, self.warmup = data_weight, residual_weight, warmup
        grid = problem.grid
        halo = TiledDerivatives.halo_of(model.engine)
        self.slabs: list[Slab] = make_slabs(grid.shape[0], ctx.world_size, halo)
        self.slab = self.slabs[ctx.rank]
        self.tile = TiledDerivatives(model.engine, self.slab)
        rows = slice(self.slab.start, self.slab.stop)
        obs = problem.observations
        self.data = torch.as_tensor(obs.values[:, rows], dtype=dtype, device=device).unsqueeze(0)
        self.mask = torch.as_tensor(obs.mask[rows], device=device).reshape(1, 1, *self.tile.shape(with_halo=False))
        self.observed_count = float(obs.mask.sum()) * obs.channels  # global
        self.data_scale = float(max(obs.values[:, obs.mask].var(), 1e-12))  # global
        self.known = {k: as_tensor_on_grid(v, dtype, device) for k, v in problem.known.items()}  # whole grid
        self.residual_known = {k: _rows(v, rows) for k, v in self.known.items()}
        self.coords = self.tile.coords(with_halo=False, dtype=dtype, device=device)
        self.sync_seconds = 0.0
        self.sync_calls = 0
        broadcast_module_(ctx, [*model.parameters(), *model.buffers()], "broadcasting rank 0's initial parameters")

    def fields(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
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
        return {"loss": self.data_weight * data + weight * res, "data": data, "residual": res}

    def _residual_count(self, residual: torch.Tensor) -> float:
        spatial = tuple(residual.shape[-self.problem.grid.ndim :]) if residual.ndim >= self.problem.grid.ndim else ()
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

    def full(self, d: dict[str, torch.Tensor], p: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
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


def _rows(value: torch.Tensor, rows: slice) -> torch.Tensor:
    return value if value.ndim == 0 else value[:, :, rows]
