"""benchmarks/robustness_ceiling.py: its forward models reproduce the generator's data and
exact solutions, and its estimates recover the truth when the noise vanishes and fall back
to the prior when the noise swamps the data."""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

import robustness_ceiling as ceiling  # noqa: E402

from mollifier.backbones.spectral import fourier_modes  # noqa: E402
from mollifier.inverse.metrics import pearson  # noqa: E402
from mollifier.problems import make_problem  # noqa: E402
from mollifier.problems.forward import simulate_heat, simulate_langevin  # noqa: E402
from mollifier.problems.forward.heat import poisson_dirichlet  # noqa: E402


def test_langevin_operator_matches_the_closed_form_response_to_one_mode():
    t = np.linspace(0.0, 1.0, 65)
    phi, psi, _ = ceiling.langevin_operator(t, 0.2)
    k, _ = fourier_modes((2.0,), 0.2)
    kk = k[2, 0]
    # u_t = u + cos(k t), u(0) = 0:  u = (e^t - cos kt + k sin kt) / (1 + k^2)
    exact = (np.exp(t) - np.cos(kk * t) + kk * np.sin(kk * t)) / (1.0 + kk**2)
    np.testing.assert_allclose(phi[:, 2], np.cos(kk * t), atol=1e-12)
    # trapezoid on a 32x finer grid: error ~ h^2 / 12 * max|integrand''| ~ 1e-6 here
    assert np.abs(psi[:, 2] - exact).max() < 1e-5


def test_langevin_posterior_mean_recovers_the_truth_without_noise_and_the_prior_mean_under_heavy_noise():
    p = make_problem("langevin", grid=128, noise=0.0, seed=3, correlation_length=0.1)
    clean = simulate_langevin(n=128, rng=3, correlation_length=0.1)
    truth = p.truth["lambda"]
    sharp = ceiling.langevin_posterior_mean(clean["u"], clean["t"], 0.1, sigma=1e-7)
    # the truth lies in the prior's span up to modes of amplitude 1e-4 of the largest
    assert np.abs(sharp - truth).max() < 1e-2 * np.abs(truth).max()
    assert pearson(sharp, truth, np.ones(truth.shape, bool)) > 0.9999
    swamped = ceiling.langevin_posterior_mean(clean["u"], clean["t"], 0.1, sigma=1e3)
    assert np.abs(swamped).max() < 1e-3 * np.abs(truth).max()


def test_mehrstellen_solver_is_the_generators_scheme_and_fourth_order():
    rng = np.random.default_rng(0)
    f = rng.standard_normal((2, 17, 17))
    h = 1.0 / 16
    np.testing.assert_allclose(ceiling.mehrstellen_solve(f, h)[1], poisson_dirichlet(f[1], h, order=4), atol=1e-12)

    def error(n: int) -> float:
        x = np.linspace(0.0, 1.0, n)
        X, Y = np.meshgrid(x, x, indexing="ij")
        exact = np.sin(np.pi * X) * np.sin(2 * np.pi * Y)
        u = ceiling.mehrstellen_solve((-5 * np.pi**2 * exact)[None], x[1] - x[0])[0]
        return float(np.abs(u - exact).max())

    assert 14.0 < error(17) / error(33) < 18.0   # fourth order: halving h divides the error by 16


def test_heat_map_recovers_the_truth_at_vanishing_noise():
    clean = simulate_heat(n=32, rng=1, correlation_length=0.3)
    h = clean["x"][1] - clean["x"][0]
    # the oracle's forward model reproduces the generator's (8x refined) data far below 1 % noise
    u_model = ceiling.mehrstellen_solve((-clean["source"] / clean["lambda"])[None], h)[0]
    assert np.sqrt(np.mean((u_model - clean["u"]) ** 2)) < 1e-3 * np.std(clean["u"])
    sigma = 1e-4 * float(np.std(clean["u"]))
    noisy = clean["u"] + sigma * np.random.default_rng(5).standard_normal(clean["u"].shape)
    estimate, info = ceiling.heat_map_estimate(noisy, clean["x"], clean["source"], 0.3, sigma)
    inner = np.zeros(estimate.shape, bool)
    inner[3:-3, 3:-3] = True
    assert info["iterations"] < 40
    assert pearson(estimate, clean["lambda"], inner) > 0.999
    swamped, _ = ceiling.heat_map_estimate(noisy, clean["x"], clean["source"], 0.3, 1e3 * float(np.std(clean["u"])))
    np.testing.assert_allclose(swamped, 1.0, atol=1e-3)   # the prior's mean: base + amplitude tanh(0)


