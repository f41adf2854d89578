"""Your own problem: derivatives of every field, fields on some axes, scattered data,
domains, boundary and initial conditions, your own networks, problem files."""

from __future__ import annotations

import json
import math
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

import mollifier
from mollifier.cli.main import main
from mollifier.inverse import (
    Dirichlet,
    Initial,
    InverseProblem,
    LatentField,
    Neumann,
    Observations,
    ScatteredObservations,
    TrainConfig,
    UnknownField,
    UnknownScalar,
    train,
)
from mollifier.inverse.model import InverseModel
from mollifier.inverse.objective import LossWeights, Objective
from mollifier.inverse.residuals import div_a_grad, gradient_requests, laplacian_requests

EPS64 = torch.finfo(torch.float64).eps


class Polynomial(nn.Module):
    """A parameter-free "network": ``c0 + sum_i c_i x_i + c_xy x0 x1`` (exact for every engine)."""

    def __init__(self, coefficients, cross=0.0):
        super().__init__()
        self.register_buffer("c", torch.tensor(coefficients, dtype=torch.float64))
        self.cross = cross

    def forward(self, x):
        out = self.c[0] + (x * self.c[1:]).sum(dim=1, keepdim=True)
        if self.cross:
            out = out + self.cross * x[:, :1] * x[:, 1:2]
        return out


def _grid2():
    return mollifier.Grid.from_bounds([(0.0, 1.0), (0.0, 2.0)], (17, 21))


def _problem(grid, unknowns, derivatives=None, residual=None, **kwargs):
    return InverseProblem(
        name="t", grid=grid, observations=kwargs.pop("observations", Observations(np.zeros(grid.shape))),
        derivatives=derivatives or {"u_x0": (1,) + (0,) * (grid.ndim - 1)},
        unknowns=unknowns, residual=residual or (lambda d, p, k: d["u"] * 0), **kwargs,
    )


@pytest.mark.parametrize("engine", ["mollifier", "fd", "autodiff", "autodiff-forward"])
def test_unknown_field_derivatives_come_from_the_same_engine_exactly_on_polynomials(engine):
    # a = 1 + x + 2y + 3xy: bilinear, so the order-1 mollifier stencils (exact to degree 2
    # per axis), central differences and autodiff all give a_x = 1 + 3y, a_y = 2 + 3x exactly
    grid = _grid2()
    a = UnknownField("a", init=0.0, positive=False, derivatives=gradient_requests("a", 2))
    problem = _problem(grid, [a], radius=3 * 0.1)
    model = InverseModel(problem, engine=engine, networks={"a": Polynomial([1.0, 1.0, 2.0], cross=3.0)}).double()
    d, p = Objective(problem, model, LossWeights.resolve(problem), torch.device("cpu"), torch.float64).fields()
    x, y = (m for m in grid.mesh(dtype=torch.float64))
    # rounding: stencil sums |taps| ~ 1/h times values <= 8, a few hundred operations
    bound = 1e3 * EPS64 * 8 / min(grid.spacing)
    assert torch.allclose(d["a_x0"][0, 0], 1 + 3 * y, atol=bound, rtol=0)
    assert torch.allclose(d["a_x1"][0, 0], 2 + 3 * x, atol=bound, rtol=0)
    assert torch.allclose(d["a"][0, 0], 1 + x + 2 * y + 3 * x * y, atol=bound, rtol=0)
    assert p["a"] is d["a"]


