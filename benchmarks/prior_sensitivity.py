"""How much the Gaussian-process prior's settings matter: correlation length, scale, noise floor.

    python benchmarks/prior_sensitivity.py            # heat and Langevin, seed 0 (~6 minutes on 2 cores)
    python benchmarks/prior_sensitivity.py --json
    python benchmarks/prior_sensitivity.py --floors   # the noise floor at 1 % noise (~20 minutes on 1 core)

The prior's ``"auto"`` settings (:mod:`mollifier.inverse.priors`) are a correlation length
from the autocorrelation of the network-free estimate and a scale of twice that estimate's
spread. Here each is multiplied by factors around the automatic value with the other left
automatic, on one robustness cell per problem (heat: correlation length 0.15 at 5 % noise;
Langevin: 0.05 at 10 %), and the trained estimate is scored on the best smoother's support,
as the sweep scores it.

``--floors``: the relative noise the prior's weight assumes at least
(:data:`~mollifier.inverse.priors.NOISE_FLOOR`, ``options={"noise_floor": ...}``) set to 0
(the bare MAP weight), 0.02, 0.05 (the default) and 0.1, on the 1 %-noise cells where it
binds (the data's own noise is below it), every other setting automatic.
"""

from __future__ import annotations

import argparse
import json
import sys

from robustness_cell import trained_against_smoothers

from mollifier.inverse.priors import correlation_length_of, prior_scale_of

CELLS = {"heat": (64, 0.15, 0.05), "langevin": (128, 0.05, 0.1)}
FACTORS = {"correlation_length": (0.67, 1.0, 1.67), "scale": (0.5, 1.0, 2.0)}
FLOOR_CELLS = {"chromatin": [(64, 0.6, 0.01), (64, 0.3, 0.01)], "heat": [(64, 0.15, 0.01), (64, 0.08, 0.01)],
               "langevin": [(128, 0.05, 0.01)]}
FLOORS = (0.0, 0.02, 0.05, 0.1)


def run(problem_name: str, setting: str, factor: float) -> dict:
    """One setting of the prior at ``factor`` times its automatic value, on the problem's cell."""

    def options(problem, free):
        auto = {"correlation_length": correlation_length_of(free["gaussian"], problem.grid.spacing),
                "scale": prior_scale_of(free["gaussian"], problem.unknowns[0])}
        return {**auto, setting: auto[setting] * factor}

    row = trained_against_smoothers(problem_name, CELLS[problem_name], options)
    return {**row, "setting": setting, "factor": factor, "value": row["options"][setting]}


def run_floor(problem_name: str, cell: tuple, floor: float) -> dict:
    """The prior's noise floor at ``floor`` (every other setting automatic) on ``cell``."""
    row = trained_against_smoothers(problem_name, cell, lambda problem, free: {"noise_floor": floor})
    return {**row, "setting": "noise_floor", "value": floor}


def _print_rows(header: list[str], jobs: list, line, as_json: bool) -> None:
    """Run each job (a call returning a row) and print its row as JSON or a Markdown line."""
    if not as_json:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
    for job in jobs:
        row = job()
        print(json.dumps(row) if as_json else line(row), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", nargs="+", default=None, choices=sorted(set(CELLS) | set(FLOOR_CELLS)),
                        help="default: heat and langevin (with --floors: every problem)")
    parser.add_argument("--floors", action="store_true", help="vary the prior's noise floor on the 1 %%-noise cells instead")
    parser.add_argument("--json", action="store_true", help="one JSON line per run instead of a table")
    args = parser.parse_args(argv)
    if args.floors:
        jobs = [lambda name=name, cell=cell, floor=floor: run_floor(name, cell, floor)
                for name in args.problems or list(FLOOR_CELLS) for cell in FLOOR_CELLS[name] for floor in FLOORS]
        _print_rows(["problem", "corr. length", "noise", "noise floor", "margin over the best smoother", "worst margin",
                     "Pearson (mask)"], jobs,
                    lambda row: (f"| {row['problem']} | {row['correlation_length']:g} | {row['noise']:g} | {row['value']:g} | "
                                 f"{row['margin']:+.3f} ({row['best_smoother']} {row['best_smoother_pearson']:.3f}) | "
                                 f"{row['worst_margin']:+.4f} | {row['pearson_mask']:.3f} |"), args.json)
        return 0
    unknown = sorted(set(args.problems or []) - set(CELLS))
    if unknown:
        parser.error(f"--problems: the settings' study has cells for {sorted(CELLS)} only, got {unknown}")
    jobs = [lambda name=name, setting=setting, factor=factor: run(name, setting, factor)
            for name in args.problems or list(CELLS) for setting, factors in FACTORS.items() for factor in factors]
    _print_rows(["problem", "setting", "x auto", "value", "margin over the best smoother", "Pearson (mask)"], jobs,
                lambda row: (f"| {row['problem']} | {row['setting']} | {row['factor']:g} | {row['value']:.3g} | "
                             f"{row['margin']:+.3f} ({row['best_smoother']} {row['best_smoother_pearson']:.3f}) | "
                             f"{row['pearson_mask']:.3f} |"), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
