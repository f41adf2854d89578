"""One robustness cell at any grid: the trained estimate beside every network-free smoother.

    python benchmarks/robustness_cell.py heat --grid 127 --correlation-length 0.08 --noise 0.05
    python benchmarks/robustness_cell.py chromatin --grid 64 --correlation-length 0.3 --noise 0.01 --json
    python benchmarks/robustness_cell.py langevin --grid 128 --correlation-length 0.05 --noise 0.05 --training '{"residual_weight": 10}'

The sweep (``mollifier bench --preset quick|paper --kind robustness``) runs fixed grids; this
trains one cell of a built-in problem with the library's defaults (the Gaussian-process prior
on the unknown, its settings automatic unless ``--options`` gives some, e.g.
``'{"noise_floor": 0}'``) and scores it as the sweep does: on each smoother's support (the
points where that smoother gives an estimate, inside the metric mask), the margin over the
best smoother and the worst margin over all three. Seed 0 unless ``--seed``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from mollifier.inverse import TrainConfig, estimate_parameter, train
from mollifier.inverse.direct import SMOOTHERS_COMPARED as SMOOTHERS
from mollifier.inverse.direct import score_beside_smoothers
from mollifier.problems import PROBLEMS, make_problem


def trained_against_smoothers(problem_name: str, cell: tuple[int, float, float],
                              options: Callable[[Any, dict[str, np.ndarray]], dict[str, Any]] | None = None,
                              seed: int = 0, training: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``cell = (grid, correlation_length, noise)`` of ``problem_name``, the prior's
    options from ``options(problem, network-free estimates)`` (None: automatic), and score it
    on every smoother's support (margin over the best one, and the worst margin)."""
    grid, ell, noise = cell
    problem = make_problem(problem_name, grid=grid, noise=noise, seed=seed, correlation_length=ell, prior="gp")
    spec = problem.unknowns[0]
    if options is None:
        chosen = dict(spec.options or {})
    else:
        chosen = options(problem, {s: estimate_parameter(problem, s).arrays["direct_lambda"] for s in SMOOTHERS})
    problem = dataclasses.replace(problem, unknowns=[dataclasses.replace(spec, options=chosen or None)])
    config = {**PROBLEMS[problem_name].training, "log_every": 0, "checkpoint_every": 0, "seed": seed, **(training or {})}
    result = train(problem, TrainConfig(**config))
    scored = score_beside_smoothers(problem, result.estimates["lambda"], SMOOTHERS)
    scores = {s: v["pearson"] for s, v in scored.items()}
    margins = {s: v["estimate_on_support"] - v["pearson"] for s, v in scored.items()}
    best = max(scores, key=scores.get)
    return {"problem": problem_name, "grid": grid, "correlation_length": ell, "noise": noise, "seed": seed,
            "options": chosen, "priors": result.metrics.get("priors"), "smoothers": scores, "margins": margins,
            "best_smoother": best, "best_smoother_pearson": scores[best], "network_on_support": scored[best]["estimate_on_support"],
            "margin": margins[best], "worst_margin": min(margins.values()), "pearson_mask": result.metrics["parameter_pearson"],
            "train_seconds": result.metrics.get("train_seconds")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("problem", choices=sorted(PROBLEMS))
    parser.add_argument("--grid", type=int, required=True)
    parser.add_argument("--correlation-length", type=float, required=True)
    parser.add_argument("--noise", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--training", type=json.loads, default=None,
                        help='overrides of the problem\'s training settings as JSON, e.g. \'{"steps": 6000}\'')
    parser.add_argument("--options", type=json.loads, default=None, help="the prior's options as JSON (default: automatic)")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of a summary")
    args = parser.parse_args(argv)
    options = None if args.options is None else (lambda problem, free: dict(args.options))
    training = dict(args.training or {})
    row = trained_against_smoothers(args.problem, (args.grid, args.correlation_length, args.noise), options, args.seed, training)
    if args.json:
        print(json.dumps(row))
        return 0
    print(f"{args.problem} grid {args.grid} correlation length {args.correlation_length:g} noise {args.noise:g} seed {args.seed}: "
          f"trained Pearson {row['pearson_mask']:.3f} (metric mask), {row['train_seconds']:.0f} s")
    for s in SMOOTHERS:
        print(f"  {s:<10} smoother {row['smoothers'][s]:.3f}   trained on its support {row['smoothers'][s] + row['margins'][s]:.3f}"
              f"   margin {row['margins'][s]:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
