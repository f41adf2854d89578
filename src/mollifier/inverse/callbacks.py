"""Hooks into a training run: progress, time budget, early stopping, logging, your own.

A :class:`Callback` overrides the hooks it needs; :func:`~mollifier.inverse.train` calls
them in order on every rank (do file or screen output only where
``state.ctx.is_main``):

- :meth:`~Callback.on_train_start` once, before the first step (also when resuming);
- :meth:`~Callback.on_evaluation` every ``log_every`` steps, after the unknown's error
  against the truth (``entry["parameter_error"]``, NaN without a truth) is computed;
- :meth:`~Callback.on_step_end` after every Adam step, with the step's history entry
  (``step``, ``loss``, ``data``, ``residual``, ``lr``, ``seconds``, ...): add keys to it to
  record your own quantity in ``history.json`` and the loggers; call
  ``state.stop(reason)`` to end the Adam phase after this step;
- :meth:`~Callback.on_checkpoint` after a checkpoint is written;
- :meth:`~Callback.on_train_end` once the results are complete (and written, when the
  run has a results folder);
- :meth:`~Callback.close` always, last, even after an error or Ctrl-C.

The built-in progress display, time budget, early stopping, figures and loggers are
callbacks themselves (:func:`default_callbacks` builds them from the training settings).

Example:
    >>> import math
    >>> from mollifier.inverse import Callback, TrainConfig, train
    >>> from mollifier.problems import make_problem
    >>> class StopBelow(Callback):
    ...     def __init__(self, level):
    ...         self.level = level
    ...     def on_step_end(self, state, entry):
    ...         entry["log_loss"] = math.log10(entry["loss"])   # recorded in the history
    ...         if entry["loss"] < self.level:
    ...             state.stop(f"loss below {self.level}")
    >>> result = train(make_problem("langevin", grid=64, noise=0.0), TrainConfig(steps=50, log_every=0),
    ...                callbacks=[StopBelow(1e9)])
    >>> result.metrics["steps"], result.metrics["stop_reason"], "log_loss" in result.history[0]
    (1, 'loss below 1000000000.0', True)
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..distributed.collectives import all_reduce_max
from ..distributed.context import DistributedContext

if TYPE_CHECKING:  # pragma: no cover
    from .model import InverseModel
    from .problem import InverseProblem
    from .recovery import Result

__all__ = [
    "LOGGERS",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "Progress",
    "RunFigures",
    "TensorBoardLogger",
    "TimeBudget",
    "TrainState",
    "default_callbacks",
    "make_logger",
]


@dataclass
class TrainState:
    """What a callback sees of the run.

    Attributes:
        problem: The problem being solved.
        config: The training settings (a :class:`~mollifier.inverse.TrainConfig`).
        model: The model being trained.
        optimizer: The Adam optimiser.
        ctx: The distributed context (one process unless launched by torchrun).
        out_dir: The results folder, or None.
        log: Where progress lines go (None: nowhere).
        step: Adam steps done so far.
        elapsed: Training seconds so far (resumed runs include earlier sessions).
        history: The history entries so far.
        stop_reason: Why the Adam phase ends early (None while it runs on).
    """

    problem: "InverseProblem"
    config: Any
    model: "InverseModel"
    optimizer: torch.optim.Optimizer
    ctx: DistributedContext
    out_dir: Path | None = None
    log: Callable[[str], None] | None = None
    step: int = 0
    elapsed: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str | None = None

    def stop(self, reason: str) -> None:
        """End the Adam phase after the current step (L-BFGS, if configured, still runs)."""
        if self.stop_reason is None:
            self.stop_reason = reason

    @property
    def lr(self) -> float:
        """The current learning rate."""
        return float(self.optimizer.param_groups[0]["lr"])

    def say(self, line: str) -> None:
        """A progress line (rank 0 only; nowhere when the run is quiet)."""
        if self.log is not None and self.ctx.is_main:
            self.log(line)


class Callback:
    """Base class of training hooks; every hook does nothing unless overridden."""

    def on_train_start(self, state: TrainState) -> None:
        """Before the first step."""

    def on_evaluation(self, state: TrainState, entry: dict[str, float]) -> None:
        """Every ``log_every`` steps, once ``entry["parameter_error"]`` is computed."""

    def on_step_end(self, state: TrainState, entry: dict[str, float]) -> None:
        """After every Adam step; ``entry`` goes into the history."""

    def on_checkpoint(self, state: TrainState, path: Path) -> None:
        """After a checkpoint is written to ``path``."""

    def on_train_end(self, state: TrainState, result: "Result") -> None:
        """Once the results are complete (and written)."""

    def close(self) -> None:
        """Always, last (release files, progress bars)."""


class CallbackList(Callback):
    """Calls each callback's hooks in order."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"`callbacks` entries must be mollifier.inverse.Callback instances; got {cb!r}")

    def on_train_start(self, state: TrainState) -> None:
        for cb in self.callbacks:
            cb.on_train_start(state)

    def on_evaluation(self, state: TrainState, entry: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_evaluation(state, entry)

    def on_step_end(self, state: TrainState, entry: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_step_end(state, entry)

    def on_checkpoint(self, state: TrainState, path: Path) -> None:
        for cb in self.callbacks:
            cb.on_checkpoint(state, path)

    def on_train_end(self, state: TrainState, result: "Result") -> None:
        for cb in self.callbacks:
            cb.on_train_end(state, result)

    def close(self) -> None:
        errors = []
        for cb in self.callbacks:
            try:
                cb.close()
            except Exception as exc:  # noqa: BLE001 - close every one, then report
                errors.append(exc)
        if errors:
            raise errors[0]


class Progress(Callback):
    """A progress bar (tqdm, when installed and ``bar``), else a line per evaluation."""

    def __init__(self, bar: bool = False) -> None:
        self.want_bar = bar
        self.bar: Any = None

    def on_train_start(self, state: TrainState) -> None:
        if not (self.want_bar and state.ctx.is_main):
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:  # pragma: no cover - tqdm is an optional extra
            return
        self.bar = tqdm(total=state.config.steps, desc="training", unit="step", dynamic_ncols=True, leave=False)
        self.bar.update(state.step)

    def on_evaluation(self, state: TrainState, entry: dict[str, float]) -> None:
        message = (
            f"step {entry['step']}/{state.config.steps} loss {entry['loss']:.3e} data {entry['data']:.2e} "
            f"residual {entry['residual']:.2e} {state.problem.parameter} rel. L2 {entry['parameter_error']:.3g}"
        )
        if self.bar is not None:
            self.bar.set_postfix_str(message.split(" ", 2)[2])
        else:
            state.say(message)

    def on_step_end(self, state: TrainState, entry: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TimeBudget(Callback):
    """Stop once the training time reaches ``seconds`` (the slowest rank's, so all ranks stop together)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)

    def on_step_end(self, state: TrainState, entry: dict[str, float]) -> None:
        elapsed = state.elapsed
        if state.ctx.is_distributed:
            device = next(state.model.parameters()).device
            elapsed = all_reduce_max(state.ctx, elapsed, "comparing training times", device if state.ctx.backend == "nccl" else None)
        if elapsed >= self.seconds:
            state.say(f"time budget of {self.seconds:g} s reached at step {state.step}")
            state.stop("time budget")


class EarlyStopping(Callback):
    """Stop when the loss has not improved by ``min_delta`` (relative) in ``patience`` steps."""

    def __init__(self, patience: int, min_delta: float = 1e-3) -> None:
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.best, self.since_best = math.inf, 0

    def on_step_end(self, state: TrainState, entry: dict[str, float]) -> None:
        if state.stop_reason is not None:  # already stopping (e.g. the time budget)
            return
        if entry["loss"] < self.best * (1 - self.min_delta):
            self.best, self.since_best = entry["loss"], 0
            return
        self.since_best += 1
        if self.since_best >= self.patience:
            state.say(f"early stop at step {state.step}: no {self.min_delta:.1%} improvement in {self.patience} steps")
            state.stop("early stopping")


class RunFigures(Callback):
    """Draw ``figures/*.png`` from the written results at the end (needs matplotlib)."""

    def on_train_end(self, state: TrainState, result: "Result") -> None:
        if state.out_dir is None or not state.ctx.is_main:
            return
        try:
            from ..plotting.figures import save_run_figures

            save_run_figures(state.out_dir)
        except ImportError as exc:
            state.say(f"note: figures not drawn: {exc}")


LOG_COLUMNS = ("step", "loss", "data", "residual", "boundary", "lr", "seconds", "parameter_error")
"""Columns of the CSV log (a column stays empty on steps without it)."""


class CSVLogger(Callback):
    """Appends one row per step to ``path`` (``LOG_COLUMNS`` plus the keys callbacks add)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.handle: Any = None
        self.writer: Any = None
        self.columns: list[str] = []

    def _open(self, entry: dict[str, float]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if not fresh:
            with open(self.path, newline="") as handle:
                self.columns = next(csv.reader(handle), []) or []
        if not self.columns:
            extra = [k for k in entry if k not in LOG_COLUMNS]
            self.columns = [*LOG_COLUMNS, *extra]
        self.handle = open(self.path, "a", newline="", buffering=1)
        self.writer = csv.DictWriter(self.handle, fieldnames=self.columns, extrasaction="ignore")
        if fresh:
            self.writer.writeheader()

    def on_train_start(self, state: TrainState) -> None:
        if state.ctx.is_main and state.history and self.path.exists():
            _truncate_csv(self.path, state.step)  # a resumed run repeats the steps after the checkpoint

    def on_step_end(self, state: TrainState, entry: dict[str, float]) -> None:
        if not state.ctx.is_main:
            return
        if self.writer is None:
            self._open(entry)
        self.writer.writerow({k: entry.get(k, "") for k in self.columns})

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = self.writer = None


def _truncate_csv(path: Path, last_step: int) -> None:
    """Drop rows after ``last_step`` (written by the interrupted session after its last checkpoint)."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    at = header.index("step") if "step" in header else 0
    keep = [r for r in body if r and r[at] and float(r[at]) <= last_step]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(keep)


class TensorBoardLogger(Callback):
    """Scalars per step (loss terms, learning rate, step time, parameter error) and the
    run's figures at the end, for TensorBoard (needs the ``tensorboard`` package:
    ``pip install 'mollifier[tensorboard]'``)."""

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        self.log_dir = Path(log_dir)
        self.writer: Any = None

    def on_train_start(self, state: TrainState) -> None:
        if not state.ctx.is_main:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ImportError(
                "logging to TensorBoard needs the 'tensorboard' package: pip install 'mollifier[tensorboard]'"
            ) from exc
        self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=state.step + 1 if state.step else None)

    def on_step_end(self, state: TrainState, entry: dict[str, float]) -> None:
        if self.writer is None:
            return
        for key, value in entry.items():
            if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(_tag(key), value, entry["step"])

    def on_train_end(self, state: TrainState, result: "Result") -> None:
        if self.writer is None:
            return
        for key in ("parameter_pearson", "parameter_relative_l2"):
            value = result.metrics.get(key)
            if isinstance(value, float) and math.isfinite(value):
                self.writer.add_scalar(f"final/{key}", value, state.step)
        figures = sorted((state.out_dir / "figures").glob("*.png")) if state.out_dir is not None else []
        if figures:
            from matplotlib import image as mpimg

            for png in figures:
                self.writer.add_image(f"figures/{png.stem}", mpimg.imread(png)[..., :3], state.step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _tag(key: str) -> str:
    groups = {"loss": "loss/total", "data": "loss/data", "residual": "loss/residual", "boundary": "loss/boundary"}
    return groups.get(key, f"train/{key}")


LOGGERS: tuple[str, ...] = ("csv", "tensorboard")
"""Logger names accepted by ``TrainConfig(log=...)`` and ``--log``."""


def make_logger(name: str, out_dir: Path) -> Callback:
    """The logger ``name`` writing under ``out_dir/logs``."""
    if name == "csv":
        return CSVLogger(out_dir / "logs" / "history.csv")
    if name == "tensorboard":
        return TensorBoardLogger(out_dir / "logs" / "tensorboard")
    raise ValueError(f"`log` entries must be among {list(LOGGERS)}; got {name!r}")


def default_callbacks(config: Any, out_dir: Path | None, figures: bool = False, extra: Sequence[Callback] = ()) -> CallbackList:
    """The built-in callbacks of a run, in order: progress, time budget, early stopping, the
    user's ``extra`` callbacks, figures (when ``figures`` and a results folder), then loggers."""
    callbacks: list[Callback] = [Progress(bar=bool(config.progress))]
    if config.time_budget is not None:
        callbacks.append(TimeBudget(config.time_budget))
    if config.patience:
        callbacks.append(EarlyStopping(config.patience))
    callbacks.extend(extra)
    if figures and out_dir is not None:
        callbacks.append(RunFigures())
    if config.log:
        if out_dir is None:
            raise ValueError(f"`log` {list(config.log)} needs a results folder (`out_dir`, --out) to write into")
        callbacks.extend(make_logger(name, out_dir) for name in config.log)
    return CallbackList(callbacks)
