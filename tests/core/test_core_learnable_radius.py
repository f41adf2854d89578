"""A learnable radius starts exactly where the fixed radius is."""

import math

import numpy as np
import torch

from mollifier import MollifierLayer, biharmonic, laplacian
from mollifier.core.stencils import mollifier_stencil

from core_helpers import BUMP
from tolerances import EPS64, combination_rounding_bound, conditioned_bound, l1


def _condition(halfwidth: int, active: np.ndarray, degree: int) -> float:
    """Condition number of the moment rows s^q / q! (s = m / M) on the active taps."""
    s = np.arange(-halfwidth, halfwidth + 1) / halfwidth
    rows = np.stack([s[active] ** q / math.factorial(q) for q in range(degree + 1)])
    return float(np.linalg.cond(rows))


def _tap_difference(order: int, h: float, radius: float, halfwidth: int) -> float:
    """Bound on ||learnable taps - fixed taps||_1 (both padded to ``halfwidth``).

    The learnable layer stores log(radius) and evaluates exp(log(radius)): log and exp
    within 4 ulp each, so the radius is off by <= 8 eps (1 + |log radius|) relative; the
    taps move by at most |dc/d radius| times that (autograd through the library's own
    stencil). Both stencils also carry the forward error of their moment solves (on 2M + 1
    taps in units m / M for the fixed one, on the same active taps in units m / halfwidth
    for the learnable one): conditioned_bound each, in 2-norm, so sqrt(n) more in 1-norm.
    """
    r = torch.tensor(radius, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda x: mollifier_stencil(BUMP, order, h, x, halfwidth=halfwidth), r)
    radius_error = 8 * EPS64 * (1 + abs(math.log(radius))) * radius
    taps = mollifier_stencil(BUMP, order, h, radius)
    n = 2 * halfwidth + 1
    fixed_half = (taps.numel() - 1) // 2
    active = np.abs(np.arange(-halfwidth, halfwidth + 1)) <= fixed_half
    conds = (_condition(fixed_half, np.ones(2 * fixed_half + 1, dtype=bool), order + 1),
             _condition(halfwidth, active, order + 1))
    solves = sum(conditioned_bound(c, float(taps.norm()), EPS64) for c in conds)
    return float(jac.abs().sum()) * radius_error + math.sqrt(n) * solves


def test_learnable_layer_matches_fixed_layer_at_its_initial_radius():
    torch.manual_seed(0)
    h, radius = 0.1, 0.4
    requests = {"lap": laplacian(2), "bilap": biharmonic(2)}
    fixed = MollifierLayer(requests, spacing=h, radius=radius, boundary="periodic")
    learnable = MollifierLayer(requests, spacing=h, radius=radius, boundary="periodic",
                               learnable_radius=True, max_radius=0.7).double()
    assert learnable.halo == (7, 7) and fixed.halo == (4, 4)
    g = torch.randn(1, 1, 40, 40, dtype=torch.float64)
    a, b = fixed(g), learnable(g)
    u_max = float(g.abs().max())
    for name in ("u", "lap", "bilap"):
        # Same operator, taps within _tap_difference per axis: the results differ by the
        # combination's gain on those differences, plus both results' rounding (the
        # learnable passes accumulate 15 taps, zeros beyond the support).
        spec = {(0, 0): 1.0} if name == "u" else requests[name]
        gap, terms = 0.0, []
        for idx, coeff in spec.items():
            stencils = [mollifier_stencil(BUMP, k, h, radius) for k in idx]
            deltas = [_tap_difference(k, h, radius, 7) for k in idx]
            gap += abs(coeff) * (math.prod(l1(s) + d for s, d in zip(stencils, deltas)) - math.prod(map(l1, stencils)))
            terms.append((coeff, stencils))
        tol = gap * u_max + 2 * combination_rounding_bound(terms, u_max, EPS64, k=2 * (15 + 1))
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=tol)