def test_the_script_reports_every_langevin_cell(capsys):
    assert ceiling.main(["--problems", "langevin", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 9
    for row in rows:
        assert set(row["smoothers"]) == set(ceiling.SMOOTHERS)
        assert -1.0 <= row["oracle_pearson"] <= 1.0
        best = row["smoothers"][row["best_smoother"]]["pearson"]
        assert best == max(s["pearson"] for s in row["smoothers"].values())


def test_a_missing_results_file_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        ceiling.main(["--results", str(tmp_path / "none.jsonl")])
    assert "--results" in capsys.readouterr().err


def test_the_marginal_likelihood_prefers_the_generators_correlation_length():
    # Langevin: exact Gaussian evidence; 1 % noise, ten correlation lengths of record
    row = ceiling.ceiling_cell("langevin", 128, 0.1, 0.01, seed=0, empirical=True)
    assert row["length_used"] in (0.07, 0.1, 0.14)       # the true 0.1 or a neighbour on the grid
    assert row["empirical"] and row["sigma_used"] > 0
    # heat: Laplace evidence at the MAP is far higher at the true length than at a rough one
    clean = simulate_heat(n=32, rng=2, correlation_length=0.3)
    sigma = 0.01 * float(np.std(clean["u"]))
    noisy = clean["u"] + sigma * np.random.default_rng(7).standard_normal(clean["u"].shape)
    right = ceiling.heat_map_estimate(noisy, clean["x"], clean["source"], 0.3, sigma)[1]["log_evidence"]
    rough = ceiling.heat_map_estimate(noisy, clean["x"], clean["source"], 0.08, sigma)[1]["log_evidence"]
    assert right > rough + 10.0   # a likelihood ratio above e^10


def test_noise_free_data_have_no_posterior_to_compute():
    # told the noise level (0), the oracle has no likelihood: a clear error, not a singular solve
    with pytest.raises(ValueError, match="`noise` must be > 0"):
        ceiling.ceiling_cell("langevin", 64, 0.1, 0.0, seed=0)


def test_prior_sensitivity_scales_the_automatic_setting_it_varies():
    import prior_sensitivity as sensitivity

    from mollifier.inverse import estimate_parameter
    from mollifier.inverse.priors import correlation_length_of

    row = sensitivity.run("langevin", "correlation_length", 1.67)
    grid, ell, noise = sensitivity.CELLS["langevin"]
    problem = make_problem("langevin", grid=grid, noise=noise, seed=0, correlation_length=ell)
    auto = correlation_length_of(estimate_parameter(problem, "gaussian").arrays["direct_lambda"], problem.grid.spacing)
    assert row["value"] == pytest.approx(1.67 * auto)
    assert row["margin"] == pytest.approx(row["network_on_support"] - row["best_smoother_pearson"])
    assert -1.0 <= row["pearson_mask"] <= 1.0


def test_prior_sensitivity_sets_the_noise_floor_it_varies(monkeypatch):
    import prior_sensitivity as sensitivity

    from mollifier.inverse import train as real_train

    seen = {}

    def train(problem, config):  # a few steps: the wiring is what is tested
        seen["options"] = problem.unknowns[0].options
        result = real_train(problem, dataclasses.replace(config, steps=20, lbfgs_steps=0))
        seen["floor"] = result.metrics["priors"]["lambda"]["noise_floor"]
        return result

    import robustness_cell

    monkeypatch.setattr(robustness_cell, "train", train)
    row = sensitivity.run_floor("langevin", (64, 0.1, 0.01), 0.02)
    assert seen == {"options": {"noise_floor": 0.02}, "floor": 0.02}
    assert row["setting"] == "noise_floor" and row["value"] == 0.02
    assert row["worst_margin"] <= row["margin"]


def test_robustness_cell_scores_the_trained_estimate_on_every_smoothers_support(capsys):
    import robustness_cell

    assert robustness_cell.main(["langevin", "--grid", "64", "--correlation-length", "0.1", "--noise", "0.05",
                                 "--training", '{"steps": 30, "lbfgs_steps": 0}', "--options", '{"noise_floor": 0.1}', "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["priors"]["lambda"]["noise_floor"] == 0.1 and row["options"] == {"noise_floor": 0.1}
    assert set(row["margins"]) == set(robustness_cell.SMOOTHERS)
    assert row["worst_margin"] == min(row["margins"].values())
    assert row["margin"] == row["margins"][row["best_smoother"]]
    assert row["best_smoother_pearson"] == max(row["smoothers"].values())
