"""Network-free recovery: smooth the observations, differentiate, apply the direct formula.

:func:`estimate_parameter` is an instant estimate and an honest baseline for the trained
networks: the observations are smoothed and differentiated by one of
:data:`~mollifier.network_free.SMOOTHERS` (radius chosen from the data by
:func:`~mollifier.network_free.auto_radius` unless given), the problem's direct formula
is applied, and the estimate is scored like a trained run, in the same :class:`Result`.

Example:
    >>> from mollifier.inverse import estimate_parameter
    >>> from mollifier.problems import make_problem
    >>> result = estimate_parameter(make_problem("langevin", grid=128, noise=0.01, seed=0))
    >>> result.metrics["engine"], result.metrics["parameter_pearson"] > 0.9
    ('direct', True)
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..core.errors import check_choice
from ..core.operators import highest_request, normalize_requests
from ..network_free import SMOOTHERS, auto_radius, smoothed_derivatives
from ..runtime.lock import folder_lock
from ..runtime.memory import peak_memory_with_python
from .metrics import pearson, relative_l2
from .problem import InverseProblem
from .recovery import Result, arrays_of, score_baselines
from .results import write_results

if TYPE_CHECKING:  # pragma: no cover
    from .training import TrainConfig

SMOOTHERS_COMPARED = ("mollifier", "gaussian", "savgol")
"""The smoothers a trained estimate is compared with (the benchmarks' robustness sweep)."""

__all__ = ["estimate_from_config", "estimate_parameter", "score_beside_smoothers"]


def estimate_parameter(
    problem: InverseProblem,
    smoother: str = "mollifier",
    radius: float | tuple[float, ...] | None = None,
    *,
    measure_memory: bool = False,
) -> Result:
    """Estimate the problem's unknowns without a network, from its observations.

    Args:
        problem: A problem with a ``direct`` recovery formula and fully observed data.
        smoother: One of :data:`~mollifier.network_free.SMOOTHERS`.
        radius: Smoothing radius in physical units (one or per axis); ``None`` chooses it
            from the data with :func:`~mollifier.network_free.auto_radius` (for the scipy
            smoothers too: the same support width).
        measure_memory: Also measure peak memory (a second, profiled run): NumPy and
            Python allocations plus torch's CPU allocations.

    Returns:
        A :class:`Result`: metrics (``parameter_pearson``, ``parameter_relative_l2``,
        ``train_seconds`` = the estimate's time, ``radius``, ``radius_cells``), arrays
        (``fit`` = the smoothed field, ``direct_<name>``), no history, no model.
    """
    check_choice("smoother", smoother, SMOOTHERS)
    if problem.direct is None:
        raise ValueError(f"problem {problem.name!r} has no direct recovery formula; network-free estimation needs one")
    obs = problem.observations
    if obs.scattered:
        raise ValueError("network-free estimation needs data on the grid's nodes; scattered observations need a trained network")
    if not obs.mask.all():
        raise ValueError(
            f"network-free estimation needs observations at every grid point; {int((~obs.mask).sum())} are missing "
            "(train a network instead, which handles sparse data)"
        )
    if obs.values.shape[0] != 1:
        raise ValueError("network-free estimation supports one observed field")
    values = obs.values[0]
    grid = problem.grid
    periodic = problem.boundary == "periodic"
    requests = normalize_requests(problem.derivatives, grid.ndim)
    known = {
        k: torch.as_tensor(np.asarray(v, dtype=np.float64)).reshape(1, 1, *np.shape(v)) if np.ndim(v) else torch.tensor(float(v))
        for k, v in problem.known.items()
    }

    def compute() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], tuple[float, ...]]:
        chosen = radius
        if chosen is None:
            chosen = auto_radius(values, highest_request(requests), grid.spacing, boundary="periodic" if periodic else "valid")
        chosen = tuple(chosen) if isinstance(chosen, (tuple, list)) else (float(chosen),) * grid.ndim
        d_np = smoothed_derivatives(values, requests, grid.spacing, chosen, smoother, periodic)
        d = {k: torch.as_tensor(v).reshape(1, 1, *grid.shape) for k, v in d_np.items()}
        return {k: v.numpy().squeeze() for k, v in problem.direct(d, known).items()}, d_np, chosen

    start = time.perf_counter()
    estimates, d_np, used = compute()
    elapsed = time.perf_counter() - start
    peak = peak_memory_with_python(compute)[1] if measure_memory else None
    name = problem.parameter
    truth = problem.truth.get(name)
    metrics: dict[str, Any] = {
        "problem": problem.name,
        "engine": "direct",
        "smoother": smoother,
        "backbone": "none",
        "noise": obs.noise,
        "parameter": name,
        "recovery": "direct",
        "radius": list(used),
        "radius_cells": used[0] / grid.spacing[0],
        "train_seconds": elapsed,
        "step_seconds": elapsed,
        "steps": 0,
        "peak_memory_bytes": peak,
        "parameter_pearson": pearson(estimates[name], truth, problem.scores_mask) if truth is not None else float("nan"),
        "parameter_relative_l2": relative_l2(estimates[name], truth, problem.scores_mask) if truth is not None else float("nan"),
        "baselines": score_baselines(problem),
    }
    arrays = arrays_of(problem, d_np["u"][None], {"direct": estimates})
    return Result(metrics=metrics, arrays=arrays)


def score_beside_smoothers(problem: InverseProblem, estimate: np.ndarray, smoothers: tuple[str, ...] = SMOOTHERS_COMPARED,
                           ) -> dict[str, dict[str, float]]:
    """An estimate of the problem's parameter scored beside network-free smoothers, each on its support.

    A smoother gives no estimate within its kernel's reach of a non-periodic edge (NaN
    there); each comparison is made where it does, inside the problem's scoring mask.

    Args:
        problem: A problem with a truth for its parameter and a direct formula.
        estimate: The estimate to score, on the grid (a trained run's, another method's).
        smoothers: Names from :data:`~mollifier.network_free.SMOOTHERS`.

    Returns:
        ``{smoother: {"pearson": the smoother's own Pearson, "estimate_on_support": the
        estimate's Pearson on the same points}}``.
    """
    truth = problem.truth[problem.parameter]
    scored = np.ones(np.shape(truth), dtype=bool) if problem.scores_mask is None else np.asarray(problem.scores_mask, dtype=bool)
    out = {}
    for smoother in smoothers:
        free = estimate_parameter(problem, smoother).arrays["direct_" + problem.parameter]
        support = scored & np.isfinite(free)
        out[smoother] = {"pearson": pearson(free, truth, support), "estimate_on_support": pearson(estimate, truth, support)}
    return out


def estimate_from_config(
    problem: InverseProblem,
    config: "TrainConfig",
    out_dir: str | os.PathLike[str] | None = None,
    *,
    extra_config: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
    figures: bool = False,
    measure_memory: bool = True,
) -> Result:
    """:func:`estimate_parameter` with ``config.smoother`` and ``config.radius``, written to
    ``out_dir`` (locked while it runs) like a trained run."""
    radius = None if config.radius == "auto" else config.radius  # None: chosen from the data
    result = estimate_parameter(problem, config.smoother, radius, measure_memory=measure_memory)
    if out_dir is None:
        return result
    out = Path(out_dir)
    with folder_lock(out):
        record = {"problem": problem.name, "training": dataclasses.asdict(config), **(extra_config or {})}
        result.out_dir = write_results(out, result, record)
        if figures:
            try:
                from ..plotting.figures import save_run_figures

                save_run_figures(out)
            except ImportError as exc:
                if log is not None:
                    log(f"note: figures not drawn: {exc}")
    return result
