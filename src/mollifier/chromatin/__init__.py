"""Chromatin imaging application: SMLM localisations / density images of nuclei ->
maps of the methylation-to-acetylation rate ratio ``lambda`` (Mollifier Layers on the
chromatin model), with the closed-form DBSCAN domain baseline beside them.

Split by stage: :mod:`.options` (the run's settings), :mod:`.inputs` (file -> density
map and its facts), :mod:`.nuclei` (which nuclei), :mod:`.sparsity` (can the data
support a map?), :mod:`.analysis` (one nucleus -> lambda), :mod:`.outputs` (the one
writer), :mod:`.pipeline` (one input, every nucleus), :mod:`.baseline`, :mod:`.truth`
(synthetic data with a known answer). The ``mollifier chromatin`` command
(:mod:`mollifier.cli.chromatin`) runs them over a batch and draws the figures
(:mod:`mollifier.plotting.chromatin`) from the written files.
"""

from .analysis import NucleusResult, analyse_nucleus, build_problem
from .baseline import BaselineResult, baseline_from_image, baseline_from_points, domain_statistics
from .inputs import NucleusInput, inspect_input, load_input
from .nuclei import Nucleus, locate_nuclei
from .options import PIXEL_NM, RADIUS_NM, UNIT_NM, AnalysisOptions, InputOptions
from .pipeline import process_input

__all__ = [
    "AnalysisOptions",
    "BaselineResult",
    "InputOptions",
    "PIXEL_NM",
    "RADIUS_NM",
    "UNIT_NM",
    "Nucleus",
    "NucleusInput",
    "NucleusResult",
    "analyse_nucleus",
    "baseline_from_image",
    "baseline_from_points",
    "build_problem",
    "domain_statistics",
    "inspect_input",
    "load_input",
    "locate_nuclei",
    "process_input",
]
