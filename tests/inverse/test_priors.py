"""Gaussian-process priors on unknown fields: settings from the data, the MAP weight, the wiring."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mollifier.backbones import GaussianProcessField
from mollifier.inverse import TrainConfig, train
from mollifier.inverse.objective import LossWeights, Objective
from mollifier.inverse.priors import (
    NOISE_FLOOR,
    SCALE_FACTOR,
    correlation_length_of,
    noise_level,
    prior_penalty,
    prior_scale_of,
    prior_weight,
    resolve_priors,
)
from mollifier.inverse.warm_start import network_free_start
from mollifier.problems import make_problem
from mollifier.problems.forward.random_fields import gaussian_random_field


def test_correlation_length_of_a_gaussian_random_field():
    # 256^2 samples of a field with ell = 0.3 on a box of 10 (33 correlation lengths a side):
    # the sample autocorrelation's error is ~ 1 / sqrt(33^2) ~ 3 %; allow 15 %
    field = gaussian_random_field((256, 256), 10.0, 0.3, rng=0)
    found = correlation_length_of(field, (10.0 / 256, 10.0 / 256))
    assert abs(found / 0.3 - 1.0) < 0.15, found


def test_correlation_length_ignores_the_nan_band_of_a_non_periodic_estimate():
    field = gaussian_random_field((128, 128), 5.0, 0.3, rng=1)
    banded = field.copy()
    banded[:6] = banded[-6:] = np.nan
    banded[:, :6] = banded[:, -6:] = np.nan
    spacing = (5.0 / 128,) * 2
    assert correlation_length_of(banded, spacing) == pytest.approx(correlation_length_of(field[6:-6, 6:-6], spacing), rel=1e-12)


def test_white_noise_has_a_correlation_length_of_one_cell():
    noise = np.random.default_rng(0).standard_normal((64, 64))
    assert correlation_length_of(noise, (0.1, 0.1)) == pytest.approx(0.1)


def test_scale_is_twice_the_spread_in_the_series_units():
    problem = make_problem("heat", grid=32, noise=0.05, seed=0, prior="gp")
    spec = problem.unknowns[0]
    values = np.random.default_rng(0).uniform(0.6, 1.4, size=500)
    assert prior_scale_of(values, spec) == pytest.approx(SCALE_FACTOR * np.std(np.log(np.expm1(np.clip(values, *np.percentile(values, [1, 99]))))))
    signed = dataclasses.replace(spec, positive=False)
    assert prior_scale_of(values, signed) == pytest.approx(SCALE_FACTOR * np.std(np.clip(values, *np.percentile(values, [1, 99]))))


def test_resolve_chooses_numbers_and_a_periodic_problem_gets_its_own_period():
    heat = make_problem("heat", grid=32, noise=0.05, seed=0, correlation_length=0.2, prior="gp")
    resolved, report = resolve_priors(heat, network_free_start(heat))
    options = resolved.unknowns[0].options
    assert isinstance(options["correlation_length"], float) and isinstance(options["scale"], float)
    assert "period" not in options                       # twice the domain, the backbone's default
    assert report["lambda"]["noise_std"] > 0 and "autocorrelation" in report["lambda"]["rule"]
    chromatin = make_problem("chromatin", grid=32, noise=0.05, seed=0, prior="gp")
    resolved, _ = resolve_priors(chromatin, network_free_start(chromatin))
    grid = chromatin.grid
    assert resolved.unknowns[0].options["period"] == tuple(n * h for n, h in zip(grid.shape, grid.spacing))


def test_given_settings_are_kept_and_problems_without_priors_pass_through():
    heat = make_problem("heat", grid=32, noise=0.05, seed=0, prior="gp")
    fixed = dataclasses.replace(heat, unknowns=[dataclasses.replace(heat.unknowns[0], options={"correlation_length": 0.25, "scale": 0.7})])
    resolved, report = resolve_priors(fixed, None)
    assert resolved.unknowns[0].options == {"correlation_length": 0.25, "scale": 0.7}
    assert report["lambda"]["rule"] == "given"
    plain = make_problem("heat", grid=32, noise=0.05, seed=0, prior="network")
    assert resolve_priors(plain, None) == (plain, {})


def test_auto_without_a_network_free_estimate_names_the_field_and_the_way_out():
    heat = make_problem("heat", grid=32, noise=0.05, seed=0, prior="gp")
    with pytest.raises(ValueError, match="'lambda'.*as numbers"):
        resolve_priors(dataclasses.replace(heat, direct=None), network_free_start(heat))


def test_noise_level_comes_from_the_data_or_from_the_observations():
    heat = make_problem("heat", grid=32, noise=0.05, seed=0, prior="gp")
    start = network_free_start(heat)
    assert noise_level(heat, start) == start.noise_std
    assert noise_level(heat, None) == pytest.approx(0.05 * np.std(heat.observations.observed()))
    quiet = dataclasses.replace(heat, observations=dataclasses.replace(heat.observations, noise=0.0))
    with pytest.raises(ValueError, match="noise level"):
        noise_level(quiet, None)


def test_the_objective_adds_the_map_weighted_penalty():
    problem = make_problem("langevin", grid=64, noise=0.05, seed=0, prior="gp")
    result = train(problem, TrainConfig(steps=3, log_every=0, checkpoint_every=0, warm_start="none"))
    start = network_free_start(problem)
    n, var = problem.observations.mask.sum(), problem.observations.observed().var()
    relative = max(start.noise_std**2 / var, NOISE_FLOOR**2)              # the floor, where it binds
    expected = 2.0 * LossWeights.resolve(problem).data * relative / n
    assert result.metrics["priors"]["lambda"]["weight"] == pytest.approx(expected, rel=1e-9)
    assert result.metrics["priors"]["lambda"]["noise_floor"] == NOISE_FLOOR
    gp = result.model.field_unknowns["lambda"].net
    assert isinstance(gp, GaussianProcessField)
    assert result.metrics["priors"]["lambda"]["modes"] == gp.modes > 0
    assert result.history[-1]["prior"] > 0.0               # recorded (before that step's update)
    assert result.metrics["recovery"] == "learned"         # an unknown with a prior is read as learned


def test_prior_weight_and_penalty_agree_with_the_formula():
    problem = make_problem("langevin", grid=64, noise=0.05, seed=0, prior="gp")
    start = network_free_start(problem)
    resolved, _ = resolve_priors(problem, start)
    from mollifier.inverse.model import InverseModel

    model = InverseModel(resolved)
    objective = Objective(resolved, model, LossWeights.resolve(resolved), torch.device("cpu"), torch.float32)
    objective.prior_weight = prior_weight(1.0, float(objective.observed_count), objective.data_scale, start.noise_std)
    gp = model.field_unknowns["lambda"].net
    with torch.no_grad():
        gp.z.fill_(1.0)
    loss_with, parts, _, _ = objective(10_000)
    objective.prior_weight = 0.0
    loss_without, _, _, _ = objective(10_000)
    penalty = 0.5 * gp.modes
    assert float(prior_penalty(model).detach()) == pytest.approx(penalty)
    weight = 2.0 * start.noise_std**2 / (64 * problem.observations.observed().var())
    assert parts["prior"] == pytest.approx(weight * penalty, rel=1e-5)
    # the loss is summed in float32: the difference of two sums is exact to a few eps of their size
    rounding = 4 * torch.finfo(torch.float32).eps * abs(float(loss_with.detach()))
    assert float((loss_with - loss_without).detach()) == pytest.approx(weight * penalty, abs=rounding)


def test_a_given_noise_level_wins_and_scattered_data_must_give_one():
    from mollifier.inverse import ScatteredObservations

    heat = make_problem("heat", grid=32, noise=0.05, seed=0, prior="gp")
    given = dataclasses.replace(heat, unknowns=[dataclasses.replace(
        heat.unknowns[0], options={"correlation_length": 0.2, "scale": 1.0, "noise_std": 0.01})])
    resolved, report = resolve_priors(given, network_free_start(heat))
    assert report["lambda"]["noise_std"] == 0.01
    assert "noise_std" not in resolved.unknowns[0].options          # not a backbone argument
    assert noise_level(resolved, network_free_start(heat), 0.01) == 0.01
    points = np.random.default_rng(0).random((200, 2))
    scattered = dataclasses.replace(heat, observations=ScatteredObservations(points, np.sin(points[:, 0]), noise=0.1))
    with pytest.raises(ValueError, match="noise_std"):
        noise_level(scattered, None)
    with pytest.raises(ValueError, match="noise_std"):
        resolve_priors(dataclasses.replace(given, unknowns=[dataclasses.replace(
            given.unknowns[0], options={"correlation_length": 0.2, "scale": 1.0, "noise_std": -1.0})]), None)


def test_the_noise_floor_binds_only_below_it():
    # relative noise 1 % of the spread: floored at NOISE_FLOOR; 20 %: the data's own
    var, n = 4.0, 1000.0
    assert prior_weight(1.0, n, var, 0.01 * 2.0, NOISE_FLOOR) == pytest.approx(2.0 * NOISE_FLOOR**2 / n)
    assert prior_weight(1.0, n, var, 0.2 * 2.0, NOISE_FLOOR) == pytest.approx(2.0 * 0.2**2 / n)
    assert prior_weight(1.0, n, var, 0.01 * 2.0, 0.0) == pytest.approx(2.0 * 0.01**2 / n)   # bare MAP weight


def test_the_noise_floor_is_reported_can_be_given_and_is_checked():
    heat = make_problem("heat", grid=32, noise=0.01, seed=0, prior="gp")
    start = network_free_start(heat)
    _, report = resolve_priors(heat, start)
    assert report["lambda"]["noise_floor"] == NOISE_FLOOR
    options = {"correlation_length": 0.2, "scale": 1.0}

    def with_floor(floor):
        return dataclasses.replace(heat, unknowns=[dataclasses.replace(heat.unknowns[0], options={**options, "noise_floor": floor})])

    resolved, report = resolve_priors(with_floor(0.0), start)
    assert report["lambda"]["noise_floor"] == 0.0
    assert "noise_floor" not in resolved.unknowns[0].options              # not a backbone argument
    for bad in (-0.1, 1.0, "high", True):
        with pytest.raises(ValueError, match=r"`noise_floor` must be a number in \[0, 1\).*got"):
            resolve_priors(with_floor(bad), start)


def test_docstring_examples():
    import doctest

    from mollifier.backbones import spectral
    from mollifier.inverse import priors

    for module in (priors, spectral):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, module.__name__
