r"""Stage 3 of ``mollifier chromatin``: one nucleus's density -> a map of ``lambda = Gamma_me / Gamma_ac``.

Small steps, each a function, composed by :func:`analyse_nucleus`:

1. :func:`working_pixel` -- the pixel size (an image without one is assumed to show a
   nucleus :data:`~.options.ASSUMED_DIAMETER_NM` across, noted).
2. :func:`analysed_region` -- the nucleus mask less its rim (:data:`~.options.RIM_NM`,
   at least one pixel): pixels cut by the nuclear boundary understate the chromatin,
   and the steep drop they fake would bias ``lambda`` a radius deep.
3. :func:`background_level` -- median density outside every nucleus of the field.
4. :mod:`.sparsity` -- refuse data whose counting noise cannot support a map.
5. :func:`volume_fractions` -- ``phi_h`` proportional to the background-free density
   with mean ``share * phi_c`` (:mod:`mollifier.imaging.fractions`).
6. :func:`crop_box` -- the region's bounding box plus the kernel's reach.
7. :func:`estimate_trained` (the chromatin inverse problem, :func:`build_problem`,
   trained with Mollifier Layers; per-nucleus checkpoints) or :func:`estimate_preview`
   (network-free: mollified data and the direct formula; seconds).
8. :func:`lambda_statistics` and :func:`domain_baseline` (the closed-form DBSCAN
   baseline, :mod:`.baseline`).

Length scale. The model is non-dimensional, so lengths need a unit: **one model unit
is** :data:`~.options.UNIT_NM` **= 1000 nm** (the authors' domain ``[0, 10]^2`` is about
a nucleus across), so a 100 nm pixel is 0.1 units and the interface parameter is
``l = 0.03``. The mollifier radius travels in nm (:data:`~.options.RADIUS_NM` = 800 nm;
at least 3 pixels) and becomes model units in :func:`build_problem` only. These are
modelling assumptions, like ``phi_c`` and ``share``, and are recorded in the summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ..core.grid import Grid
from ..imaging import ImagingError
from ..imaging.fractions import VolumeFractions, estimate_background, fractions_from_density
from ..inverse import InverseProblem, Observations, UnknownField, pearson
from ..problems.chromatin import CHROMATIN, DERIVATIVES, ChromatinConstants, equations, equilibrium_guess
from ..runtime.devices import resolve_device
from .baseline import BaselineResult, baseline_from_image, baseline_from_points, heterochromatin_threshold
from .inputs import NucleusInput
from .nuclei import Nucleus, locate_nuclei
from .options import ASSUMED_DIAMETER_NM, CHECKPOINT_EVERY, TRAINING, AnalysisOptions
from .sparsity import Sparsity, assess

__all__ = [
    "Estimate",
    "LambdaStatistics",
    "NucleusResult",
    "Region",
    "TrainingRecord",
    "analyse_nucleus",
    "analysed_region",
    "background_level",
    "build_problem",
    "crop_box",
    "domain_baseline",
    "estimate_preview",
    "estimate_trained",
    "lambda_statistics",
    "volume_fractions",
    "working_pixel",
]


@dataclass
class Region:
    """The part of a nucleus that is analysed.

    Attributes:
        nucleus_mask: The whole nucleus.
        mask: The nucleus less its rim.
        rim_px: Rim width in pixels.
        pixel_nm: Working pixel (nm).
    """

    nucleus_mask: np.ndarray
    mask: np.ndarray
    rim_px: int
    pixel_nm: float


@dataclass
class TrainingRecord:
    """How the networks were trained (one entry per seed where it differs).

    Attributes:
        steps_requested: Adam steps asked for.
        steps: Steps actually run, per seed (fewer when a time budget stopped them).
        stopped_early: Any seed ran fewer steps than requested.
        train_seconds: Training time per seed (cumulative over resumed runs).
        step_seconds: Mean time per step of the first seed.
        final_loss: Loss terms at the end of the first seed.
        seeds: Number of seeds.
        resumed: Per seed, whether training continued from a checkpoint.
        folders: Per seed, the training folder (checkpoint, history), or None.
    """

    steps_requested: int
    steps: list[int]
    stopped_early: bool
    train_seconds: list[float]
    step_seconds: float | None
    final_loss: Any
    seeds: int
    resumed: list[bool]
    folders: list[str | None]


@dataclass
class Estimate:
    """A ``lambda`` map on the full frame (NaN outside the analysed region).

    Attributes:
        lambda_map: The map (mean over seeds).
        lambda_std: Per-pixel standard deviation over seeds (``seeds > 1``) or None.
        mode: In words (``"trained (2000 steps, recovery learned)"``, ``"preview (...)"``).
        training: Training record, None for the preview.
    """

    lambda_map: np.ndarray
    lambda_std: np.ndarray | None
    mode: str
    training: TrainingRecord | None = None


@dataclass
class LambdaStatistics:
    """Summary statistics of ``lambda`` inside the analysed region."""

    mean: float
    median: float
    p10: float
    p90: float
    spread_median: float | None


@dataclass
class NucleusResult:
    """Everything :func:`analyse_nucleus` produced for one nucleus (maps on the input's frame).

    Attributes:
        input: The density map it came from.
        nucleus: Which nucleus.
        region: The analysed region.
        fractions: Volume fractions (``phi_h``, ``phi_e``, ``phi_d``) and the rule's parameters.
        estimate: The map.
        stats: Its statistics.
        baseline: The DBSCAN (or image) domain baseline.
        sparsity: The counting-noise check.
        heterochromatin_fraction: Fraction of the nucleus above the Otsu threshold of its density.
        model: The modelling constants and lengths used.
        truth: Known ``lambda`` (synthetic inputs) inside the region, else None.
        pearson: Pearson correlation with ``truth`` inside the region (None without truth).
        pearson_equilibrium_guess: The same for ``phi_h / phi_e``.
        warnings: Why the map may be unreliable (sparse data, ``--force``).
        notes: Notes of this nucleus's analysis (the input's are in ``input.notes``).
        runtime_seconds: Time of the analysis.
        options: The analysis options.
    """

    input: NucleusInput
    nucleus: Nucleus
    region: Region
    fractions: VolumeFractions
    estimate: Estimate
    stats: LambdaStatistics
    baseline: BaselineResult
    sparsity: Sparsity
    heterochromatin_fraction: float
    model: dict[str, Any]
    truth: np.ndarray | None = None
    pearson: float | None = None
    pearson_equilibrium_guess: float | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runtime_seconds: float = 0.0
    options: AnalysisOptions = field(default_factory=AnalysisOptions)

    @property
    def lambda_map(self) -> np.ndarray:
        return self.estimate.lambda_map

    @property
    def lambda_std(self) -> np.ndarray | None:
        return self.estimate.lambda_std

    @property
    def phi_h(self) -> np.ndarray:
        return self.fractions.phi_h

    @property
    def mask(self) -> np.ndarray:
        """The analysed region."""
        return self.region.mask

    @property
    def summary(self) -> dict[str, Any]:
        """The JSON record of this result (``summary.json``)."""
        from .outputs import summary_record

        return summary_record(self)


# ---------------------------------------------------------------- steps


def working_pixel(inp: NucleusInput, nucleus_mask: np.ndarray) -> tuple[float, list[str]]:
    """The input's pixel size, or the one that makes the nucleus :data:`ASSUMED_DIAMETER_NM` across."""
    if inp.pixel_size_nm is not None:
        return float(inp.pixel_size_nm), []
    diameter_px = 2.0 * np.sqrt(nucleus_mask.sum() / np.pi)
    px = ASSUMED_DIAMETER_NM / diameter_px
    return px, [
        f"pixel size unknown: assumed {px:.4g} nm, so that the nucleus ({diameter_px:.0f} px across) is "
        f"{ASSUMED_DIAMETER_NM / 1000:g} um; give --pixel-size-nm for a physical length scale"
    ]


