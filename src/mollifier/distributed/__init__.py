"""Scale out on ``torch.distributed``: many processes (and GPUs) launched by ``torchrun``.

- :mod:`.context`: read the torchrun launch (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``),
  start the process group (gloo on CPU, nccl on CUDA) with a finite timeout, pick the
  device; a no-op single-process context otherwise.
- :mod:`.tiling`: domain decomposition of a large grid into slabs of axis-0 rows, each
  evaluated with the stencil halo (the Mollifier Layer is local).
- :mod:`.batch`, :mod:`.collectives`: see below.

The per-slab training loss that uses these is the inverse engine's
(:class:`mollifier.inverse.objective.TiledObjective`, used by
:func:`mollifier.inverse.train` with ``distributed=True``); this package imports nothing
above the numerical core and the runtime utilities.
- :mod:`.batch`: :func:`map_inputs` spreads independent inputs (nuclei, benchmark rows)
  over ranks and gathers one result per input, errors included.
- :mod:`.collectives`: collectives that fail with a :class:`RankFailedError` naming the
  failed rank and its cause instead of hanging.

See ``docs/distributed.md`` for launch commands, tolerances and measured costs.
"""

from .batch import ItemError, assign_ranks, map_inputs
from .collectives import RankFailedError
from .context import DistributedContext, current, init, session, shutdown
from .tiling import Slab, TiledDerivatives, check_tileable, make_slabs, split_rows

__all__ = [
    "DistributedContext",
    "ItemError",
    "RankFailedError",
    "Slab",
    "TiledDerivatives",
    "assign_ranks",
    "check_tileable",
    "current",
    "init",
    "make_slabs",
    "map_inputs",
    "session",
    "shutdown",
    "split_rows",
]
