"""``mollifier chromatin INPUT...``: rate-ratio maps of nuclei from SMLM data or images.

For each input (a localisation table, an image, or every such file in a folder) the
results go to ``OUT/<input stem>/``: ``lambda.npy``, ``lambda.tif``, ``mask.npy``,
``summary.json`` and ``figure.png``; ``OUT/summary.csv`` has one row per input
(``status`` ``ok`` or ``error`` with the message). A bad file does not stop the batch.
Exit status: 0 when every input succeeded, 1 when any failed.

``--sample`` adds the packaged synthetic nucleus; any localisation table with a truth
sidecar (``NAME.truth.npz``, see :mod:`mollifier.chromatin.truth`) is rendered on the
truth's grid and scored (``pearson`` in the summary).

Under ``torchrun --nproc_per_node N -m mollifier chromatin ...`` the inputs are dealt
round-robin to the N processes (each trains its nuclei on its own device); rank 0
gathers one row per input and writes ``summary.csv`` and ``batch.json``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..distributed.batch import map_inputs
from ..distributed.collectives import RankFailedError
from ..distributed.context import DistributedContext, session
from ..runtime.files import atomic_write, nan_to_none, write_json

_COLUMNS = [
    "input", "status", "mode", "pixel_size_nm", "nucleus_pixels", "lambda_mean", "lambda_median",
    "heterochromatin_fraction", "domain_count", "domain_radius", "domain_spacing", "domain_unit",
    "baseline_ratio", "lambda_spread_median", "runtime_seconds", "pearson", "message",
]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chromatin",
        help="map the methylation/acetylation rate ratio in nuclei (SMLM localisations or images)",
        description="Per nucleus: density map -> nucleus mask -> volume fractions -> the chromatin "
        "inverse problem trained with Mollifier Layers (or --preview: network-free, instant) -> "
        "lambda = Gamma_me/Gamma_ac map, plus the closed-form DBSCAN domain baseline. "
        "Outputs in OUT/<stem>/ (lambda.npy, lambda.tif, summary.json, figure.png) and OUT/summary.csv.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="localisation CSV/TSV (.gz/.xz/.bz2 too), TIFF/PNG/NPY image, or a folder of them")
    p.add_argument("--sample", action="store_true", help="also run the packaged synthetic nucleus (known answer)")
    p.add_argument("--pixel-size", type=float, metavar="NM",
                   help="density-map pixel for localisations (default: 100), or the image pixel size (default: the file's)")
    p.add_argument("--mask", type=Path, metavar="FILE", help="nucleus mask image (nonzero = inside; one input only)")
    p.add_argument("--out", type=Path, default=Path("chromatin-results"), help="results folder (default: chromatin-results)")
    p.add_argument("--steps", type=int, help="Adam steps (default: 2000)")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="train N networks from different seeds: mean map plus a per-pixel spread map (default: 1)")
    p.add_argument("--preview", action="store_true", help="network-free estimate only (no training; seconds)")
    # defaults (None here) are the pipeline's UNIT_NM, RADIUS_NM, RIM_NM and TRAINING
    p.add_argument("--unit-nm", type=float, metavar="NM",
                   help="nm per model length unit (default: 1000, the model's micrometre)")
    p.add_argument("--radius-nm", type=float, metavar="NM",
                   help="mollifier radius (default: 800 nm; larger for sparser data)")
    p.add_argument("--rim-nm", type=float, metavar="NM",
                   help="nucleus rim left out of the analysis (default: 100 nm, at least one pixel; 0 keeps it)")
    p.add_argument("--density", choices=("histogram", "voronoi"), default="histogram",
                   help="localisations -> density map: counts per pixel (default) or Voronoi cell areas")
    p.add_argument("--blur-nm", type=float, metavar="NM",
                   help="Gaussian blur of the density map, e.g. the localisation precision (default: none)")
    p.add_argument("--slice", type=int, metavar="N", help="for a 3-D image stack: use plane N")
    p.add_argument("--project", choices=("max", "mean"), help="for a 3-D image stack: project the planes")
    p.add_argument("--x-col", help="x coordinate column (default: detected)")
    p.add_argument("--y-col", help="y coordinate column (default: detected)")
    p.add_argument("--device", default="cpu", help="torch device for training (default: cpu)")
    p.add_argument("--no-figures", action="store_true", help="skip figure.png")
    p.add_argument("--json", action="store_true", help="end with one JSON object on stdout")


def collect_inputs(items: list[str]) -> list[Path]:
    """Expand folders into their localisation tables and images (sorted); keep files as given."""
    from ..chromatin.pipeline import input_kind

    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and input_kind(f) is not None)
            if not found:
                raise FileNotFoundError(f"folder {item!r} holds no localisation table or image")
            paths += found
        else:
            paths.append(p)  # missing files are reported per input
    return paths


def _stems(paths: list[Path]) -> list[str]:
    from ..imaging.localizations import uncompressed_name

    seen: dict[str, int] = {}
    out = []
    for p in paths:
        stem = Path(uncompressed_name(p)).stem or "input"
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        out.append(stem if n == 0 else f"{stem}-{n + 1}")
    return out


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text


def _write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=_COLUMNS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in _COLUMNS})
    data = buf.getvalue().encode()
    atomic_write(path, lambda h: h.write(data))


def _analysis_options(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given for :func:`~mollifier.chromatin.pipeline.analyse_nucleus` (the rest keep its defaults)."""
    given = {"steps": args.steps, "unit_nm": args.unit_nm, "radius_nm": args.radius_nm, "rim_nm": args.rim_nm}
    return {"seeds": args.seeds, "preview": args.preview, **{k: v for k, v in given.items() if v is not None}}