def analysed_region(nucleus_mask: np.ndarray, rim_nm: float, pixel_nm: float) -> Region:
    """The nucleus less its rim (at least one pixel when ``rim_nm > 0``).

    Raises:
        ImagingError: nothing is left (names --rim-nm).
    """
    rim_px = max(int(round(rim_nm / pixel_nm)), 1) if rim_nm > 0 else 0
    mask = ndimage.binary_erosion(nucleus_mask, iterations=rim_px) if rim_px else np.asarray(nucleus_mask, dtype=bool)
    if not mask.any():
        raise ImagingError(
            f"the nucleus mask ({int(nucleus_mask.sum())} px) vanishes without its {rim_px}-pixel rim; "
            "use a smaller --rim-nm or a finer --render-pixel-nm"
        )
    return Region(np.asarray(nucleus_mask, dtype=bool), mask, rim_px, pixel_nm)


def background_level(density: np.ndarray, nuclei_masks: list[np.ndarray]) -> tuple[float, str]:
    """Median density outside every nucleus of the field (3 pixels away from them)."""
    union = np.zeros(density.shape, dtype=bool)
    for m in nuclei_masks:
        union |= m
    return estimate_background(density, union)


def volume_fractions(density: np.ndarray, region: Region, background: float, background_how: str,
                     options: AnalysisOptions) -> VolumeFractions:
    """``phi_h``, ``phi_e``, ``phi_d`` inside the region (the fraction rule)."""
    fr = fractions_from_density(density, region.mask, phi_c=options.constants.phi_c, share=options.share,
                                background=background)
    fr.params["background_estimate"] = background_how
    return fr


