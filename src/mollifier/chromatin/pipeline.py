r"""One nucleus -> a spatial map of the rate ratio ``lambda = Gamma_me / Gamma_ac``.

Steps (:func:`load_input` then :func:`analyse_nucleus`):

1. Input. A localisation table (CSV/TSV, optionally gzip/xz/bz2-compressed) is
   rendered with :func:`~mollifier.imaging.density_map` (2-D histogram) at
   ``pixel_size_nm`` (default :data:`PIXEL_NM` = 100 nm). An image (TIFF/PNG/NPY) is
   read with :func:`~mollifier.imaging.read_image`; images with pixels finer than
   ~70 nm are block-summed towards 100 nm (counting noise of fine renders is too high
   for fourth derivatives).
2. Nucleus mask: given (file) or automatic (:func:`~mollifier.imaging.nucleus_mask`,
   Otsu on the smoothed density). Its rim (:data:`RIM_NM` = 100 nm, at least one
   pixel) is left out of the analysis: pixels cut by the nuclear boundary understate
   the chromatin, and the steep drop they fake would bias ``lambda`` a radius deep.
3. Volume fractions :func:`~mollifier.imaging.fractions_from_density`: background
   (median density outside the nucleus) subtracted, ``phi_h`` proportional to the
   density with mean ``share * phi_c`` (0.5 * 0.8); see that module for the rule.
4. The chromatin inverse problem (``method.md`` section 3, the residual and direct
   formulas of :func:`~mollifier.problems.chromatin.fields`) on the pixel
   grid, cropped to the mask's bounding box plus a margin, observations ``phi_d``
   inside the mask only, ``boundary="valid"``; trained with :data:`TRAINING`.

Length scale. The model is non-dimensional, so lengths need a unit: **one model unit
is** :data:`UNIT_NM` **= 1000 nm** (the authors' domain ``[0, 10]^2`` is about a
nucleus across), so a 100 nm pixel is 0.1 units and the interface parameter is
``l = 0.03`` (the authors' value and the synthetic generator's). The mollifier radius
is :data:`RADIUS_NM` = 800 nm (8 cells of 100 nm): the density of a typical
acquisition has ~10 % counting noise per pixel, and fourth derivatives need that much
smoothing. An image without a pixel size is assumed to show a nucleus 10 um across
(noted in the summary). These are modelling assumptions, like ``phi_c`` and
``share``, and are recorded in ``summary.json``.

``preview=True`` uses the network-free estimate instead (mollify the data at the same
radius, apply the direct formula; seconds), run on the whole cropped frame
with ``phi_d`` extended outside the mask by its nearest inside value. ``seeds=N``
trains ``N`` networks from different initialisations: the map is their mean and
``lambda_std`` their per-pixel standard deviation (the spread of the optimisation,
not a full error bar: all seeds see the same data).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy import ndimage

from ..core.grid import Grid
from ..imaging import (
    ImagingError,
    density_map,
    fractions_from_density,
    nucleus_mask,
    block_downsample,
    read_image,
    read_localizations,
)
from ..imaging.fractions import SHARE
from ..imaging.localizations import COMPRESSED_SUFFIXES, uncompressed_name
from ..inverse.problem import InverseProblem, Observations, UnknownField
from ..problems.chromatin import CHROMATIN, DERIVATIVES, ChromatinConstants, equations, equilibrium_guess
from .baseline import BaselineResult, baseline_from_image, baseline_from_points, heterochromatin_threshold

__all__ = [
    "UNIT_NM",
    "PIXEL_NM",
    "RADIUS_NM",
    "RIM_NM",
    "TRAINING",
    "check_options",
    "input_kind",
    "NucleusInput",
    "NucleusResult",
    "IMAGE_SUFFIXES",
    "load_input",
    "build_problem",
    "analyse_nucleus",
    "write_outputs",
]

#: Nanometres per model length unit.
UNIT_NM = 1000.0
#: Default pixel of density maps rendered from localisations (nm).
PIXEL_NM = 100.0
#: Nucleus diameter assumed for images without a pixel size (nm).
ASSUMED_DIAMETER_NM = 10_000.0
#: Mollifier radius (nm).
RADIUS_NM = 800.0
#: Nucleus rim left out of the analysis (nm; at least one pixel).
RIM_NM = 100.0
#: Training settings for image data (noisier than the benchmark: a larger residual
#: weight ties the field to the physics; the residual warm-up is a third of the steps).
TRAINING: dict[str, Any] = {"steps": 2000, "recovery": "learned", "residual_weight": 0.1}
IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy"}
TABLE_SUFFIXES = {".csv", ".tsv", ".txt"}


def input_kind(path: Path) -> str | None:
    """``"image"``, ``"localisations"`` (tables, also ``.csv.gz`` etc.) or None."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    if Path(uncompressed_name(path)).suffix.lower() in TABLE_SUFFIXES:
        return "localisations"
    return None


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
    lambda_std: np.ndarray | None
    phi_h: np.ndarray
    phi_d: np.ndarray
    mask: np.ndarray
    baseline: BaselineResult
    summary: dict[str, Any]
    input: NucleusInput
    truth: np.ndarray | None = None


