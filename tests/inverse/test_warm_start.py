"""Training that starts from the data: the radius rule, the anchored field, the diagnostics."""

import numpy as np
import pytest
import torch

from mollifier.inverse import TrainConfig, estimate_parameter, train
from mollifier.inverse.diagnostics import diagnose, format_findings
from mollifier.inverse.metrics import pearson
from mollifier.inverse.model import InverseModel
from mollifier.inverse.warm_start import (
    RADIUS_RATIO,
    AnchoredField,
    anchor_to_data,
    derivative_misfit,
    field_on_grid,
    network_free_start,
    training_floor_cells,
    training_radius,
)
from mollifier.network_free import extend_edges, noise_gain, smooth_on_halo
from mollifier.problems import make_problem


def test_extend_edges_continues_linear_data_exactly_and_smooth_on_halo_has_the_halo():
    x = np.linspace(0.0, 1.0, 20)
    plane = 2.0 * x[:, None] - 3.0 * x[None, :] + 1.0
    wide = extend_edges(plane, (3, 2))
    h = x[1]
    xs, ys = np.arange(-3, 23) * h, np.arange(-2, 22) * h
    np.testing.assert_allclose(wide, 2.0 * xs[:, None] - 3.0 * ys[None, :] + 1.0, atol=1e-12)
    smooth = smooth_on_halo(plane, (h, h), (4 * h, 4 * h), (2, 3))
    assert smooth.shape == (1, 24, 26)
    np.testing.assert_allclose(smooth[0, 2:-2, 3:-3], plane, atol=1e-10)  # the kernel keeps planes
    assert smooth_on_halo(plane, (h, h), (4 * h, 4 * h), (2, 3), periodic=True).shape == (1, 20, 20)


def test_noise_gain_matches_the_variance_of_smoothed_white_noise():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((256, 256))
    h = 1.0 / 256
    from mollifier.core.operators import derivatives, laplacian

    lap = derivatives(torch.as_tensor(noise).reshape(1, 1, 256, 256), {"l": laplacian(2)}, (h, h), (6 * h, 6 * h), boundary="periodic")["l"]
    assert float(lap.var()) == pytest.approx(noise_gain(laplacian(2), (h, h), 6.0), rel=0.05)


def test_training_radius_is_a_fixed_fraction_of_the_network_free_optimum_and_respects_the_floor():
    problem = make_problem("heat", grid=48, noise=0.05, seed=0)
    start = network_free_start(problem)
    radius, cells, rule = training_radius(problem, start)
    assert cells == max(3.0, round(RADIUS_RATIO * start.radius_cells)) and radius[0] == pytest.approx(cells * problem.grid.spacing[0])
    assert "network-free optimum" in rule
    clean = make_problem("chromatin", grid=32, noise=0.0, seed=0)
    clean_start = network_free_start(clean)
    assert RADIUS_RATIO * clean_start.radius_cells < 5  # the rule alone would go under the floor here
    assert training_radius(clean, clean_start)[1] == 5.0  # 4th order: at least order + 1 cells
    assert [training_floor_cells(k) for k in (1, 2, 3, 4, 6)] == [2.0, 3.0, 4.0, 5.0, 7.0]
    sparse = make_problem("heat", grid=32, noise=0.05, seed=0, density=0.5)
    assert network_free_start(sparse) is None
    assert training_radius(sparse, None)[2].startswith("auto: the problem's default")


def test_train_config_radius_and_warm_start_values():
    assert TrainConfig().radius == "auto" and TrainConfig().warm_start == "auto"
    TrainConfig(radius=0.1, warm_start="none")
    with pytest.raises(ValueError, match="radius"):
        TrainConfig(radius="big")
    with pytest.raises(ValueError, match="warm_start"):
        TrainConfig(warm_start="sometimes")


@pytest.mark.parametrize("name", ["heat", "chromatin"])
def test_anchoring_makes_the_field_the_smoothed_data(name):
    problem = make_problem(name, grid=32, noise=0.05, seed=0)
    start = network_free_start(problem)
    torch.manual_seed(0)
    model = InverseModel(problem, radius=3 * problem.grid.spacing[0]).double()
    anchored = anchor_to_data(model, start)
    assert isinstance(model.field.net, AnchoredField) and anchored is model.field.net
    coords = model.engine.coords(torch.float64, "cpu")
    with torch.no_grad():
        field = model.field(coords).reshape(model.problem.grid.extended_shape(model.engine.halo))
    smooth = smooth_on_halo(problem.observations.values, problem.grid.spacing, start.radius, model.engine.halo,
                            periodic=problem.boundary == "periodic")[0]
    np.testing.assert_allclose(field.numpy(), smooth, atol=1e-9)


