"""Independent forward solvers for the three inverse-problem benchmarks.

Pure numpy/scipy (no torch): they make synthetic data with known ground truth.

* order 1 -- :func:`simulate_langevin`: ``u_t = u + lambda(t)``.
* order 2 -- :func:`simulate_heat`: ``0 = lambda(x, y) lap(u) + m(x, y)``, Dirichlet.
* order 4 -- :func:`simulate_chromatin`: the chromatin reaction-diffusion steady state,
  with :func:`direct_recovery` (the solver's exact consistency check).

The solvers take the physics they are given; the values of each PDE (constants, default
regimes) live in its home module (:mod:`mollifier.problems.chromatin`, ...).

Random parameter fields come from :mod:`.random_fields`. Every random function takes
``rng``: a ``numpy.random.Generator``, an int seed or None; no global RNG is touched.
"""

from .chromatin import (
    chemical_potential,
    chromatin_rhs,
    direct_recovery,
    simulate_chromatin,
)
from .heat import default_heat_source, poisson_dirichlet, simulate_heat
from .langevin import simulate_langevin
from .random_fields import (
    FourierRandomField,
    gaussian_random_field,
    lognormal_field,
    smooth_positive_field,
)

__all__ = [
    "FourierRandomField",
    "chemical_potential",
    "chromatin_rhs",
    "default_heat_source",
    "direct_recovery",
    "gaussian_random_field",
    "lognormal_field",
    "poisson_dirichlet",
    "simulate_chromatin",
    "simulate_heat",
    "simulate_langevin",
    "smooth_positive_field",
]