def load_input(
    path: str | Path,
    *,
    pixel_size_nm: float | None = None,
    mask: str | Path | np.ndarray | None = None,
    x_col: str | None = None,
    y_col: str | None = None,
    extent_nm: tuple[float, float, float, float] | None = None,
    slice: int | None = None,  # noqa: A002 - mirrors --slice
    project: str | None = None,
    density: str = "histogram",
    blur_nm: float | None = None,
) -> NucleusInput:
    """Read one nucleus: localisation table or image -> density, mask.

    Args:
        path: CSV/TSV/TXT localisations (optionally ``.gz``/``.xz``/``.bz2``) or a
            TIFF/PNG/NPY image.
        pixel_size_nm: Density-map pixel for localisations (default :data:`PIXEL_NM`),
            or the image's pixel size (overrides the file's).
        mask: Mask file/array, or None for automatic.
        x_col, y_col: Coordinate column names (default: detected).
        extent_nm: ``(x0, x1, y0, y1)`` field of view of a localisation table (default:
            the localisations' bounding box), e.g. the camera frame, to align maps.
        slice, project: For a 3-D image stack: the plane to use, or ``"max"``/``"mean"``
            projection (:func:`~mollifier.imaging.reduce_stack`).
        density: How localisations become a density map: ``"histogram"`` (counts per
            pixel) or ``"voronoi"`` (1 / Voronoi cell area, slower); see
            :func:`~mollifier.imaging.density_map`.
        blur_nm: Gaussian blur of the density map (e.g. the localisation precision);
            None for none.

    Raises:
        ImagingError: unreadable input, no coordinate columns, bad mask, ...
    """
    path = Path(path)
    if not path.exists():
        raise ImagingError(f"input {str(path)!r} not found")
    if pixel_size_nm is not None and not pixel_size_nm > 0:
        raise ImagingError(f"--pixel-size must be > 0; got {pixel_size_nm}")
    kind = input_kind(path)
    if kind is None:
        raise ImagingError(
            f"input {str(path)!r}: unknown file type; expected a localisation table "
            f"({', '.join(sorted(TABLE_SUFFIXES))}, optionally {', '.join(COMPRESSED_SUFFIXES)}) "
            f"or an image ({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    notes: list[str] = []
    if kind == "image":
        img = read_image(path, pixel_size_nm=pixel_size_nm, slice=slice, project=project)  # type: ignore[arg-type]
        notes += img.notes
        image, px = img.data, img.pixel_size_nm
        given = nucleus_mask(image, mask) if mask is not None else None  # checked at the file's shape
        if px is not None and px < PIXEL_NM / 1.4:
            factor = int(round(PIXEL_NM / px))
            image = block_downsample(image, factor) * factor**2
            notes.append(f"{px:g} nm pixels summed in blocks of {factor}x{factor} to {px * factor:g} nm")
            px *= factor
            if given is not None:
                given = block_downsample(given.astype(float), factor) >= 0.5
        m = nucleus_mask(image, given if given is not None else None)
        return NucleusInput(image, m, px, "image", path, notes=notes)
    table = read_localizations(path, x_col, y_col)
    notes += table.notes
    pts = table.points
    if len(pts) < 10:
        raise ImagingError(f"localisation file {str(path)!r} has only {len(pts)} localisations")
    if pixel_size_nm is None:
        pixel_size_nm = PIXEL_NM
        notes.append(f"density map pixel {PIXEL_NM:g} nm (the default; --pixel-size to change)")
    if density not in ("histogram", "voronoi"):
        raise ImagingError(f"density must be 'histogram' or 'voronoi'; got {density!r}")
    if density == "voronoi":
        notes.append("density map: Voronoi cell areas")
    image, extent = density_map(pts, float(pixel_size_nm), extent=extent_nm, blur_nm=blur_nm, method=density,  # type: ignore[arg-type]
                                return_extent=True)
    if min(image.shape) < 16:
        raise ImagingError(f"density map is only {image.shape[0]}x{image.shape[1]} px at {pixel_size_nm:g} nm; use a smaller --pixel-size")
    m = nucleus_mask(image, mask)
    return NucleusInput(image, m, float(pixel_size_nm), "localisations", path, pts, tuple(float(e) for e in extent), notes)


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
    spacing: float,
    radius_cells: float,
    constants: ChromatinConstants = CHROMATIN,
    truth: np.ndarray | None = None,
    observe: np.ndarray | None = None,
) -> InverseProblem:
    """The chromatin inverse problem on a pixel grid (image order, axis 0 = y).

    Args:
        phi_d: ``phi_h - phi_e`` on the grid (finite where observed).
        mask: Nucleus mask (``metric_mask`` when ``truth`` is given).
        spacing: Model length units per pixel.
        radius_cells: Mollifier radius in pixels.
        constants: The model's constants (:data:`~mollifier.problems.chromatin.CHROMATIN`).
        truth: Known ``lambda`` (validation), or None.
        observe: Where the data are observed (default: ``mask``).
    """
    obs_mask = np.asarray(mask if observe is None else observe, dtype=bool)
    grid = Grid(tuple(phi_d.shape), (0.0, 0.0), (float(spacing), float(spacing)))
    residual, direct = equations(constants)
    values = np.where(obs_mask & np.isfinite(phi_d), phi_d, 0.0)
    guess = equilibrium_guess(values, constants.phi_c)
    return InverseProblem(
        name="chromatin-image",
        grid=grid,
        observations=Observations(values, mask=obs_mask),
        derivatives=DERIVATIVES,
        unknowns=[UnknownField("lambda", init=1.0, positive=True)],
        residual=residual,
        direct=direct,
        truth={"lambda": np.asarray(truth, dtype=float)} if truth is not None else {},
        boundary="valid",
        radius=float(radius_cells) * spacing,
        residual_scale=1.0,
        residual_weight=float(TRAINING["residual_weight"]),
        field_names=("phi_d",),
        metric_mask=np.asarray(mask, dtype=bool) if truth is not None else None,
        baselines={"equilibrium_guess": guess} if truth is not None else {},
        description="chromatin steady state on an image, 0 = lap(mu_d) + 2(lambda phi_e - phi_h)",
    )


