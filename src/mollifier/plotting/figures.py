"""Figures of a run, drawn only from what the run wrote (``arrays.npz``, ``history.json``).

Needs matplotlib (``pip install 'mollifier[plot]'``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["require_matplotlib", "save_run_figures"]


def require_matplotlib() -> Any:
    """Import matplotlib with a headless backend, or explain how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("figures need matplotlib: pip install 'mollifier[plot]'") from exc
    return plt


def _save(fig: Any, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)
    return path


def save_run_figures(run_dir: str | Path, title: str = "") -> list[Path]:
    """Write ``figures/overview.png`` and ``figures/loss.png`` for a finished run."""
    plt = require_matplotlib()
    run = Path(run_dir)
    arrays = dict(np.load(run / "arrays.npz"))
    history = json.loads((run / "history.json").read_text()) if (run / "history.json").exists() else []
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
    out = run / "figures"
    out.mkdir(exist_ok=True)
    name = metrics.get("parameter", "lambda")
    mode = metrics.get("recovery", "direct")
    truth = arrays.get(f"true_{name}")
    estimate = arrays.get(f"{mode}_{name}")
    fit = arrays["fit"][0]
    observed = arrays["observed"][0] if "observed" in arrays else np.full(fit.shape, np.nan)  # scattered data: no image
    if "domain" in arrays:  # show the fields where the problem lives
        outside = ~arrays["domain"].astype(bool)
        fit = np.where(outside, np.nan, fit)
        observed = np.where(outside, np.nan, observed)
        if truth is not None and truth.shape == outside.shape:
            truth = np.where(outside, np.nan, truth)
        if estimate is not None and estimate.shape == outside.shape:
            estimate = np.where(outside, np.nan, estimate)
    # a 3-D problem is shown on the middle plane of its last axis (e.g. the middle time)
    fit, observed = _plane(fit), _plane(observed)
    truth = _plane(truth) if truth is not None else None
    estimate = _plane(estimate) if estimate is not None else None
    paths = []
    ndim = observed.ndim
    fig, axes = plt.subplots(1, 5 if ndim > 1 else 4, figsize=(21 if ndim > 1 else 17, 3.8))
    label = (
        f"{title or metrics.get('problem', '')} - engine {metrics.get('engine')} - backbone {metrics.get('backbone')} - "
        f"noise {metrics.get('noise', 0):.0%} - {name} ({mode}) Pearson {_fmt(metrics.get('parameter_pearson'))}, "
        f"rel. L2 {_fmt(metrics.get('parameter_relative_l2'))}"
    )
    fig.suptitle(label, fontsize=10)
    if ndim == 1:
        x = arrays["axis0"]
        mask = arrays["mask"]
        axes[0].plot(x[mask], observed[mask], ".", ms=2, color="0.5", label="data")
        axes[0].plot(x, fit, lw=1.5, label="fit")
        axes[0].set_title("data and fit")
        axes[0].legend()
        axes[1].plot(x, fit - observed, lw=0.8)
        axes[1].set_title("fit - data")
        if truth is not None and estimate is not None:
            axes[2].plot(x, truth, lw=2, label="true")
            axes[2].plot(x, estimate, lw=1.2, label="recovered")
            axes[2].legend()
            axes[2].set_title(f"{name}: true vs recovered")
            axes[3].plot(truth, estimate, ".", ms=2)
    else:
        for ax, img, title_ in ((axes[0], observed, "data"), (axes[1], fit, "fit")):
            im = ax.imshow(img.T, origin="lower", cmap="viridis")
            ax.set_title(title_)
            fig.colorbar(im, ax=ax, shrink=0.8)
        if truth is not None and estimate is not None:
            lo, hi = np.nanpercentile(truth, [1, 99])
            for ax, img, title_ in ((axes[2], truth, f"true {name}"), (axes[3], estimate, f"recovered {name}")):
                im = ax.imshow(img.T, origin="lower", cmap="magma", vmin=lo, vmax=hi)
                ax.set_title(title_)
                fig.colorbar(im, ax=ax, shrink=0.8)
            axes = [*axes[:3], axes[4]]
            axes[3].plot(truth.ravel(), estimate.ravel(), ".", ms=1, alpha=0.3)
    if truth is not None and estimate is not None:
        lims = [float(np.nanmin(truth)), float(np.nanmax(truth))]
        axes[3].plot(lims, lims, "k--", lw=0.8)
        axes[3].set_xlabel(f"true {name}")
        axes[3].set_ylabel(f"recovered {name}")
        axes[3].set_title("recovered vs true")
    paths.append(_save(fig, out / "overview.png"))
    plt.close(fig)
    if history:
        fig, ax = plt.subplots(figsize=(6, 3.8))
        steps = np.arange(1, len(history) + 1)
        for key in ("loss", "data", "residual"):
            ax.semilogy(steps, [h.get(key, np.nan) for h in history], label=key, lw=1)
        errs = [(i + 1, h["parameter_error"]) for i, h in enumerate(history) if "parameter_error" in h]
        if errs:
            ax2 = ax.twinx()
            ax2.plot(*zip(*errs), "k.-", ms=3, lw=0.8, label=f"{name} rel. L2")
            ax2.set_ylabel(f"{name} relative L2")
            ax2.legend(loc="upper center")
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
        ax.legend(loc="upper right")
        ax.set_title("training")
        paths.append(_save(fig, out / "loss.png"))
        plt.close(fig)
    return paths


def _plane(array: np.ndarray) -> np.ndarray:
    """The middle plane of the last axis of a 3-D array; 1-D and 2-D arrays unchanged."""
    return array[..., array.shape[-1] // 2] if array.ndim == 3 else array


def _fmt(value: Any) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"