def crop_box(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """Bounding box of ``mask`` grown by ``margin`` pixels (clipped to the frame)."""
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
    pixel_nm: float,
    unit_nm: float,
    radius_nm: float,
    constants: ChromatinConstants = CHROMATIN,
    truth: np.ndarray | None = None,
    observe: np.ndarray | None = None,
) -> InverseProblem:
    """The chromatin inverse problem on a pixel grid (image order, axis 0 = y).

    Lengths arrive in nm and become model units here, once: spacing
    ``pixel_nm / unit_nm``, radius ``radius_nm / unit_nm``.

    Args:
        phi_d: ``phi_h - phi_e`` on the grid (finite where observed).
        mask: Analysed region (``metric_mask`` when ``truth`` is given).
        pixel_nm: Pixel side (nm).
        unit_nm: Nanometres per model length unit.
        radius_nm: Mollifier radius (nm).
        constants: The model's constants.
        truth: Known ``lambda`` (validation), or None.
        observe: Where the data are observed (default: ``mask``).
    """
    spacing = float(pixel_nm) / float(unit_nm)
    obs_mask = np.asarray(mask if observe is None else observe, dtype=bool)
    grid = Grid(tuple(phi_d.shape), (0.0, 0.0), (spacing, spacing))
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
        radius=float(radius_nm) / float(unit_nm),
        residual_scale=1.0,
        residual_weight=float(TRAINING["residual_weight"]),
        field_names=("phi_d",),
        metric_mask=np.asarray(mask, dtype=bool) if truth is not None else None,
        baselines={"equilibrium_guess": guess} if truth is not None else {},
        description="chromatin steady state on an image, 0 = lap(mu_d) + 2(lambda phi_e - phi_h)",
    )


def estimate_preview(phi_d: np.ndarray, mask: np.ndarray, *, pixel_nm: float, radius_nm: float,
                     options: AnalysisOptions) -> Estimate:
    """Network-free estimate on a crop: ``phi_d`` extended outside the mask by its
    nearest inside value, mollified at the training radius, direct formula.

    The radius is the training one: ``auto_radius`` picks 16-24 pixels on these data,
    far wider than lambda's correlation length (Pearson 0.1-0.5 against 0.9 at 8 pixels).
    """
    from ..inverse import estimate_parameter

    full = _nearest_fill(np.nan_to_num(phi_d), mask)
    problem = build_problem(full, mask, pixel_nm=pixel_nm, unit_nm=options.unit_nm, radius_nm=radius_nm,
                            constants=options.constants, observe=np.ones_like(mask))
    res = estimate_parameter(problem, "mollifier", radius_nm / options.unit_nm)
    lam = np.asarray(res.estimates["lambda"], dtype=float)
    return Estimate(lam, None, "preview (network-free mollified direct formula)")


