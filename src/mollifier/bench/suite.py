"""Benchmark sweeps: many rows, each measured in its own process, appended to a JSONL file.

Two kinds of rows:

- ``scaling``: one training step per engine (:func:`mollifier.bench.step.time_training_step`)
  over grid sizes and derivative orders (manufactured residuals ``gradient`` = 1,
  ``laplacian`` = 2, ``biharmonic`` = 4, ``triharmonic`` = 6).
- ``accuracy``: a full :func:`mollifier.inverse.train` of a benchmark problem per engine,
  backbone, noise level and seed (Pearson and relative L2 of the recovered parameter,
  time, memory and the derivative-free baselines).
- ``robustness``: the trained network beside every network-free smoother, at equal
  seeds, over each benchmark's grid size, the correlation length of its parameter field
  (smooth to rough) and the noise level, all at the library's defaults (``radius="auto"``,
  ``warm_start="auto"``, the problem's steps). A trained row also records its Pearson on
  each smoother's support (the points where that smoother gives an estimate), its
  diagnostics and what its warm start did, so the report can compare like with like and
  say why a target is missed.

Every row runs in a subprocess (:mod:`mollifier.bench.worker`) under a time limit; a row
that exceeds it, runs out of memory or fails is written with status ``timeout``,
``out of memory`` or ``error``, and once an engine times out (or runs out of memory) at
a grid, its larger grids are written as ``skipped (... at smaller grid)``. Rows already
in the results file (same :data:`KEY_FIELDS`) are not run again, so an interrupted sweep
resumes where it stopped. Each row is appended and fsync'ed as soon as it is done.

Under ``torchrun --nproc_per_node N -m mollifier bench --preset ...`` the rows are spread
over the N processes (:func:`mollifier.distributed.map_inputs`): all grid sizes of one
engine/order/problem group go to the same rank, in order, so the skip-after-failure rule
still holds; every rank appends its rows to the same file (one ``write`` per line on an
``O_APPEND`` descriptor, so lines do not interleave on a local filesystem) and rank 0
gets all of them back for the summary. Rows measured in parallel share the machine.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..distributed.batch import map_inputs
from ..distributed.context import current
from ..problems import PROBLEMS
from .step import PDES

__all__ = ["KEY_FIELDS", "KINDS", "PRESETS", "Preset", "machine_description", "preset_specs", "robustness_specs", "row_key", "run_sweep"]

KEY_FIELDS = ("kind", "pde", "problem", "engine", "backbone", "grid", "noise", "seed", "order", "correlation_length")
"""Fields that identify a row; a row with the same values in the results file is not re-run."""

FAILED = ("timeout", "out of memory")
"""Statuses after which larger grids of the same engine are skipped."""


ROBUSTNESS_ENGINES = ("mollifier", "direct", "direct-gaussian", "direct-savgol")
"""The trained network and the network-free smoothers it is compared with (``direct`` =
mollifier smoothing; every smoother with the automatic radius)."""

KINDS = ("scaling", "accuracy", "robustness")
"""Row kinds; a preset run without ``--kind`` runs ``scaling`` and ``accuracy`` rows
(the robustness sweep is long and runs on request: ``--kind robustness``)."""

DEFAULT_KINDS = ("scaling", "accuracy")

@dataclass(frozen=True)
class Preset:
    """A named sweep: what to measure and the per-row limits.

    Attributes:
        scaling: ``(order, grids)`` pairs for the scaling rows.
        scaling_engines: Engines of the scaling rows.
        accuracy: Problems of the accuracy rows, ``{name: {"grid": n, "problem_options": ...}}``.
        accuracy_engines, backbones, noises, seeds: The accuracy rows' sweep.
        training: Overrides of the problems' training defaults (e.g. ``steps``).
        robustness: Problems of the robustness rows, ``{name: {"grids": (...),
            "correlation_lengths": (...)}}``.
        robustness_noises: Noise levels of the robustness rows.
        robustness_engines: The trained engine and the network-free smoothers beside it.
        robustness_training: Overrides of the problems' training defaults for the
            robustness rows (empty: the defaults a user gets).
        repeats: Timed steps per scaling row.
        time_limit: Seconds per row, by kind.
        memory_limit_gib: Address-space cap per row in GiB (``None``: 70 % of the physical
            memory on CPU, none on GPU, where CUDA reserves a large address space).
    """

    scaling: tuple[tuple[int, tuple[int, ...]], ...]
    scaling_engines: tuple[str, ...]
    accuracy: dict[str, dict[str, Any]]
    accuracy_engines: tuple[str, ...]
    backbones: tuple[str, ...]
    noises: tuple[float, ...]
    seeds: tuple[int, ...]
    training: dict[str, Any] = field(default_factory=dict)
    robustness: dict[str, dict[str, Any]] = field(default_factory=dict)
    robustness_noises: tuple[float, ...] = (0.0, 0.01, 0.05, 0.1)
    robustness_engines: tuple[str, ...] = ROBUSTNESS_ENGINES
    robustness_training: dict[str, Any] = field(default_factory=dict)
    repeats: int = 3
    time_limit: dict[str, float] = field(default_factory=lambda: {"scaling": 600.0, "accuracy": 3600.0, "robustness": 3600.0})
    memory_limit_gib: float | None = None


_ALL_ENGINES = ("mollifier", "autodiff", "autodiff-forward", "fd")

# Correlation lengths of each benchmark's parameter field, smooth to rough (the default in the middle).
_CORRELATION_LENGTHS = {"langevin": (0.2, 0.1, 0.05), "heat": (0.3, 0.15, 0.08), "chromatin": (1.2, 0.6, 0.3)}

PRESETS: dict[str, Preset] = {
    # About 30 minutes on a 2-core CPU (12.5 of scaling rows under load, 17 of accuracy
    # rows). Accuracy: the three problems at their defaults, every engine given the same
    # wall-clock budget (45 s of training).
    "quick": Preset(
        scaling=((1, (32, 64, 128)), (2, (32, 64, 128)), (4, (32, 64, 128)), (6, (32, 64))),
        scaling_engines=_ALL_ENGINES,
        accuracy={"langevin": {}, "heat": {}, "chromatin": {}},
        accuracy_engines=("mollifier", "autodiff", "fd", "direct", "direct-savgol", "direct-gaussian"),
        backbones=("mlp",),
        noises=(0.01, 0.05, 0.1),
        seeds=(0,),
        training={"time_budget": 45.0},
        repeats=1,
        time_limit={"scaling": 180.0, "accuracy": 240.0, "robustness": 600.0},
        # The quick robustness sweep (~35 min on a 2-core CPU): one grid per problem, the
        # three correlation lengths, 1/5/10 % noise, the defaults a user gets.
        robustness={"langevin": {"grids": (128,), "correlation_lengths": _CORRELATION_LENGTHS["langevin"]},
                    "heat": {"grids": (64,), "correlation_lengths": _CORRELATION_LENGTHS["heat"]},
                    "chromatin": {"grids": (64,), "correlation_lengths": _CORRELATION_LENGTHS["chromatin"]}},
        robustness_noises=(0.01, 0.05, 0.1),
    ),
    # The full grid, meant for a GPU (problems at their default grids and training settings).
    "paper": Preset(
        scaling=tuple((order, (32, 64, 128, 256, 512)) for order in (1, 2, 4, 6)),
        scaling_engines=_ALL_ENGINES,
        accuracy={"langevin": {}, "heat": {}, "chromatin": {}},
        accuracy_engines=("mollifier", "autodiff", "fd", "direct", "direct-savgol", "direct-gaussian", "direct-spline"),
        backbones=("mlp", "piratenet", "pinnsformer"),
        noises=(0.0, 0.01, 0.05, 0.1),
        seeds=(0, 1, 2),
        repeats=5,
        time_limit={"scaling": 600.0, "accuracy": 7200.0, "robustness": 7200.0},
        # The full robustness sweep: three grids, three correlation lengths, four noise levels.
        robustness={name: {"grids": (64, 128, 256), "correlation_lengths": lengths}
                    for name, lengths in _CORRELATION_LENGTHS.items()},
        robustness_noises=(0.0, 0.01, 0.05, 0.1),
    ),
}
"""Named sweeps for ``mollifier bench --preset``."""

_PDE_OF_ORDER = {order: pde for pde, order in PDES.items()}


def preset_specs(name: str, device: str = "cpu", memory_limit_gib: float | None = None) -> list[dict[str, Any]]:
    """The row specs of a preset, smaller grids first within each engine and order.

    ``memory_limit_gib`` overrides the preset's per-row address-space cap (0: none; see
    :class:`Preset`).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}")
    p = PRESETS[name]
    specs: list[dict[str, Any]] = []
    for order, grids in p.scaling:
        for grid in grids:
            for engine in p.scaling_engines:
                specs.append({"kind": "scaling", "pde": _PDE_OF_ORDER[order], "problem": None, "engine": engine,
                              "backbone": "mlp", "grid": grid, "noise": None, "seed": 0, "order": order,
                              "repeats": p.repeats, "device": device})
    for problem, options in p.accuracy.items():
        for backbone in p.backbones:
            for noise in p.noises:
                for seed in p.seeds:
                    for engine in p.accuracy_engines:
                        if engine.startswith("direct") and backbone != p.backbones[0]:
                            continue  # network-free rows have no backbone: one per problem
                        specs.append({"kind": "accuracy", "pde": None, "problem": problem, "engine": engine,
                                      "backbone": backbone, "grid": options.get("grid"), "noise": noise, "seed": seed,
                                      "order": PROBLEMS[problem].order, "device": device,
                                      "problem_options": options.get("problem_options", {}), "training": dict(p.training)})
    specs += robustness_specs(p, device)
    for spec in specs:
        spec["time_limit"] = p.time_limit[spec["kind"]]
        limit = p.memory_limit_gib if memory_limit_gib is None else memory_limit_gib
        if limit is None and not device.startswith("cuda"):
            limit = _physical_memory_gib() * 0.7
        if limit:
            spec["memory_limit_bytes"] = int(limit * 2**30)
    return specs


