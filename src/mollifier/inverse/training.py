"""Training a network on an inverse problem: Adam then L-BFGS, with hooks, checkpoints, resume.

The loss is :mod:`.objective`'s; the run reports through :mod:`.callbacks` (progress,
time budget, early stopping, loggers, your own), checkpoints through :mod:`.checkpoint`
and writes its results folder through :mod:`.results`.

Example:
    >>> from mollifier.problems import make_problem
    >>> from mollifier.inverse import TrainConfig, train
    >>> problem = make_problem("langevin", grid=64, noise=0.0, seed=0)
    >>> result = train(problem, TrainConfig(steps=5, log_every=0))
    >>> sorted(result.metrics)[:3]
    ['backbone', 'baselines', 'device']
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.engines import ENGINES
from ..core.errors import check_choice, check_positive_int
from ..distributed.collectives import guard
from ..distributed.context import DistributedContext, current
from ..network_free import SMOOTHERS
from ..runtime.devices import resolve_device, seeded
from ..runtime.files import remove_stale_temporaries
from ..runtime.lock import folder_lock
from ..runtime.memory import measure_peak_memory
from .callbacks import LOGGERS, Callback, CallbackList, TrainState, default_callbacks
from .checkpoint import CHECKPOINT_NAME, check_resumable, load_checkpoint, save_checkpoint
from .model import InverseModel
from .objective import LossWeights, Objective, make_objective
from .priors import has_prior, prior_weight, resolve_priors
from .problem import InverseProblem
from .recovery import Result, arrays_of, headline, recovered_arrays, score, score_baselines
from .results import write_config, write_results
from .trained import MODEL_NAME, save_networks
from .warm_start import (
    ANCHOR_THRESHOLD,
    WARM_STARTS,
    anchor_to_data,
    anchored_state,
    collapsed_unknowns,
    derivative_misfit,
    field_on_grid,
    fit_unknowns,
    install_anchor,
    is_anchored,
    training_floor_cells,
    network_free_start,
    residual_order,
    training_radius,
)

__all__ = ["METHODS", "RECOVERIES", "NonFiniteLossError", "TrainConfig", "TrainResult", "train"]

RECOVERIES = ("auto", "direct", "learned")
"""Which recovered estimate the headline metrics use."""

METHODS: tuple[str, ...] = (*ENGINES, "direct")
"""Recovery methods: a derivative engine (a network is trained) or ``direct`` (network-free)."""


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    """How to recover. Every field has a default; ``mollifier run --config`` reads these names.

    Attributes:
        engine: Derivative engine (``mollifier``, ``autodiff``, ``autodiff-forward``,
            ``fd``), or ``direct`` for the network-free estimate (no training).
        backbone: Field backbone (``mlp``, ``piratenet``, ``pinnsformer``).
        backbone_options: Keyword arguments of the backbone.
        engine_options: Options of the engine (``kernel``, ``learnable_radius``,
            ``method`` for ``mollifier``; ``accuracy`` for ``fd``); an option the engine
            does not take is an error.
        smoother: Smoother of the ``direct`` estimate (``mollifier``, ``savgol``,
            ``gaussian``, ``spline``).
        radius: Mollifier radius in physical units; ``"auto"`` (default): chosen from the
            data (:func:`~mollifier.inverse.warm_start.training_radius` for training: a
            fraction of the network-free bias-variance optimum; the optimum itself for
            ``direct``); ``None``: the problem's declared radius.
        warm_start: Starting from what the data say
            (:data:`~mollifier.inverse.warm_start.WARM_STARTS`): ``auto`` (default) trains
            as usual and checks the field against the data's highest-order derivative a
            quarter of the way in (or at the end of ``residual_warmup``); if it misses
            detail the data resolve, the field is anchored to the smoothed data and the
            unknowns' networks restart at the network-free estimate. ``anchor`` does that
            from the first step; ``none`` never does. Measured: docs/inverse.md, "The
            radius, warm starts and what limits a run".
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
        device: ``auto`` (CUDA, then MPS, then CPU), or a torch device.
        dtype: ``float32`` or ``float64``.
        log_every: Steps between parameter-error evaluations and progress updates (0: off).
        checkpoint_every: Steps between checkpoints (0: only at the end).
        progress: Show a progress bar (tqdm if installed, else a line per update).
        log: Loggers writing under ``OUT/logs``: ``csv``, ``tensorboard``.
        compile: Compile the networks with ``torch.compile`` (the first steps pay for the
            compilation; see docs/inverse.md for when it pays off).
        autocast: Run the networks in bfloat16 autocast (float32 runs only); the
            derivative stencils, the residual and the losses stay in float32.
    """

    engine: str = "mollifier"
    backbone: str = "mlp"
    backbone_options: dict[str, Any] = field(default_factory=dict)
    engine_options: dict[str, Any] = field(default_factory=dict)
    smoother: str = "mollifier"
    radius: float | str | None = "auto"
    warm_start: str = "auto"
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
    device: str = "auto"
    dtype: str = "float32"
    log_every: int = 50
    checkpoint_every: int = 500
    progress: bool = False
    log: tuple[str, ...] = ()
    compile: bool = False
    autocast: bool = False

    def __post_init__(self) -> None:
        check_choice("engine", self.engine, METHODS)
        check_choice("smoother", self.smoother, SMOOTHERS)
        check_positive_int("steps", self.steps, minimum=0)
        check_positive_int("lbfgs_steps", self.lbfgs_steps, minimum=0)
        check_positive_int("patience", self.patience, minimum=0)
        check_positive_int("log_every", self.log_every, minimum=0)
        check_positive_int("checkpoint_every", self.checkpoint_every, minimum=0)
        check_positive_int("residual_warmup", self.residual_warmup, minimum=0)
        check_positive_int("seed", self.seed, minimum=0)
        check_choice("recovery", self.recovery, RECOVERIES)
        check_choice("dtype", self.dtype, ("float32", "float64"))
        check_choice("warm_start", self.warm_start, WARM_STARTS)
        if not isinstance(self.device, str):
            raise TypeError(f"`device` must be a string such as 'auto', 'cpu' or 'cuda'; got {self.device!r}")
        for name in ("lr", "lr_final"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"`{name}` must be a positive number; got {value!r}")
        if self.radius is not None and self.radius != "auto" and (
            isinstance(self.radius, bool) or not isinstance(self.radius, (int, float)) or not self.radius > 0
        ):
            raise ValueError(f"`radius` must be a positive number (physical units), 'auto' or None; got {self.radius!r}")
        if self.time_budget is not None and not (isinstance(self.time_budget, (int, float)) and self.time_budget > 0):
            raise ValueError(f"`time_budget` must be a positive number of seconds or None; got {self.time_budget!r}")
        for name in ("backbone_options", "engine_options"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"`{name}` must be a dict of keyword options; got {getattr(self, name)!r}")
        for name in ("progress", "compile", "autocast"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"`{name}` must be true or false; got {getattr(self, name)!r}")
        if self.autocast and self.dtype != "float32":
            raise ValueError("`autocast` (bfloat16 networks) applies to float32 runs; got dtype 'float64'")
        log = (self.log,) if isinstance(self.log, str) else tuple(self.log)
        for name in log:
            check_choice("log", name, LOGGERS)
        self.log = log

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Build from a mapping, rejecting unknown keys with the list of allowed ones."""
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**data)