def estimate_trained(problem: InverseProblem, shape: tuple[int, ...], options: AnalysisOptions, *,
                     training_dir: Path | None = None, resume: bool = False,
                     log: Callable[[str], None] | None = None) -> Estimate:
    """Train ``options.seeds`` networks (checkpointed in ``training_dir`` when given;
    ``resume`` continues from a checkpoint there) and average their ``lambda`` maps."""
    from ..inverse import TrainConfig, train

    steps = options.training_steps
    device = str(resolve_device(options.device))
    maps, records = [], []
    for k in range(options.seeds):
        seed = options.seed + k
        folder = None if training_dir is None else (training_dir if options.seeds == 1 else training_dir / f"seed-{seed}")
        cont = bool(resume and folder is not None and (folder / "checkpoint.pt").is_file())
        config = TrainConfig(
            # radius=None: the problem's, i.e. --radius-nm (not a rule on the masked image)
            steps=steps, recovery=TRAINING["recovery"], residual_warmup=steps // 3, device=device, seed=seed, radius=None,
            checkpoint_every=CHECKPOINT_EVERY if folder is not None else 0, log_every=0,
            time_budget=options.time_budget_s,
        )
        if log:
            log(f"  training {steps} steps (seed {seed}) on a {shape[0]}x{shape[1]} grid"
                + (f", resuming from {folder / 'checkpoint.pt'}" if cont else ""))
        result = train(problem, config, out_dir=folder, resume=cont, log=log)
        maps.append(np.asarray(result.arrays[f"{config.recovery}_lambda"], dtype=float).reshape(shape))
        records.append((result.metrics, cont, None if folder is None else str(folder)))
    metrics = [m for m, _, _ in records]
    done = [int(m.get("steps", steps)) for m in metrics]
    record = TrainingRecord(
        steps_requested=steps, steps=done, stopped_early=any(d < steps for d in done),
        train_seconds=[float(m.get("train_seconds") or 0.0) for m in metrics],
        step_seconds=metrics[0].get("step_seconds"), final_loss=metrics[0].get("final_loss"), seeds=options.seeds,
        resumed=[c for _, c, _ in records], folders=[f for _, _, f in records],
    )
    ran = f"{done[0]} steps" if len(set(done)) == 1 else f"{min(done)}-{max(done)} steps"
    if record.stopped_early:
        ran += f" of {steps}, stopped by the time budget"
    mode = f"trained ({ran}, recovery {TRAINING['recovery']}" + (f", mean of {options.seeds} seeds)" if options.seeds > 1 else ")")
    lam = np.mean(maps, axis=0)
    spread = np.std(maps, axis=0, ddof=1) if options.seeds > 1 else None
    return Estimate(lam, spread, mode, record)


def lambda_statistics(lam: np.ndarray, region: np.ndarray, spread: np.ndarray | None) -> LambdaStatistics:
    """Mean, median, 10th/90th percentiles of ``lambda`` in the region (NaN when empty)."""
    inside = lam[region]
    inside = inside[np.isfinite(inside)]

    def stat(f: Callable[[np.ndarray], Any]) -> float:
        return float(f(inside)) if inside.size else float("nan")

    return LambdaStatistics(
        stat(np.mean), stat(np.median), stat(lambda a: np.percentile(a, 10)), stat(lambda a: np.percentile(a, 90)),
        float(np.nanmedian(spread[region])) if spread is not None else None,
    )


def domain_baseline(inp: NucleusInput, nucleus_mask: np.ndarray) -> tuple[BaselineResult, list[str]]:
    """DBSCAN domains on the localisations in the nucleus, or connected components of
    the thresholded density when the localisations were not kept (images, huge tables)."""
    notes: list[str] = []
    if inp.kind == "localisations" and inp.points_nm is not None and inp.extent_nm is not None:
        return baseline_from_points(inp.points_nm, inp.density, nucleus_mask, inp.extent_nm, inp.pixel_size_nm), notes
    if inp.kind == "localisations":
        notes.append("DBSCAN baseline on the density map's connected components: the table was streamed "
                     "(too large to keep every localisation)")
    return baseline_from_image(inp.density, nucleus_mask, inp.pixel_size_nm), notes


def _place(crop: np.ndarray, box: tuple[slice, slice], region: np.ndarray) -> np.ndarray:
    out = np.full(region.shape, np.nan)
    out[box] = np.where(region[box], crop, np.nan)
    return out


