"""torch.compile and bf16 autocast against plain float32 training, on the three benchmarks.

For each benchmark (its default grid and training settings, 5 % noise, seed 0) and each
variant (``plain``, ``compile``, ``autocast``), one full training run; the variants of a
benchmark run back to back, so their ratios share the machine's state. Reported per run:
the first step's time (where compilation happens), the median step time after the first
``--skip`` steps, the whole training time and the recovered parameter's Pearson and
relative L2 error.

    python benchmarks/compile_precision.py --json > compile-precision.json
    python benchmarks/compile_precision.py --device cuda --steps 300 --json   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import torch

from mollifier.inverse import TrainConfig, train
from mollifier.problems import PROBLEMS, make_problem
from mollifier.runtime.files import nan_to_none

VARIANTS = {"plain": {}, "compile": {"compile": True}, "autocast": {"autocast": True}}


def measure(problem: str, variant: str, steps: int | None, device: str, skip: int) -> dict:
    training = {**PROBLEMS[problem].training, **VARIANTS[variant], "log_every": 0, "checkpoint_every": 0, "device": device}
    if steps is not None:
        training["steps"] = steps
        training.pop("lbfgs_steps", None)
        if "residual_warmup" in training:
            training["residual_warmup"] = min(training["residual_warmup"], steps // 3)
    start = time.perf_counter()
    result = train(make_problem(problem, noise=0.05, seed=0), TrainConfig.from_dict(training))
    wall = time.perf_counter() - start
    seconds = [h["seconds"] for h in result.history if "seconds" in h]
    return {
        "problem": problem,
        "variant": variant,
        "steps": result.metrics["steps"],
        "first_step_seconds": seconds[0],
        "step_seconds_median": statistics.median(seconds[skip:]) if len(seconds) > skip else float("nan"),
        "train_seconds": result.metrics["train_seconds"],
        "wall_seconds": wall,
        "parameter_pearson": result.metrics["parameter_pearson"],
        "parameter_relative_l2": result.metrics["parameter_relative_l2"],
        "device": result.metrics["device"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", default=",".join(PROBLEMS), help="comma-separated (default: all three)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: plain, compile, autocast")
    parser.add_argument("--steps", type=int, help="Adam steps (default: each problem's own)")
    parser.add_argument("--skip", type=int, default=20, help="steps left out of the median (compilation, warm-up)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    for problem in args.problems.split(","):
        for variant in args.variants.split(","):
            row = measure(problem, variant, args.steps, args.device, args.skip)
            rows.append(row)
            print(f"{problem:9s} {variant:8s} first step {row['first_step_seconds']:7.2f} s, median step "
                  f"{row['step_seconds_median'] * 1e3:7.1f} ms, train {row['train_seconds']:6.1f} s, "
                  f"Pearson {row['parameter_pearson']:.4f}", file=sys.stderr, flush=True)
    report = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "rows": rows}
    if args.json:
        print(json.dumps(nan_to_none(report), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
