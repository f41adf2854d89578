"""The figure of one nucleus's results folder, drawn from the files on disk alone.

:func:`nucleus_figure` reads what :mod:`mollifier.chromatin.outputs` wrote
(``density.npy``, ``nucleus.npy``, ``mask.npy``, ``phi_h.npy``, ``lambda.npy``, and when
present ``lambda_std.npy``, ``truth_lambda.npy``, ``domains.csv``, plus
``summary.json``) and writes ``figure.png`` beside them: input density, nucleus mask
with the DBSCAN domain centres, ``phi_h``, the ``lambda`` map, its histogram with the
baseline, a text panel, and (when there is one) the true map and the seed spread.
Needs matplotlib (``pip install 'mollifier[plot]'``); imports nothing of mollifier but
:mod:`mollifier.runtime`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.files import atomic_write

__all__ = ["nucleus_figure"]


def _matplotlib() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("figures need the optional package 'matplotlib': pip install 'mollifier[plot]'") from exc
    return plt


def _load(folder: Path, name: str) -> np.ndarray | None:
    path = folder / name
    return np.load(path, allow_pickle=False) if path.is_file() else None


def _domains(folder: Path) -> np.ndarray:
    path = folder / "domains.csv"
    if not path.is_file():
        return np.zeros((0, 3))
    rows = [line.split(",") for line in path.read_text().splitlines()[1:] if line.strip()]
    return np.asarray(rows, dtype=float).reshape(-1, 3)


def _fmt(value: Any, spec: str = ".4g") -> str:
    return "n/a" if value is None or (isinstance(value, float) and not np.isfinite(value)) else format(value, spec)


def nucleus_figure(folder: str | Path, name: str = "figure.png") -> Path:
    """Draw ``folder/figure.png`` from the results files in ``folder``.

    Raises:
        FileNotFoundError: ``summary.json`` or a map is missing.
        ImportError: matplotlib is not installed.
    """
    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text())
    density, region, lam, phi_h = (_load(folder, n) for n in ("density.npy", "mask.npy", "lambda.npy", "phi_h.npy"))
    if density is None or region is None or lam is None or phi_h is None:
        raise FileNotFoundError(f"{folder}: density.npy, mask.npy, lambda.npy and phi_h.npy are needed for the figure")
    nucleus = _load(folder, "nucleus.npy")
    spread, truth = _load(folder, "lambda_std.npy"), _load(folder, "truth_lambda.npy")
    plt = _matplotlib()
    extra = spread is not None or truth is not None
    fig, axes = plt.subplots(2, 4 if extra else 3, figsize=(16 if extra else 12, 7.5))
    ax = [axes[0, 0], axes[0, 1], axes[0, 2], axes[1, 0], axes[1, 1], axes[1, 2]]
    im = ax[0].imshow(density, cmap="magma")
    ax[0].set_title("input density")
    fig.colorbar(im, ax=ax[0], shrink=0.8)
    ax[1].imshow(density, cmap="gray")
    if nucleus is not None:
        ax[1].contour(nucleus.astype(float), levels=[0.5], colors="c", linewidths=1)
    ax[1].contour(region.astype(float), levels=[0.5], colors="y", linewidths=0.6)
    ax[1].set_title(f"nucleus {summary.get('nucleus', 1)}/{summary.get('nuclei_in_field', 1)} "
                    f"({int(region.sum())} px analysed)")
    im = ax[2].imshow(phi_h, cmap="viridis")
    ax[2].set_title("phi_h (heterochromatin)")
    fig.colorbar(im, ax=ax[2], shrink=0.8)
    finite = lam[np.isfinite(lam)]
    lo, hi = (np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0))
    im = ax[3].imshow(lam, cmap="coolwarm", vmin=lo, vmax=hi)
    ax[3].set_title("lambda = Gamma_me/Gamma_ac")
    fig.colorbar(im, ax=ax[3], shrink=0.8)
    if extra:
        seeds = (summary.get("training") or {}).get("seeds", 1)
        for row, (image, title, cmap, limits) in enumerate((
            (truth, "true lambda (synthetic input)", "coolwarm", (lo, hi)),
            (spread, f"lambda spread over {seeds} seeds (std)", "magma", (None, None)),
        )):
            a = axes[row, 3]
            if image is None:
                a.axis("off")
                continue
            im = a.imshow(image, cmap=cmap, vmin=limits[0], vmax=limits[1])
            a.set_title(title)
            fig.colorbar(im, ax=a, shrink=0.8)
            a.set_xticks([])
            a.set_yticks([])
    centres = _domains(folder)
    pixel = summary.get("pixel_size_nm") or (summary.get("model") or {}).get("pixel_nm_used")
    if len(centres) and pixel:
        x0, _, y0, _ = summary.get("extent_nm") or (0.0, 0.0, 0.0, 0.0)
        scale = 1.0 if summary.get("domain_unit") == "px" else float(pixel)
        shift = (0.0, 0.0) if summary.get("domain_unit") == "px" else (x0, y0)
        ax[1].plot((centres[:, 0] - shift[0]) / scale - 0.5, (centres[:, 1] - shift[1]) / scale - 0.5, ".", ms=2,
                   color="y")
    if finite.size:
        ax[4].hist(finite, bins=50, color="0.5")
    median = summary.get("lambda_median")
    if median is not None and np.isfinite(median):
        ax[4].axvline(median, color="k", label=f"median {median:.3g}")
    ratio = summary.get("baseline_ratio")
    if ratio is not None and np.isfinite(ratio):
        ax[4].axvline(ratio, color="r", ls="--", label=f"DBSCAN baseline {ratio:.3g}")
    ax[4].set_title("lambda inside the nucleus")
    if ax[4].get_legend_handles_labels()[0]:
        ax[4].legend(fontsize=8)
    ax[5].axis("off")
    model = summary.get("model") or {}
    text = [
        f"mode: {summary.get('mode')}",
        f"lambda mean {_fmt(summary.get('lambda_mean'))}, median {_fmt(median)}",
        f"heterochromatin fraction {_fmt(summary.get('heterochromatin_fraction'), '.3f')}",
        f"domains {summary.get('domain_count')}, R {_fmt(summary.get('domain_radius'))} {summary.get('domain_unit')}, "
        f"d {_fmt(summary.get('domain_spacing'))} {summary.get('domain_unit')}",
        f"baseline Gamma_me/Gamma_ac {_fmt(ratio)}",
        f"pixel {_fmt(model.get('pixel_nm_used'))} nm, radius {_fmt(model.get('radius_nm'), '.0f')} nm",
        f"runtime {_fmt(summary.get('runtime_seconds'), '.1f')} s",
    ]
    if summary.get("pearson") is not None:
        text.append(f"Pearson vs truth {summary['pearson']:.3f}")
    for warning in summary.get("warnings") or []:
        text.append(f"WARNING: {warning[:90]}")
    ax[5].text(0, 1, "\n".join(text), va="top", family="monospace", fontsize=8)
    for a in ax[:4]:
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    target = folder / name
    atomic_write(target, lambda h: fig.savefig(h, format="png", dpi=110))
    plt.close(fig)
    return target