def test_a_field_on_some_axes_is_broadcast_and_differentiated_along_its_own():
    grid = mollifier.Grid.from_bounds([(0.0, 1.0), (0.0, 1.0), (0.0, 0.5)], (13, 11, 9))
    a = UnknownField("a", init=0.0, positive=False, axes=(0, 1), derivatives=gradient_requests("a", (0, 1), ndim=3))
    problem = _problem(grid, [a], radius=(2 / 12, 2 / 10, 2 / 16))
    seen = {}

    class Spy(Polynomial):
        def forward(self, x):
            seen["in_dim"] = x.shape[1]
            return super().forward(x)

    model = InverseModel(problem, networks={"a": Spy([0.5, 2.0, -1.0])}).double()
    d, p = Objective(problem, model, LossWeights.resolve(problem), torch.device("cpu"), torch.float64).fields()
    assert seen["in_dim"] == 2  # the network is blind to t
    assert p["a"].shape == (1, 1, 13, 11, 1) and d["a_x0"].shape == (1, 1, 13, 11, 1)
    assert torch.allclose(d["a_x0"], torch.full_like(d["a_x0"], 2.0), atol=1e3 * EPS64 * 24)
    assert torch.allclose(d["a_x1"], torch.full_like(d["a_x1"], -1.0), atol=1e3 * EPS64 * 20)
    with pytest.raises(ValueError, match=r"differentiates along axis 2, but the field depends only on axes \[0, 1\]"):
        _problem(grid, [UnknownField("a", axes=(0, 1), derivatives={"a_t": (0, 0, 1)})])
    with pytest.raises(ValueError, match="`axes` must be increasing grid axes"):
        _problem(grid, [UnknownField("a", axes=(1, 0))])


def test_div_a_grad_is_the_product_rule():
    grid = _grid2()
    x, y = grid.mesh(dtype=torch.float64)
    a, u = 1 + x, x**2 + y**2
    d = {"a": a, "a_x0": torch.ones_like(x), "a_x1": torch.zeros_like(x), "u_x0": 2 * x, "u_x1": 2 * y,
         "lap_u": torch.full_like(x, 4.0)}
    assert torch.allclose(div_a_grad(d, "a", "u", axes=2), 4 + 6 * x)  # div((1 + x)(2x, 2y)) = 4 + 6x
    assert laplacian_requests("u", (0, 1), ndim=3) == {"lap_u": {(2, 0, 0): 1.0, (0, 2, 0): 1.0}}


def test_names_must_be_unique_across_fields_and_derivatives():
    grid = _grid2()
    with pytest.raises(ValueError, match="name 'u_x0' of unknown 'a' is already a derivative of the observed field"):
        _problem(grid, [UnknownField("a", derivatives={"u_x0": (1, 0)})])
    with pytest.raises(ValueError, match="name 'u' of unknown 'u' is already the observed field"):
        _problem(grid, [UnknownField("u")])


def test_latent_fields_are_learned_but_never_the_parameter():
    problem = _problem(_grid2(), [LatentField("v"), UnknownField("a")])
    assert problem.parameter == "a"
    with pytest.raises(ValueError, match="no unknowns"):
        _problem(_grid2(), [LatentField("v")]).parameter


def _scattered_sine(n_points=300, seed=0):
    rng = np.random.default_rng(seed)
    pts = rng.random((n_points, 1))
    return pts, np.sin(2 * np.pi * pts[:, 0])


def test_scattered_observations_check_their_points():
    grid = mollifier.Grid.from_bounds([(0.0, 1.0)], (33,))
    pts, vals = _scattered_sine()
    obs = ScatteredObservations(np.vstack([pts, [[1.5]]]), np.append(vals, 0.0))
    with pytest.raises(ValueError, match=r"1 of 301 scattered `points` lie outside the grid's bounds"):
        obs.validate(grid)
    obs = ScatteredObservations(pts, np.where(np.arange(len(vals)) == 3, np.nan, vals))
    obs.validate(grid)
    assert len(obs.points) == 299 and "dropped 1 of 300" in obs.notes[0]
    with pytest.raises(ValueError, match="`weights` must be finite"):
        ScatteredObservations(pts, vals, weights=-np.ones(len(vals))).validate(grid)
    with pytest.raises(ValueError, match="give data off the grid's nodes as ScatteredObservations"):
        Observations.from_points(grid, pts, vals)