def test_derivative_misfit_is_about_one_for_the_clean_field_and_large_for_a_flat_one():
    problem = make_problem("heat", grid=64, noise=0.05, seed=0)
    start = network_free_start(problem)
    from mollifier.problems.forward import simulate_heat

    clean = simulate_heat(n=64, rng=0)["u"][None]
    assert derivative_misfit(problem, clean, start) == pytest.approx(1.0, abs=0.3)
    assert derivative_misfit(problem, np.zeros_like(clean), start) > 50


def test_anchored_run_resumes_exactly(tmp_path):
    problem = make_problem("heat", grid=24, noise=0.05, seed=0)
    config = TrainConfig(steps=16, log_every=0, checkpoint_every=0, warm_start="anchor")
    straight = train(problem, config)
    assert straight.metrics["warm_start"]["anchored"] and straight.metrics["warm_start"]["anchored_at_step"] == 0
    original, calls = problem.residual, {"n": 0}

    def interrupting(d, p, k):
        calls["n"] += 1
        if calls["n"] == 11:
            raise KeyboardInterrupt
        return original(d, p, k)

    problem.residual = interrupting
    with pytest.raises(KeyboardInterrupt):
        train(problem, config, tmp_path)
    problem.residual = original
    resumed = train(problem, config, tmp_path, resume=True)
    assert len(resumed.history) == 16 and resumed.metrics["warm_start"]["anchored"]
    np.testing.assert_allclose(resumed.history[-1]["loss"], straight.history[-1]["loss"], rtol=1e-5)


def test_auto_warm_start_anchors_only_when_the_field_misses_the_data():
    problem = make_problem("heat", grid=32, noise=0.05, seed=0)
    tiny = train(problem, TrainConfig(steps=40, log_every=0, warm_start="auto", backbone_options={"width": 4, "depth": 1}))
    check = tiny.metrics["warm_start"]["check"]
    assert check["step"] == 10 and check["derivative_misfit"] > 2 and tiny.metrics["warm_start"]["anchored"]
    off = train(problem, TrainConfig(steps=40, log_every=0, warm_start="none", backbone_options={"width": 4, "depth": 1}))
    assert not off.metrics["warm_start"]["anchored"] and "check" not in off.metrics["warm_start"]
    other = train(problem, TrainConfig(steps=8, log_every=0, engine="fd"))
    assert other.metrics["radius_cells"] is None and not other.metrics["warm_start"]["anchored"]


def test_diagnostics_fire_on_an_under_capacity_network():
    problem = make_problem("heat", grid=32, noise=0.05, seed=0, correlation_length=0.1)
    result = train(problem, TrainConfig(steps=60, log_every=0, warm_start="none", backbone_options={"width": 4, "depth": 1}))
    codes = {f["code"] for f in result.metrics["diagnostics"]}
    assert {"fit-above-noise", "derivative-misfit", "network-free-better"} <= codes
    assert result.metrics["fit_check"]["misfit_over_noise"] > 1.5 and result.metrics["fit_check"]["derivative_misfit"] > 2
    lines = format_findings(result.metrics["diagnostics"])
    assert any("Try:" in line and "steps" in line for line in lines)


def test_an_anchored_field_that_misses_the_detail_is_told_to_train_longer_not_wider():
    # a field flattened to its mean misses every derivative; anchored, the advice is steps
    problem = make_problem("heat", grid=32, noise=0.05, seed=0)
    start = network_free_start(problem)
    flat = np.full_like(problem.observations.values, problem.observations.values.mean())
    for anchored in (True, False):
        findings, _ = diagnose(problem, flat, None, start, steps_done=10, steps=10, anchored=anchored)
        advice = {f["code"]: f["suggestion"] for f in findings}["derivative-misfit"]
        assert "longer" in advice and ("widen" in advice) is not anchored


def test_diagnostics_stay_quiet_when_the_fit_is_the_truth():
    problem = make_problem("heat", grid=64, noise=0.05, seed=0)
    from mollifier.problems.forward import simulate_heat

    data = simulate_heat(n=64, rng=0)
    start = network_free_start(problem)
    findings, numbers = diagnose(problem, data["u"][None], data["lambda"], start, steps_done=10, steps=10)
    assert findings == [] and numbers["misfit_over_noise"] == pytest.approx(1.0, abs=0.15)


@pytest.mark.slow
def test_warm_start_leaves_the_network_no_worse_than_the_network_free_estimate():
    """Small heat problem with a rough diffusivity (correlation length 0.1 on a 48^2 grid):
    anchored from the first step, the trained network is at least as good as the
    network-free estimate it starts from, on the points where that estimate exists
    (measured: 0.857 against 0.856; without the anchor 0.764)."""
    problem = make_problem("heat", grid=48, noise=0.05, seed=0, correlation_length=0.1)
    free = estimate_parameter(problem, "mollifier")
    support = np.isfinite(free.estimates["lambda"]) & problem.metric_mask
    truth = problem.truth["lambda"]
    trained = train(problem, TrainConfig(steps=800, log_every=0, warm_start="anchor"))
    cold = train(problem, TrainConfig(steps=800, log_every=0, warm_start="none", radius=None))
    free_p = pearson(free.estimates["lambda"], truth, support)
    assert pearson(trained.estimates["lambda"], truth, support) >= free_p - 0.005
    assert pearson(trained.estimates["lambda"], truth, support) > pearson(cold.estimates["lambda"], truth, support)