def run(args: argparse.Namespace) -> int:
    from ..chromatin.pipeline import check_options

    check_options(**_analysis_options(args))  # once, before any input is read
    if args.pixel_size is not None and not args.pixel_size > 0:
        raise ValueError(f"`--pixel-size` must be > 0; got {args.pixel_size}")
    if not args.inputs and not args.sample:
        raise ValueError("give at least one INPUT (file or folder), or --sample for the packaged nucleus")
    paths = collect_inputs(args.inputs)
    if args.sample:
        from ..chromatin.truth import sample_path

        paths.append(sample_path())
    if args.mask is not None and len(paths) > 1:
        raise ValueError(f"`--mask` applies to one input; got {len(paths)} inputs")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with session(device=args.device) as ctx:  # a no-op unless launched by torchrun
        rows = _process_all(args, paths, out, ctx)
        if not ctx.is_main:
            return 1 if any(r["status"] != "ok" for r in rows) else 0
        return _write_batch(args, out, rows)  # before leaving: the others wait until it is written


def _process_all(args: argparse.Namespace, paths: list[Path], out: Path, ctx: DistributedContext) -> list[dict[str, Any]]:
    """One row per input, spread over the ranks of a torchrun launch (all of them here)."""
    from ..chromatin.pipeline import analyse_nucleus, load_input, write_outputs
    from ..chromatin.truth import read_truth

    tag = f"[rank {ctx.rank}] " if ctx.is_distributed else ""
    # progress always goes to stderr (with --json, stdout carries only the JSON report)
    say = lambda line: print(f"{tag}{line}", file=sys.stderr, flush=True)  # noqa: E731
    device = str(ctx.device_for(args.device))
    jobs = list(enumerate(zip(paths, _stems(paths)), 1))

    def process(job: tuple[int, tuple[Path, str]]) -> dict[str, Any]:
        i, (path, stem) = job
        start = time.perf_counter()
        try:
            truth = read_truth(path) if path.exists() else None
            if truth is not None and args.pixel_size is not None and abs(args.pixel_size - truth.pixel_size_nm) > 1e-6:
                say(f"{path.name}: --pixel-size {args.pixel_size:g} differs from the truth's grid "
                    f"({truth.pixel_size_nm:g} nm): not scored")
                truth = None
            inp = load_input(path, pixel_size_nm=truth.pixel_size_nm if truth else args.pixel_size, mask=args.mask,
                             x_col=args.x_col, y_col=args.y_col, extent_nm=truth.extent_nm if truth else None,
                             slice=args.slice, project=args.project, density=args.density, blur_nm=args.blur_nm)
            result = analyse_nucleus(inp, **_analysis_options(args), device=device,
                                     truth=truth.lambda_map if truth else None, log=say)
            files = write_outputs(result, out / stem, figure=not args.no_figures)
            row = {**result.summary, "output": str(out / stem), "files": files}
            scored = f", Pearson vs truth {row['pearson']:.3f}" if "pearson" in row else ""
            say(f"[{i}/{len(paths)}] {path.name}: ok, lambda median {row['lambda_median']:.4g}, "
                f"{row['domain_count']} domains, baseline {row['baseline_ratio']:.4g}{scored} "
                f"({time.perf_counter() - start:.1f} s)")
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one bad file must not stop the batch
            row = _error_row(path, exc, time.perf_counter() - start, tag)
        return row

    # An input whose processing escaped the protection above (or whose rank stopped)
    # still gets its row: map_inputs turns that into on_error(job, exc).
    def on_error(job: tuple[int, tuple[Path, str]], exc: BaseException) -> dict[str, Any]:
        loud = ctx.is_main or not isinstance(exc, RankFailedError)  # a stopped rank's inputs: said once
        return _error_row(job[1][0], exc, None, tag, loud=loud)

    return map_inputs(jobs, process, on_error=on_error, ctx=ctx)


def _error_row(path: Path, exc: BaseException, seconds: float | None, tag: str, loud: bool = True) -> dict[str, Any]:
    msg = _one_line(exc)
    if loud:
        print(f"{tag}mollifier chromatin: error: {path}: {msg}", file=sys.stderr, flush=True)
    return {"input": str(path), "status": "error", "message": msg, "runtime_seconds": seconds}


def _write_batch(args: argparse.Namespace, out: Path, rows: list[dict[str, Any]]) -> int:
    """Rank 0: write summary.csv and batch.json, report; the exit status."""
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if not args.json else (lambda line: None)
    _write_table(out / "summary.csv", rows)
    n_err = sum(r["status"] != "ok" for r in rows)
    report = {
        "out": str(out),
        "summary_csv": str(out / "summary.csv"),
        "n_inputs": len(rows),
        "n_ok": len(rows) - n_err,
        "n_error": n_err,
        "nuclei": [{k: r.get(k) for k in [*_COLUMNS, "output"] if k in r} for r in rows],
    }
    write_json(out / "batch.json", report)
    if args.json:
        print(json.dumps(nan_to_none(report), default=str))
    else:
        say(f"{len(rows) - n_err}/{len(rows)} nuclei done; table: {out / 'summary.csv'}")
    return 1 if n_err else 0