def analyse_nucleus(
    inp: NucleusInput,
    nucleus: Nucleus | None = None,
    options: AnalysisOptions | None = None,
    *,
    nuclei_masks: list[np.ndarray] | None = None,
    truth: np.ndarray | None = None,
    training_dir: str | Path | None = None,
    resume: bool = False,
    log: Callable[[str], None] | None = None,
    **overrides: Any,
) -> NucleusResult:
    """Recover the ``lambda`` map of one nucleus (see the module docstring).

    Args:
        inp: From :func:`~mollifier.chromatin.inputs.load_input`.
        nucleus: Which nucleus (default: the largest found, or the user's mask).
        options: Analysis options (default :class:`~.options.AnalysisOptions`), changed by
            ``overrides`` (``steps=``, ``preview=``, ``seeds=``, ``radius_nm=``, ...).
        nuclei_masks: Every nucleus of the field, left out of the background estimate
            (default: just this one).
        truth: Ground-truth ``lambda`` on the input's frame (validation): adds ``pearson``.
        training_dir: Folder for the training's checkpoint and history (None: in memory).
        resume: Continue training from a checkpoint in ``training_dir``.
        log: Progress sink.

    Raises:
        ImagingError: a bad mask, a region that vanishes without its rim, or data the
            sparsity rule refuses (unless ``force``); ValueError: options out of range.

    Example:
        >>> from mollifier.chromatin import load_input, analyse_nucleus  # doctest: +SKIP
        >>> result = analyse_nucleus(load_input("nucleus.csv"), seeds=3)  # doctest: +SKIP
        >>> result.stats.median, result.lambda_std.shape  # doctest: +SKIP
    """
    options = (options or AnalysisOptions()).replace(**overrides) if overrides else (options or AnalysisOptions())
    options.check()
    start = time.perf_counter()
    if nucleus is None:
        found, _ = locate_nuclei(inp)
        nucleus = found[0]
    if truth is not None and np.shape(truth) != nucleus.mask.shape:
        raise ValueError(f"truth has shape {np.shape(truth)}; expected {nucleus.mask.shape}")
    pixel_nm, notes = working_pixel(inp, nucleus.mask)
    radius_nm = max(float(options.radius_nm), 3.0 * pixel_nm)
    if radius_nm > options.radius_nm:
        notes.append(f"mollifier radius raised from {options.radius_nm:g} to {radius_nm:g} nm (3 pixels, the least)")
    region = analysed_region(nucleus.mask, options.rim_nm, pixel_nm)
    background, how = background_level(inp.density, nuclei_masks or [nucleus.mask])
    sparsity = assess(inp.density, region.mask, background, pixel_nm=pixel_nm, radius_nm=radius_nm,
                      unit_nm=options.unit_nm, constants=options.constants, share=options.share, counts=inp.counts)
    warnings: list[str] = []
    if sparsity.verdict == "refuse":
        if not options.force:
            raise ImagingError(f"data too sparse for a lambda map: {sparsity.message}; --force analyses it anyway")
        warnings.append(f"analysed with --force although refused: {sparsity.message}")
    elif sparsity.verdict == "warn":
        warnings.append(sparsity.message)
    fr = volume_fractions(inp.density, region, background, how, options)
    box = crop_box(region.mask, int(np.ceil(radius_nm / pixel_nm)) + 3)
    m = region.mask[box]
    t_crop = None if truth is None else np.asarray(truth, dtype=float)[box]
    if options.preview:
        estimate = estimate_preview(fr.phi_d[box], m, pixel_nm=pixel_nm, radius_nm=radius_nm, options=options)
    else:
        problem = build_problem(fr.phi_d[box], m, pixel_nm=pixel_nm, unit_nm=options.unit_nm, radius_nm=radius_nm,
                                constants=options.constants, truth=t_crop)
        estimate = estimate_trained(problem, m.shape, options, training_dir=None if training_dir is None else Path(training_dir),
                                    resume=resume, log=log)
    estimate.lambda_map = _place(estimate.lambda_map, box, region.mask)
    if estimate.lambda_std is not None:
        estimate.lambda_std = _place(estimate.lambda_std, box, region.mask)
    stats = lambda_statistics(estimate.lambda_map, region.mask, estimate.lambda_std)
    baseline, more = domain_baseline(inp, nucleus.mask)
    notes += more
    t_het = heterochromatin_threshold(inp.density, nucleus.mask)
    het = float(((inp.density > t_het) & nucleus.mask).sum() / nucleus.mask.sum())
    model = {
        "unit_nm": float(options.unit_nm), "pixel_nm_used": pixel_nm, "spacing_per_pixel": pixel_nm / options.unit_nm,
        "radius_nm": radius_nm, "radius_pixels": radius_nm / pixel_nm, "rim_pixels": region.rim_px,
        "phi_c": options.constants.phi_c, "share": options.share, "phi_max": options.constants.phi_max,
        "l": options.constants.l, "background": fr.params["background"],
        "background_estimate": fr.params["background_estimate"], "clipped_fraction": fr.params["clipped_fraction"],
        "fraction_rule": fr.params["rule"],
    }
    result = NucleusResult(inp, nucleus, region, fr, estimate, stats, baseline, sparsity, het, model,
                           warnings=warnings, notes=notes, options=options)
    if truth is not None:
        tr = np.asarray(truth, dtype=float)
        result.truth = np.where(region.mask, tr, np.nan)
        result.pearson = pearson(np.nan_to_num(estimate.lambda_map), tr, region.mask)
        result.pearson_equilibrium_guess = pearson(np.nan_to_num(fr.phi_h / fr.phi_e), tr, region.mask)
    result.runtime_seconds = time.perf_counter() - start
    return result


def training_record_dict(record: TrainingRecord | None) -> dict[str, Any] | None:
    """JSON form of a training record."""
    return None if record is None else asdict(record)
