"""``mollifier chromatin INPUT...``: rate-ratio maps of nuclei from SMLM data or images.

For each input (a localisation file of any format the readers know, an image, or every
such file in a folder) and each nucleus in it, the results go to ``OUT/<input stem>/``
(one nucleus) or ``OUT/<input stem>/nucleus-K/`` (several): ``lambda.npy``,
``lambda.tif``, masks, maps, ``summary.json``, ``figure.png`` (drawn from those files
after they are written) and ``training/`` (checkpoint and history of the network).
``OUT/summary.csv`` has one row per nucleus (``status`` ``ok``, ``skipped`` or
``error`` with the message). A bad file does not stop the batch. Exit status: 0 when
every input succeeded, 1 when any failed, 2 for bad arguments.

``--inspect`` reads the inputs and reports what they hold (format, localisations,
ranges, columns used and left out, pixel size), without analysis. ``--resume``
skips nuclei whose outputs are complete and continues unfinished trainings from their
checkpoints. Two runs cannot write into the same ``--out`` folder at once.

``--sample`` adds the packaged synthetic nucleus; any localisation table with a truth
sidecar (``NAME.truth.npz``, see :mod:`mollifier.chromatin.truth`) is rendered on the
truth's grid and scored (``pearson`` in the summary).

Under ``torchrun --nproc_per_node N -m mollifier chromatin ...`` the inputs are dealt
round-robin to the N processes (each trains its nuclei on its own device); rank 0
gathers the rows and writes ``summary.csv`` and ``batch.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..distributed import DistributedContext, RankFailedError, map_inputs, session
from ..runtime.devices import DEVICE_HELP, resolve_device
from ..runtime.files import atomic_write, nan_to_none, write_json
from ..runtime.lock import FolderBusyError, folder_lock

_COLUMNS = [
    "input", "nucleus", "status", "mode", "format", "localizations", "pixel_size_nm", "nucleus_pixels",
    "lambda_mean", "lambda_median", "heterochromatin_fraction", "domain_count", "domain_radius", "domain_spacing",
    "domain_unit", "baseline_ratio", "lambda_spread_median", "runtime_seconds", "pearson", "warnings", "message",
    "output",
]


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..chromatin.options import PIXEL_NM, RADIUS_NM, RIM_NM, TRAINING, UNIT_NM
    from ..imaging.readers import READERS

    p = sub.add_parser(
        "chromatin",
        help="map the methylation/acetylation rate ratio in nuclei (SMLM localisations or images)",
        description="Per nucleus: density map -> nucleus mask -> volume fractions -> the chromatin "
        "inverse problem trained with Mollifier Layers (or --preview: network-free, instant) -> "
        "lambda = Gamma_me/Gamma_ac map, plus the closed-form DBSCAN domain baseline. "
        "Outputs in OUT/<stem>/ (OUT/<stem>/nucleus-K/ for several nuclei) and OUT/summary.csv.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="localisation file (ThunderSTORM, rapidSTORM, Elyra, N-STORM, Nanoimager, Picasso, DECODE, "
                        "SMAP, ShareLoc, CSV/TSV; .gz/.xz/.bz2 too), TIFF/PNG/NPY image, or a folder of them")
    p.add_argument("--sample", action="store_true", help="also run the packaged synthetic nucleus (known answer)")
    p.add_argument("--out", type=Path, default=Path("chromatin-results"), help="results folder (default: chromatin-results)")
    p.add_argument("--inspect", action="store_true",
                   help="read the inputs and report what they hold (format, localisations, ranges, columns used and "
                        "left out, pixel size); no analysis")
    p.add_argument("--resume", action="store_true",
                   help="skip nuclei whose outputs in --out are complete; continue unfinished trainings from their checkpoints")
    p.add_argument("--json", action="store_true", help="end with one JSON object on stdout (--inspect: one per input)")
    p.add_argument("--no-figures", action="store_true", help="skip figure.png")
    p.add_argument("--device", default="auto", help=f"torch device for training: {DEVICE_HELP} (default: auto)")

    g = p.add_argument_group("reading localisation tables")
    g.add_argument("--format", choices=[r.name for r in READERS], help="reader to use (default: detected from the content)")
    g.add_argument("--x-col", help="x coordinate column (default: detected)")
    g.add_argument("--y-col", help="y coordinate column (default: detected)")
    g.add_argument("--coord-unit", choices=("nm", "um", "px"),
                   help="unit of coordinate columns whose name and metadata give none (default: nm, with a note)")
    g.add_argument("--pixel-size-nm", type=float, metavar="NM",
                   help="the input's own pixel: camera pixel of a table in pixel units (Picasso without YAML, 'x [px]'), "
                        "or an image's pixel size; overrides the file's")
    g.add_argument("--channel", metavar="NAME",
                   help="channel to map (a label of the file's channel column), or 'all' to merge them; required when "
                        "the file holds several")
    g.add_argument("--z-range", metavar="LO,HI", help="z slab of a 3-D table, nm (default: all z, projected; noted)")
    g.add_argument("--frames", metavar="LO,HI", help="frame range to use, inclusive (default: all)")
    g.add_argument("--max-precision-nm", type=float, metavar="NM", help="leave out localisations less precise than this")

    g = p.add_argument_group("density map and nucleus")
    g.add_argument("--render-pixel-nm", type=float, metavar="NM",
                   help=f"density-map pixel for tables, working pixel for fine images (default: {PIXEL_NM:g})")
    g.add_argument("--pixel-size", type=float, metavar="NM",
                   help="deprecated: --render-pixel-nm for tables, --pixel-size-nm for images")
    g.add_argument("--render", choices=("histogram", "precision", "voronoi"),
                   help="localisations -> density: counts per pixel (default), each localisation blurred by its own "
                        "precision, or Voronoi cell areas")
    g.add_argument("--density", choices=("histogram", "voronoi"), help="deprecated: --render")
    g.add_argument("--blur-nm", type=float, metavar="NM", help="Gaussian blur of the density map (default: none)")
    g.add_argument("--mask", type=Path, metavar="FILE", help="nucleus mask image (nonzero = inside; one input only)")
    g.add_argument("--roi", metavar="POLYGON",
                   help="nucleus outline in nm: 'x1,y1 x2,y2 x3,y3 ...' or a .json/.csv file of vertices (one input only)")
    g.add_argument("--nucleus", type=int, metavar="K",
                   help="analyse only nucleus K of a field with several (1 = the largest; default: every nucleus)")
    g.add_argument("--slice", type=int, metavar="N", help="for a 3-D image stack: use plane N")
    g.add_argument("--project", choices=("max", "mean"), help="for a 3-D image stack: project the planes")

    g = p.add_argument_group("analysis")
    g.add_argument("--steps", type=int, help=f"Adam steps (default: {TRAINING['steps']:g})")
    g.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="train N networks from different seeds: mean map plus a per-pixel spread map (default: 1)")
    g.add_argument("--preview", action="store_true", help="network-free estimate only (no training; seconds)")
    g.add_argument("--time-budget", type=float, metavar="SECONDS", help="stop each training after this long (default: none)")
    g.add_argument("--unit-nm", type=float, metavar="NM",
                   help=f"nm per model length unit (default: {UNIT_NM:g}, the model's micrometre)")
    g.add_argument("--radius-nm", type=float, metavar="NM",
                   help=f"mollifier radius (default: {RADIUS_NM:g} nm; larger for sparser data)")
    g.add_argument("--rim-nm", type=float, metavar="NM",
                   help=f"nucleus rim left out of the analysis (default: {RIM_NM:g} nm, at least one pixel; 0 keeps it)")
    g.add_argument("--force", action="store_true",
                   help="analyse data the sparsity rule refuses (too few localisations), with a warning in the summary")


def _say(line: str, tag: str = "") -> None:
    print(f"{tag}{line}", file=sys.stderr, flush=True)


def _options(args: argparse.Namespace) -> tuple[Any, Any, list[str]]:
    """(InputOptions, AnalysisOptions, deprecation notes) from the flags; checked."""
    from ..chromatin.options import AnalysisOptions, InputOptions
    from ..imaging.table import ReadOptions, Selection

    said: list[str] = []
    render = args.render
    if args.density is not None:
        said.append("--density is deprecated: use --render")
        if render is not None and render != args.density:
            raise ValueError(f"`--density {args.density}` contradicts `--render {render}`; give --render only")
        render = render or args.density
    if args.pixel_size is not None:
        said.append("--pixel-size is deprecated: it is --render-pixel-nm for tables and --pixel-size-nm for images")
        if not args.pixel_size > 0:
            raise ValueError(f"`--pixel-size` must be > 0 (nm); got {args.pixel_size}")
    read = ReadOptions(args.x_col, args.y_col, args.coord_unit, None, args.format)
    selection = Selection.from_flags(args.channel, args.z_range, args.frames, args.max_precision_nm)
    inputs = InputOptions(render_pixel_nm=args.render_pixel_nm, pixel_size_nm=args.pixel_size_nm,
                          render=render or "histogram", blur_nm=args.blur_nm, read=read, selection=selection,
                          mask=args.mask, roi=args.roi, slice=args.slice, project=args.project)
    inputs.check()
    if args.roi is not None:
        from ..imaging.mask import parse_roi

        parse_roi(args.roi)  # a malformed polygon is a bad argument, refused before any input is read
    given = {"steps": args.steps, "unit_nm": args.unit_nm, "radius_nm": args.radius_nm, "rim_nm": args.rim_nm,
             "time_budget_s": args.time_budget, "nucleus": args.nucleus}
    analysis = AnalysisOptions(seeds=args.seeds, preview=args.preview, force=args.force,
                               **{k: v for k, v in given.items() if v is not None})
    analysis.check()
    return inputs, analysis, said


def _for_input(path: Path, inputs: Any, args: argparse.Namespace) -> Any:
    """The input options for one file (the deprecated --pixel-size depends on the kind)."""
    from ..chromatin.inputs import IMAGE_SUFFIXES

    if args.pixel_size is None:
        return inputs
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return inputs if inputs.pixel_size_nm is not None else inputs.replace(pixel_size_nm=args.pixel_size)
    return inputs if inputs.render_pixel_nm is not None else inputs.replace(render_pixel_nm=args.pixel_size)


def _stems(paths: list[Path]) -> list[str]:
    from ..chromatin.pipeline import output_stem

    seen: dict[str, int] = {}
    out = []
    for p in paths:
        stem = output_stem(p)
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        out.append(stem if n == 0 else f"{stem}-{n + 1}")
    return out


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=_COLUMNS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in _COLUMNS})
    data = buf.getvalue().encode()
    atomic_write(path, lambda h: h.write(data))


def run(args: argparse.Namespace) -> int:
    from ..chromatin.inputs import collect_inputs

    inputs, analysis, said = _options(args)  # once, before any input is read
    for line in said:
        _say(f"mollifier chromatin: {line}")
    if not args.inputs and not args.sample:
        raise ValueError("give at least one INPUT (file or folder), or --sample for the packaged nucleus")
    paths, skipped = collect_inputs(args.inputs)
    if skipped:
        _say("mollifier chromatin: left out of the folder(s): " + "; ".join(f"{p.name} ({why})" for p, why in skipped))
    if args.sample:
        from ..chromatin.truth import sample_path

        paths.append(sample_path())
    if (args.mask is not None or args.roi is not None) and len(paths) > 1:
        raise ValueError(f"`--mask`/`--roi` apply to one input; got {len(paths)} inputs")
    if args.inspect:
        return _inspect(args, paths, inputs)
    device = resolve_device(args.device)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        ctx = stack.enter_context(session(device=device))  # a no-op unless launched by torchrun
        if ctx.is_main:
            try:
                stack.enter_context(folder_lock(out, what="chromatin batch"))
            except FolderBusyError as exc:  # a clear one-line error, exit status 2
                raise ValueError(str(exc)) from None
        rows = _process_all(args, paths, out, ctx, inputs, analysis.replace(device=str(ctx.device_for(device))))
        if not ctx.is_main:
            return 1 if any(r["status"] == "error" for r in rows) else 0
        return _write_batch(args, out, rows, len(paths), skipped)  # before leaving: the others wait for it


def _inspect(args: argparse.Namespace, paths: list[Path], inputs: Any) -> int:
    from ..chromatin.inputs import inspect_input

    failed = 0
    for path in paths:
        try:
            facts = inspect_input(path, _for_input(path, inputs, args))
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one bad file must not stop the others
            failed += 1
            facts = {"input": str(path), "status": "error", "message": _one_line(exc)}
            _say(f"mollifier chromatin: error: {path}: {facts['message']}")
        if args.json:
            print(json.dumps(nan_to_none(facts), default=str), flush=True)
        elif facts.get("status") != "error":
            print(_describe(facts), flush=True)
    return 1 if failed else 0


def _describe(f: dict[str, Any]) -> str:
    if f.get("kind") == "image":
        return f"{f['input']}: image {f['shape']} {f['dtype']}, pixel {f.get('pixel_size_nm')} nm"
    lines = [
        f"{f['input']}: {f['format']}, {f['localizations']:,} localisations"
        + (f" (of {f['localizations_read']:,} read)" if f["localizations_read"] != f["localizations"] else ""),
        f"  x {f['x_range_nm'][0]:.1f} .. {f['x_range_nm'][1]:.1f} nm, y {f['y_range_nm'][0]:.1f} .. {f['y_range_nm'][1]:.1f} nm"
        + (f", z {f['z_range_nm'][0]:.1f} .. {f['z_range_nm'][1]:.1f} nm" if f.get("z_range_nm") else ""),
        f"  columns used: " + ", ".join(f"{k} <- {v!r}" for k, v in f["columns_used"].items()),
    ]
    if f.get("frames"):
        lines.append(f"  frames {f['frames'][0]} .. {f['frames'][1]}")
    if f.get("channels"):
        lines.append("  channels: " + ", ".join(f"{k} ({v:,})" for k, v in f["channels"].items()))
    if f.get("pixel_size_nm"):
        lines.append(f"  camera pixel {f['pixel_size_nm']:g} nm ({f.get('pixel_size_source')})")
    lines.append(f"  density map {f['map_pixels'][0]} x {f['map_pixels'][1]} px of {f['render_pixel_nm']:g} nm")
    lines += [f"  left out: {item}" for item in f.get("left_out", [])]
    lines += [f"  note: {note}" for note in f.get("notes", [])]
    return "\n".join(lines)


def _process_all(args: argparse.Namespace, paths: list[Path], out: Path, ctx: DistributedContext, inputs: Any,
                 analysis: Any) -> list[dict[str, Any]]:
    """One list of rows per input, spread over the ranks of a torchrun launch, flattened."""
    from ..chromatin.pipeline import process_input

    tag = f"[rank {ctx.rank}] " if ctx.is_distributed else ""
    say = lambda line: _say(line, tag)  # noqa: E731 - progress always goes to stderr
    jobs = list(enumerate(zip(paths, _stems(paths)), 1))

    def process(job: tuple[int, tuple[Path, str]]) -> list[dict[str, Any]]:
        i, (path, stem) = job
        start = time.perf_counter()
        try:
            rows = process_input(path, stem, out, _for_input(path, inputs, args), analysis, resume=args.resume, log=say)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one bad file must not stop the batch
            return [_error_row(path, exc, time.perf_counter() - start, tag)]
        for row in rows:
            _finish_row(row, i, len(paths), path, args, say)
        return rows

    # An input whose processing escaped the protection above (or whose rank stopped)
    # still gets its row: map_inputs turns that into on_error(job, exc).
    def on_error(job: tuple[int, tuple[Path, str]], exc: BaseException) -> list[dict[str, Any]]:
        loud = ctx.is_main or not isinstance(exc, RankFailedError)  # a stopped rank's inputs: said once
        return [_error_row(job[1][0], exc, None, tag, loud=loud)]

    results = map_inputs(jobs, process, on_error=on_error, ctx=ctx)
    return [row for rows in results for row in rows]  # type: ignore[union-attr]


def _finish_row(row: dict[str, Any], i: int, n: int, path: Path, args: argparse.Namespace, say: Any) -> None:
    """Flatten a row for the table, draw its figure (from the written files), report it."""
    row["format"] = (row.get("data") or {}).get("format") or row.get("kind")
    row["warnings"] = "; ".join(row.get("warnings") or []) if isinstance(row.get("warnings"), list) else row.get("warnings")
    label = path.name if (row.get("nuclei_in_field") or 1) == 1 else f"{path.name} nucleus {row.get('nucleus')}"
    if row["status"] == "error":
        say(f"[{i}/{n}] {label}: error: {row.get('message')}")
        return
    folder = Path(row["output"])
    if not args.no_figures and (row["status"] == "ok" or not (folder / "figure.png").is_file()):
        try:
            from ..plotting.chromatin import nucleus_figure

            nucleus_figure(folder)
        except ImportError as exc:
            say(f"{label}: figure.png not drawn: {exc}")
    if row["status"] == "skipped":
        say(f"[{i}/{n}] {label}: skipped (complete from an earlier run)")
        return
    scored = f", Pearson vs truth {row['pearson']:.3f}" if row.get("pearson") is not None else ""
    say(f"[{i}/{n}] {label}: ok, lambda median {row['lambda_median']:.4g}, {row['domain_count']} domains, "
        f"baseline {row['baseline_ratio']:.4g}{scored} ({row['runtime_seconds']:.1f} s)")


def _error_row(path: Path, exc: BaseException, seconds: float | None, tag: str, loud: bool = True) -> dict[str, Any]:
    msg = _one_line(exc)
    if loud:
        _say(f"mollifier chromatin: error: {path}: {msg}", tag)
    return {"input": str(path), "status": "error", "message": msg, "runtime_seconds": seconds}


def _write_batch(args: argparse.Namespace, out: Path, rows: list[dict[str, Any]], n_inputs: int,
                 skipped: list[tuple[Path, str]]) -> int:
    """Rank 0: write summary.csv and batch.json, report; the exit status."""
    _write_table(out / "summary.csv", rows)
    n_err = sum(r["status"] == "error" for r in rows)
    n_skip = sum(r["status"] == "skipped" for r in rows)
    report = {
        "out": str(out),
        "summary_csv": str(out / "summary.csv"),
        "n_inputs": n_inputs,
        "n_nuclei": len(rows),
        "n_ok": len(rows) - n_err - n_skip,
        "n_skipped": n_skip,
        "n_error": n_err,
        "left_out_files": [{"file": str(p), "why": why} for p, why in skipped],
        "nuclei": [{k: r.get(k) for k in [*_COLUMNS, "sparsity", "left_out"] if k in r} for r in rows],
    }
    write_json(out / "batch.json", report)
    if args.json:
        print(json.dumps(nan_to_none(report), default=str))
    else:
        _say(f"{len(rows) - n_err}/{len(rows)} nuclei done ({n_skip} skipped as complete); table: {out / 'summary.csv'}")
    return 1 if n_err else 0
