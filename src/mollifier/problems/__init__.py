"""Problems: one home module per PDE, the independent forward solvers, and their table.

=============  =====  ==============================================  ======================
name           order  PDE                                             unknown
=============  =====  ==============================================  ======================
``langevin``   1      ``u_t = u + lambda(t)``                         forcing ``lambda(t)``
``heat``       2      ``0 = lambda(x, y) lap(u) + m(x, y)``           diffusivity field
``chromatin``  4      ``0 = lap(mu_d) + 2 (lambda phi_e - phi_h)``    rate-ratio field
=============  =====  ==============================================  ======================

- :mod:`.langevin`, :mod:`.heat`, :mod:`.chromatin`: each PDE's home (constants,
  equations, direct formula, baselines, training defaults, the benchmark builder).
- :mod:`.forward`: numerical solvers that never call the inverse code (numpy/scipy).
- :mod:`.synthetic`: noise and observed subsets for synthetic data.
- :mod:`.registry`: :data:`PROBLEMS`, the read-only table, and :func:`make_problem`.

Example:
    >>> from mollifier.problems import make_problem
    >>> p = make_problem("heat", grid=32, noise=0.05, seed=1)
    >>> p.grid.shape, p.parameter
    ((32, 32), 'lambda')
"""

from .registry import PROBLEMS, ProblemSpec, make_problem

__all__ = ["PROBLEMS", "ProblemSpec", "make_problem"]
