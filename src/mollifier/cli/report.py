"""``mollifier report RESULTS``: Markdown report and PNG plots from a benchmark sweep."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="render a benchmark results file as Markdown",
        description="Render the JSONL results of `mollifier bench --preset ...` as OUT/benchmarks.md: scaling "
        "and accuracy tables, every comparison mollifier does not win, and PNG plots in OUT/figures.",
    )
    p.add_argument("results", help="JSONL results file written by `mollifier bench --preset`")
    p.add_argument("--out", default=None, help="output folder (default: <results stem>-report next to the file)")
    p.add_argument("--title", default="Benchmarks", help="report title (default: Benchmarks)")
    p.add_argument("--note", default=None, help="a paragraph shown under the title (e.g. how loaded the machine was)")
    p.add_argument("--no-figures", action="store_true", help="write the Markdown without plots")
    p.add_argument("--ceiling", default=None, metavar="FILE.jsonl",
                   help="rows of `python benchmarks/robustness_ceiling.py --json`: what the data allow in each "
                        "robustness cell, shown beside the network's and used to say why a target is missed")


def run(args: argparse.Namespace) -> int:
    from ..bench.report import write_report
    from ..bench.suite import command_line

    results = Path(args.results)
    out = Path(args.out) if args.out else results.with_name(results.stem + "-report")
    argv = list(sys.argv)
    if args.note and args.note in argv:  # the note is printed above; don't repeat it in the command
        argv[argv.index(args.note)] = "..."
    path = write_report(results, out, title=args.title, note=args.note, report_command=command_line(argv),
                        plots=not args.no_figures, ceiling=args.ceiling)
    print(path)
    return 0
