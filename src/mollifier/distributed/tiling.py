"""Domain decomposition of a grid: one slab of axis-0 rows per rank, plus a halo.

Rank ``r`` owns the contiguous rows ``[start, stop)`` of grid axis 0 and evaluates the
backbone on them plus ``halo`` rows on both sides, where ``halo`` is the stencil halo
along axis 0 (``engine.stencil_halo[0]``; the Mollifier Layer's ``layer.halo[0]``). The
convolution along axis 0 is then *valid*: it returns derivatives on the owned rows
only, exactly those a single process computes there, because the kernel is compact.

- ``boundary="valid"``: the halo rows beyond the global domain are the global halo's
  coordinates (the single-process engine evaluates the backbone there too); the other
  axes carry their halo as well.
- ``boundary="periodic"``: the halo rows wrap around (global row index modulo ``N``);
  the other axes are padded periodically before the valid convolution, which is what
  the single-process periodic engine does.

The backbone is a function of coordinates, so no field values travel between ranks:
the "halo exchange" is the redundant evaluation of ``2 * halo`` rows per slab
(:attr:`Slab.extra_fraction`) plus, in training, one gradient all-reduce per step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..core.convolution import _pad_axis
from ..core.engines import AbstractDerivativeEngine, AbstractStencilEngine
from ..core.grid import Grid

__all__ = ["Slab", "TiledDerivatives", "check_tileable", "make_slabs", "rows_of", "split_rows"]

Backbone = Callable[[torch.Tensor], torch.Tensor]


def split_rows(n_rows: int, world_size: int, *, min_rows: int = 1) -> list[tuple[int, int]]:
    """Contiguous ``(start, stop)`` row ranges, one per rank, sizes differing by at most one.

    Args:
        n_rows: Rows of grid axis 0.
        world_size: Number of ranks.
        min_rows: Fewest rows a slab may have (the tiled training uses the stencil's
            half-width, so a slab is never thinner than its own halo).

    Example:
        >>> split_rows(10, 3)
        [(0, 4), (4, 7), (7, 10)]
    """
    for name, value, low in (("n_rows", n_rows, 1), ("world_size", world_size, 1), ("min_rows", min_rows, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"`{name}` must be an int >= {low}; got {value!r}")
    if n_rows // world_size < min_rows:
        raise ValueError(
            f"cannot split grid axis 0 ({n_rows} rows) over {world_size} ranks: slabs of "
            f"{n_rows // world_size} rows would be thinner than {min_rows} rows (the derivative stencil's "
            f"half-width); use at most {max(n_rows // min_rows, 1)} processes, a larger grid or a smaller radius"
        )
    base, extra = divmod(n_rows, world_size)
    bounds, start = [], 0
    for rank in range(world_size):
        stop = start + base + (rank < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


@dataclass(frozen=True)
class Slab:
    """Rows ``[start, stop)`` of grid axis 0 owned by one rank, evaluated with ``halo`` more per side.

    Attributes:
        start, stop: Owned rows (global indices).
        halo: Extra rows evaluated on each side.
        n_rows: Rows of the whole grid along axis 0.
    """

    start: int
    stop: int
    halo: int
    n_rows: int

    @property
    def rows(self) -> int:
        """Owned rows."""
        return self.stop - self.start

    @property
    def extra_fraction(self) -> float:
        """Redundant rows evaluated per owned row, ``2 * halo / rows`` (the halo's cost)."""
        return 2 * self.halo / self.rows


def make_slabs(n_rows: int, world_size: int, halo: int) -> list[Slab]:
    """One :class:`Slab` per rank (see :func:`split_rows`; slabs at least ``halo`` rows thick)."""
    return [Slab(a, b, halo, n_rows) for a, b in split_rows(n_rows, world_size, min_rows=max(halo, 1))]


def _axis(grid: Grid, axis: int, index: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # Same arithmetic as Grid.axes (float64, then cast), so coordinates match bit for bit.
    return (grid.lower[axis] + grid.spacing[axis] * index.to(torch.float64)).to(dtype)


class TiledDerivatives:
    """An engine's derivatives on one slab of the grid.

    Args:
        engine: A stencil engine (:class:`~mollifier.core.engines.AbstractStencilEngine`:
            ``mollifier`` or ``fd``) built for the whole grid.
        slab: This rank's rows; its ``halo`` must be ``engine.stencil_halo[0]``.

    Example:
        >>> import torch, mollifier
        >>> grid = mollifier.Grid.from_bounds([(0.0, 1.0), (0.0, 1.0)], (24, 24))
        >>> engine = mollifier.make_engine("mollifier", grid, {"lap": mollifier.laplacian(2)}, radius=3 / 23)
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        >>> tiles = [TiledDerivatives(engine, s) for s in make_slabs(24, 2, engine.stencil_halo[0])]
        >>> whole = engine(net)["lap"]
        >>> joined = torch.cat([t(net)["lap"] for t in tiles], dim=2)
        >>> bool(torch.allclose(joined, whole, atol=1e-4))
        True
    """

    def __init__(self, engine: AbstractDerivativeEngine, slab: Slab) -> None:
        check_tileable(engine)
        halo = engine.stencil_halo  # type: ignore[attr-defined]
        if slab.halo != halo[0] or slab.n_rows != engine.grid.shape[0]:
            raise ValueError(
                f"`slab` must have halo {halo[0]} (the stencil halo along axis 0) and "
                f"n_rows {engine.grid.shape[0]}; got halo {slab.halo}, n_rows {slab.n_rows}"
            )
        self.engine: AbstractStencilEngine = engine  # type: ignore[assignment]
        self.slab, self.grid = slab, engine.grid
        self.boundary: str = self.engine.boundary

    @property
    def stencil_halo(self) -> tuple[int, ...]:
        """The engine's stencil halo per axis."""
        return self.engine.stencil_halo

    def coords(self, *, with_halo: bool, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
        """Coordinates ``(N, ndim)`` of the owned rows (``with_halo``: plus the evaluation halo)."""
        s, grid = self.slab, self.grid
        h = s.halo if with_halo else 0
        rows = torch.arange(s.start - h, s.stop + h, device=device)
        if self.boundary == "periodic":
            rows = rows % grid.shape[0]
        axes = [_axis(grid, 0, rows, dtype)]
        for axis in range(1, grid.ndim):
            m = self.stencil_halo[axis] if (with_halo and self.boundary == "valid") else 0
            axes.append(_axis(grid, axis, torch.arange(-m, grid.shape[axis] + m, device=device), dtype))
        mesh = torch.meshgrid(*axes, indexing="ij")
        return torch.stack([m.reshape(-1) for m in mesh], dim=-1)

    def shape(self, *, with_halo: bool) -> tuple[int, ...]:
        """Spatial shape of the owned rows (``with_halo``: of what the backbone is evaluated on)."""
        s, grid = self.slab, self.grid
        h = s.halo if with_halo else 0
        out = [s.rows + 2 * h]
        for axis in range(1, grid.ndim):
            m = self.stencil_halo[axis] if (with_halo and self.boundary == "valid") else 0
            out.append(grid.shape[axis] + 2 * m)
        return tuple(out)

    def __call__(
        self, backbone: Backbone, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> dict[str, torch.Tensor]:
        """``name -> (1, C, rows, *grid.shape[1:])``: the engine's outputs on the owned rows."""
        values = backbone(self.coords(with_halo=True, dtype=dtype, device=device))
        field = values.transpose(0, 1).reshape(1, values.shape[1], *self.shape(with_halo=True))
        if self.boundary == "periodic":  # rows already wrap; pad the other axes as the engine would
            for axis in range(1, self.grid.ndim):
                field = _pad_axis(field, axis, self.stencil_halo[axis], "periodic")
        return self.engine.apply(field, boundary="valid")


def check_tileable(engine: AbstractDerivativeEngine) -> None:
    """Raise unless ``engine``'s derivatives are local stencils (hence tileable)."""
    if not isinstance(engine, AbstractStencilEngine):
        raise ValueError(
            f"the {engine.name!r} engine cannot be tiled across ranks (its derivatives are not a local "
            "convolution); use the 'mollifier' or 'fd' engine, or run in one process"
        )


def rows_of(slabs: Sequence[Slab]) -> list[int]:
    """Owned rows per rank (the ``counts`` of :func:`~mollifier.distributed.collectives.all_gather_rows`)."""
    return [s.rows for s in slabs]
