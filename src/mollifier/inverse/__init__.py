"""The inverse-problem engine: declare a problem, recover its unknowns, score and keep them.

- :mod:`.problem`: the declaration (grid, observations, unknowns, residual, direct formula),
  with :mod:`.observations` (grid or scattered data), :mod:`.fields` (unknown scalars,
  unknown and latent fields), :mod:`.conditions` (Dirichlet, Neumann, initial) and
  :mod:`.residuals` (divergence-form building blocks).
- :mod:`.model`: the trainable pieces (field backbone, unknowns, derivative engine).
- :mod:`.objective`: the loss, in one process or on one slab of rows per rank.
- :mod:`.training`: :class:`TrainConfig` and :func:`train` (Adam, L-BFGS, resume).
- :mod:`.callbacks`: hooks into a run (progress, time budget, early stopping, loggers).
- :mod:`.checkpoint`: what a run needs to continue exactly where it stopped.
- :mod:`.direct`: the network-free estimate (:func:`estimate_parameter`).
- :mod:`.recovery`: :func:`recover` (either method) and the one :class:`Result` type.
- :mod:`.results`: the results folder, written by one function.
- :mod:`.metrics`: Pearson correlation and relative L2 error.
"""

from .callbacks import Callback, CSVLogger, EarlyStopping, TensorBoardLogger, TimeBudget, TrainState
from .checkpoint import CheckpointError
from .conditions import Dirichlet, Initial, Neumann
from .direct import estimate_parameter
from .metrics import pearson, relative_l2
from .model import InverseModel, guarded_divide
from .objective import LossWeights
from .fields import LatentField, UnknownField, UnknownScalar
from .observations import Observations, ScatteredObservations, add_relative_noise, random_mask
from .problem import InverseProblem
from .recovery import Result, recover, score_baselines
from .results import read_results, write_results
from .training import NonFiniteLossError, TrainConfig, TrainResult, train

__all__ = [
    "CSVLogger",
    "Callback",
    "CheckpointError",
    "Dirichlet",
    "EarlyStopping",
    "Initial",
    "InverseModel",
    "InverseProblem",
    "LatentField",
    "LossWeights",
    "Neumann",
    "NonFiniteLossError",
    "Observations",
    "Result",
    "ScatteredObservations",
    "TensorBoardLogger",
    "TimeBudget",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "UnknownField",
    "UnknownScalar",
    "add_relative_noise",
    "estimate_parameter",
    "guarded_divide",
    "pearson",
    "random_mask",
    "read_results",
    "recover",
    "relative_l2",
    "score_baselines",
    "train",
    "write_results",
]
