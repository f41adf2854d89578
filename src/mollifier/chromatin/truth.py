"""Synthetic nuclei with a known answer on disk, and the packaged sample.

:func:`write_synthetic` runs :func:`~mollifier.imaging.synthetic_nucleus` and writes
``NAME.csv`` (or ``NAME.csv.xz``; ThunderSTORM columns) next to a *truth sidecar*
``NAME.truth.npz`` holding the ground-truth ``lambda`` map (image order ``[iy, ix]``),
the nucleus mask, the field of view ``extent_nm`` and ``pixel_size_nm``.
``mollifier chromatin`` looks for that sidecar beside every localisation table: when
present, the density map is rendered on the truth's pixel grid and the summary gains
``pearson`` (inside the mask) against the true map.

The packaged sample (:func:`sample_path`) was made by this module::

    python -m mollifier.chromatin.truth src/mollifier/data --name sample_nucleus \\
        --emitters 300000 --seed 7 --compress

(a 10 um nucleus at 5 % background, 300 000 emitters, ~630 000 localisations).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..imaging import ImagingError
from ..imaging.readers import uncompressed_name
from ..runtime.files import atomic_write

__all__ = ["Truth", "truth_path", "read_truth", "write_synthetic", "sample_path"]

@dataclass
class Truth:
    """Ground truth of a synthetic input (maps in image order ``[iy, ix]``)."""

    lambda_map: np.ndarray
    mask: np.ndarray
    extent_nm: tuple[float, float, float, float]
    pixel_size_nm: float
    params: dict[str, Any]


def truth_path(table: str | Path) -> Path:
    """``NAME.truth.npz`` beside ``NAME.csv`` / ``NAME.csv.xz`` / ``NAME.tsv`` ..."""
    p = Path(table)
    return p.with_name(f"{Path(uncompressed_name(p)).stem}.truth.npz")


def read_truth(table: str | Path) -> Truth | None:
    """The truth sidecar of a localisation table, or None when there is none.

    Raises:
        ImagingError: the sidecar exists but is unreadable or incomplete.
    """
    path = truth_path(table)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            lam = np.asarray(z["lambda"], dtype=float)
            mask = np.asarray(z["mask"], dtype=bool)
            extent = tuple(float(v) for v in z["extent_nm"])
            pixel = float(z["pixel_size_nm"])
            params = json.loads(str(z["params"])) if "params" in z else {}
    except (OSError, KeyError, ValueError) as exc:
        raise ImagingError(f"truth file {str(path)!r} is unreadable or incomplete: {exc}") from exc
    if lam.shape != mask.shape or len(extent) != 4:
        raise ImagingError(f"truth file {str(path)!r}: lambda {lam.shape}, mask {mask.shape}, extent {extent} do not fit")
    return Truth(lam, mask, extent, pixel, params)  # type: ignore[arg-type]


def write_synthetic(folder: str | Path, name: str = "nucleus", *, compress: bool = False, **generator: Any) -> Path:
    """Generate a synthetic nucleus and write ``NAME.csv[.xz]`` and ``NAME.truth.npz``.

    Args:
        folder: Output folder (created).
        name: File name stem.
        compress: Write ``NAME.csv.xz`` with integer-nm coordinates (small files)
            instead of ``NAME.csv`` with full precision.
        **generator: Arguments of :func:`~mollifier.imaging.synthetic_nucleus`
            (``seed``, ``n_emitters``, ``background_fraction``, ...).

    Returns:
        The localisation table's path.
    """
    import lzma

    from ..imaging import synthetic_nucleus

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    s = synthetic_nucleus(**generator)
    if compress:
        t = s.table
        rows = np.column_stack([t["frame"], np.rint(t["x_nm"]), np.rint(t["y_nm"])]).astype(np.int64)
        header = '"frame","x [nm]","y [nm]"\n'
        body = "\n".join(",".join(map(str, r)) for r in rows.tolist()) + "\n"
        data = lzma.compress((header + body).encode(), preset=9 | lzma.PRESET_EXTREME)
        table = out / f"{name}.csv.xz"
        atomic_write(table, lambda h: h.write(data))
    else:
        table = s.write_csv(out / f"{name}.csv")
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.params.items()}

    def save(h: Any) -> None:
        np.savez_compressed(
            h,
            **{"lambda": s.lambda_true.astype(np.float32)},
            mask=s.mask,
            extent_nm=np.asarray(s.extent_nm, dtype=float),
            pixel_size_nm=np.float64(s.pixel_size_nm),
            params=np.str_(json.dumps(params)),
        )

    atomic_write(truth_path(table), save)
    return Path(table)


def sample_path() -> Path:
    """The packaged sample nucleus (localisations, ``.csv.xz``, with its truth sidecar)."""
    path = Path(str(resources.files("mollifier") / "data" / "sample_nucleus.csv.xz"))
    if not path.is_file():
        raise FileNotFoundError(f"the packaged sample is missing ({path}); reinstall mollifier")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mollifier.chromatin.truth", description=write_synthetic.__doc__.splitlines()[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--name", default="nucleus")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--emitters", type=float, default=1_000_000, help="expected emitters in the nucleus (default 1e6)")
    p.add_argument("--background", type=float, default=0.05, help="background fraction of localisations (default 0.05)")
    p.add_argument("--compress", action="store_true", help="write NAME.csv.xz with integer-nm coordinates")
    a = p.parse_args(argv)
    table = write_synthetic(a.folder, a.name, compress=a.compress, seed=a.seed, n_emitters=a.emitters, background_fraction=a.background)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
