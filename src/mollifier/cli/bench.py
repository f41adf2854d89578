"""``mollifier bench``: time and memory of one training step per derivative engine."""

from __future__ import annotations

import argparse
import json
import sys

import torch

from ..bench.step import PDES, run_suite
from ..core.engines import ENGINES


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None
    if not values or min(values) < 4:
        raise argparse.ArgumentTypeError(f"grid sizes must be ints >= 4, got {text!r}")
    return values


def _engine_list(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in ENGINES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown engine(s) {unknown}; allowed: {', '.join(ENGINES)}")
    return names


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="time one training step per engine",
        description="Time one training step (forward, residual, backward, Adam) of a backbone with "
        "derivatives from each engine, and its peak memory. Prints a table, or JSON with --json.",
    )
    p.add_argument("--pde", default="biharmonic", choices=list(PDES), help="manufactured residual (default: biharmonic)")
    p.add_argument("--grid", type=_int_list, default=[128], help="samples per axis, comma-separated (default: 128)")
    p.add_argument("--engines", type=_engine_list, default=["mollifier", "autodiff"], help=f"comma-separated from {', '.join(ENGINES)}")
    p.add_argument("--backbone", default="mlp", choices=["mlp", "piratenet", "pinnsformer"])
    p.add_argument("--ndim", type=int, default=2, choices=[1, 2, 3])
    p.add_argument("--radius-cells", type=float, default=6.0, help="mollifier radius in grid cells (default: 6)")
    p.add_argument("--repeats", type=int, default=3, help="timed steps; the median is reported (default: 3)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per engine and grid")


def run(args: argparse.Namespace) -> int:
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"`--device` {args.device!r} requested but CUDA is not available here")
    progress = None if args.json else (lambda text: print(f"... {text}", file=sys.stderr, flush=True))
    rows = run_suite(
        args.pde,
        args.grid,
        args.engines,
        progress=progress,
        ndim=args.ndim,
        backbone=args.backbone,
        radius_cells=args.radius_cells,
        repeats=args.repeats,
        device=args.device,
        dtype=getattr(torch, args.dtype),
    )
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=1))
        return 0
    print(f"{'engine':<18}{'grid':>6}{'step [s]':>12}{'peak mem [MiB]':>16}{'peak RSS [MiB]':>16}  status")
    for r in rows:
        mem = f"{r.peak_memory_bytes / 2**20:.1f}" if r.peak_memory_bytes is not None else "-"
        rss = f"{r.peak_rss_bytes / 2**20:.1f}" if r.peak_rss_bytes is not None else "-"
        step = f"{r.step_seconds:.4f}" if r.step_seconds is not None else "-"
        print(f"{r.engine:<18}{r.grid:>6}{step:>12}{mem:>16}{rss:>16}  {r.status}")
    return 0
