"""Chromatin imaging application: SMLM localisations / density images of nuclei ->
maps of the methylation-to-acetylation rate ratio ``lambda`` (Mollifier Layers on the
chromatin model), with the closed-form DBSCAN domain baseline beside them.

See :mod:`mollifier.chromatin.pipeline` (one nucleus), :mod:`mollifier.chromatin.baseline`
and the ``mollifier chromatin`` command.
"""

from .baseline import BaselineResult, baseline_from_image, baseline_from_points, domain_statistics
from .pipeline import PIXEL_NM, RADIUS_NM, UNIT_NM, NucleusInput, NucleusResult, analyse_nucleus, build_problem, load_input

__all__ = [
    "BaselineResult",
    "PIXEL_NM",
    "RADIUS_NM",
    "UNIT_NM",
    "NucleusInput",
    "NucleusResult",
    "analyse_nucleus",
    "baseline_from_image",
    "baseline_from_points",
    "build_problem",
    "domain_statistics",
    "load_input",
]
