r"""One nucleus -> a spatial map of the rate ratio ``lambda = Gamma_me / Gamma_ac``.

Steps (:func:`load_input` then :func:`analyse_nucleus`):

1. Input. A localisation table (CSV/TSV) is rendered with
   :func:`~mollifier.imaging.density_map` (2-D histogram) at ``pixel_size_nm``; by
   default the pixel is chosen so that the nucleus spans about ``target_px`` = 64
   pixels (the nucleus is found first on a coarse map of 128 pixels a side). An image
   (TIFF/PNG/NPY) is read with :func:`~mollifier.imaging.read_image`.
2. Nucleus mask: given (file) or automatic (:func:`~mollifier.imaging.nucleus_mask`,
   Otsu on the smoothed density).
3. Volume fractions :func:`~mollifier.imaging.fractions_from_density` (``phi_c`` = 0.8,
   contrast 0.4; see that module for the documented rule).
4. The chromatin inverse problem (``method.md`` section 3, the residual and direct
   formulas of :func:`~mollifier.problems.benchmarks.chromatin_fields`) on the pixel
   grid, cropped to the mask's bounding box plus a margin, observations ``phi_d``
   inside the mask only, ``boundary="valid"``.

Length scale. The model is non-dimensional, so the pixel needs a length in model
units. Default: **one pixel = 5/64 model units**, the grid spacing of the benchmark
(``[0, 5)`` on 64 cells) and of :func:`~mollifier.imaging.synthetic_nucleus` (``[0,
10]`` on 128 cells); with the default pixel choice (nucleus ~64 px) the nucleus is then
about 5 model units across, whatever its size in nm. The interface parameter is
``l = 0.03`` (the authors' value, also the synthetic generator's). Both are modelling
assumptions, like ``phi_c`` and the contrast, and are recorded in ``summary.json``.

Training uses ``TRAINING_DEFAULTS["chromatin"]`` (3000 Adam steps, residual warm-up
1000, learned rate-ratio network); ``preview=True`` uses the network-free estimate
instead (mollify the data, apply the direct formula; instant), run on the whole
cropped frame with ``phi_d`` extended outside the mask by its nearest inside value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy import ndimage

from ..core.grid import Grid
from ..core.operators import biharmonic, laplacian
from ..imaging import (
    ImagingError,
    density_map,
    find_nucleus_mask,
    fractions_from_density,
    nucleus_mask,
    read_image,
    read_localizations,
)
from ..inverse.problem import InverseProblem, Observations, UnknownField
from .baseline import BaselineResult, baseline_from_image, baseline_from_points, heterochromatin_threshold

__all__ = [
    "DEFAULT_SPACING",
    "NucleusInput",
    "NucleusResult",
    "IMAGE_SUFFIXES",
    "load_input",
    "build_problem",
    "analyse_nucleus",
    "write_outputs",
]

#: Model length units per pixel (the benchmark's grid spacing, 5/64).
DEFAULT_SPACING = 5.0 / 64.0
#: Model constants (method.md section 3).
PHI_MAX = 0.7
L_INTERFACE = 0.03
#: Mollifier radius in cells (the benchmark's).
RADIUS_CELLS = 5
IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy"}


@dataclass
class NucleusInput:
    """A density image of one nucleus and where it came from (maps ``[iy, ix]``).

    Attributes:
        density: Density image (localisations per pixel, or image intensity).
        mask: Boolean nucleus mask.
        pixel_size_nm: Pixel side in nm (None if unknown, image input only).
        kind: ``"localisations"`` or ``"image"``.
        source: Input file.
        points_nm: ``(N, 2)`` localisations for localisation input, else None.
        extent_nm: ``(x0, x1, y0, y1)`` of the density map (localisation input).
        notes: Human-readable notes.
    """

    density: np.ndarray
    mask: np.ndarray
    pixel_size_nm: float | None
    kind: str
    source: Path | None = None
    points_nm: np.ndarray | None = None
    extent_nm: tuple[float, float, float, float] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class NucleusResult:
    """Everything :func:`analyse_nucleus` produced (maps on the input's full frame)."""

    lambda_map: np.ndarray
    phi_h: np.ndarray
    phi_d: np.ndarray
    mask: np.ndarray
    baseline: BaselineResult
    summary: dict[str, Any]
    input: NucleusInput


def _auto_pixel_size(points: np.ndarray, target_px: int) -> tuple[float, list[str]]:
    """Pixel size so that the nucleus spans about ``target_px`` pixels."""
    span = float(max(np.ptp(points[:, 0]), np.ptp(points[:, 1])))
    if not span > 0:
        raise ImagingError("all localisations are at one point: cannot choose a pixel size")
    coarse_px = span / 128.0
    coarse = density_map(points, coarse_px)
    try:
        m = find_nucleus_mask(coarse, smooth_px=2.0)
        rows, cols = np.nonzero(m)
        extent = max(np.ptp(rows) + 1, np.ptp(cols) + 1) * coarse_px
        note = f"pixel size {extent / target_px:.4g} nm chosen so that the nucleus (~{extent:.0f} nm) spans ~{target_px} px"
    except ImagingError:
        extent = span
        note = f"pixel size {extent / target_px:.4g} nm chosen from the localisations' bounding box (no nucleus found on a coarse map)"
    return extent / target_px, [note]


def load_input(
    path: str | Path,
    *,
    pixel_size_nm: float | None = None,
    mask: str | Path | np.ndarray | None = None,
    x_col: str | None = None,
    y_col: str | None = None,
    target_px: int = 64,
) -> NucleusInput:
    """Read one nucleus: localisation table or image -> density, mask.

    Args:
        path: CSV/TSV/TXT localisations or a TIFF/PNG/NPY image.
        pixel_size_nm: Density-map pixel (localisations; default chosen so the nucleus
            spans ``target_px`` pixels) or the image's pixel size (overrides the file's).
        mask: Mask file/array, or None for automatic.
        x_col, y_col: Coordinate column names (default: detected).
        target_px: Pixels across the nucleus for the automatic pixel size.

    Raises:
        ImagingError: unreadable input, no coordinate columns, bad mask, ...
    """
    path = Path(path)
    if not path.exists():
        raise ImagingError(f"input {str(path)!r} not found")
    if pixel_size_nm is not None and not pixel_size_nm > 0:
        raise ImagingError(f"--pixel-size must be > 0; got {pixel_size_nm}")
    notes: list[str] = []
    if path.suffix.lower() in IMAGE_SUFFIXES:
        img = read_image(path, pixel_size_nm=pixel_size_nm)
        notes += img.notes
        if img.pixel_size_nm is None:
            notes.append("pixel size unknown: baseline lengths are in pixels")
        density = img.data
        m = nucleus_mask(density, mask)
        return NucleusInput(density, m, img.pixel_size_nm, "image", path, notes=notes)
    table = read_localizations(path, x_col, y_col)
    notes += table.notes
    pts = table.points
    if len(pts) < 10:
        raise ImagingError(f"localisation file {str(path)!r} has only {len(pts)} localisations")
    if pixel_size_nm is None:
        pixel_size_nm, more = _auto_pixel_size(pts, target_px)
        notes += more
    density, extent = density_map(pts, float(pixel_size_nm), return_extent=True)
    if min(density.shape) < 16:
        raise ImagingError(f"density map is only {density.shape[0]}x{density.shape[1]} px at {pixel_size_nm:g} nm; use a smaller --pixel-size")
    m = nucleus_mask(density, mask)
    return NucleusInput(density, m, float(pixel_size_nm), "localisations", path, pts, tuple(float(e) for e in extent), notes)


def _crop_box(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    rows, cols = np.nonzero(mask)
    ny, nx = mask.shape
    return (
        slice(max(int(rows.min()) - margin, 0), min(int(rows.max()) + margin + 1, ny)),
        slice(max(int(cols.min()) - margin, 0), min(int(cols.max()) + margin + 1, nx)),
    )


def _nearest_fill(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Values outside ``mask`` replaced by the nearest inside value."""
    _, (iy, ix) = ndimage.distance_transform_edt(~mask, return_indices=True)
    return values[iy, ix]


def build_problem(
    phi_d: np.ndarray,
    mask: np.ndarray,
    *,
    spacing: float = DEFAULT_SPACING,
    phi_c: float = 0.8,
    phi_max: float = PHI_MAX,
    l: float = L_INTERFACE,  # noqa: E741
    truth: np.ndarray | None = None,
    observe: np.ndarray | None = None,
) -> InverseProblem:
    """The chromatin inverse problem on a pixel grid (image order, axis 0 = y).

    Args:
        phi_d: ``phi_h - phi_e`` on the grid (finite where observed).
        mask: Nucleus mask (``metric_mask`` when ``truth`` is given).
        spacing: Model length units per pixel.
        phi_c, phi_max, l: Model constants.
        truth: Known ``lambda`` (validation), or None.
        observe: Where the data are observed (default: ``mask``).
    """
    from ..problems.benchmarks import chromatin_equations, equilibrium_guess

    obs_mask = np.asarray(mask if observe is None else observe, dtype=bool)
    grid = Grid(tuple(phi_d.shape), (0.0, 0.0), (float(spacing), float(spacing)))
    residual, direct = chromatin_equations(phi_c, phi_max, l)
    values = np.where(obs_mask & np.isfinite(phi_d), phi_d, 0.0)
    guess = equilibrium_guess(values, phi_c)
    return InverseProblem(
        name="chromatin-image",
        grid=grid,
        observations=Observations(values, mask=obs_mask),
        derivatives={"d0": (1, 0), "d1": (0, 1), "lap": laplacian(2), "bilap": biharmonic(2)},
        unknowns=[UnknownField("lambda", init=1.0, positive=True)],
        residual=residual,
        direct=direct,
        truth={"lambda": np.asarray(truth, dtype=float)} if truth is not None else {},
        boundary="valid",
        radius=RADIUS_CELLS * spacing,
        residual_scale=1.0,
        residual_weight=0.01,
        field_names=("phi_d",),
        metric_mask=np.asarray(mask, dtype=bool) if truth is not None else None,
        baselines={"equilibrium_guess": guess} if truth is not None else {},
        description="chromatin steady state on an image, 0 = lap(mu_d) + 2(lambda phi_e - phi_h)",
    )


def analyse_nucleus(
    inp: NucleusInput,
    *,
    steps: int | None = None,
    preview: bool = False,
    spacing: float = DEFAULT_SPACING,
    phi_c: float = 0.8,
    contrast: float = 0.4,
    l: float = L_INTERFACE,  # noqa: E741
    truth: np.ndarray | None = None,
    device: str = "cpu",
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> NucleusResult:
    """Recover the ``lambda`` map of one nucleus (see the module docstring).

    Args:
        inp: From :func:`load_input`.
        steps: Adam steps (default: ``TRAINING_DEFAULTS["chromatin"]``); the residual
            warm-up is capped at a third of them.
        preview: Network-free estimate only (no training).
        spacing: Model length units per pixel.
        phi_c, contrast: Density -> fraction rule.
        l: Interface parameter of the model.
        truth: Ground-truth ``lambda`` on the input's frame (validation only): adds
            ``pearson`` to the summary.
        device: Torch device for training.
        seed: Initialisation seed.
        log: Progress sink.
    """
    from ..inverse.metrics import pearson
    from ..inverse.training import TrainConfig, train
    from ..problems.benchmarks import TRAINING_DEFAULTS

    start = time.perf_counter()
    mask = inp.mask
    fr = fractions_from_density(inp.density, mask, phi_c=phi_c, contrast=contrast)
    box = _crop_box(mask, RADIUS_CELLS + 3)
    m = mask[box]
    phi_d = fr.phi_d[box]
    t_crop = None if truth is None else np.asarray(truth, dtype=float)[box]
    if truth is not None and np.shape(truth) != mask.shape:
        raise ValueError(f"truth has shape {np.shape(truth)}; expected {mask.shape}")
    if preview:
        from ..network_free import estimate_parameter

        full = _nearest_fill(np.nan_to_num(phi_d), m)
        problem = build_problem(full, m, spacing=spacing, phi_c=phi_c, l=l, truth=t_crop, observe=np.ones_like(m))
        res = estimate_parameter(problem, "mollifier", RADIUS_CELLS * spacing)
        lam_crop = np.asarray(res.estimates["lambda"], dtype=float)
        mode = "preview (network-free mollified direct formula)"
        train_info: dict[str, Any] = {"radius_cells": RADIUS_CELLS}
    else:
        problem = build_problem(phi_d, m, spacing=spacing, phi_c=phi_c, l=l, truth=t_crop)
        cfg = dict(TRAINING_DEFAULTS["chromatin"])
        if steps is not None:
            if steps < 1:
                raise ValueError(f"--steps must be >= 1; got {steps}")
            cfg["steps"] = int(steps)
            cfg["residual_warmup"] = min(cfg.get("residual_warmup", 0), int(steps) // 3)
        config = TrainConfig(**cfg, device=device, seed=seed, checkpoint_every=0, log_every=0)
        if log:
            log(f"  training {config.steps} steps on a {m.shape[0]}x{m.shape[1]} grid ({int(m.sum())} px in the nucleus)")
        result = train(problem, config)
        key = f"{config.recovery}_lambda"
        lam_crop = np.asarray(result.arrays[key], dtype=float).reshape(m.shape)
        mode = f"trained ({config.steps} steps, recovery {config.recovery})"
        train_info = {k: result.metrics.get(k) for k in ("train_seconds", "step_seconds", "steps_done", "final_loss") if k in result.metrics}
        train_info["direct_lambda_mean_in_mask"] = float(np.nanmean(np.asarray(result.arrays.get("direct_lambda", np.full(m.shape, np.nan))).reshape(m.shape)[m]))
    lam = np.full(mask.shape, np.nan)
    lam[box] = np.where(m, lam_crop, np.nan)

    if inp.kind == "localisations" and inp.points_nm is not None:
        baseline = baseline_from_points(inp.points_nm, inp.density, mask, inp.extent_nm, inp.pixel_size_nm)
    else:
        baseline = baseline_from_image(inp.density, mask, inp.pixel_size_nm)
    t_het = heterochromatin_threshold(inp.density, mask)
    inside = lam[mask]
    inside = inside[np.isfinite(inside)]
    runtime = time.perf_counter() - start
    summary: dict[str, Any] = {
        "input": str(inp.source) if inp.source else None,
        "status": "ok",
        "kind": inp.kind,
        "mode": mode,
        "shape": list(mask.shape),
        "pixel_size_nm": inp.pixel_size_nm,
        "nucleus_pixels": int(mask.sum()),
        "nucleus_area_um2": float(mask.sum() * inp.pixel_size_nm**2 / 1e6) if inp.pixel_size_nm else None,
        "lambda_mean": float(inside.mean()) if inside.size else float("nan"),
        "lambda_median": float(np.median(inside)) if inside.size else float("nan"),
        "lambda_p10": float(np.percentile(inside, 10)) if inside.size else float("nan"),
        "lambda_p90": float(np.percentile(inside, 90)) if inside.size else float("nan"),
        "heterochromatin_fraction": float(((inp.density > t_het) & mask).sum() / mask.sum()),
        "phi_h_mean": float(np.nanmean(fr.phi_h[mask])),
        "equilibrium_lambda_mean": float(np.nanmean((fr.phi_h / fr.phi_e)[mask])),
        "domain_count": baseline.n_domains,
        "domain_radius": baseline.radius_nm,
        "domain_spacing": baseline.spacing_nm,
        "domain_unit": baseline.unit,
        "baseline_ratio": baseline.ratio,
        "baseline": baseline.as_dict(),
        "runtime_seconds": runtime,
        "training": train_info,
        "model": {
            "spacing_per_pixel": spacing,
            "phi_c": phi_c,
            "contrast": contrast,
            "phi_max": PHI_MAX,
            "l": l,
            "radius_cells": RADIUS_CELLS,
            "fraction_rule": fr.params["rule"],
        },
        "notes": list(inp.notes),
    }
    if truth is not None:
        tr = np.asarray(truth, dtype=float)
        summary["pearson"] = pearson(np.nan_to_num(lam), tr, mask)
        summary["pearson_equilibrium_guess"] = pearson(np.nan_to_num(fr.phi_h / fr.phi_e), tr, mask)
    return NucleusResult(lam, fr.phi_h, fr.phi_d, mask, baseline, summary, inp)


def _save_figure(result: NucleusResult, path: Path) -> Path:
    from ..inverse.storage import atomic_write
    from ..plotting.figures import require_matplotlib

    plt = require_matplotlib()
    inp = result.input
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.5))
    ax = axes.ravel()
    im = ax[0].imshow(inp.density, cmap="magma")
    ax[0].set_title("input density")
    fig.colorbar(im, ax=ax[0], shrink=0.8)
    ax[1].imshow(inp.density, cmap="gray")
    ax[1].contour(result.mask.astype(float), levels=[0.5], colors="c", linewidths=1)
    ax[1].set_title(f"nucleus mask ({int(result.mask.sum())} px)")
    im = ax[2].imshow(np.where(result.mask, result.phi_h, np.nan), cmap="viridis")
    ax[2].set_title("phi_h (heterochromatin)")
    fig.colorbar(im, ax=ax[2], shrink=0.8)
    lam = result.lambda_map
    finite = lam[np.isfinite(lam)]
    lo, hi = (np.percentile(finite, [2, 98]) if finite.size else (0, 1))
    im = ax[3].imshow(lam, cmap="coolwarm", vmin=lo, vmax=hi)
    ax[3].set_title("lambda = Gamma_me / Gamma_ac")
    fig.colorbar(im, ax=ax[3], shrink=0.8)
    c = result.baseline.centres
    if len(c) and inp.pixel_size_nm:
        x0, _, y0, _ = inp.extent_nm or (0.0, 0.0, 0.0, 0.0)
        ax[1].plot((c[:, 0] - x0) / inp.pixel_size_nm - 0.5, (c[:, 1] - y0) / inp.pixel_size_nm - 0.5, ".", ms=2, color="y")
    s = result.summary
    if finite.size:
        ax[4].hist(finite, bins=50, color="0.5")
    ax[4].axvline(s["lambda_median"], color="k", label=f"median {s['lambda_median']:.3g}")
    if np.isfinite(s["baseline_ratio"]):
        ax[4].axvline(s["baseline_ratio"], color="r", ls="--", label=f"DBSCAN baseline {s['baseline_ratio']:.3g}")
    ax[4].set_title("lambda inside the nucleus")
    ax[4].legend(fontsize=8)
    ax[5].axis("off")
    text = [
        f"mode: {s['mode']}",
        f"lambda mean {s['lambda_mean']:.4g}, median {s['lambda_median']:.4g}",
        f"heterochromatin fraction {s['heterochromatin_fraction']:.3f}",
        f"domains {s['domain_count']}, R {s['domain_radius']:.4g} {s['domain_unit']}, d {s['domain_spacing']:.4g} {s['domain_unit']}",
        f"baseline Gamma_me/Gamma_ac {s['baseline_ratio']:.4g}",
        f"pixel {s['pixel_size_nm'] or float('nan'):.4g} nm, spacing {s['model']['spacing_per_pixel']:.4g}/px",
        f"runtime {s['runtime_seconds']:.1f} s",
    ]
    if "pearson" in s:
        text.append(f"Pearson vs truth {s['pearson']:.3f}")
    ax[5].text(0, 1, "\n".join(text), va="top", family="monospace", fontsize=8)
    for a in ax[:4]:
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    atomic_write(path, lambda h: fig.savefig(h, format="png", dpi=110))
    plt.close(fig)
    return path


def write_outputs(result: NucleusResult, out_dir: str | Path, *, figure: bool = True) -> dict[str, str]:
    """Write ``lambda.npy``, ``lambda.tif``, ``mask.npy``, ``summary.json`` and
    ``figure.png`` into ``out_dir`` (atomically); returns ``{kind: path}``."""
    from ..inverse.storage import atomic_write, write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    lam = np.asarray(result.lambda_map, dtype=np.float32)
    atomic_write(out / "lambda.npy", lambda h: np.save(h, lam))
    files["lambda_npy"] = str(out / "lambda.npy")
    atomic_write(out / "mask.npy", lambda h: np.save(h, result.mask))
    files["mask_npy"] = str(out / "mask.npy")
    notes = result.summary.setdefault("notes", [])
    try:
        from ..imaging.images import write_tiff

        write_tiff(out / "lambda.tif", lam, result.input.pixel_size_nm)
        files["lambda_tif"] = str(out / "lambda.tif")
    except ImportError as exc:
        notes.append(f"lambda.tif not written: {exc}")
    if figure:
        try:
            _save_figure(result, out / "figure.png")
            files["figure"] = str(out / "figure.png")
        except ImportError as exc:
            notes.append(f"figure.png not written: {exc}")
    result.summary["files"] = files
    write_json(out / "summary.json", result.summary)
    files["summary"] = str(out / "summary.json")
    return files
