"""The inverse-problem engine: declare a problem, train, recover parameters, score them."""

from .metrics import pearson, relative_l2
from .model import InverseModel, guarded_divide
from .problem import (
    InverseProblem,
    Observations,
    UnknownField,
    UnknownScalar,
    add_relative_noise,
    random_mask,
)
from .training import NonFiniteLossError, TrainConfig, TrainResult, train

__all__ = [
    "InverseModel",
    "InverseProblem",
    "NonFiniteLossError",
    "Observations",
    "TrainConfig",
    "TrainResult",
    "UnknownField",
    "UnknownScalar",
    "add_relative_noise",
    "guarded_divide",
    "pearson",
    "random_mask",
    "relative_l2",
    "train",
]
