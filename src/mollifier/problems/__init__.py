"""Problems: independent forward solvers (``forward``) and the benchmark inverse problems."""

from .benchmarks import PROBLEMS, make_problem

__all__ = ["PROBLEMS", "make_problem"]