def check_options(
    *,
    steps: int | None = None,
    seeds: int = 1,
    preview: bool = False,
    unit_nm: float = UNIT_NM,
    radius_nm: float = RADIUS_NM,
    rim_nm: float = RIM_NM,
) -> None:
    """Check the options of :func:`analyse_nucleus` (the ``mollifier chromatin`` flags).

    Raises:
        ValueError: naming the argument and its flag, what was received and what is allowed.
    """
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"`steps` (--steps) must be an integer >= 1; got {steps!r}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"`seeds` (--seeds) must be an integer >= 1; got {seeds!r}")
    if preview and seeds > 1:
        raise ValueError("`seeds` (--seeds) applies to training; the --preview estimate is deterministic")
    for name, value in (("unit_nm", unit_nm), ("radius_nm", radius_nm)):
        if not value > 0:
            raise ValueError(f"`{name}` (--{name.replace('_', '-')}) must be > 0; got {value}")
    if not rim_nm >= 0:
        raise ValueError(f"`rim_nm` (--rim-nm) must be >= 0; got {rim_nm}")


def _pixel_size(inp: NucleusInput) -> tuple[float, list[str]]:
    """The input's pixel size, or the one that makes the nucleus :data:`ASSUMED_DIAMETER_NM` across."""
    if inp.pixel_size_nm is not None:
        return float(inp.pixel_size_nm), []
    diameter_px = 2.0 * np.sqrt(inp.mask.sum() / np.pi)
    px = ASSUMED_DIAMETER_NM / diameter_px
    return px, [
        f"pixel size unknown: assumed {px:.4g} nm, so that the nucleus ({diameter_px:.0f} px across) is "
        f"{ASSUMED_DIAMETER_NM / 1000:g} um; give --pixel-size for a physical length scale"
    ]


