"""One way to recover the unknowns, whatever the method, and one result type.

:func:`recover` takes a problem and training settings and returns a :class:`Result`:

- ``engine="direct"``: no network; the observations are smoothed and differentiated and
  the problem's direct formula is applied (:func:`~mollifier.inverse.direct.estimate_parameter`);
- any derivative engine (``mollifier``, ``autodiff``, ``autodiff-forward``, ``fd``): a
  network is trained (:func:`~mollifier.inverse.training.train`).

Both return the same :class:`Result` (metrics, arrays, history), written by one function
(:func:`~mollifier.inverse.results.write_results`) when a results folder is given. The
helpers here turn recovered fields into those metrics and arrays for both paths.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .metrics import pearson, relative_l2
from .problem import InverseProblem

if TYPE_CHECKING:  # pragma: no cover
    from .callbacks import Callback
    from .model import InverseModel
    from .training import TrainConfig

__all__ = ["Result", "arrays_of", "recover", "recovered_arrays", "score", "score_baselines"]

Estimates = dict[str, dict[str, np.ndarray]]  # {"learned": {name: array}, "direct": {...}}


@dataclass
class Result:
    """What a recovery produced, trained or not.

    Attributes:
        metrics: Headline and detailed scores, time, memory, settings
            (``parameter_pearson``, ``parameter_relative_l2``, ``train_seconds``, ...).
        arrays: ``observed``, ``mask``, ``fit`` (the smoothed or learned field),
            ``axis0``..., ``direct_<name>`` / ``learned_<name>`` and ``true_<name>``.
        history: Per-step loss terms (empty without training).
        model: The trained model (None without training).
        out_dir: Where the results were written (None: in memory only).
    """

    metrics: dict[str, Any]
    arrays: dict[str, np.ndarray]
    history: list[dict[str, float]] = field(default_factory=list)
    model: "InverseModel | None" = None
    out_dir: Path | None = None

    @property
    def estimates(self) -> dict[str, np.ndarray]:
        """The headline estimate of each unknown (``{recovery}_<name>`` arrays)."""
        mode = self.metrics.get("recovery", "direct")
        prefix = f"{mode}_"
        return {k[len(prefix):]: v for k, v in self.arrays.items() if k.startswith(prefix)}


def to_numpy(value: torch.Tensor) -> np.ndarray:
    """A tensor as a float64 array without its size-one axes."""
    return value.detach().cpu().double().numpy().squeeze()


def recovered_arrays(problem: InverseProblem, d: Mapping[str, torch.Tensor], p: Mapping[str, torch.Tensor], known: Mapping[str, torch.Tensor]) -> Estimates:
    """Recovered unknowns: ``{"learned": {...}, "direct": {...}}`` as numpy arrays.

    ``learned`` are the unknowns' networks (or parameters), ``direct`` the problem's
    direct formula applied to the derivatives ``d`` (when the problem has one).
    """
    learned = {k: to_numpy(v) for k, v in p.items()}
    direct = {}
    if problem.direct is not None:
        with torch.no_grad():
            direct = {k: to_numpy(v) for k, v in problem.direct(d, known).items()}
    return {"learned": learned, "direct": direct}


def score(problem: InverseProblem, recovered: Estimates) -> dict[str, dict[str, dict[str, float]]]:
    """``{mode: {name: {"relative_l2": ..., "pearson": ...}}}`` against the problem's truth."""
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for mode, values in recovered.items():
        for name, estimate in values.items():
            if name not in problem.truth:
                continue
            truth = np.asarray(problem.truth[name], dtype=np.float64)
            estimate = np.broadcast_to(estimate, truth.shape)
            mask = problem.scores_mask
            if mask is not None and mask.shape != truth.shape:  # a field on some axes only: all its nodes
                mask = None
            entry = {"relative_l2": relative_l2(estimate, truth, mask)}
            if truth.ndim > 0 and truth.size > 1:
                entry["pearson"] = pearson(estimate, truth, mask)
            scores.setdefault(mode, {})[name] = entry
    return scores


def score_baselines(problem: InverseProblem) -> dict[str, dict[str, float]]:
    """Scores of the problem's training-free baseline estimates against the truth."""
    truth = problem.truth.get(problem.parameter)
    if truth is None:
        return {}
    return {
        name: {
            "pearson": pearson(estimate, truth, problem.scores_mask),
            "relative_l2": relative_l2(estimate, truth, problem.scores_mask),
        }
        for name, estimate in problem.baselines.items()
    }


def headline(scores: Mapping[str, Any], mode: str, name: str) -> dict[str, float]:
    """The headline scores (``pearson``, ``relative_l2``) of unknown ``name`` recovered by ``mode``."""
    main = scores.get(mode, {}).get(name, {})
    return {
        "parameter_pearson": main.get("pearson", float("nan")),
        "parameter_relative_l2": main.get("relative_l2", float("nan")),
    }


def arrays_of(problem: InverseProblem, fit: np.ndarray, recovered: Estimates) -> dict[str, np.ndarray]:
    """The arrays of a result: data (``observed`` and ``mask`` on the grid, or ``points`` and
    ``point_values`` when scattered), the fitted field ``(C, *grid)``, axes, estimates, truth
    and the ``domain`` mask when the problem has one."""
    obs = problem.observations
    if obs.scattered:
        arrays: dict[str, np.ndarray] = {"points": obs.points, "point_values": obs.values, "fit": fit}
    else:
        arrays = {"observed": obs.values, "mask": obs.mask, "fit": fit}
    if problem.domain is not None:
        arrays["domain"] = problem.domain
    for axis, coords in enumerate(problem.grid.axes(dtype=torch.float64)):
        arrays[f"axis{axis}"] = coords.numpy()
    for mode, values in recovered.items():
        for name, value in values.items():
            arrays[f"{mode}_{name}"] = np.asarray(value)
    for name, value in problem.truth.items():
        arrays[f"true_{name}"] = np.asarray(value, dtype=np.float64)
    return arrays


def recover(
    problem: InverseProblem,
    config: "TrainConfig | None" = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    resume: bool = False,
    extra_config: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
    distributed: bool = False,
    callbacks: Sequence["Callback"] = (),
    figures: bool = False,
    networks: Mapping[str, Any] | None = None,
) -> Result:
    """Recover the problem's unknowns by the method ``config.engine`` names.

    Args:
        problem: The declared inverse problem.
        config: Settings (:class:`~mollifier.inverse.TrainConfig`); ``engine="direct"``
            (with ``smoother`` and ``radius``) estimates without a network, any other
            engine trains one.
        out_dir, resume, extra_config, log, distributed, callbacks, figures, networks: As
            for :func:`~mollifier.inverse.train` (a network-free estimate runs on rank 0
            only and uses none of ``resume``, ``callbacks``, ``networks``).

    Returns:
        The :class:`Result`.
    """
    from .direct import estimate_from_config
    from .training import TrainConfig, train

    config = config or TrainConfig()
    if config.engine == "direct":
        return estimate_from_config(problem, config, out_dir, extra_config=extra_config, log=log, figures=figures)
    return train(
        problem, config, out_dir, resume=resume, extra_config=extra_config, log=log, distributed=distributed,
        callbacks=callbacks, figures=figures, networks=networks,
    )