def robustness_specs(p: Preset, device: str = "cpu") -> list[dict[str, Any]]:
    """The robustness rows of a preset: per problem, grid, correlation length and noise, the
    trained network and each network-free smoother (smaller grids first)."""
    specs: list[dict[str, Any]] = []
    compare = [e for e in p.robustness_engines if e.startswith("direct")]
    for problem, sweep in p.robustness.items():
        for grid in sweep["grids"]:
            for length in sweep["correlation_lengths"]:
                for noise in p.robustness_noises:
                    for engine in p.robustness_engines:
                        spec = {"kind": "robustness", "pde": None, "problem": problem, "engine": engine, "backbone": "mlp",
                                "grid": grid, "noise": noise, "seed": 0, "order": PROBLEMS[problem].order,
                                "correlation_length": length, "device": device,
                                "problem_options": {"correlation_length": length}, "training": dict(p.robustness_training)}
                        if not engine.startswith("direct"):
                            spec["compare"] = compare
                        specs.append(spec)
    return specs


def _physical_memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 0.0


def row_key(row: dict[str, Any]) -> tuple:
    """The identity of a row (:data:`KEY_FIELDS`), comparable across runs."""
    return tuple(row.get(k) for k in KEY_FIELDS)


def _group(row: dict[str, Any]) -> tuple:
    """Rows that differ only in grid size (for skipping larger grids after a failure)."""
    return tuple(row.get(k) for k in KEY_FIELDS if k != "grid")


