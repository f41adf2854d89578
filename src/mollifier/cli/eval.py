"""``mollifier eval RUN_DIR``: a finished run's fields on a new grid, from its saved networks.

Writes ``RUN_DIR/eval-<shape>.npz`` (or ``--out``): the observed field's network
(``u``, ``(C, *shape)``), every unknown and latent field on its own axes, scalar unknowns,
the axes, and with ``--derivatives`` the engine's derivatives of the observed field.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..core.engines import ENGINES
from ..core.grid import Grid
from ..core.operators import laplacian
from ..inverse.trained import load
from ..runtime.files import nan_to_none, write_npz


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a finished run's fields on a new grid",
        description="Load RUN_DIR/model.pt and evaluate the observed field's network and every unknown on a "
        "grid spanning the training grid's bounds (N points per axis, or one N per axis).",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="results folder of a training run")
    p.add_argument("--grid", required=True, metavar="N[,N...]", help="points per axis: one number, or one per axis")
    p.add_argument("--engine", choices=list(ENGINES), help="engine of --derivatives (default: the run's)")
    p.add_argument("--derivatives", action="store_true", help="also the gradient and Laplacian of the observed field")
    p.add_argument("--radius", type=float, metavar="R",
                   help="mollifier radius of --derivatives in physical units (default: the run's; it must "
                        "span at least 2 cells of the new grid)")
    p.add_argument("--out", type=Path, help="output .npz (default: RUN_DIR/eval-<shape>.npz)")
    p.add_argument("--json", action="store_true", help="print one JSON object describing the output")


def _shape(text: str, ndim: int) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"`--grid` must be N or N,N,... (integers); got {text!r}") from None
    if len(values) == 1:
        values = values * ndim
    if len(values) != ndim or any(v < 2 for v in values):
        raise ValueError(f"`--grid` must give one N >= 2, or {ndim} of them (the run's axes); got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    trained = load(args.run_dir)
    shape = _shape(args.grid, trained.grid.ndim)
    grid = Grid.from_bounds(trained.grid.bounds, shape)
    arrays: dict[str, Any] = trained.evaluate(grid)
    if args.derivatives:
        requests = {f"u_x{a}": tuple(int(a == b) for b in range(grid.ndim)) for a in range(grid.ndim)}
        requests["lap_u"] = laplacian(grid.ndim)
        engine = args.engine or trained.engine
        options = {"radius": args.radius} if args.radius is not None and engine == "mollifier" else {}
        try:
            derived = trained.derivatives("u", grid, requests, engine=args.engine, **options)
        except ValueError as err:
            if "`radius`" in str(err) and args.radius is None:
                raise ValueError(f"{err}; the run's radius is too narrow for this grid: pass a finer "
                                 "--grid or a wider --radius") from None
            raise
        arrays.update({f"{args.engine or trained.engine}_{k}": v for k, v in derived.items()})
    out = args.out or args.run_dir / f"eval-{'x'.join(str(n) for n in shape)}.npz"
    write_npz(out, arrays)
    summary = {
        "run_dir": str(args.run_dir),
        "out": str(out),
        "grid": list(shape),
        "bounds": [list(b) for b in grid.bounds],
        "fields": {k: {"shape": list(np.shape(v)), "min": float(np.min(v)), "max": float(np.max(v))}
                   for k, v in arrays.items() if not k.startswith("axis")},
    }
    if args.json:
        print(json.dumps(nan_to_none(summary)))
    else:
        for name, info in summary["fields"].items():
            print(f"{name}: shape {tuple(info['shape'])}, range [{info['min']:.4g}, {info['max']:.4g}]")
        print(f"written: {out}", file=sys.stderr)
    return 0