def test_scattered_data_are_fitted_by_the_network_at_their_points():
    # u'' + 4 pi^2 u = 0 with data at 300 random points: the fit at the points reaches the data
    grid = mollifier.Grid.from_bounds([(0.0, 1.0)], (65,))
    pts, vals = _scattered_sine()
    problem = InverseProblem(
        name="sine", grid=grid, observations=ScatteredObservations(pts, vals),
        derivatives={"u_xx": (2,)}, unknowns=[UnknownScalar("c", init=30.0)],
        residual=lambda d, p, k: d["u_xx"] + p["c"] * d["u"], truth={"c": 4 * np.pi**2},
        radius=4 / 64, residual_scale=4 * np.pi**2, residual_weight=0.1,
    )
    result = train(problem, TrainConfig(steps=600, lr=1e-2, lr_final=1e-3, log_every=0, device="cpu"))
    fit = result.model.field(torch.as_tensor(pts, dtype=torch.float32)).detach().numpy()[:, 0]
    assert np.sqrt(np.mean((fit - vals) ** 2)) < 0.05  # a smooth sine, no noise: a close fit
    assert "points" in result.arrays and "observed" not in result.arrays
    assert result.metrics["learned"]["c"]["relative_l2"] < 0.1


def test_the_residual_counts_inside_the_domain_only():
    grid = _grid2()
    x, y = (m.numpy() for m in grid.mesh(dtype=torch.float64))
    domain = (x - 0.5) ** 2 + (y - 1.0) ** 2 < 0.3**2
    huge_outside = np.where(domain, 0.0, 1e6)
    problem = _problem(grid, [UnknownField("a")], residual=lambda d, p, k: k["r"] + 0 * p["a"], known={"r": huge_outside},
                       domain=lambda x, y: (x - 0.5) ** 2 + (y - 1.0) ** 2 < 0.3**2)
    assert np.array_equal(problem.domain, domain)
    objective = Objective(problem, InverseModel(problem), LossWeights.resolve(problem), torch.device("cpu"), torch.float32)
    assert objective(0)[1]["residual"] == 0.0
    with pytest.raises(ValueError, match="`domain` must be a boolean mask"):
        _problem(grid, [UnknownField("a")], domain=np.ones((3, 3), dtype=bool))


def _condition_loss(problem, networks):
    model = InverseModel(problem, networks=networks).double()
    objective = Objective(problem, model, LossWeights.resolve(problem), torch.device("cpu"), torch.float64)
    d, p = objective.fields()
    return [c.loss(d, p).item() for c in objective.conditions]


def test_dirichlet_neumann_and_initial_conditions_read_the_right_nodes():
    grid = mollifier.Grid.from_bounds([(0.0, 1.0), (0.0, 2.0)], (11, 21))
    # a = 1 + x + 2y (exact for the mollifier stencils): a = 1 + 2y on x = 0, d a / dn = +1 on x = 1
    # (outward normal +x), -2 on y = 0 (outward normal -y)
    conditions = [
        Dirichlet("a", lambda c: 1 + 2 * c[:, 1], on="x0-"),
        Neumann("a", 1.0, on="x0+"),
        Neumann("a", -2.0, on="x1-"),
        Initial("a", lambda c: 1 + c[:, 0], axis=1),  # "time" = axis 1: a(x, 0) = 1 + x
        Dirichlet("a", 5.0, on="x1+", weight=2.0),     # wrong on purpose: a(x, 2) = 5 + x
    ]
    a = UnknownField("a", init=0.0, positive=False)
    problem = _problem(grid, [a], conditions=conditions, radius=0.2)
    losses = _condition_loss(problem, {"a": Polynomial([1.0, 1.0, 2.0])})
    rounding = 1e4 * EPS64 / 0.1
    assert max(losses[:4]) < rounding
    # the wrong one: weight * mean(x^2 on x in [0, 1]) / mean(5^2)
    x = np.linspace(0, 1, 11)
    assert losses[4] == pytest.approx(2.0 * np.mean(x**2) / 25.0, rel=1e-9)


