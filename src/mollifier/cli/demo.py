"""``mollifier demo``: the README's main job -- a short benchmark run on embedded defaults.

It makes synthetic noisy data of the 4th-order chromatin model with the independent
forward solver (nothing to download), trains the default backbone with the Mollifier
Layer, recovers the rate-ratio map and writes figures and metrics to ``runs/demo``.
Any ``mollifier run`` flag can adjust it.
"""

from __future__ import annotations

import argparse

from ..distributed.context import session
from .run import add_run_arguments, execute, report, resolve

DEMO = {
    "problem": "chromatin",
    "grid": 64,
    "noise": 0.05,
    "seed": 0,
    "out": "runs/demo",
    "problem_options": {},
    "training": {},  # the benchmark's own defaults (PROBLEMS['chromatin'].training)
}
"""The demo's settings (a config, as ``mollifier run --config`` reads)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="short benchmark run on embedded defaults (about 2 minutes on 2 CPU cores)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("problem", nargs="?", default=None, metavar="PROBLEM", help="override the demo's problem")
    add_run_arguments(p, problem_required=False)


def run(args: argparse.Namespace) -> int:
    problem, problem_kwargs, training, out = resolve(args, DEMO)
    with session(device=training.get("device", "auto")) as ctx:  # tiled under torchrun, as `run`
        metrics = execute(problem, problem_kwargs, training, out, args, ctx)
        if ctx.is_main:
            report(metrics, out, args.json)
    return 0
