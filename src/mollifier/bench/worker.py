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
    from ..inverse.training import TrainConfig, train
    from ..problems import PROBLEMS, make_problem

    problem = make_problem(spec["problem"], grid=spec["grid"], noise=spec["noise"], seed=spec["seed"], **spec.get("problem_options", {}))
    if spec["engine"].startswith("direct"):  # network-free: smooth the data, apply the formula
        from ..inverse.training import score_baselines
        from ..network_free import estimate_parameter

        # "direct" uses the mollifier smoother; "direct-savgol" etc. a classical one.
        smoother = spec["engine"].partition("-")[2] or "mollifier"
        outcome = estimate_parameter(problem, smoother, measure_memory=True)
        _save_maps(spec, problem, outcome.estimates[problem.parameter])
        estimate = outcome.metrics
        return {"status": "ok", "error": None, "parameter": estimate["parameter"], "recovery": "network-free",
                "parameter_pearson": estimate["parameter_pearson"],
                "parameter_relative_l2": estimate["parameter_relative_l2"],
                "train_seconds": estimate["train_seconds"], "step_seconds": None, "steps": 0,
                "peak_memory_bytes": estimate["peak_memory_bytes"], "baselines": score_baselines(problem)}
    options = {**PROBLEMS[spec["problem"]].training, **spec.get("training", {})}
    options.update(engine=spec["engine"], backbone=spec["backbone"], seed=spec["seed"], device=spec.get("device", "cpu"),
                   log_every=0, checkpoint_every=0, progress=False)
    result = train(problem, TrainConfig.from_dict(options))
    metrics = result.metrics
    _save_maps(spec, problem, result.arrays.get(f"{metrics['recovery']}_{problem.parameter}"))
    keep = ("parameter", "recovery", "parameter_pearson", "parameter_relative_l2", "train_seconds", "step_seconds",
            "steps", "peak_memory_bytes", "baselines")
    return {"status": "ok", "error": None, **{k: metrics.get(k) for k in keep}}


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
    kinds = {"scaling": _scaling, "accuracy": _accuracy}
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
