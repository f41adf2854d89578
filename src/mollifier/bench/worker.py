"""Run one benchmark row in its own process: ``python -m mollifier.bench.worker < spec.json``.

The spec is a JSON object (see :mod:`mollifier.bench.suite`). The worker prints one JSON
object on its last stdout line: the measured fields and a ``status`` (``ok``,
``out of memory`` or ``error``). The sweep runner enforces the time limit from outside
(``subprocess.run(timeout=...)``), and a fresh process gives every row a clean memory
baseline. ``memory_limit_bytes`` in the spec caps the address space (Linux), so an
engine that needs more fails with "out of memory" instead of waking the OOM killer.

Kinds:
    ``scaling``: :func:`mollifier.bench.step.time_training_step` (``pde``, ``grid``,
        ``engine``, ``backbone``, ``repeats``, ``device``, ...).
    ``accuracy``: :func:`mollifier.inverse.train` on
        :func:`mollifier.problems.make_problem` (``problem``, ``grid``, ``noise``,
        ``seed``, ``engine``, ``backbone``, ``problem_options``, ``training``).
    ``robustness``: as ``accuracy``; a trained row also scores its estimate on the
        support of each network-free smoother in ``compare`` and records its radius,
        warm start and diagnostics.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any

__all__ = ["run_spec"]

OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "memoryerror")


def _limit_memory(limit: int | None) -> None:
    if not limit:
        return
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))
    except (ImportError, ValueError, OSError):  # pragma: no cover - non-Linux
        pass


def _scaling(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    from .step import time_training_step

    result = time_training_step(
        spec["pde"],
        spec["grid"],
        spec["engine"],
        ndim=spec.get("ndim", 2),
        backbone=spec.get("backbone", "mlp"),
        radius_cells=spec.get("radius_cells", 6.0),
        repeats=spec.get("repeats", 3),
        warmup=spec.get("warmup", 1),
        device=spec.get("device", "cpu"),
        dtype=getattr(torch, spec.get("dtype", "float32")),
        seed=spec.get("seed", 0),
        measure_rss=spec.get("measure_rss", True),
    ).to_dict()
    result.pop("environment", None)
    keep = ("status", "error", "step_seconds", "step_seconds_min", "step_seconds_max", "repeats",
            "peak_memory_bytes", "peak_memory_method", "peak_rss_bytes", "loss", "radius_cells", "dtype")
    return {k: result[k] for k in keep}


def _accuracy(spec: dict[str, Any]) -> dict[str, Any]:
    return _recover(spec)[0]


def _robustness(spec: dict[str, Any]) -> dict[str, Any]:
    from ..inverse.direct import score_beside_smoothers

    row, problem, result = _recover(spec)
    metrics = result.metrics
    row["radius_cells"] = metrics.get("radius_cells")
    if spec["engine"].startswith("direct"):
        return row
    labels = {split_method(label)[1]: label for label in spec.get("compare", ())}
    scored = score_beside_smoothers(problem, result.estimates.get(problem.parameter), tuple(labels))
    on_support = {labels[smoother]: score["estimate_on_support"] for smoother, score in scored.items()}
    warm = metrics.get("warm_start") or {}
    row.update(
        pearson_on_support=on_support,
        radius_rule=metrics.get("radius_rule"),
        priors=metrics.get("priors") or None,  # the unknowns' Gaussian-process settings, where they have one
        diagnostics=[f["code"] for f in metrics.get("diagnostics") or []],
        fit_check=metrics.get("fit_check"),
        # both recoveries of the unknown from the same trained networks (the headline is one)
        recoveries={mode: (metrics.get(mode) or {}).get(problem.parameter, {}).get("pearson")
                    for mode in ("direct", "learned")},
        warm_start={"anchored": warm.get("anchored"), "anchored_at_step": warm.get("anchored_at_step"),
                    "check": warm.get("check"), "network_free_radius_cells": warm.get("network_free_radius_cells")},
    )
    return row


def _recover(spec: dict[str, Any]) -> tuple[dict[str, Any], Any, Any]:
    """The recovery of an accuracy or robustness row: ``(row fields, problem, result)``."""
    from ..inverse import TrainConfig, recover
    from ..problems import PROBLEMS, make_problem

    problem = make_problem(spec["problem"], grid=spec["grid"], noise=spec["noise"], seed=spec["seed"], **spec.get("problem_options", {}))
    engine, smoother = split_method(spec["engine"])
    if engine == "direct":  # network-free: smooth the data, apply the formula
        options: dict[str, Any] = {"engine": "direct", "smoother": smoother}
    else:
        options = {**PROBLEMS[spec["problem"]].training, **spec.get("training", {})}
        options.update(engine=engine, backbone=spec["backbone"], seed=spec["seed"], device=spec.get("device", "cpu"),
                       log_every=0, checkpoint_every=0, progress=False)
    if engine == "direct" and spec.get("kind") == "robustness":  # no second, memory-profiled pass
        from ..inverse.direct import estimate_from_config

        result = estimate_from_config(problem, TrainConfig.from_dict(options), measure_memory=False)
    else:
        result = recover(problem, TrainConfig.from_dict(options))
    metrics = result.metrics
    _save_maps(spec, problem, result.estimates.get(problem.parameter))
    keep = ("parameter", "recovery", "parameter_pearson", "parameter_relative_l2", "train_seconds", "step_seconds",
            "steps", "peak_memory_bytes", "baselines")
    row = {"status": "ok", "error": None, **{k: metrics.get(k) for k in keep}}
    if engine == "direct":
        row.update(recovery="network-free", step_seconds=None)
    return row, problem, result


def split_method(label: str) -> tuple[str, str]:
    """A row's engine label as ``(engine, smoother)``: ``"direct-savgol"`` -> ``("direct", "savgol")``,
    ``"direct"`` -> ``("direct", "mollifier")``; any other label is a derivative engine.

    The labels are the report's column values; this is the one place they are parsed.
    """
    engine, _, smoother = label.partition("-") if label.startswith("direct") else (label, "", "")
    return engine, (smoother or "mollifier")


def _save_maps(spec: dict[str, Any], problem: Any, estimate: Any) -> None:
    """Write the true and recovered parameter maps where the spec asks for them."""
    target = spec.get("arrays_path")
    truth = problem.truth.get(problem.parameter)
    if not target or estimate is None or truth is None:
        return
    import numpy as np

    from ..runtime.files import write_npz

    write_npz(target, {"truth": np.asarray(truth), "estimate": np.asarray(estimate)})


def run_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure one row in this process; failures become a status, not an exception."""
    _limit_memory(spec.get("memory_limit_bytes"))
    if spec.get("threads"):
        import torch

        torch.set_num_threads(int(spec["threads"]))
    kinds = {"scaling": _scaling, "accuracy": _accuracy, "robustness": _robustness}
    try:
        if spec.get("kind") not in kinds:
            raise ValueError(f"unknown row kind {spec.get('kind')!r}; allowed: {', '.join(kinds)}")
        result = kinds[spec["kind"]](spec)
    except Exception as exc:  # noqa: BLE001 - every failure (MemoryError included) is a row
        message = f"{type(exc).__name__}: {exc}".strip()
        result = {"status": "error", "error": message.splitlines()[0][:500]}
        if not isinstance(exc, (ValueError, TypeError)):
            result["traceback"] = traceback.format_exc(limit=4)[-2000:]
    if result.get("status") == "error" and any(m in (result.get("error") or "").lower() for m in OOM_MARKERS):
        result["status"] = "out of memory"
    return result


def main() -> int:
    """Read a spec from stdin (or the file named as the first argument), print the result."""
    text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
    print(json.dumps(run_spec(json.loads(text)), default=float), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