def test_conditions_on_the_edge_of_a_domain_and_their_errors():
    grid = mollifier.Grid.from_bounds([(-1.0, 1.0), (-1.0, 1.0)], (41, 41))
    disc = lambda x, y: x**2 + y**2 <= 0.8**2  # noqa: E731
    # u = x + 2y (the mollified field of a linear function is exact): on the disc's edge
    # nodes du/dn = n . (1, 2) with n the outward normal, (x, y) / r on a circle
    x, y = (m.numpy() for m in grid.mesh(dtype=torch.float64))
    normal_derivative = lambda c: (c[:, 0] + 2 * c[:, 1]) / np.sqrt((c**2).sum(1))  # noqa: E731
    problem = _problem(grid, [UnknownField("a")], domain=disc, observations=Observations(x + 2 * y),
                       conditions=[Dirichlet("u", lambda c: c[:, 0] + 2 * c[:, 1], on="edge"),
                                   Neumann("u", normal_derivative, on="edge")],
                       radius=0.15)
    model = InverseModel(problem).double()
    model.field.net = Polynomial([0.0, 1.0, 2.0])  # the exact field, unscaled
    model.field.mean.zero_()
    model.field.std.fill_(1.0)
    objective = Objective(problem, model, LossWeights.resolve(problem), torch.device("cpu"), torch.float64)
    d, p = objective.fields()
    dirichlet, neumann = (c.loss(d, p).item() for c in objective.conditions)
    assert dirichlet < 1e4 * EPS64  # exact up to rounding (values <= 3, relative to var ~ 1.7)
    # the edge normal comes from the mask smoothed over a cell of a 0.05 grid: a few degrees
    # off the radius; |grad u| = sqrt(5), so a 5 degree error gives (sqrt(5) sin 5deg)^2 ~ 0.04
    assert 0 < neumann < 0.04 / objective.data_scale
    wrong = _problem(grid, [UnknownField("a")], domain=disc, observations=Observations(x + 2 * y),
                     conditions=[Neumann("u", lambda c: -normal_derivative(c), on="edge")], radius=0.15)
    model.problem = wrong
    objective_wrong = Objective(wrong, model, LossWeights.resolve(wrong), torch.device("cpu"), torch.float64)
    assert objective_wrong.conditions[0].loss(d, p).item() > 100 * neumann  # the sign of the normal matters
    with pytest.raises(ValueError, match="names field 'b'"):
        _problem(grid, [UnknownField("a")], conditions=[Dirichlet("b")])
    with pytest.raises(ValueError, match="`on` must be 'boundary', 'edge' or faces"):
        _condition_loss(_problem(grid, [UnknownField("a")], conditions=[Dirichlet("a", on="left")]), {})
    with pytest.raises(ValueError, match="`on`='edge' needs the problem's `domain` mask"):
        _condition_loss(_problem(grid, [UnknownField("a")], conditions=[Dirichlet("a", on="edge")]), {})


def test_a_dirichlet_condition_pins_an_unknown_field_in_training():
    # no data constrain a except its condition: training pulls a to 3 on the boundary
    grid = mollifier.Grid.from_bounds([(0.0, 1.0)], (33,))
    problem = _problem(grid, [UnknownField("a", init=1.0)], conditions=[Dirichlet("a", 3.0)],
                       residual=lambda d, p, k: 0 * p["a"] + 0 * d["u"])
    result = train(problem, TrainConfig(steps=150, lr=1e-2, log_every=0, device="cpu"))
    learned = result.arrays["learned_a"]
    assert abs(learned[0] - 3.0) < 0.05 and abs(learned[-1] - 3.0) < 0.05
    assert "conditions" in result.history[-1]


def test_your_own_networks_are_trained_in_place():
    grid = mollifier.Grid.from_bounds([(0.0, 1.0)], (33,))
    x = np.linspace(0, 1, 33)
    problem = _problem(grid, [UnknownField("a")], observations=Observations(np.sin(3 * x)),
                       residual=lambda d, p, k: d["u_x0"] - p["a"])
    mine = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1))
    before = [q.detach().clone() for q in mine.parameters()]
    result = train(problem, TrainConfig(steps=20, log_every=0, device="cpu"), networks={"u": mine})
    assert result.model.field.net is mine
    assert any(not torch.equal(a, b) for a, b in zip(before, mine.parameters()))
    with pytest.raises(ValueError, match=r"`networks` names \['b'\], which are not fields"):
        train(problem, TrainConfig(steps=1, log_every=0, device="cpu"), networks={"b": mine})


