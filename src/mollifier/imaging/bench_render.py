"""Time and peak memory of reading and rendering a large localisation table.

``python -m mollifier.imaging.bench_render N`` writes (once) a synthetic ThunderSTORM
CSV of ``N`` localisations to ``/tmp/mollifier-bench/locs-N.csv`` -- the synthetic
nucleus of :func:`~mollifier.imaging.synthetic_nucleus` (10^6 emitters, ~2.1 million
localisations), repeated with fresh 10 nm jitter until ``N`` rows -- then, in a fresh
process, streams it the way ``mollifier chromatin`` does (:func:`~.readers.open_table`,
chunks of 2^19 rows, :func:`~.table.select`, :class:`~.render.DensityAccumulator` at
100 nm) and prints one JSON line: localisations, seconds, the process's peak resident
memory (``ru_maxrss``, interpreter and torch included) and its resident memory before
reading. ``--render precision`` blurs each localisation by its precision.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "measure", "write_table"]


def write_table(n: int, path: Path, seed: int = 0) -> Path:
    """A ThunderSTORM CSV of ``n`` localisations (the synthetic nucleus, repeated with jitter)."""
    from .synthetic import synthetic_nucleus
    from .writers import write_csv

    base = synthetic_nucleus(seed=seed, n_emitters=min(1_000_000, max(n / 2.1, 1000))).table
    rng = np.random.default_rng(seed + 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    size = base["x_nm"].size
    with tmp.open("wb") as out:
        written = 0
        block = 0
        while written < n:
            take = min(size, n - written)
            part = {
                "frame": base["frame"][:take] + block * 20_000,
                "x_nm": base["x_nm"][:take] + rng.normal(0, 10, take),
                "y_nm": base["y_nm"][:take] + rng.normal(0, 10, take),
                "sigma_nm": base["sigma_nm"][:take],
                "intensity_photon": base["intensity_photon"][:take],
                "uncertainty_nm": base["uncertainty_nm"][:take],
                "id": np.arange(written + 1, written + take + 1),
            }
            piece = path.with_name(path.name + f".{block}")
            write_csv(piece, part)
            lines = piece.read_bytes()
            out.write(lines if block == 0 else lines.split(b"\n", 1)[1])
            piece.unlink()
            written += take
            block += 1
    tmp.replace(path)
    return path


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def measure(path: Path, render: str = "histogram", pixel_nm: float = 100.0) -> dict[str, float | int | list[int]]:
    """Stream ``path`` into a density map; time and memory of this process."""
    from .readers import open_table
    from .render import DensityAccumulator
    from .table import Selection, SelectionCounts, select

    before = _rss_kb()
    start = time.perf_counter()
    stream = open_table(path)
    acc = DensityAccumulator(pixel_nm, method=render)  # type: ignore[arg-type]
    counts = SelectionCounts()
    for chunk in stream.chunks():
        part = select(chunk, Selection(), counts)
        acc.add(part.x_nm, part.y_nm, part.precision_nm)
    image, _ = acc.image()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"file": str(path), "render": render, "localizations": counts.kept, "seconds": round(seconds, 2),
            "peak_rss_mb": round(peak / 1024, 1), "rss_before_read_mb": round(before / 1024, 1),
            "map_pixels": list(image.shape), "map_sum": float(image.sum())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mollifier.imaging.bench_render", description=__doc__.splitlines()[0])
    p.add_argument("n", type=int, nargs="?", help="localisations (e.g. 2000000)")
    p.add_argument("--folder", type=Path, default=Path("/tmp/mollifier-bench"))
    p.add_argument("--render", choices=("histogram", "precision"), default="histogram")
    p.add_argument("--write", type=Path, metavar="PATH", help=argparse.SUPPRESS)
    p.add_argument("--measure", type=Path, metavar="PATH", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.write is not None:
        write_table(int(a.n), a.write)
        return 0
    if a.measure is not None:
        print(json.dumps(measure(a.measure, a.render)))
        return 0
    if a.n is None or a.n < 1:
        p.error("give N, the number of localisations (>= 1)")
    path = a.folder / f"locs-{a.n}.csv"
    if not path.is_file():
        print(f"writing {path} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "mollifier.imaging.bench_render", str(a.n), "--write", str(path)], check=True)
    out = subprocess.run([sys.executable, "-m", "mollifier.imaging.bench_render", "--measure", str(path), "--render",
                          a.render], check=True, capture_output=True, text=True)
    print(out.stdout.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
