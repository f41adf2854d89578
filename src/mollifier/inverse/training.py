"""Training an inverse problem: losses, Adam then L-BFGS, checkpoints, resume, metrics.

``loss = data_weight * mse(u - data)[observed] / var(data)
       + residual_weight * mse(residual / residual_scale)``

where ``u`` is the engine's field (the mollified field for the ``mollifier`` engine).

Example:
    >>> from mollifier.problems import make_problem
    >>> from mollifier.inverse import TrainConfig, train
    >>> problem = make_problem("langevin", grid=64, noise=0.0, seed=0)
    >>> result = train(problem, TrainConfig(steps=5, log_every=0))
    >>> sorted(result.metrics)[:3]
    ['backbone', 'direct', 'engine']
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..runtime.memory import measure_peak_memory
from ..core.errors import check_choice, check_positive_int
from ..distributed.collectives import all_reduce_max, guard
from ..distributed.context import DistributedContext, current
from .metrics import pearson, relative_l2
from .model import InverseModel, as_tensor_on_grid
from .problem import InverseProblem
from ..runtime.files import write_json, write_npz, write_torch

__all__ = ["NonFiniteLossError", "TrainConfig", "TrainResult", "train"]

RECOVERIES = ("auto", "direct", "learned")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    """How to train. Every field has a default; ``mollifier run --config`` reads these names.

    Attributes:
        engine: Derivative engine (``mollifier``, ``autodiff``, ``autodiff-forward``, ``fd``).
        backbone: Field backbone (``mlp``, ``piratenet``, ``pinnsformer``).
        backbone_options: Keyword arguments of the backbone.
        radius: Mollifier radius in physical units (``None``: the problem's default).
        kernel: Mollifier kernel name.
        steps: Adam steps.
        lr: Adam learning rate at the start.
        lr_final: Learning rate reached at the last Adam step (exponential decay).
        lbfgs_steps: L-BFGS iterations after Adam (0: none).
        data_weight: Weight of the data loss (``None``: the problem's).
        residual_weight: Weight of the residual loss (``None``: the problem's).
        residual_warmup: Steps over which the residual weight ramps up linearly from 0.
        patience: Early stopping: stop Adam when the loss has not improved by 0.1 % in
            this many steps (0: never).
        time_budget: Stop Adam once the training time reaches this many seconds (for
            comparisons at equal cost; ``None``: no limit).
        recovery: Which recovered parameter the headline metrics use: ``direct``,
            ``learned`` or ``auto`` (direct when the problem offers it).
        seed: Seed of the initialisation (the global RNG state is restored afterwards).
        device: Torch device.
        dtype: ``float32`` or ``float64``.
        log_every: Steps between progress updates and parameter-error evaluations (0: off).
        checkpoint_every: Steps between checkpoints (0: only at the end).
        progress: Show a progress bar (tqdm if installed, else a line per update).
    """

    engine: str = "mollifier"
    backbone: str = "mlp"
    backbone_options: dict[str, Any] = field(default_factory=dict)
    radius: float | None = None
    kernel: str = "bump"
    steps: int = 2000
    lr: float = 5e-3
    lr_final: float = 5e-4
    lbfgs_steps: int = 0
    data_weight: float | None = None
    residual_weight: float | None = None
    residual_warmup: int = 0
    patience: int = 0
    time_budget: float | None = None
    recovery: str = "auto"
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    log_every: int = 50
    checkpoint_every: int = 500
    progress: bool = False

    def __post_init__(self) -> None:
        check_positive_int("steps", self.steps, minimum=0)
        check_positive_int("lbfgs_steps", self.lbfgs_steps, minimum=0)
        check_positive_int("patience", self.patience, minimum=0)
        check_positive_int("log_every", self.log_every, minimum=0)
        check_positive_int("checkpoint_every", self.checkpoint_every, minimum=0)
        check_positive_int("residual_warmup", self.residual_warmup, minimum=0)
        check_choice("recovery", self.recovery, RECOVERIES)
        check_choice("dtype", self.dtype, ("float32", "float64"))
        for name in ("lr", "lr_final"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"`{name}` must be a positive number; got {value!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Build from a mapping, rejecting unknown keys with the list of allowed ones."""
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**data)


@dataclass
class TrainResult:
    """What a training run produced."""

    model: InverseModel
    metrics: dict[str, Any]
    arrays: dict[str, np.ndarray]
    history: list[dict[str, float]]
    out_dir: Path | None = None


def _ramp(step: int, warmup: int) -> float:
    return 1.0 if warmup <= 0 else min(1.0, (step + 1) / warmup)


class _Objective:
    """Computes the loss terms for the current model state.

    The tiled (multi-process) objective, :class:`mollifier.distributed.objective.TiledObjective`,
    shares :meth:`__call__` and overrides the hooks :meth:`fields`, :meth:`_mean_square`
    and :meth:`_parts` (and ``observed_count``, ``residual_known``) for one slab of rows.
    """

    def __init__(self, problem: InverseProblem, model: InverseModel, config: TrainConfig, device, dtype) -> None:
        self.problem, self.model, self.device, self.dtype = problem, model, device, dtype
        obs = problem.observations
        self.data = torch.as_tensor(obs.values, dtype=dtype, device=device).unsqueeze(0)
        self.mask = torch.as_tensor(obs.mask, device=device).reshape(1, 1, *problem.grid.shape)
        self.observed_count = self.mask.sum() * self.data.shape[1]
        observed = obs.values[:, obs.mask]
        self.data_scale = float(max(observed.var(), 1e-12))
        self.known = {k: as_tensor_on_grid(v, dtype, device) for k, v in problem.known.items()}
        self.residual_known = self.known  # the known fields where the residual is evaluated
        self.coords = problem.grid.coords(dtype=dtype, device=device)
        self.data_weight = problem.data_weight if config.data_weight is None else config.data_weight
        self.residual_weight = problem.residual_weight if config.residual_weight is None else config.residual_weight
        self.warmup = config.residual_warmup

    def fields(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Derivatives of the field and the unknowns' values."""
        return self.model(self.dtype, self.device), self.model.unknowns(self.coords)

    def _mean_square(self, residual: torch.Tensor) -> torch.Tensor:
        return (residual**2).mean()

    def _parts(self, loss: torch.Tensor, data_loss: torch.Tensor, residual_loss: torch.Tensor, weight: float) -> dict[str, float]:
        """The loss terms as numbers for the history (the whole problem's)."""
        return {"loss": float(loss.detach()), "data": float(data_loss.detach()), "residual": float(residual_loss.detach())}

    def __call__(self, step: int) -> tuple[torch.Tensor, dict[str, float], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        d, p = self.fields()
        misfit = (d["u"] - self.data) ** 2 * self.mask
        data_loss = misfit.sum() / self.observed_count / self.data_scale
        residual = self.problem.residual(d, p, self.residual_known) / self.problem.residual_scale
        residual_loss = self._mean_square(residual)
        weight = self.residual_weight * _ramp(step, self.warmup)
        loss = self.data_weight * data_loss + weight * residual_loss
        boundary_loss = None
        if self.problem.boundary_loss is not None:
            boundary_loss = (self.problem.boundary_loss(d, p, self.known) ** 2).mean()
            loss = loss + self.problem.boundary_weight * boundary_loss
        parts = self._parts(loss, data_loss, residual_loss, weight)
        if boundary_loss is not None:
            parts["boundary"] = float(boundary_loss.detach())
        return loss, parts, d, p

    def after_backward(self) -> None:
        """Hook after ``loss.backward()`` (the tiled objective sums gradients over ranks)."""

    def full(self, d: dict[str, torch.Tensor], p: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The fields on the whole grid (already whole here; gathered by the tiled objective)."""
        return d, p


def _recovered(problem: InverseProblem, d: dict[str, torch.Tensor], p: dict[str, torch.Tensor], known) -> dict[str, dict[str, np.ndarray]]:
    """Recovered unknowns: ``{"learned": {...}, "direct": {...}}`` as numpy arrays."""
    learned = {k: v.detach().cpu().double().numpy().squeeze() for k, v in p.items()}
    direct = {}
    if problem.direct is not None:
        with torch.no_grad():
            direct = {k: v.detach().cpu().double().numpy().squeeze() for k, v in problem.direct(d, known).items()}
    return {"learned": learned, "direct": direct}


def _score(problem: InverseProblem, recovered: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    scores: dict[str, dict[str, float]] = {}
    for mode, values in recovered.items():
        for name, estimate in values.items():
            if name not in problem.truth:
                continue
            truth = np.asarray(problem.truth[name], dtype=np.float64)
            estimate = np.broadcast_to(estimate, truth.shape)
            mask = problem.metric_mask
            entry = {"relative_l2": relative_l2(estimate, truth, mask)}
            if truth.ndim > 0 and truth.size > 1:
                entry["pearson"] = pearson(estimate, truth, mask)
            scores.setdefault(mode, {})[name] = entry
    return scores


def _headline_mode(problem: InverseProblem, config: TrainConfig) -> str:
    if config.recovery == "auto":
        return "direct" if problem.direct is not None else "learned"
    if config.recovery == "direct" and problem.direct is None:
        raise ValueError(f"`recovery`='direct' but problem {problem.name!r} has no direct recovery formula")
    return config.recovery


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is an optional extra
        return None
    return tqdm(total=total, desc="training", unit="step", dynamic_ncols=True, leave=False)


def train(
    problem: InverseProblem,
    config: TrainConfig | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    resume: bool = False,
    extra_config: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
    distributed: bool = False,
) -> TrainResult:
    """Fit the field to the data under the PDE residual and recover the unknowns.

    Args:
        problem: The declared inverse problem.
        config: Training settings (defaults: :class:`TrainConfig`).
        out_dir: Results folder: ``config.json``, ``metrics.json``, ``arrays.npz``,
            ``history.json``, ``checkpoint.pt`` (written atomically). ``None``: keep
            everything in memory.
        resume: Continue from ``out_dir/checkpoint.pt`` (same configuration).
        extra_config: More settings to record in ``config.json`` (problem options).
        log: Where progress lines go when no progress bar is shown (default: none).
        distributed: Tile the grid over the ranks of the current ``torch.distributed``
            launch (:mod:`mollifier.distributed`): each rank trains on a slab of rows
            plus the kernel's halo, gradients are summed over ranks, metrics are
            computed on the gathered fields, and only rank 0 writes ``out_dir``, logs and
            shows progress. Needs the ``mollifier`` or ``fd`` engine. A no-op when the
            launch has one process.

    Returns:
        A :class:`TrainResult` with metrics (``parameter_pearson``,
        ``parameter_relative_l2``, ``train_seconds``, ``step_seconds``,
        ``peak_memory_bytes``, ...), arrays and the loss history.

    Raises:
        NonFiniteLossError: The loss became NaN/inf (the last good checkpoint is kept).
        KeyboardInterrupt: After writing a checkpoint to resume from.
        mollifier.distributed.RankFailedError: With ``distributed``, another rank failed.
    """
    ctx = current() if distributed else DistributedContext()
    with guard(ctx):  # a failing rank tells the others why before they give up waiting
        return _train(problem, config or TrainConfig(), out_dir, resume, extra_config, log if ctx.is_main else None, ctx)


def _train(
    problem: InverseProblem,
    config: TrainConfig,
    out_dir: str | os.PathLike[str] | None,
    resume: bool,
    extra_config: dict[str, Any] | None,
    log: Callable[[str], None] | None,
    ctx: DistributedContext,
) -> TrainResult:
    device = ctx.device_for(config.device)
    dtype = getattr(torch, config.dtype)
    out = Path(out_dir) if out_dir is not None else None
    checkpoint_path = out / "checkpoint.pt" if out is not None else None
    record = {"problem": problem.name, "training": dataclasses.asdict(config), **(extra_config or {})}

    checkpoint = None
    if resume:
        if checkpoint_path is None or not checkpoint_path.exists():
            raise FileNotFoundError(f"--resume given but no checkpoint at {checkpoint_path}")
        checkpoint = torch.load(checkpoint_path, map_location=device, weights_only=False)
        saved = checkpoint["config"]["training"]
        changed = {k for k in saved if k not in ("steps", "time_budget", "progress", "log_every", "checkpoint_every") and saved[k] != record["training"].get(k)}
        if changed:
            raise ValueError(
                f"cannot resume: the checkpoint was made with different settings for {sorted(changed)}; "
                f"use the same options or a new --out folder"
            )
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        model = InverseModel(
            problem,
            engine=config.engine,
            backbone=config.backbone,
            backbone_options=config.backbone_options,
            radius=config.radius,
            engine_options={"kernel": config.kernel},
        ).to(device=device, dtype=dtype)
    objective = _make_objective(problem, model, config, device, dtype, ctx)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    gamma = (config.lr_final / config.lr) ** (1.0 / max(config.steps, 1))
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
    history: list[dict[str, float]] = []
    start_step, elapsed, peak_memory, lbfgs_done = 0, 0.0, None, False
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        history = checkpoint["history"]
        start_step, elapsed, peak_memory = checkpoint["step"], checkpoint["elapsed"], checkpoint["peak_memory"]
        lbfgs_done = bool(checkpoint.get("lbfgs_done", False))
    if out is not None and ctx.is_main:
        write_json(out / "config.json", record)

    def save_checkpoint(step: int) -> None:
        if checkpoint_path is None or not ctx.is_main:
            return
        write_torch(
            checkpoint_path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "history": history,
                "step": step,
                "elapsed": elapsed,
                "peak_memory": peak_memory,
                "lbfgs_done": lbfgs_done,
                "config": record,
            },
        )

    headline = _headline_mode(problem, config)
    bar = _progress(config.steps, config.progress and ctx.is_main)
    if bar is not None:
        bar.update(start_step)
    best, since_best = math.inf, 0
    step = start_step
    try:
        while step < config.steps:
            t0 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            if peak_memory is None:
                (loss, parts, d, p), reading = measure_peak_memory(lambda: _forward_backward(objective, step), device)
                peak_memory = reading.peak_bytes
            else:
                loss, parts, d, p = _forward_backward(objective, step)
            if not math.isfinite(parts["loss"]):
                raise NonFiniteLossError(
                    f"the loss became {parts['loss']} at step {step} (data {parts['data']}, residual "
                    f"{parts['residual']}); stopped. The last good checkpoint is kept"
                    + (f" in {checkpoint_path}" if checkpoint_path else "")
                    + ". Try a smaller --lr or a larger radius."
                )
            optimizer.step()
            scheduler.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - t0
            elapsed += seconds
            step += 1
            entry = {"step": step, **parts, "seconds": seconds}
            if config.log_every and (step % config.log_every == 0 or step == config.steps):
                scores = _score(problem, _recovered(problem, *objective.full(d, p), objective.known))
                entry["parameter_error"] = _headline_error(scores, headline, problem.parameter)
                message = f"step {step}/{config.steps} loss {parts['loss']:.3e} data {parts['data']:.2e} residual {parts['residual']:.2e} {problem.parameter} rel. L2 {entry['parameter_error']:.3g}"
                if bar is not None:
                    bar.set_postfix_str(message.split(" ", 2)[2])
                elif log is not None:
                    log(message)
            history.append(entry)
            if bar is not None:
                bar.update(1)
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                save_checkpoint(step)
            if config.time_budget is not None and _slowest(ctx, elapsed, device) >= config.time_budget:
                if log is not None:
                    log(f"time budget of {config.time_budget:g} s reached at step {step}")
                break
            if config.patience:
                if parts["loss"] < best * (1 - 1e-3):
                    best, since_best = parts["loss"], 0
                else:
                    since_best += 1
                    if since_best >= config.patience:
                        if log is not None:
                            log(f"early stop at step {step}: no 0.1 % improvement in {config.patience} steps")
                        break
        if config.lbfgs_steps and not lbfgs_done:
            elapsed += _lbfgs(model, objective, config, step, history)
            lbfgs_done = True
        save_checkpoint(step)
    except KeyboardInterrupt:
        save_checkpoint(step)
        raise
    finally:
        if bar is not None:
            bar.close()

    with torch.enable_grad():  # autodiff engines need grad to differentiate
        _, parts, d, p = objective(step)
    d, p = objective.full(d, p)
    recovered = _recovered(problem, d, p, objective.known)
    scores = _score(problem, recovered)
    metrics = _metrics(problem, config, scores, headline, parts, elapsed, peak_memory, step)
    metrics["step_seconds"] = elapsed / max(len(history), 1)
    if ctx.is_distributed:
        metrics["distributed"] = objective.summary()
    arrays = _arrays(problem, d, recovered)
    if out is not None and ctx.is_main:
        write_npz(out / "arrays.npz", arrays)
        write_json(out / "history.json", history)
        write_json(out / "metrics.json", metrics)
    return TrainResult(model=model, metrics=metrics, arrays=arrays, history=history, out_dir=out)


def _forward_backward(objective: _Objective, step: int):
    loss, parts, d, p = objective(step)
    if math.isfinite(parts["loss"]):  # the global loss: every rank takes the same branch
        loss.backward()
        objective.after_backward()
    return loss, parts, d, p


def _make_objective(problem: InverseProblem, model: InverseModel, config: TrainConfig, device, dtype, ctx: DistributedContext):
    if not ctx.is_distributed:
        return _Objective(problem, model, config, device, dtype)
    from ..distributed.objective import TiledObjective

    return TiledObjective(
        problem,
        model,
        data_weight=problem.data_weight if config.data_weight is None else config.data_weight,
        residual_weight=problem.residual_weight if config.residual_weight is None else config.residual_weight,
        warmup=config.residual_warmup,
        device=device,
        dtype=dtype,
        ctx=ctx,
    )


def _slowest(ctx: DistributedContext, elapsed: float, device: torch.device) -> float:
    """The largest training time over ranks, so that all stop at the same step."""
    if not ctx.is_distributed:
        return elapsed
    return all_reduce_max(ctx, elapsed, "comparing training times", device if ctx.backend == "nccl" else None)


def _lbfgs(model: InverseModel, objective: _Objective, config: TrainConfig, step: int, history: list) -> float:
    optimizer = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=config.lbfgs_steps, line_search_fn="strong_wolfe")
    t0 = time.perf_counter()

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss, parts, _, _ = objective(step)
        if not math.isfinite(parts["loss"]):
            raise NonFiniteLossError(f"the loss became {parts['loss']} during L-BFGS; stopped")
        loss.backward()
        objective.after_backward()
        history.append({"step": step, "lbfgs": 1.0, **parts})
        return loss

    optimizer.step(closure)
    return time.perf_counter() - t0


def _headline_error(scores: dict, mode: str, name: str) -> float:
    return float(scores.get(mode, {}).get(name, {}).get("relative_l2", float("nan")))


def _metrics(problem, config, scores, headline, parts, elapsed, peak_memory, step) -> dict[str, Any]:
    main = scores.get(headline, {}).get(problem.parameter, {})
    return {
        "problem": problem.name,
        "engine": config.engine,
        "backbone": config.backbone,
        "noise": problem.observations.noise,
        "parameter": problem.parameter,
        "recovery": headline,
        "parameter_pearson": main.get("pearson", float("nan")),
        "parameter_relative_l2": main.get("relative_l2", float("nan")),
        "train_seconds": elapsed,
        "steps": step,
        "peak_memory_bytes": peak_memory,
        "final_loss": parts,
        "direct": scores.get("direct", {}),
        "learned": scores.get("learned", {}),
        "baselines": score_baselines(problem),
        "device": config.device,
        "torch": torch.__version__,
    }


def score_baselines(problem: InverseProblem) -> dict[str, dict[str, float]]:
    """Scores of the problem's training-free baseline estimates against the truth."""
    truth = problem.truth.get(problem.parameter)
    if truth is None:
        return {}
    return {
        name: {
            "pearson": pearson(estimate, truth, problem.metric_mask),
            "relative_l2": relative_l2(estimate, truth, problem.metric_mask),
        }
        for name, estimate in problem.baselines.items()
    }


def _arrays(problem: InverseProblem, d: dict[str, torch.Tensor], recovered) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {
        "observed": problem.observations.values,
        "mask": problem.observations.mask,
        "fit": d["u"].detach().cpu().double().numpy()[0],
    }
    for axis, coords in enumerate(problem.grid.axes(dtype=torch.float64)):
        arrays[f"axis{axis}"] = coords.numpy()
    for mode, values in recovered.items():
        for name, value in values.items():
            arrays[f"{mode}_{name}"] = np.asarray(value)
    for name, value in problem.truth.items():
        arrays[f"true_{name}"] = np.asarray(value, dtype=np.float64)
    return arrays