PROBLEM_FILE = '''
"""A 1-D toy: u_x = a(x), a unknown."""
import numpy as np
from mollifier import Grid
from mollifier.inverse import InverseProblem, Observations, UnknownField

TRAINING = {"steps": 7, "log_every": 0}

def problem(seed: int = 0, noise: float = 0.0):
    grid = Grid.from_bounds([(0.0, 1.0)], (33,))
    x = np.linspace(0, 1, 33)
    rng = np.random.default_rng(seed)
    return InverseProblem(
        name="toy", grid=grid, observations=Observations(np.sin(3 * x) + noise * rng.standard_normal(33), noise=noise),
        derivatives={"u_x": (1,)}, unknowns=[UnknownField("a", positive=False)],
        residual=lambda d, p, k: d["u_x"] - p["a"], truth={"a": 3 * np.cos(3 * x)}, radius=3 / 32,
    )
'''


def test_run_takes_a_problem_file_with_every_flag(tmp_path, capsys):
    path = tmp_path / "toy.py"
    path.write_text(textwrap.dedent(PROBLEM_FILE))
    out = tmp_path / "out"
    code = main(["run", str(path), "--seed", "2", "--noise", "0.01", "--json", "--out", str(out), "--no-figures"])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["problem"] == "toy" and metrics["steps"] == 7 and metrics["parameter"] == "a"
    assert {"parameter_relative_l2", "parameter_pearson", "train_seconds"} <= set(metrics)
    assert (out / "metrics.json").exists() and (out / "checkpoint.pt").exists()
    assert main(["run", str(path), "--seed", "2", "--noise", "0.01", "--steps", "9", "--resume", "--json", "--out", str(out), "--no-figures"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 9
    assert main(["run", str(path), "--grid", "64", "--out", str(tmp_path / "x")]) == 2
    assert "does not take option(s) ['grid']" in capsys.readouterr().err
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "y")]) == 2
    assert "defines no function 'problem' or 'build'" in capsys.readouterr().err


def test_tiled_training_refuses_what_it_cannot_split():
    from mollifier.distributed import DistributedContext
    from mollifier.inverse.objective import TiledObjective

    grid = _grid2()
    problem = _problem(grid, [UnknownField("a", derivatives=gradient_requests("a", 2))], radius=0.2)
    with pytest.raises(ValueError, match="fields with derivatives or on some axes only, which tiled"):
        TiledObjective(problem, InverseModel(problem), LossWeights.resolve(problem), torch.device("cpu"), torch.float32,
                       DistributedContext(rank=0, world_size=2, backend="gloo"))


def test_math_is_imported():  # keeps the module's imports honest for linters
    assert math.pi > 3


def test_grid_interpolation_is_exact_on_multilinear_fields():
    from mollifier.inverse.objective import GridInterpolation

    grid = mollifier.Grid.from_bounds([(0.0, 1.0), (0.0, 2.0), (0.0, 1.0)], (9, 11, 5))
    pts = np.random.default_rng(0).random((50, 3)) * [1.0, 2.0, 1.0]
    x, y, t = grid.mesh(dtype=torch.float64)
    f = 1 + 2 * x - 3 * y + 0.5 * t + x * y * t  # multilinear: reproduced exactly
    values = GridInterpolation(grid, pts, torch.float64, torch.device("cpu"))(f.reshape(1, 1, *grid.shape))
    exact = 1 + 2 * pts[:, 0] - 3 * pts[:, 1] + 0.5 * pts[:, 2] + pts.prod(1)
    assert np.abs(values[:, 0].numpy() - exact).max() < 64 * EPS64 * 4  # 8 corners, values <= 4
