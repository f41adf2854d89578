"""``mollifier chromatin INPUT...``: rate-ratio maps of nuclei from SMLM data or images.

For each input (a localisation table, an image, or every such file in a folder) the
results go to ``OUT/<input stem>/``: ``lambda.npy``, ``lambda.tif``, ``mask.npy``,
``summary.json`` and ``figure.png``; ``OUT/summary.csv`` has one row per input
(``status`` ``ok`` or ``error`` with the message). A bad file does not stop the batch.
Exit status: 0 when every input succeeded, 1 when any failed.
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

from ..inverse.storage import _nan_to_none, atomic_write, write_json

_TABLE_SUFFIXES = {".csv", ".tsv", ".txt"}
_COLUMNS = [
    "input", "status", "mode", "pixel_size_nm", "nucleus_pixels", "lambda_mean", "lambda_median",
    "heterochromatin_fraction", "domain_count", "domain_radius", "domain_spacing", "domain_unit",
    "baseline_ratio", "runtime_seconds", "pearson", "message",
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
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="localisation CSV/TSV, TIFF/PNG/NPY image, or a folder of them")
    p.add_argument("--pixel-size", type=float, metavar="NM",
                   help="density-map pixel for localisations (default: nucleus spans ~64 px), or the image pixel size")
    p.add_argument("--mask", type=Path, metavar="FILE", help="nucleus mask image (nonzero = inside; one input only)")
    p.add_argument("--out", type=Path, default=Path("chromatin-results"), help="results folder (default: chromatin-results)")
    p.add_argument("--steps", type=int, help="Adam steps (default: 3000, the chromatin benchmark's)")
    p.add_argument("--preview", action="store_true", help="network-free estimate only (no training; seconds)")
    p.add_argument("--unit-nm", type=float, metavar="NM",
                   help="nm per model length unit (default: none, one pixel = 5/64 model units as in the benchmark)")
    p.add_argument("--x-col", help="x coordinate column (default: detected)")
    p.add_argument("--y-col", help="y coordinate column (default: detected)")
    p.add_argument("--device", default="cpu", help="torch device for training (default: cpu)")
    p.add_argument("--no-figures", action="store_true", help="skip figure.png")
    p.add_argument("--json", action="store_true", help="end with one JSON object on stdout")


def collect_inputs(items: list[str]) -> list[Path]:
    """Expand folders into their localisation tables and images (sorted); keep files as given."""
    from ..chromatin.pipeline import IMAGE_SUFFIXES

    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in _TABLE_SUFFIXES | IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"folder {item!r} holds no localisation table or image")
            paths += found
        else:
            paths.append(p)  # missing files are reported per input
    return paths


def _stems(paths: list[Path]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        stem = p.stem or "input"
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


def run(args: argparse.Namespace) -> int:
    from ..chromatin.pipeline import DEFAULT_SPACING, analyse_nucleus, load_input, write_outputs

    if args.steps is not None and args.steps < 1:
        raise ValueError(f"`--steps` must be >= 1; got {args.steps}")
    if args.pixel_size is not None and not args.pixel_size > 0:
        raise ValueError(f"`--pixel-size` must be > 0; got {args.pixel_size}")
    if args.unit_nm is not None and not args.unit_nm > 0:
        raise ValueError(f"`--unit-nm` must be > 0; got {args.unit_nm}")
    paths = collect_inputs(args.inputs)
    if args.mask is not None and len(paths) > 1:
        raise ValueError(f"`--mask` applies to one input; got {len(paths)} inputs")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if not args.json else (lambda line: None)
    rows: list[dict[str, Any]] = []
    for i, (path, stem) in enumerate(zip(paths, _stems(paths)), 1):
        start = time.perf_counter()
        try:
            inp = load_input(path, pixel_size_nm=args.pixel_size, mask=args.mask, x_col=args.x_col, y_col=args.y_col)
            spacing = DEFAULT_SPACING
            if args.unit_nm is not None:
                if inp.pixel_size_nm is None:
                    raise ValueError("`--unit-nm` needs a pixel size: give --pixel-size for this image")
                spacing = inp.pixel_size_nm / args.unit_nm
            result = analyse_nucleus(inp, steps=args.steps, preview=args.preview, spacing=spacing, device=args.device,
                                     log=say)
            files = write_outputs(result, out / stem, figure=not args.no_figures)
            row = {**result.summary, "output": str(out / stem), "files": files}
            say(f"[{i}/{len(paths)}] {path.name}: ok, lambda median {row['lambda_median']:.4g}, "
                f"{row['domain_count']} domains, baseline {row['baseline_ratio']:.4g} ({time.perf_counter() - start:.1f} s)")
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one bad file must not stop the batch
            msg = _one_line(exc)
            row = {"input": str(path), "status": "error", "message": msg, "runtime_seconds": time.perf_counter() - start}
            print(f"mollifier chromatin: error: {path}: {msg}", file=sys.stderr, flush=True)
        rows.append(row)
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
        print(json.dumps(_nan_to_none(report), default=str))
    else:
        say(f"{len(rows) - n_err}/{len(rows)} nuclei done; table: {out / 'summary.csv'}")
    return 1 if n_err else 0
