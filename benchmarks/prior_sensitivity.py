"""How much the Gaussian-process prior's two settings matter: correlation length and scale.

    python benchmarks/prior_sensitivity.py            # heat and Langevin, seed 0 (~6 minutes on 2 cores)
    python benchmarks/prior_sensitivity.py --json

The prior's ``"auto"`` settings (:mod:`mollifier.inverse.priors`) are a correlation length
from the autocorrelation of the network-free estimate and a scale of twice that estimate's
spread. Here each is multiplied by factors around the automatic value with the other left
automatic, on one robustness cell per problem (heat: correlation length 0.15 at 5 % noise;
Langevin: 0.05 at 10 %), and the trained estimate is scored on the best smoother's support,
as the sweep scores it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import numpy as np

from mollifier.inverse import TrainConfig, estimate_parameter, train
from mollifier.inverse.metrics import pearson
from mollifier.inverse.priors import correlation_length_of, prior_scale_of
from mollifier.problems import PROBLEMS, make_problem

CELLS = {"heat": (64, 0.15, 0.05), "langevin": (128, 0.05, 0.1)}
FACTORS = {"correlation_length": (0.67, 1.0, 1.67), "scale": (0.5, 1.0, 2.0)}


def run(problem_name: str, setting: str, factor: float) -> dict:
    grid, ell, noise = CELLS[problem_name]
    problem = make_problem(problem_name, grid=grid, noise=noise, seed=0, correlation_length=ell, prior="gp")
    free = {s: estimate_parameter(problem, s).arrays["direct_lambda"] for s in ("mollifier", "gaussian", "savgol")}
    spec = problem.unknowns[0]
    auto = {"correlation_length": correlation_length_of(free["gaussian"], problem.grid.spacing),
            "scale": prior_scale_of(free["gaussian"], spec)}
    options = {**auto, setting: auto[setting] * factor}
    problem = dataclasses.replace(problem, unknowns=[dataclasses.replace(spec, options=options)])
    result = train(problem, TrainConfig(**PROBLEMS[problem_name].training, log_every=0, checkpoint_every=0))
    truth = problem.truth["lambda"]
    mask = problem.metric_mask if problem.metric_mask is not None else np.ones(truth.shape, bool)
    scores = {s: pearson(e, truth, mask & np.isfinite(e)) for s, e in free.items()}
    best = max(scores, key=scores.get)
    on_best = pearson(result.estimates["lambda"], truth, mask & np.isfinite(free[best]))
    return {"problem": problem_name, "setting": setting, "factor": factor, "value": options[setting],
            "best_smoother": best, "best_smoother_pearson": scores[best], "network_on_support": on_best,
            "margin": on_best - scores[best], "pearson_mask": result.metrics["parameter_pearson"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--json", action="store_true", help="one JSON line per run instead of a table")
    args = parser.parse_args(argv)
    if not args.json:
        print("| problem | setting | x auto | value | margin over the best smoother | Pearson (mask) |")
        print("|---|---|---|---|---|---|")
    for name in args.problems:
        for setting, factors in FACTORS.items():
            for factor in factors:
                row = run(name, setting, factor)
                if args.json:
                    print(json.dumps(row), flush=True)
                else:
                    print(f"| {name} | {setting} | {factor:g} | {row['value']:.3g} | {row['margin']:+.3f} "
                          f"({row['best_smoother']} {row['best_smoother_pearson']:.3f}) | {row['pearson_mask']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