TrainResult = Result
"""What a training run returns (the same :class:`~mollifier.inverse.recovery.Result` as every recovery)."""


def train(
    problem: InverseProblem,
    config: TrainConfig | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    resume: bool = False,
    extra_config: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
    distributed: bool = False,
    callbacks: Sequence[Callback] = (),
    figures: bool = False,
    networks: Mapping[str, torch.nn.Module] | None = None,
) -> Result:
    """Fit the field to the data under the PDE residual and recover the unknowns.

    Args:
        problem: The declared inverse problem.
        config: Training settings (defaults: :class:`TrainConfig`).
        out_dir: Results folder (locked while the run writes into it): ``config.json``,
            ``metrics.json``, ``arrays.npz``, ``history.json``, ``checkpoint.pt`` (written
            atomically), ``logs/``, ``figures/``. ``None``: keep everything in memory.
        resume: Continue from ``out_dir/checkpoint.pt`` (same settings but for how long
            to run and what to report).
        extra_config: More settings to record in ``config.json`` (problem options).
        log: Where progress lines go when no progress bar is shown (default: none).
        distributed: Tile the grid over the ranks of the current ``torch.distributed``
            launch (:mod:`mollifier.distributed`): each rank trains on a slab of rows
            plus the stencil halo, gradients are summed over ranks, metrics are
            computed on the gathered fields, and only rank 0 writes ``out_dir``, logs and
            shows progress. Needs the ``mollifier`` or ``fd`` engine. A no-op when the
            launch has one process.
        callbacks: Your :class:`~mollifier.inverse.callbacks.Callback` objects, called
            after the built-in progress, time budget and early stopping.
        figures: Draw ``figures/*.png`` at the end (needs matplotlib and ``out_dir``).
        networks: Your own ``torch.nn.Module`` per field instead of the named backbones:
            ``"u"`` for the observed field, an unknown or latent field's name for that
            one (see :class:`~mollifier.inverse.model.InverseModel`). They are trained in
            place; ``seed`` initialises only the named backbones.

    Returns:
        A :class:`~mollifier.inverse.recovery.Result` with metrics
        (``parameter_pearson``, ``parameter_relative_l2``, ``train_seconds``,
        ``step_seconds``, ``peak_memory_bytes``, ``steps``, ``stop_reason``, ...), arrays,
        the loss history and the model.

    Raises:
        NonFiniteLossError: The loss became NaN/inf (the last good checkpoint is kept).
        KeyboardInterrupt: After writing a checkpoint to resume from.
        mollifier.runtime.FolderBusyError: Another run is writing into ``out_dir``.
        mollifier.inverse.checkpoint.CheckpointError: ``resume`` with an unreadable or
            foreign checkpoint.
        mollifier.distributed.RankFailedError: With ``distributed``, another rank failed.
    """
    config = config or TrainConfig()
    if config.engine == "direct":
        raise ValueError("engine 'direct' trains no network: use mollifier.inverse.recover or estimate_parameter")
    ctx = current() if distributed else DistributedContext()
    out = Path(out_dir) if out_dir is not None else None
    if resume and out is None:
        raise ValueError("`resume` needs the results folder (`out_dir`, --out) that holds the checkpoint")
    lock = folder_lock(out) if (out is not None and ctx.is_main) else contextlib.nullcontext()
    with guard(ctx), lock:  # a failing rank tells the others why before they give up waiting
        run = _Run(problem, config, out, ctx, log if ctx.is_main else None, extra_config, networks)
        hooks = default_callbacks(config, out, figures=figures and ctx.is_main, extra=callbacks)
        return run.execute(resume, hooks)


