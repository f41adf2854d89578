"""``mollifier bench``: time and memory of one training step per derivative engine.

With ``--preset quick|paper`` it runs a whole sweep instead (scaling and accuracy rows,
each in its own process under ``--time-limit``), appending to ``--results FILE.jsonl``
and resuming from it; ``mollifier report FILE.jsonl`` renders the results.

Under ``torchrun --nproc_per_node N -m mollifier bench ...`` the (grid, engine) pairs, or
the preset's rows, are spread over the N processes and rank 0 prints the results.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from ..bench.step import PDES, StepResult, run_suite
from ..core.engines import ENGINES
from ..distributed.batch import map_inputs
from ..distributed.context import session
from .arguments import positive_number

_DEFAULTS = {"pde": "biharmonic", "grid": [128], "engines": ["mollifier", "autodiff"]}


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
        "derivatives from each engine, and its peak memory. Prints a table, or JSON with --json. "
        "With --preset, run a whole benchmark sweep into a JSONL results file (resumable); "
        "render it with `mollifier report`.",
    )
    p.add_argument("--pde", default=None, choices=list(PDES), help="manufactured residual (default: biharmonic)")
    p.add_argument("--grid", type=_int_list, default=None, help="samples per axis, comma-separated (default: 128)")
    p.add_argument("--engines", type=_engine_list, default=None, help=f"comma-separated from {', '.join(ENGINES)} (default: mollifier,autodiff)")
    p.add_argument("--backbone", default="mlp", choices=["mlp", "piratenet", "pinnsformer"])
    p.add_argument("--ndim", type=int, default=2, choices=[1, 2, 3])
    p.add_argument("--radius-cells", type=float, default=6.0, help="mollifier radius in grid cells (default: 6)")
    p.add_argument("--repeats", type=int, default=3, help="timed steps; the median is reported (default: 3)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per engine and grid")
    sweep = p.add_argument_group("benchmark sweep")
    sweep.add_argument("--preset", choices=["quick", "paper"], default=None,
                       help="run a sweep: quick (minutes on a CPU) or paper (the full grid, for a GPU)")
    sweep.add_argument("--results", default=None, metavar="FILE.jsonl",
                       help="JSONL results file, appended to and resumed from (default: results/bench-<preset>.jsonl)")
    sweep.add_argument("--time-limit", type=positive_number("number of seconds"), default=None, metavar="SECONDS",
                       help="per-row time limit; slower rows are recorded as timeout (default: the preset's)")
    sweep.add_argument("--memory-limit", type=float, default=None, metavar="GIB",
                       help="per-row address-space cap in GiB, so a runaway row fails as 'out of memory' "
                       "instead of waking the OOM killer (0: none; default: 70%% of RAM on CPU, none on CUDA)")
    sweep.add_argument("--kind", choices=["scaling", "accuracy", "robustness"], default=None,
                       help="run only the preset's scaling, accuracy or robustness rows (default: scaling and accuracy; "
                       "robustness = the trained network beside every network-free smoother over grid sizes, "
                       "correlation lengths and noise levels, at the library's defaults)")
    sweep.add_argument("--problems", default=None, metavar="NAMES",
                       help="comma-separated built-in problems: run only their accuracy and robustness rows "
                       "(default: every problem the preset has, and its scaling rows)")
    sweep.add_argument("--retry-failed", action="store_true",
                       help="also re-run rows recorded as timeout / out of memory / error / skipped")


def run(args: argparse.Namespace) -> int:
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"`--device` {args.device!r} requested but CUDA is not available here")
    if args.preset is not None:
        return _run_preset(args)
    sweep_flags = ("results", "time_limit", "memory_limit", "retry_failed", "problems")
    sweep_only = [f"--{n.replace('_', '-')}" for n in sweep_flags if getattr(args, n) not in (None, False)]
    if sweep_only:
        raise ValueError(f"{', '.join(sweep_only)} only apply to a sweep; add --preset quick or --preset paper")
    for name, value in _DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    with session(device=args.device) as ctx:  # under torchrun: (grid, engine) pairs spread over ranks
        tag = f"[rank {ctx.rank}] " if ctx.is_distributed else ""
        progress = None if args.json else (lambda text: print(f"... {tag}{text}", file=sys.stderr, flush=True))
        options = dict(ndim=args.ndim, backbone=args.backbone, radius_cells=args.radius_cells, repeats=args.repeats,
                       device=str(ctx.device_for(args.device)), dtype=getattr(torch, args.dtype))
        pairs = [(n, name) for n in args.grid for name in args.engines]

        def failed(pair: tuple[int, str], exc: BaseException) -> StepResult:
            return StepResult(engine=pair[1], pde=args.pde, order=PDES[args.pde], grid=pair[0], ndim=args.ndim,
                              backbone=args.backbone, device=options["device"], dtype=args.dtype, status="error",
                              error=" ".join(f"{type(exc).__name__}: {exc}".split())[:500])

        rows = map_inputs(pairs, lambda pair: run_suite(args.pde, [pair[0]], [pair[1]], progress=progress, **options)[0],
                          on_error=failed, ctx=ctx)
        if not ctx.is_main:
            return 0
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


def _run_preset(args: argparse.Namespace) -> int:
    """Run a preset sweep into the results file (rows spread over the ranks under torchrun)."""
    from ..bench.suite import DEFAULT_KINDS, command_line, machine_description, preset_specs, run_sweep
    from ..distributed.context import session

    single = [f"--{n}" for n in _DEFAULTS if getattr(args, n) is not None] + (["--json"] if args.json else [])
    if single:
        raise ValueError(f"{', '.join(single)} cannot be combined with --preset (the preset fixes the sweep)")
    results = args.results or f"results/bench-{args.preset}.jsonl"
    if args.memory_limit is not None and args.memory_limit < 0:
        raise ValueError(f"--memory-limit must be >= 0 GiB (0: none); got {args.memory_limit}")
    specs = preset_specs(args.preset, device=args.device, memory_limit_gib=args.memory_limit)
    kinds = (args.kind,) if args.kind is not None else DEFAULT_KINDS
    specs = [spec for spec in specs if spec["kind"] in kinds]
    if args.problems is not None:
        wanted = [name.strip() for name in args.problems.split(",") if name.strip()]
        known = sorted({spec["problem"] for spec in preset_specs(args.preset) if spec["problem"]})
        unknown = [name for name in wanted if name not in known]
        if not wanted or unknown:
            raise ValueError(f"--problems: expected comma-separated names from {known}, got {args.problems!r}")
        specs = [spec for spec in specs if spec["problem"] in wanted]
    meta = {"machine": machine_description(args.device), "command": command_line()}
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    with session(device=args.device) as ctx:  # a no-op unless launched by torchrun
        workers = f" over {ctx.world_size} processes" if ctx.is_distributed else ""
        if ctx.is_main:
            log(f"mollifier bench --preset {args.preset}: {len(specs)} rows{workers} -> {results}")
        rows = run_sweep(specs, results, time_limit=args.time_limit, meta=meta, progress=log, retry_failed=args.retry_failed)
    failed = sum(r["status"] != "ok" for r in rows)
    if ctx.is_main:
        log(f"done: {len(rows)} new rows ({failed} not ok) in {results}; render with `mollifier report {results}`")
    return 0
