"""Network-free estimates: every smoother on clean data, the automatic radius, errors."""

import numpy as np
import pytest

from mollifier.inverse import estimate_parameter
from mollifier.network_free import SMOOTHERS, auto_radius, noise_std
from mollifier.problems import make_problem

# Noise-free data: each smoother must recover the parameter almost exactly; the tolerance
# is the smoothing bias at a 3-cell radius (6 for the Gaussian), not a tuned number (see the radius sweep
# test below for how much noise costs).
CLEAN = {
    ("langevin", "mollifier"): 0.999, ("langevin", "savgol"): 0.999, ("langevin", "gaussian"): 0.99,
    ("langevin", "spline"): 0.999, ("heat", "mollifier"): 0.99, ("heat", "savgol"): 0.99,
    ("heat", "spline"): 0.99, ("heat", "gaussian"): 0.99, ("chromatin", "mollifier"): 0.99, ("chromatin", "savgol"): 0.99,
    ("chromatin", "gaussian"): 0.95,
}


@pytest.mark.parametrize("problem, smoother", sorted(CLEAN))
def test_each_smoother_recovers_the_parameter_from_clean_data(problem, smoother):
    p = make_problem(problem, noise=0.0, seed=0, **({"grid": 64} if problem == "chromatin" else {}))
    # scipy's Gaussian-derivative filters are sampled, uncorrected kernels: at sigma = 1 cell
    # (radius 3) their 4th derivatives are wrong (chromatin Pearson ~0.3); they need sigma = 2.
    cells = 6 if smoother == "gaussian" else 3
    result = estimate_parameter(p, smoother, radius=cells * p.grid.spacing[0])
    assert result.metrics["parameter_pearson"] > CLEAN[(problem, smoother)]


def test_noise_std_estimate():
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 200)
    field = np.sin(2 * np.pi * x)[:, None] * np.cos(2 * np.pi * x)[None, :]
    assert noise_std(field + 0.01 * rng.standard_normal(field.shape)) == pytest.approx(0.01, rel=0.05)


@pytest.mark.parametrize("problem", ["langevin", "heat"])
@pytest.mark.parametrize("noise", [0.05, 0.1])
def test_automatic_radius_is_within_a_factor_two_of_the_best_swept_radius(problem, noise):
    p = make_problem(problem, noise=noise, seed=0)
    h = p.grid.spacing[0]
    auto = estimate_parameter(p, "mollifier").metrics["radius_cells"]
    sweep = {c: estimate_parameter(p, "mollifier", radius=c * h).metrics["parameter_relative_l2"] for c in range(2, min(min(p.grid.shape) // 4, 32) + 1, 2)}
    best = min(sweep, key=sweep.get)
    assert best / 2 <= auto <= 2 * best, (auto, best, sweep)


def test_errors():
    p = make_problem("heat", noise=0.0, seed=0, density=0.5)
    with pytest.raises(ValueError, match="every grid point"):
        estimate_parameter(p)
    with pytest.raises(ValueError, match="smoother"):
        estimate_parameter(make_problem("heat", noise=0.0), "magic")
    with pytest.raises(ValueError, match="order 3"):
        estimate_parameter(make_problem("chromatin", grid=32, noise=0.0), "spline", radius=1.0)
    assert set(SMOOTHERS) == {"mollifier", "savgol", "gaussian", "spline"}
    assert len(auto_radius(np.random.default_rng(0).standard_normal((32, 32)), (2, 0), (0.1, 0.1))) == 2


def test_an_estimate_is_scored_beside_each_smoother_on_that_smoothers_support():
    from mollifier.inverse.direct import score_beside_smoothers
    from mollifier.inverse.metrics import pearson

    problem = make_problem("heat", grid=32, noise=0.05, seed=0, prior="network")
    truth = problem.truth["lambda"]
    scored = score_beside_smoothers(problem, truth, ("mollifier", "savgol"))
    assert set(scored) == {"mollifier", "savgol"}
    for smoother, score in scored.items():
        assert abs(score["estimate_on_support"] - 1.0) < 1e-12  # the truth itself (float64 rounding)
        free = estimate_parameter(problem, smoother).arrays["direct_lambda"]
        assert score["pearson"] == pearson(free, truth, problem.metric_mask & np.isfinite(free))
    # an estimate that is wrong only where the mollifier gives no estimate (its edge band) scores
    # perfectly on the mollifier's support
    band = ~np.isfinite(estimate_parameter(problem, "mollifier").arrays["direct_lambda"])
    assert band.any()
    wrong = np.where(band, -truth, truth)
    assert abs(score_beside_smoothers(problem, wrong, ("mollifier",))["mollifier"]["estimate_on_support"] - 1.0) < 1e-12