class _Run:
    """One training run, step by step: build, restore, Adam, L-BFGS, finish."""

    def __init__(
        self,
        problem: InverseProblem,
        config: TrainConfig,
        out: Path | None,
        ctx: DistributedContext,
        log: Callable[[str], None] | None,
        extra_config: dict[str, Any] | None,
        networks: Mapping[str, torch.nn.Module] | None = None,
    ) -> None:
        self.problem, self.config, self.out, self.ctx = problem, config, out, ctx
        self.networks = networks
        self.device = ctx.device_for(resolve_device(config.device))
        self.dtype = getattr(torch, config.dtype)
        self.checkpoint_path = out / CHECKPOINT_NAME if out is not None else None
        self.record = {"problem": problem.name, "training": dataclasses.asdict(config), **(extra_config or {})}
        self.mode = _headline_mode(problem, config)
        self.log = log
        self.peak_memory: int | None = None
        self.lbfgs_done = False
        self.warm_report: dict[str, Any] = {"mode": config.warm_start}

    # -- set-up ------------------------------------------------------------------------

    def build(self) -> None:
        """Model (seeded, the global RNG state restored), objective, Adam and its schedule."""
        config = self.config
        t0 = time.perf_counter()
        self.start = network_free_start(self.problem)
        self.problem, self.priors = resolve_priors(self.problem, self.start)
        self.start_seconds = time.perf_counter() - t0
        radius, self.radius_rule = config.radius, None
        takes_radius = config.engine == "mollifier"
        if radius == "auto":
            if takes_radius:
                radius, _, self.radius_rule = training_radius(self.problem, self.start)
            else:
                radius = None
        elif takes_radius:
            self.radius_rule = "the problem's default" if radius is None else "fixed"
        with seeded(config.seed, self.device):
            self.model = InverseModel(
                self.problem,
                engine=config.engine,
                backbone=config.backbone,
                backbone_options=config.backbone_options,
                radius=radius,
                engine_options=config.engine_options,
                networks=self.networks,
            ).to(device=self.device, dtype=self.dtype)
        if config.autocast:
            self.model.autocast(self.device.type)
        if config.compile:
            self.model.compile_networks()
        weights = LossWeights.resolve(self.problem, config.data_weight, config.residual_weight, config.residual_warmup)
        self.objective: Objective = make_objective(self.problem, self.model, weights, self.device, self.dtype, self.ctx)
        if self.priors:
            first = next(iter(self.priors.values()))  # the data's noise and its floor: the same for every prior
            self.objective.prior_weight = prior_weight(
                weights.data, float(self.objective.observed_count), self.objective.data_scale, first["noise_std"], first["noise_floor"]
            )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        gamma = (config.lr_final / config.lr) ** (1.0 / max(config.steps, 1))
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=gamma)
        self.state = TrainState(self.problem, config, self.model, self.optimizer, self.ctx, self.out, self.log)

    def can_anchor(self) -> bool:
        """Whether this run may anchor its field (:mod:`.warm_start`); says why not in the report."""
        config, report = self.config, self.warm_report
        if config.warm_start == "none":
            return False
        if self.start is None:
            report["skipped"] = "the data are scattered, incomplete or have several channels: no network-free start"
        elif config.engine != "mollifier":
            report["skipped"] = "anchoring needs the mollifier engine"
        elif self.networks:
            report["skipped"] = "your own networks are trained as given, never wrapped in an anchor"
        else:
            return True
        return False

    def anchor(self, step: int) -> None:
        """Anchor the field to the smoothed data and start the unknowns at the network-free estimate."""
        assert self.start is not None
        t0 = time.perf_counter()
        anchor_to_data(self.model, self.start)
        self.optimizer.state.clear()  # Adam's moments would carry the field back to where it was
        with seeded(self.config.seed, self.device):
            collapsed = collapsed_unknowns(self.model, self.problem)
            if collapsed:  # fitting through softplus's flat tail would be as stuck as training
                self.reinitialise(collapsed)
                self.warm_report["reinitialised"] = collapsed
            self.warm_report["unknowns"] = fit_unknowns(self.model, self.problem, self.start, seed=self.config.seed)
        seconds = time.perf_counter() - t0
        self.state.elapsed += seconds
        self.warm_report.update(anchored_at_step=step, anchor_seconds=seconds)

    def warm(self) -> None:
        """At the start: the network-free start's time, and the anchor for ``warm_start="anchor"``."""
        self.state.elapsed += self.start_seconds
        self.warm_report["network_free_seconds"] = self.start_seconds
        if self.config.warm_start == "anchor" and self.can_anchor():
            self.anchor(0)

    def check_field(self, state: TrainState, entry: dict[str, float]) -> None:
        """``warm_start="auto"``, at step :meth:`check_step`: if the field misses the data's
        detail (:func:`~mollifier.inverse.warm_start.derivative_misfit` above
        ``ANCHOR_THRESHOLD``), anchor it and restart the unknowns at the network-free estimate;
        otherwise restart any unknown that has collapsed to ~0 (:meth:`restart_unknowns`)."""
        report = self.warm_report
        if state.step != self.check_step() or "check" in report:
            return
        assert self.start is not None
        t0 = time.perf_counter()
        ratio = derivative_misfit(self.problem, field_on_grid(self.model), self.start)
        state.elapsed += time.perf_counter() - t0
        entry["field_check"] = ratio
        report["check"] = {"step": state.step, "derivative_misfit": ratio, "threshold": ANCHOR_THRESHOLD,
                           "anchored": ratio > ANCHOR_THRESHOLD}
        if ratio > ANCHOR_THRESHOLD:
            state.say(f"step {state.step}: the field misses the data's detail ({ratio:.3g} x the noise in its highest "
                      "derivative); anchored it to the smoothed data")
            self.anchor(state.step)
            return
        collapsed = collapsed_unknowns(self.model, self.problem)
        if collapsed:
            self.restart_unknowns(state, collapsed)

    def reinitialise(self, names: list[str]) -> None:
        """Fresh parameters for these unknowns' networks (call under
        :func:`~mollifier.runtime.devices.seeded`)."""
        for name in names:
            module = self.model.field_unknowns[name]
            for layer in module.modules():
                if layer is not module and hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()

    def restart_unknowns(self, state: TrainState, names: list[str]) -> None:
        """Restart collapsed unknowns (:func:`~mollifier.inverse.warm_start.collapsed_unknowns`):
        their networks re-initialised (fitting through softplus's flat tail would be as stuck
        as training) and fitted to the network-free estimate where there is one, with fresh
        Adam moments."""
        assert self.start is not None
        t0 = time.perf_counter()
        with seeded(self.config.seed, self.device):
            self.reinitialise(names)
            fitted = fit_unknowns(self.model, self.problem, self.start, seed=self.config.seed, names=names)
        for name in names:
            for q in self.model.field_unknowns[name].parameters():
                self.optimizer.state.pop(q, None)
        seconds = time.perf_counter() - t0
        state.elapsed += seconds
        self.warm_report["restarted"] = {
            "step": state.step, "unknowns": sorted(names), "fitted": sorted(fitted), "seconds": seconds,
        }
        how = "restarted at the network-free estimate" if fitted else "re-initialised (no network-free estimate of it)"
        state.say(f"step {state.step}: {', '.join(sorted(names))} collapsed to ~0 (softplus's flat tail, where it "
                  f"cannot learn); {how}")

    def check_step(self) -> int:
        """When ``warm_start="auto"`` checks the field: a quarter of the steps, or the end of
        the residual warm-up if later (the field has fitted the data by then)."""
        return max(self.config.residual_warmup, self.config.steps // 4)

    def restore(self, checkpoint: dict[str, Any]) -> None:
        """Continue from a checkpoint: model, optimiser, schedule, history, step, time."""
        if anchored_state(checkpoint["model"]):
            install_anchor(self.model)  # filled by the state below
        self.warm_report = checkpoint.get("warm_start", self.warm_report)
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.state.history = checkpoint["history"]
        self.state.step, self.state.elapsed = checkpoint["step"], checkpoint["elapsed"]
        self.peak_memory = checkpoint.get("peak_memory")
        self.lbfgs_done = bool(checkpoint.get("lbfgs_done", False))

    def save_checkpoint(self, hooks: Callback) -> None:
        if self.checkpoint_path is None or not self.ctx.is_main:
            return
        save_checkpoint(
            self.checkpoint_path,
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "history": self.state.history,
                "step": self.state.step,
                "elapsed": self.state.elapsed,
                "peak_memory": self.peak_memory,
                "lbfgs_done": self.lbfgs_done,
                "warm_start": self.warm_report,
                "config": self.record,
            },
        )
        hooks.on_checkpoint(self.state, self.checkpoint_path)

    # -- the run -----------------------------------------------------------------------

    def execute(self, resume: bool, hooks: CallbackList) -> Result:
        checkpoint = None
        if resume:
            assert self.checkpoint_path is not None
            checkpoint = load_checkpoint(self.checkpoint_path, self.device)
            check_resumable(self.checkpoint_path, checkpoint["config"]["training"], self.record["training"])
        self.build()
        if checkpoint is not None:
            self.restore(checkpoint)
        else:
            self.warm()
        if self.out is not None and self.ctx.is_main:
            remove_stale_temporaries(self.out)  # left by a run killed while writing
            write_config(self.out, self.record)
        try:
            if self.config.warm_start == "auto" and 0 < self.check_step() < self.config.steps and self.can_anchor():
                hooks.callbacks.insert(0, _Hook(on_step_end=self.check_field))
            hooks.on_train_start(self.state)
            self.adam(hooks)
            if self.config.lbfgs_steps and not self.lbfgs_done:
                self.state.elapsed += self.lbfgs()
                self.lbfgs_done = True
            self.save_checkpoint(hooks)
            result = self.finish()
            hooks.on_train_end(self.state, result)
        except KeyboardInterrupt:
            self.save_checkpoint(hooks)
            raise
        finally:
            hooks.close()
        return result

    def forward_backward(self, step: int) -> tuple[torch.Tensor, dict[str, float], dict, dict]:
        loss, parts, d, p = self.objective(step)
        if math.isfinite(parts["loss"]):  # the global loss: every rank takes the same branch
            loss.backward()
            self.objective.after_backward()
        return loss, parts, d, p

    def adam(self, hooks: CallbackList) -> None:
        config, state = self.config, self.state
        while state.step < config.steps and state.stop_reason is None:
            step = state.step
            t0 = time.perf_counter()
            self.optimizer.zero_grad(set_to_none=True)
            if self.peak_memory is None:
                (loss, parts, d, p), reading = measure_peak_memory(lambda: self.forward_backward(step), self.device)
                self.peak_memory = reading.peak_bytes
            else:
                loss, parts, d, p = self.forward_backward(step)
            if not math.isfinite(parts["loss"]):
                raise NonFiniteLossError(
                    f"the loss became {parts['loss']} at step {step} (data {parts['data']}, residual "
                    f"{parts['residual']}); stopped. The last good checkpoint is kept"
                    + (f" in {self.checkpoint_path}" if self.checkpoint_path else "")
                    + ". Try a smaller --lr or a larger radius."
                )
            lr = state.lr
            with _interrupts_deferred():  # the update and the step count change together
                self.optimizer.step()
                self.scheduler.step()
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                seconds = time.perf_counter() - t0
                state.elapsed += seconds
                state.step += 1
            entry = {"step": state.step, **parts, "lr": lr, "seconds": seconds}
            if config.log_every and (state.step % config.log_every == 0 or state.step == config.steps):
                scores = score(self.problem, recovered_arrays(self.problem, *self.objective.full(d, p), self.objective.known))
                entry["parameter_error"] = headline(scores, self.mode, self.problem.parameter)["parameter_relative_l2"]
                hooks.on_evaluation(state, entry)
            state.history.append(entry)
            hooks.on_step_end(state, entry)
            if config.checkpoint_every and state.step % config.checkpoint_every == 0:
                self.save_checkpoint(hooks)

    def lbfgs(self) -> float:
        """L-BFGS iterations after Adam; returns their time."""
        model, objective, step = self.model, self.objective, self.state.step
        optimizer = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=self.config.lbfgs_steps, line_search_fn="strong_wolfe")
        t0 = time.perf_counter()

        def closure() -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            loss, parts, _, _ = objective(step)
            if not math.isfinite(parts["loss"]):
                raise NonFiniteLossError(f"the loss became {parts['loss']} during L-BFGS; stopped")
            loss.backward()
            objective.after_backward()
            self.state.history.append({"step": step, "lbfgs": 1.0, **parts})
            return loss

        optimizer.step(closure)
        return time.perf_counter() - t0

    def finish(self) -> Result:
        """Final fields, recovered unknowns, scores, arrays; written when there is a folder."""
        problem, state = self.problem, self.state
        with torch.enable_grad():  # autodiff engines need grad to differentiate
            _, parts, d, p = self.objective(state.step)
        d, p = self.objective.full(d, p)
        recovered = recovered_arrays(problem, d, p, self.objective.known)
        scores = score(problem, recovered)
        fit = d["u"].detach().cpu().double().numpy()[0]
        findings, fit_check = self.diagnose(fit, recovered)
        metrics: dict[str, Any] = {
            "problem": problem.name,
            "engine": self.config.engine,
            "backbone": self.config.backbone,
            "noise": problem.observations.noise,
            "parameter": problem.parameter,
            "recovery": self.mode,
            **headline(scores, self.mode, problem.parameter),
            "train_seconds": state.elapsed,
            "steps": state.step,
            "stop_reason": state.stop_reason,
            "peak_memory_bytes": self.peak_memory,
            "final_loss": parts,
            "direct": scores.get("direct", {}),
            "learned": scores.get("learned", {}),
            "baselines": score_baselines(problem),
            "radius": self.model.radius(),
            "radius_cells": self.radius_cells(),
            "radius_rule": self.radius_rule,
            "warm_start": self.warm_summary(),
            "priors": {name: {**info, "modes": self.model.field_unknowns[name].net.modes, "weight": self.objective.prior_weight}
                       for name, info in self.priors.items()},
            "diagnostics": findings,
            "fit_check": fit_check,
            "device": str(self.device),
            "torch": torch.__version__,
            "step_seconds": state.elapsed / max(len(state.history), 1),
        }
        if self.ctx.is_distributed:
            metrics["distributed"] = self.objective.summary()
        result = Result(metrics=metrics, arrays=arrays_of(problem, fit, recovered), history=state.history, model=self.model, out_dir=self.out)
        if self.out is not None and self.ctx.is_main:
            save_networks(self.out / MODEL_NAME, self.model, self.config)
            write_results(self.out, result)
        return result


    def radius_cells(self) -> float | None:
        radius = self.model.radius()
        return None if radius is None else radius[0] / self.problem.grid.spacing[0]

    def warm_summary(self) -> dict[str, Any]:
        report = dict(self.warm_report)
        report["anchored"] = is_anchored(self.model)
        if self.start is not None:
            report["network_free_radius_cells"] = self.start.radius_cells
        return report

    def diagnose(self, fit: Any, recovered: dict[str, Any]) -> tuple[list[dict[str, str]], dict[str, Any]]:
        from .diagnostics import diagnose

        problem, config = self.problem, self.config
        estimate = recovered.get(self.mode, {}).get(problem.parameter)
        order = residual_order(problem)
        return diagnose(
            problem, fit, estimate, self.start, steps_done=self.state.step, steps=config.steps,
            stop_reason=self.state.stop_reason, radius_cells=self.radius_cells(), radius_floor=training_floor_cells(order),
            radius_auto=config.radius == "auto" and config.engine == "mollifier", anchored=is_anchored(self.model),
            recoveries={mode: recovered.get(mode, {}).get(problem.parameter) for mode in ("direct", "learned")},
            headline=self.mode,
        )


class _Hook(Callback):
    """A callback from a function (the run's own checks)."""

    def __init__(self, on_step_end: Callable[[TrainState, dict[str, float]], None]) -> None:
        self._on_step_end = on_step_end

    def on_step_end(self, state: TrainState, entry: dict[str, float]) -> None:
        self._on_step_end(state, entry)


def _headline_mode(problem: InverseProblem, config: TrainConfig) -> str:
    if config.recovery == "auto":
        # an unknown with a prior is learned to be read as learned (a direct formula ignores the prior)
        if problem.direct is None or has_prior(problem, problem.parameter):
            return "learned"
        return "direct"
    if config.recovery == "direct" and problem.direct is None:
        raise ValueError(f"`recovery`='direct' but problem {problem.name!r} has no direct recovery formula")
    return config.recovery


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block ends, so a checkpoint never sees half a step."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and callable(previous):
            previous(signal.SIGINT, None)