def machine_description(device: str = "cpu") -> dict[str, Any]:
    """Versions and hardware, without the host name."""
    import torch

    from .. import __version__

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    dev = torch.device(device)
    return {
        "mollifier": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu,
    }


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as typed (``mollifier ...``), for the record."""
    argv = list(sys.argv if argv is None else argv)
    head = Path(argv[0]).name if argv else "mollifier"
    head = "python -m mollifier" if head == "__main__.py" else head
    return " ".join([head, *map(shlex.quote, argv[1:])])


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a JSONL results file (a torn last line from a crash is ignored)."""
    rows = []
    if not Path(path).exists():
        return rows
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _append(path: Path, row: dict[str, Any]) -> None:
    data = (json.dumps(row, default=float) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)  # one write: concurrent ranks' lines do not interleave
        while written < len(data):  # pragma: no cover - only on a short write (disk full, signal)
            written += os.write(fd, data[written:])
        os.fsync(fd)
    finally:
        os.close(fd)


def run_row(spec: dict[str, Any], time_limit: float) -> dict[str, Any]:
    """Measure one row in a fresh ``python -m mollifier.bench.worker`` process."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "mollifier.bench.worker"], input=json.dumps(spec),
                              capture_output=True, text=True, timeout=time_limit, env=env)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "error": f"exceeded the time limit of {time_limit:g} s",
                "wall_seconds": time.perf_counter() - start}
    wall = time.perf_counter() - start
    lines = proc.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        killed = proc.returncode in (-9, 137)
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        result = {"status": "out of memory" if killed else "error",
                  "error": ("killed (SIGKILL; likely the OOM killer)" if killed else tail[0])[:500]}
    result["wall_seconds"] = wall
    return result


def run_sweep(
    specs: Iterable[dict[str, Any]],
    results: str | os.PathLike[str],
    *,
    time_limit: float | None = None,
    meta: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    retry_failed: bool = False,
) -> list[dict[str, Any]]:
    """Run every spec not yet in ``results``, appending one JSON line per row.

    Args:
        specs: Row specs (:func:`preset_specs`); ``spec["time_limit"]`` is the default limit.
        results: JSONL file; created (with its folder) if missing.
        time_limit: Seconds per row, overriding the specs' own.
        meta: Recorded in every row (machine, versions, command line).
        progress: Receives one line per row (``i/N key: result``).
        retry_failed: Also re-run rows whose recorded status is not ``ok`` (the new row is
            appended; readers take the last row of a key).

    Returns:
        The rows written by this call, in spec order (under torchrun: by every rank). A
        row whose measurement or write raised comes back with ``recorded: False`` and is
        not in the file, so the next run measures it again.
    """
    path = Path(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = [r for r in read_rows(path) if not retry_failed or r.get("status") == "ok"]
    done = {row_key(r) for r in existing}
    failed_at: dict[tuple, tuple[int, str]] = {}
    for r in existing:
        if r.get("status") in FAILED and r.get("grid") is not None:
            g = _group(r)
            failed_at[g] = min(failed_at.get(g, (r["grid"], r["status"])), (r["grid"], r["status"]))
    ctx = current()
    if ctx.is_distributed and progress is not None:
        say, progress = progress, (lambda text: say(f"[rank {ctx.rank}] {text}"))
    specs = list(specs)

    def measure(job: tuple[int, dict[str, Any]]) -> dict[str, Any] | None:
        i, spec = job
        key = row_key(spec)
        label = " ".join(f"{k}={v}" for k, v in zip(KEY_FIELDS, key) if v is not None)
        if key in done:
            if progress:
                progress(f"{i}/{len(specs)} {label}: already in {path.name}, skipped")
            return None
        limit = float(time_limit if time_limit is not None else spec.get("time_limit", 600.0))
        prior = failed_at.get(_group(spec))
        if prior is not None and spec.get("grid") is not None and prior[0] < spec["grid"]:
            result: dict[str, Any] = {"status": f"skipped ({prior[1]} at smaller grid)",
                                      "error": f"{prior[1]} at grid {prior[0]}"}
        else:
            if spec.get("kind") == "accuracy":  # recovered and true parameter maps, for the report
                name = "-".join(str(v) for v in key if v is not None).replace("/", "_")
                spec = {**spec, "arrays": f"{path.stem}-arrays/{name}.npz",
                        "arrays_path": str(path.parent / f"{path.stem}-arrays" / f"{name}.npz")}
            result = run_row({**spec, "time_limit": limit}, limit)
        row = {**{k: spec.get(k) for k in KEY_FIELDS},
               **{k: v for k, v in spec.items() if k not in KEY_FIELDS and k != "arrays_path"},
               "time_limit": limit, **result, **(meta or {}), "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        _append(path, row)
        done.add(key)
        if row["status"] in FAILED and spec.get("grid") is not None:
            g = _group(spec)
            failed_at[g] = min(failed_at.get(g, (spec["grid"], row["status"])), (spec["grid"], row["status"]))
        if progress:
            progress(f"{i}/{len(specs)} {label}: {_summary(row)}")
        return row

    def unrecorded(job: tuple[int, dict[str, Any]], exc: BaseException) -> dict[str, Any]:
        # Not appended to the file, so a later run measures the row again.
        return {**{k: job[1].get(k) for k in KEY_FIELDS}, "status": "error", "recorded": False,
                "error": " ".join(f"{type(exc).__name__}: {exc}".split())[:500]}

    rows = map_inputs(list(enumerate(specs, 1)), measure, on_error=unrecorded, key=lambda job: _group(job[1]), ctx=ctx)
    return [row for row in rows if row is not None]


def _summary(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return f"{row['status']}" + (f" ({row['error']})" if row.get("error") and not row["status"].startswith("skipped") else "")
    mem = row.get("peak_memory_bytes")
    mem_text = f", peak {mem / 2**20:.1f} MiB" if mem is not None else ""
    if row["kind"] == "scaling":
        return f"ok, {row['step_seconds']:.4g} s/step{mem_text}"
    if row.get("pearson_on_support"):
        beside = ", ".join(f"{k} {v:.3f}" for k, v in row["pearson_on_support"].items())
        return (f"ok, Pearson {row['parameter_pearson']:.3f} (on each smoother's support: {beside}), "
                f"{row['train_seconds']:.1f} s{mem_text}")
    return (f"ok, Pearson {row['parameter_pearson']:.3f}, rel. L2 {row['parameter_relative_l2']:.3f}, "
            f"{row['train_seconds']:.1f} s{mem_text}")
