"""The settings of a ``mollifier chromatin`` run, as two typed records, and their defaults.

:class:`InputOptions` says how a file becomes a density map (which localisations, what
pixel, which rendering, which mask); :class:`AnalysisOptions` how a nucleus becomes a
``lambda`` map (steps, seeds, preview, the mollifier radius, the modelling constants).
Every length is in **nanometres**; the mollifier radius is converted to model units
once, where the inverse problem is built (:func:`mollifier.chromatin.analysis.build_problem`).
Both records check themselves (:meth:`check`), naming the CLI flag of a bad value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..imaging.fractions import SHARE
from ..imaging.render import METHODS
from ..imaging.table import ReadOptions, Selection
from ..problems.chromatin import CHROMATIN, ChromatinConstants

__all__ = [
    "ASSUMED_DIAMETER_NM",
    "CHECKPOINT_EVERY",
    "KEEP_POINTS",
    "PIXEL_NM",
    "RADIUS_NM",
    "RIM_NM",
    "TRAINING",
    "UNIT_NM",
    "AnalysisOptions",
    "InputOptions",
    "check_options",
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
#: Steps between checkpoints of a nucleus's training (``OUT/<stem>/training/checkpoint.pt``).
CHECKPOINT_EVERY = 200
#: Localisations kept in memory for the DBSCAN baseline and Voronoi renders; larger
#: tables are streamed (density map only) and get the image baseline instead.
KEEP_POINTS = 4_000_000


@dataclass(frozen=True)
class InputOptions:
    """How an input file becomes a density map.

    Attributes:
        render_pixel_nm: Density-map pixel for tables; for images the working pixel
            that fine images are summed towards. None: :data:`PIXEL_NM`.
        pixel_size_nm: The input's own pixel: the camera pixel of a table in pixel
            units (overrides the file's), or an image's pixel size (overrides the TIFF's).
        render: ``histogram``, ``precision`` (each localisation blurred by its own
            precision) or ``voronoi``.
        blur_nm: Gaussian blur of the density map (nm), or None.
        read: Column names, unit of unit-less columns, forced format.
        selection: Channel, z slab, frames, precision limit.
        mask: Nucleus mask image (nonzero = inside), or None.
        roi: Polygon ``"x1,y1 x2,y2 ..."`` in nm or a JSON/CSV file of vertices: the
            nucleus outline, or None.
        slice, project: For a 3-D image stack: the plane, or ``"max"``/``"mean"``.
        extent_nm: Field of view ``(x0, x1, y0, y1)`` of a table's map (nm), e.g. a truth
            sidecar's grid; None: the localisations' pixel-aligned bounding box.
    """

    render_pixel_nm: float | None = None
    pixel_size_nm: float | None = None
    render: str = "histogram"
    blur_nm: float | None = None
    read: ReadOptions = field(default_factory=ReadOptions)
    selection: Selection = field(default_factory=Selection)
    mask: Path | None = None
    roi: str | None = None
    slice: int | None = None  # noqa: A003 - mirrors --slice
    project: str | None = None
    extent_nm: tuple[float, float, float, float] | None = None

    def check(self) -> None:
        """Raises ValueError naming the flag of a value out of range."""
        for flag, value in (("--render-pixel-nm", self.render_pixel_nm), ("--pixel-size-nm", self.pixel_size_nm)):
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"`{flag}` must be a number > 0 (nm); got {value!r}")
        if self.render not in METHODS:
            raise ValueError(f"`--render` must be one of {', '.join(METHODS)}; got {self.render!r}")
        if self.blur_nm is not None and not self.blur_nm >= 0:
            raise ValueError(f"`--blur-nm` must be >= 0 (nm); got {self.blur_nm!r}")
        if self.mask is not None and self.roi is not None:
            raise ValueError("give either --mask (an image) or --roi (a polygon in nm), not both")

    def fingerprint(self) -> dict[str, Any]:
        """What decides the density map (for ``--resume``)."""
        sel = self.selection
        return {
            "render_pixel_nm": self.pixel_nm, "pixel_size_nm": self.pixel_size_nm, "render": self.render,
            "blur_nm": self.blur_nm, "columns": [self.read.x_col, self.read.y_col], "coord_unit": self.read.coord_unit,
            "format": self.read.format, "channel": sel.channel,
            "z_range_nm": None if sel.z_range_nm is None else list(sel.z_range_nm),
            "frames": None if sel.frames is None else list(sel.frames), "max_precision_nm": sel.max_precision_nm,
            "mask": None if self.mask is None else str(self.mask), "roi": self.roi, "slice": self.slice,
            "project": self.project, "extent_nm": None if self.extent_nm is None else list(self.extent_nm),
        }

    @property
    def pixel_nm(self) -> float:
        """The density-map (working) pixel, nm."""
        return float(self.render_pixel_nm) if self.render_pixel_nm is not None else PIXEL_NM

    def replace(self, **changes: Any) -> "InputOptions":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class AnalysisOptions:
    """How a nucleus's density map becomes a ``lambda`` map.

    Attributes:
        steps: Adam steps (None: ``TRAINING["steps"]``); the residual warm-up is a third.
        preview: Network-free estimate only (no training).
        seeds: Networks trained from seeds ``seed .. seed + seeds - 1``; their mean is
            the map and their per-pixel standard deviation ``lambda_std``.
        unit_nm: Nanometres per model length unit.
        radius_nm: Mollifier radius (nm); at least 3 pixels are used.
        rim_nm: Nucleus rim left out (nm; at least one pixel when > 0).
        time_budget_s: Stop each training after this many seconds (None: no limit).
        share: Mean heterochromatin share of chromatin (density -> fraction rule).
        constants: The model's constants (``phi_c`` also enters the fraction rule).
        device: Torch device for training (``"auto"``: CUDA, then MPS, then CPU).
        seed: First initialisation seed.
        force: Analyse data that the sparsity rule refuses (with a warning).
        nucleus: Analyse only nucleus K (1 = the largest) of a multi-nucleus field.
    """

    steps: int | None = None
    preview: bool = False
    seeds: int = 1
    unit_nm: float = UNIT_NM
    radius_nm: float = RADIUS_NM
    rim_nm: float = RIM_NM
    time_budget_s: float | None = None
    share: float = SHARE
    constants: ChromatinConstants = CHROMATIN
    device: str = "cpu"
    seed: int = 0
    force: bool = False
    nucleus: int | None = None

    def check(self) -> None:
        """Raises ValueError naming the argument and its flag, what was received and what is allowed."""
        steps, seeds = self.steps, self.seeds
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ValueError(f"`steps` (--steps) must be an integer >= 1; got {steps!r}")
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise ValueError(f"`seeds` (--seeds) must be an integer >= 1; got {seeds!r}")
        if self.preview and seeds > 1:
            raise ValueError("`seeds` (--seeds) applies to training; the --preview estimate is deterministic")
        for name, value in (("unit_nm", self.unit_nm), ("radius_nm", self.radius_nm)):
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"`{name}` (--{name.replace('_', '-')}) must be > 0; got {value!r}")
        if not (isinstance(self.rim_nm, (int, float)) and self.rim_nm >= 0):
            raise ValueError(f"`rim_nm` (--rim-nm) must be >= 0; got {self.rim_nm!r}")
        if self.time_budget_s is not None and not (isinstance(self.time_budget_s, (int, float)) and self.time_budget_s > 0):
            raise ValueError(f"`time_budget_s` (--time-budget) must be > 0 seconds; got {self.time_budget_s!r}")
        if not 0 < self.share < 1:
            raise ValueError(f"`share` must be in (0, 1); got {self.share!r}")
        if self.nucleus is not None and (isinstance(self.nucleus, bool) or not isinstance(self.nucleus, int)
                                         or self.nucleus < 1):
            raise ValueError(f"`nucleus` (--nucleus) must be an integer >= 1 (1 = the largest); got {self.nucleus!r}")

    @property
    def training_steps(self) -> int:
        """The Adam steps asked for."""
        return int(self.steps) if self.steps is not None else int(TRAINING["steps"])

    def fingerprint(self) -> dict[str, Any]:
        """What decides the map (for ``--resume``: outputs made otherwise are not reused)."""
        return {
            "steps": None if self.preview else self.training_steps, "preview": self.preview, "seeds": self.seeds,
            "unit_nm": float(self.unit_nm), "radius_nm": float(self.radius_nm), "rim_nm": float(self.rim_nm),
            "share": float(self.share), "constants": self.constants.as_dict(), "seed": self.seed,
            "time_budget_s": None if self.preview else self.time_budget_s,
        }

    def replace(self, **changes: Any) -> "AnalysisOptions":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def check_options(**options: Any) -> None:
    """Check analysis options given as keywords (names of :class:`AnalysisOptions`).

    Raises:
        ValueError: an unknown name, or a value out of range (naming its flag).
    """
    allowed = {f.name for f in dataclasses.fields(AnalysisOptions)}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"unknown analysis option(s) {unknown}; allowed: {sorted(allowed)}")
    AnalysisOptions(**options).check()
