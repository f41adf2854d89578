"""Observations, noise, problem declaration and the benchmark problems' physics."""

import numpy as np
import pytest
import torch

import mollifier
from mollifier.inverse import (
    InverseProblem,
    Observations,
    UnknownField,
    add_relative_noise,
    pearson,
    random_mask,
    relative_l2,
)
from mollifier.problems import make_problem
from mollifier.problems.chromatin import BENCHMARK, fields


def _grid1d(n=33):
    return mollifier.Grid.from_bounds([(0.0, 1.0)], (n,))


def _problem(values, **kw):
    return InverseProblem(
        name="t",
        grid=_grid1d(len(values)),
        observations=Observations(values, **kw),
        derivatives={"u_x": (1,)},
        unknowns=[UnknownField("s")],
        residual=lambda d, p, k: d["u_x"] - p["s"],
    )


def test_noise_is_relative_to_the_field_spread():
    field = 10.0 + np.sin(np.linspace(0, 20, 20000))
    noisy = add_relative_noise(field, 0.05, 0)
    assert np.std(noisy - field) == pytest.approx(0.05 * field.std(), rel=0.03)
    assert np.array_equal(add_relative_noise(field, 0.0, 0), field)
    with pytest.raises(ValueError, match="noise"):
        add_relative_noise(field, -0.1, 0)


def test_random_mask_density_and_nonempty():
    mask = random_mask((100, 100), 0.2, 1)
    assert mask.mean() == pytest.approx(0.2, abs=0.02)
    assert random_mask((3,), 1e-9, 0).sum() == 1
    with pytest.raises(ValueError, match="density"):
        random_mask((3,), 0.0, 0)


def test_nan_observations_are_masked_and_reported():
    values = np.linspace(0, 1, 33)
    values[[3, 7]] = np.nan
    problem = _problem(values)
    assert problem.observations.mask.sum() == 31
    assert not problem.observations.mask[3] and not problem.observations.mask[7]
    assert "2 NaN/inf observation(s) at index (3,), (7,)" in problem.observations.notes[0]
    with pytest.raises(ValueError, match="2 NaN/inf"):
        _problem(values, nan_policy="raise")


def test_observation_errors_name_the_problem():
    with pytest.raises(ValueError, match="does not match the grid"):
        InverseProblem(
            name="t", grid=_grid1d(33), observations=Observations(np.zeros(20)),
            derivatives={"u_x": (1,)}, unknowns=[], residual=lambda d, p, k: d["u"],
        )
    with pytest.raises(ValueError, match="empty"):
        _problem(np.zeros(33), mask=np.zeros(33, dtype=bool))
    with pytest.raises(ValueError, match="noise"):
        _problem(np.zeros(33), noise=-1.0)


def test_make_problem_rejects_bad_input():
    with pytest.raises(ValueError, match="langevin"):
        make_problem("nope")
    with pytest.raises(ValueError, match="noise"):
        make_problem("heat", noise=-0.05)
    with pytest.raises(ValueError, match="grid"):
        make_problem("heat", grid=4)


def test_metrics():
    truth = np.linspace(1, 2, 50)
    assert pearson(2 * truth + 1, truth) == pytest.approx(1.0)
    assert relative_l2(truth * 1.1, truth) == pytest.approx(0.1)
    mask = np.ones(50, dtype=bool)
    mask[:25] = False
    assert relative_l2(np.where(mask, truth, 0.0), truth, mask) == 0.0
    with pytest.raises(ValueError, match="shape"):
        pearson(truth[:3], truth)


def test_chromatin_direct_formula_recovers_lambda_from_clean_fields():
    """The residual/direct formula, fed with mollifier derivatives of the exact steady
    field, gives back lambda: checks the chain-rule expansion of lap(mu_d)."""
    problem = make_problem("chromatin", grid=128, noise=0.0, seed=3)
    phi_d = torch.as_tensor(problem.truth["phi_d"]).reshape(1, 1, 128, 128)
    h = problem.grid.spacing
    d = mollifier.derivatives(
        phi_d,
        {"d0": (1, 0), "d1": (0, 1), "lap": mollifier.laplacian(2), "bilap": mollifier.biharmonic(2), "u": (0, 0)},
        spacing=h, radius=2 * h[0], boundary="periodic",
    )
    lam = problem.direct(d, {})["lambda"].numpy().squeeze()
    truth = problem.truth["lambda"]
    # Smoothing bias only (2-cell radius): the recovered map must track lambda closely,
    # far better than the derivative-free guess phi_h/phi_e in this regime (~0.85).
    assert pearson(lam, truth) > 0.98
    guess = (0.8 + problem.truth["phi_d"]) / (0.8 - problem.truth["phi_d"])
    assert pearson(guess, truth) < 0.93
    residual = problem.residual(d, {"lambda": torch.as_tensor(truth).reshape(1, 1, 128, 128)}, {})
    _, phi_e, _ = fields(d, BENCHMARK)
    assert float(residual.abs().mean()) < 0.05 * float(phi_e.mean())


def test_langevin_direct_formula_on_clean_data():
    problem = make_problem("langevin", grid=256, noise=0.0, seed=0)
    u = torch.as_tensor(problem.observations.values).reshape(1, 1, -1)
    h = problem.grid.spacing[0]
    d = mollifier.derivatives(u, {"u": (0,), "u_t": (1,)}, spacing=h, radius=3 * h, boundary="replicate")
    lam = problem.direct(d, {})["lambda"].numpy().squeeze()
    inner = slice(4, -4)  # the replicate boundary is wrong near the ends, by design
    assert pearson(lam[inner], problem.truth["lambda"][inner]) > 0.999


def test_observations_from_a_point_list():
    grid = _grid1d(11)
    obs = Observations.from_points(grid, [[0.0], [0.5], [1.0]], [1.0, 2.0, 3.0])
    problem = InverseProblem(
        name="t", grid=grid, observations=obs, derivatives={"u_x": (1,)}, unknowns=[],
        residual=lambda d, p, k: d["u_x"],
    )
    assert problem.observations.mask.sum() == 3
    assert problem.observations.values[0, 5] == 2.0
    with pytest.raises(ValueError, match="1 of 2 `points` are not within"):
        Observations.from_points(grid, [[0.0], [0.55]], [1.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        Observations.from_points(grid, [[0.0]], [1.0, 2.0])


def test_observations_can_be_shared_by_two_problems():
    values = np.linspace(0, 1, 33)
    values[4] = np.nan
    obs = Observations(values)
    for _ in range(2):
        problem = InverseProblem(
            name="t", grid=_grid1d(33), observations=obs, derivatives={"u_x": (1,)}, unknowns=[],
            residual=lambda d, p, k: d["u_x"],
        )
        assert problem.observations.values.shape == (1, 33)
        assert problem.observations.mask.sum() == 32 and not problem.observations.mask[4]