def test_diagnostics_say_when_the_two_recoveries_disagree():
    """No truth needed: a collapsed recovery disagrees with the other one from the same field."""
    problem = make_problem("heat", grid=64, noise=0.05, seed=0)
    from mollifier.problems.forward import simulate_heat

    data = simulate_heat(n=64, rng=0)
    truth = data["lambda"]
    rng = np.random.default_rng(0)
    collapsed = truth.mean() + 1e-3 * rng.standard_normal(truth.shape)  # flat and uncorrelated
    findings, numbers = diagnose(problem, data["u"][None], collapsed, None, steps_done=10, steps=10,
                                 recoveries={"direct": truth, "learned": collapsed}, headline="learned")
    (finding,) = [f for f in findings if f["code"] == "recoveries-disagree"]
    assert numbers["recoveries_agreement"] < 0.5 and "recovery='direct'" in finding["suggestion"]
    close = truth + 0.05 * truth.std() * rng.standard_normal(truth.shape)
    findings, numbers = diagnose(problem, data["u"][None], close, None, steps_done=10, steps=10,
                                 recoveries={"direct": truth, "learned": close}, headline="learned")
    assert numbers["recoveries_agreement"] > 0.99 and not [f for f in findings if f["code"] == "recoveries-disagree"]


def test_run_takes_the_headline_recovery_from_the_command_line(tmp_path, capsys):
    import json

    from mollifier.cli.main import main

    out = tmp_path / "run"
    assert main(["run", "heat", "--grid", "24", "--steps", "3", "--recovery", "learned", "--json", "--no-figures",
                 "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["recovery"] == "learned"


def test_a_collapsed_unknown_is_restarted_at_the_network_free_estimate():
    # drive the unknown's network onto softplus's flat tail after the first step (what the
    # residual warm-up once did to chromatin's rate field): its gradient is then ~1e-17 and
    # it can never come back by training; the check a quarter of the way in restarts it
    from mollifier.inverse import Callback
    from mollifier.inverse.warm_start import COLLAPSE_FRACTION, collapsed_unknowns

    class Collapse(Callback):
        def __init__(self, problem):
            self.problem = problem

        def on_step_end(self, state, entry):
            if state.step == 1:
                with torch.no_grad():
                    last = [m for m in state.model.field_unknowns["lambda"].modules() if isinstance(m, torch.nn.Linear)][-1]
                    last.weight.zero_()
                    last.bias.fill_(-40.0)
                assert collapsed_unknowns(state.model, self.problem) == ["lambda"]

    # 5 % noise, 1,600 steps: the field meets the data by the check (step 400) and the
    # unknown alone restarts; 1 %, 200 steps: the field misses the data's detail at the
    # check and is anchored, which refits every unknown (the collapsed one re-initialised)
    for noise, steps, how in ((0.05, 1600, "restarted"), (0.01, 200, "reinitialised")):
        problem = make_problem("heat", grid=32, noise=noise, seed=0, prior="network")
        result = train(problem, TrainConfig(steps=steps, log_every=0, checkpoint_every=0), callbacks=[Collapse(problem)])
        warm = result.metrics["warm_start"]
        assert (warm["restarted"]["unknowns"] if how == "restarted" else warm["reinitialised"]) == ["lambda"], warm
        learned = result.arrays["learned_lambda"]
        assert learned.min() > 1e3 * COLLAPSE_FRACTION  # off the floor (lambda is about 1)
        assert pearson(learned, problem.truth["lambda"]) > 0.5  # and learning again
    # without a direct formula there is no network-free estimate to fit: re-initialised only
    # (fresh Adam moments too), and said so
    problem = make_problem("heat", grid=32, noise=0.05, seed=0, prior="network")
    problem.direct = None
    lines = []
    result = train(problem, TrainConfig(steps=1600, log_every=0, checkpoint_every=0), callbacks=[Collapse(problem)],
                   log=lines.append)
    restarted = result.metrics["warm_start"]["restarted"]
    assert restarted["unknowns"] == ["lambda"] and restarted["fitted"] == []
    assert any("re-initialised" in line for line in lines)
    assert result.arrays["learned_lambda"].min() > 1e3 * COLLAPSE_FRACTION
    assert pearson(result.arrays["learned_lambda"], problem.truth["lambda"]) > 0.5
    # without the check it stays collapsed
    stuck = train(problem, TrainConfig(steps=200, log_every=0, checkpoint_every=0, warm_start="none"), callbacks=[Collapse(problem)])
    assert stuck.arrays["learned_lambda"].max() < COLLAPSE_FRACTION