def _train_lambda(problem: InverseProblem, shape: tuple[int, ...], steps: int | None, device: str, seed: int, log) -> tuple[np.ndarray, dict[str, Any]]:
    from ..inverse.training import TrainConfig, train

    cfg = {k: v for k, v in TRAINING.items() if k != "residual_weight"}
    if steps is not None:
        cfg["steps"] = int(steps)
    cfg["residual_warmup"] = cfg["steps"] // 3
    config = TrainConfig(**cfg, device=device, seed=seed, checkpoint_every=0, log_every=0)
    if log:
        log(f"  training {config.steps} steps (seed {seed}) on a {shape[0]}x{shape[1]} grid")
    result = train(problem, config)
    lam = np.asarray(result.arrays[f"{config.recovery}_lambda"], dtype=float).reshape(shape)
    info = {k: result.metrics.get(k) for k in ("train_seconds", "step_seconds", "steps_done", "final_loss") if k in result.metrics}
    return lam, info


def analyse_nucleus(
    inp: NucleusInput,
    *,
    steps: int | None = None,
    preview: bool = False,
    seeds: int = 1,
    unit_nm: float = UNIT_NM,
    radius_nm: float = RADIUS_NM,
    rim_nm: float = RIM_NM,
    constants: ChromatinConstants = CHROMATIN,
    share: float = SHARE,
    truth: np.ndarray | None = None,
    device: str = "cpu",
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> NucleusResult:
    """Recover the ``lambda`` map of one nucleus (see the module docstring).

    Args:
        inp: From :func:`load_input`.
        steps: Adam steps (default ``TRAINING["steps"]``); the residual warm-up is a
            third of them.
        preview: Network-free estimate only (no training).
        seeds: Networks trained from seeds ``seed .. seed + seeds - 1``; more than one
            gives the mean map and a per-pixel spread (``lambda_std``).
        unit_nm: Nanometres per model length unit.
        radius_nm: Mollifier radius in nm (at least 3 pixels are used).
        rim_nm: Width of the nucleus rim left out of the analysis (at least one pixel
            when > 0): rim pixels are cut by the nuclear boundary, so their density
            understates the chromatin and would read as a steep drop of ``phi_h``.
        constants: The model's constants (``phi_c`` also enters the density -> fraction rule).
        share: Mean heterochromatin share of chromatin, the density -> fraction rule
            (:func:`~mollifier.imaging.fractions_from_density`).
        truth: Ground-truth ``lambda`` on the input's frame (validation only): adds
            ``pearson`` to the summary.
        device: Torch device for training.
        seed: First initialisation seed.
        log: Progress sink.

    Example:
        >>> from mollifier.chromatin import load_input, analyse_nucleus  # doctest: +SKIP
        >>> result = analyse_nucleus(load_input("nucleus.csv"), seeds=3)  # doctest: +SKIP
        >>> result.summary["lambda_median"], result.lambda_std.shape  # doctest: +SKIP
    """
    from ..inverse.metrics import pearson

    check_options(steps=steps, seeds=seeds, preview=preview, unit_nm=unit_nm, radius_nm=radius_nm, rim_nm=rim_nm)
    start = time.perf_counter()
    if truth is not None and np.shape(truth) != inp.mask.shape:
        raise ValueError(f"truth has shape {np.shape(truth)}; expected {inp.mask.shape}")
    pixel_nm, notes = _pixel_size(inp)
    spacing = pixel_nm / unit_nm
    radius_cells = max(radius_nm / pixel_nm, 3.0)
    rim_px = max(int(round(rim_nm / pixel_nm)), 1) if rim_nm > 0 else 0
    mask = ndimage.binary_erosion(inp.mask, iterations=rim_px) if rim_px else inp.mask
    if not mask.any():
        raise ImagingError(
            f"the nucleus mask ({int(inp.mask.sum())} px) vanishes without its {rim_px}-pixel rim; "
            "use a smaller --rim-nm or a finer --pixel-size"
        )
    fr = fractions_from_density(inp.density, mask, phi_c=constants.phi_c, share=share)
    box = _crop_box(mask, int(np.ceil(radius_cells)) + 3)
    m = mask[box]
    phi_d = fr.phi_d[box]
    t_crop = None if truth is None else np.asarray(truth, dtype=float)[box]
    lam_std_crop = None
    if preview:
        from ..inverse import estimate_parameter

        full = _nearest_fill(np.nan_to_num(phi_d), m)
        problem = build_problem(full, m, spacing=spacing, radius_cells=radius_cells, constants=constants, truth=t_crop, observe=np.ones_like(m))
        # the training radius: auto_radius picks 16-24 cells on these data, far wider
        # than lambda's correlation length (Pearson 0.1-0.5 against 0.9 at 8 cells)
        res = estimate_parameter(problem, "mollifier", radius_cells * spacing)
        lam_crop = np.asarray(res.estimates["lambda"], dtype=float)
        mode = "preview (network-free mollified direct formula)"
        train_info: dict[str, Any] = {"radius_cells": radius_cells}
    else:
        problem = build_problem(phi_d, m, spacing=spacing, radius_cells=radius_cells, constants=constants, truth=t_crop)
        maps, infos = [], []
        for k in range(seeds):
            lam_k, info = _train_lambda(problem, m.shape, steps, device, seed + k, log)
            maps.append(lam_k)
            infos.append(info)
        lam_crop = np.mean(maps, axis=0)
        if seeds > 1:
            lam_std_crop = np.std(maps, axis=0, ddof=1)
        used = infos[0].get("steps_done", steps or TRAINING["steps"])
        mode = f"trained ({used} steps, recovery {TRAINING['recovery']}" + (f", mean of {seeds} seeds)" if seeds > 1 else ")")
        train_info = {**infos[0], "radius_cells": radius_cells, "seeds": seeds, "train_seconds_total": float(sum(i.get("train_seconds") or 0.0 for i in infos))}
    lam = np.full(mask.shape, np.nan)
    lam[box] = np.where(m, lam_crop, np.nan)
    lam_std = None
    if lam_std_crop is not None:
        lam_std = np.full(mask.shape, np.nan)
        lam_std[box] = np.where(m, lam_std_crop, np.nan)

    if inp.kind == "localisations" and inp.points_nm is not None:
        baseline = baseline_from_points(inp.points_nm, inp.density, inp.mask, inp.extent_nm, inp.pixel_size_nm)
    else:
        baseline = baseline_from_image(inp.density, inp.mask, inp.pixel_size_nm)
    t_het = heterochromatin_threshold(inp.density, inp.mask)
    inside = lam[mask]
    inside = inside[np.isfinite(inside)]

    def stat(f) -> float:
        return float(f(inside)) if inside.size else float("nan")

    runtime = time.perf_counter() - start
    summary: dict[str, Any] = {
        "input": str(inp.source) if inp.source else None,
        "status": "ok",
        "kind": inp.kind,
        "mode": mode,
        "shape": list(mask.shape),
        "pixel_size_nm": inp.pixel_size_nm,
        "nucleus_pixels": int(inp.mask.sum()),
        "analysed_pixels": int(mask.sum()),
        "nucleus_area_um2": float(inp.mask.sum() * pixel_nm**2 / 1e6),
        "lambda_mean": stat(np.mean),
        "lambda_median": stat(np.median),
        "lambda_p10": stat(lambda a: np.percentile(a, 10)),
        "lambda_p90": stat(lambda a: np.percentile(a, 90)),
        "lambda_spread_median": float(np.nanmedian(lam_std[mask])) if lam_std is not None else None,
        "heterochromatin_fraction": float(((inp.density > t_het) & inp.mask).sum() / inp.mask.sum()),
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
            "unit_nm": unit_nm,
            "pixel_nm_used": pixel_nm,
            "spacing_per_pixel": spacing,
            "radius_nm": radius_cells * pixel_nm,
            "radius_cells": radius_cells,
            "rim_pixels": rim_px,
            "phi_c": constants.phi_c,
            "share": share,
            "phi_max": constants.phi_max,
            "l": constants.l,
            "background": fr.params["background"],
            "background_estimate": fr.params["background_estimate"],
            "clipped_fraction": fr.params["clipped_fraction"],
            "fraction_rule": fr.params["rule"],
        },
        "notes": list(inp.notes) + notes,
    }
    if truth is not None:
        tr = np.asarray(truth, dtype=float)
        summary["pearson"] = pearson(np.nan_to_num(lam), tr, mask)
        summary["pearson_equilibrium_guess"] = pearson(np.nan_to_num(fr.phi_h / fr.phi_e), tr, mask)
    truth_map = None if truth is None else np.where(mask, np.asarray(truth, dtype=float), np.nan)
    return NucleusResult(lam, lam_std, fr.phi_h, fr.phi_d, mask, baseline, summary, inp, truth_map)


