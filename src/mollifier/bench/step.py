"""Time and memory of one training step per derivative engine, on a manufactured residual.

The step is what a physics-informed training loop does each iteration: evaluate the
backbone, get the derivatives the residual needs from the engine, form
``loss = mse(u - data) + mse(L u - L data)`` for a differential operator ``L`` of the
chosen order, back-propagate and take an Adam step. The data field is
``sum_i sin(2 pi x_i)`` on the unit square (cube), whose derivatives are known in
closed form.

Operators by order (``--pde``): ``gradient`` (order 1, sum of first derivatives),
``laplacian`` (2), ``biharmonic`` (4), ``triharmonic`` (6).
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..backbones import make_backbone
from ..core.engines import ENGINES, make_engine
from ..core.errors import check_choice, check_positive_int
from ..core.grid import Grid
from ..core.operators import MultiIndex, gradient, laplacian_power
from ..runtime.devices import seeded
from ..runtime.memory import measure_peak_memory, peak_rss_growth

__all__ = ["PDES", "StepResult", "operator_for", "time_training_step"]

PDES: dict[str, int] = {"gradient": 1, "laplacian": 2, "biharmonic": 4, "triharmonic": 6}
"""Manufactured residual operators and their derivative order."""


def operator_for(pde: str, ndim: int) -> dict[MultiIndex, float]:
    """The differential operator of a named manufactured residual."""
    order = PDES[check_choice("pde", pde, tuple(PDES))]
    if order == 1:
        return {idx: 1.0 for idx in gradient(ndim).values()}
    return laplacian_power(ndim, order // 2)


def _exact(pde: str, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Data field ``sum_i sin(2 pi x_i)`` and the operator applied to it, at ``coords``."""
    k = 2 * math.pi
    data = torch.sin(k * coords).sum(dim=1, keepdim=True)
    order = PDES[pde]
    if order == 1:
        target = (k * torch.cos(k * coords)).sum(dim=1, keepdim=True)
    else:
        target = (-(k**2)) ** (order // 2) * data
    return data, target


@dataclass
class StepResult:
    """One engine's measurement (one row of the benchmark's JSON output)."""

    engine: str
    pde: str
    order: int
    grid: int
    ndim: int
    backbone: str
    device: str
    dtype: str
    status: str = "ok"
    step_seconds: float | None = None
    step_seconds_min: float | None = None
    step_seconds_max: float | None = None
    repeats: int = 0
    peak_memory_bytes: int | None = None
    peak_memory_method: str | None = None
    peak_rss_bytes: int | None = None
    loss: float | None = None
    radius_cells: float | None = None
    error: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def environment(device: torch.device) -> dict[str, Any]:
    """Versions and hardware a measurement was taken with."""
    from .. import __version__

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    return {
        "mollifier": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device_name": name,
        "threads": torch.get_num_threads(),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training_step(
    pde: str = "biharmonic",
    grid: int = 128,
    engine: str = "mollifier",
    *,
    ndim: int = 2,
    backbone: str = "mlp",
    backbone_options: dict[str, Any] | None = None,
    radius_cells: float = 6.0,
    repeats: int = 3,
    warmup: int = 1,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    measure_rss: bool = True,
) -> StepResult:
    """Measure one training step of ``backbone`` with derivatives from ``engine``.

    Args:
        pde: Manufactured residual, one of :data:`PDES`.
        grid: Samples per axis.
        engine: One of :data:`mollifier.ENGINES`.
        ndim: Spatial dims (1-3).
        backbone: Backbone name (``mlp``, ``piratenet``, ``pinnsformer``).
        backbone_options: Keyword arguments for the backbone (default: 4 x 128 tanh MLP).
        radius_cells: Mollifier support radius in grid cells.
        repeats: Timed steps; the median is reported.
        warmup: Untimed steps first.
        device: Torch device.
        dtype: Floating dtype.
        seed: Seed of the backbone's initialisation (set on a local generator state).
        measure_rss: Also measure the growth of the process's peak RSS (CPU).

    Returns:
        A :class:`StepResult`; ``status`` is ``"out of memory"`` or ``"error"`` when the
        step could not run, with the message in ``error``.
    """
    check_positive_int("grid", grid, minimum=4)
    check_positive_int("repeats", repeats)
    check_choice("engine", engine, ENGINES)
    device = torch.device(device)
    result = StepResult(
        engine=engine,
        pde=pde,
        order=PDES[check_choice("pde", pde, tuple(PDES))],
        grid=grid,
        ndim=ndim,
        backbone=backbone,
        device=str(device),
        dtype=str(dtype).replace("torch.", ""),
        radius_cells=radius_cells if engine == "mollifier" else None,
        environment=environment(device),
    )
    try:
        step = _build_step(pde, grid, engine, ndim, backbone, backbone_options, radius_cells, device, dtype, seed)
        for _ in range(warmup):
            step()
        _, memory = measure_peak_memory(step, device)
        result.peak_memory_bytes, result.peak_memory_method = memory.peak_bytes, memory.method
        if measure_rss and device.type == "cpu":
            _, result.peak_rss_bytes = peak_rss_growth(step)
        times = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            loss = step()
            _sync(device)
            times.append(time.perf_counter() - start)
        result.step_seconds = statistics.median(times)
        result.step_seconds_min, result.step_seconds_max = min(times), max(times)
        result.repeats = repeats
        result.loss = float(loss)
    except torch.OutOfMemoryError as exc:  # pragma: no cover - needs a GPU
        result.status, result.error = "out of memory", str(exc).splitlines()[0]
    except RuntimeError as exc:
        message = str(exc)
        result.status = "out of memory" if "out of memory" in message.lower() else "error"
        result.error = message.splitlines()[0] if message else type(exc).__name__
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return result


def _build_step(
    pde: str,
    n: int,
    engine_name: str,
    ndim: int,
    backbone_name: str,
    backbone_options: dict[str, Any] | None,
    radius_cells: float,
    device: torch.device,
    dtype: torch.dtype,
    seed: int,
) -> Callable[[], torch.Tensor]:
    grid = Grid.from_bounds([(0.0, 1.0)] * ndim, (n,) * ndim)
    radius = {"radius": radius_cells * grid.spacing[0]} if engine_name == "mollifier" else {}
    engine = make_engine(engine_name, grid, {"op": operator_for(pde, ndim)}, **radius).to(device)
    options = {"width": 128, "depth": 4} if backbone_name == "mlp" else {}
    options.update(backbone_options or {})
    with seeded(seed, device):
        net = make_backbone(backbone_name, ndim, 1, domain=[(0.0, 1.0)] * ndim, **options)
    net = net.to(device=device, dtype=dtype)
    data, target = _exact(pde, grid.coords(dtype=dtype, device=device))
    data = engine.to_field(data, halo=(0,) * ndim)
    target = engine.to_field(target, halo=(0,) * ndim)
    scale = float(target.abs().max())
    optimizer = torch.optim.Adam(list(net.parameters()) + list(engine.parameters()), lr=1e-3)

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        out = engine(net, dtype=dtype, device=device)
        loss = ((out["u"] - data) ** 2).mean() + (((out["op"] - target) / scale) ** 2).mean()
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def run_suite(
    pde: str, grids: Sequence[int], engines: Sequence[str], progress: Callable[[str], None] | None = None, **kwargs: Any
) -> list[StepResult]:
    """Measure every (grid, engine) pair; failures become rows with a status, not gaps."""
    rows = []
    for n in grids:
        for name in engines:
            if progress is not None:
                progress(f"{pde} {n}^{kwargs.get('ndim', 2)} {name}")
            rows.append(time_training_step(pde, n, name, **kwargs))
    return rows
