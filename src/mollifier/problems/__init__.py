"""Problems: independent forward solvers (``forward``) and the benchmark inverse problems."""

from .benchmarks import PROBLEMS, TRAINING_DEFAULTS, make_problem

__all__ = ["PROBLEMS", "TRAINING_DEFAULTS", "make_problem"]