def _seed_count(result: NucleusResult) -> int:
    return int(result.summary.get("training", {}).get("seeds", 1))


def _save_figure(result: NucleusResult, path: Path) -> Path:
    from ..runtime.files import atomic_write
    from ..plotting.figures import require_matplotlib

    plt = require_matplotlib()
    inp = result.input
    spread, truth = result.lambda_std, result.truth
    extra = spread is not None or truth is not None  # a fourth column
    fig, axes = plt.subplots(2, 4 if extra else 3, figsize=(16 if extra else 12, 7.5))
    ax = [axes[0, 0], axes[0, 1], axes[0, 2], axes[1, 0], axes[1, 1], axes[1, 2]]
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
    ax[3].set_title("lambda = Gamma_me/Gamma_ac")
    fig.colorbar(im, ax=ax[3], shrink=0.8)
    if extra:
        for row, (image, title, cmap, limits) in enumerate((
            (truth, "true lambda (synthetic input)", "coolwarm", (lo, hi)),
            (spread, f"lambda spread over {_seed_count(result)} seeds (std)", "magma", (None, None)),
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
        f"pixel {s['model']['pixel_nm_used']:.4g} nm, radius {s['model']['radius_nm']:.0f} nm",
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
    from ..runtime.files import atomic_write, write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    lam = np.asarray(result.lambda_map, dtype=np.float32)
    atomic_write(out / "lambda.npy", lambda h: np.save(h, lam))
    files["lambda_npy"] = str(out / "lambda.npy")
    atomic_write(out / "mask.npy", lambda h: np.save(h, result.mask))
    files["mask_npy"] = str(out / "mask.npy")
    maps = {"lambda": lam}
    if result.lambda_std is not None:
        spread = np.asarray(result.lambda_std, dtype=np.float32)
        atomic_write(out / "lambda_std.npy", lambda h: np.save(h, spread))
        files["lambda_std_npy"] = str(out / "lambda_std.npy")
        maps["lambda_std"] = spread
    notes = result.summary.setdefault("notes", [])
    try:
        from ..imaging.images import write_tiff

        for name, array in maps.items():
            write_tiff(out / f"{name}.tif", array, result.input.pixel_size_nm)
            files[f"{name}_tif"] = str(out / f"{name}.tif")
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
