"""Domain decomposition in one process: slabs, tiled derivatives = whole-grid ones, errors."""

from __future__ import annotations

import pytest
import torch

import mollifier
from mollifier.distributed import DistributedContext, Slab, TiledDerivatives, make_slabs, split_rows
from mollifier.inverse import LossWeights, TrainConfig, train
from mollifier.inverse.objective import TiledObjective
from mollifier.inverse.model import InverseModel
from mollifier.problems import make_problem

from tolerances import engine_reordering_bound, mlp_rounding_bound


def test_split_rows_is_contiguous_balanced_and_covers_every_row():
    for n, w in [(10, 3), (256, 2), (7, 7), (33, 4)]:
        bounds = split_rows(n, w)
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        sizes = [b - a for a, b in bounds]
        assert max(sizes) - min(sizes) <= 1 and len(sizes) == w


def test_split_rows_refuses_slabs_thinner_than_the_halo():
    with pytest.raises(ValueError, match=r"64 rows\) over 16 ranks: slabs of 4 rows would be thinner than 5 rows.*at most 12 processes"):
        split_rows(64, 16, min_rows=5)
    with pytest.raises(ValueError, match="`world_size` must be an int >= 1; got 0"):
        split_rows(8, 0)
    with pytest.raises(ValueError, match="`n_rows` must be an int >= 1; got 2.5"):
        split_rows(2.5, 1)


def test_slab_reports_its_redundant_fraction():
    slabs = make_slabs(256, 2, halo=5)
    assert [(s.start, s.stop) for s in slabs] == [(0, 128), (128, 256)]
    assert slabs[0].extra_fraction == pytest.approx(10 / 128)


def _tiles_equal_whole(engine, ndim, world):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(ndim, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)).double()
    whole = engine(net, dtype=torch.float64)
    halo = engine.stencil_halo[0]
    tiles = [TiledDerivatives(engine, s) for s in make_slabs(engine.grid.shape[0], world, halo)]
    parts = [t(net, dtype=torch.float64) for t in tiles]
    # Same exact sums, in another order (another batch size for the backbone, other
    # convolution shapes): the difference is bounded by the rounding of both results, for
    # the combination of stencils of each output, plus the gain of that combination on the
    # backbone's own rounding (its samples may round differently in another batch).
    coords = engine.coords(torch.float64)  # every point a tile evaluates (same coordinates, bit for bit)
    u_max = float(net(coords).detach().abs().max())
    backbone = mlp_rounding_bound(net, coords)
    for name, value in whole.items():
        joined = torch.cat([p[name] for p in parts], dim=2)
        assert joined.shape == value.shape
        tol = engine_reordering_bound(engine, name, u_max, torch.float64, input_difference=2 * backbone)
        torch.testing.assert_close(joined, value, rtol=0, atol=tol, msg=name)


@pytest.mark.parametrize("boundary", ["valid", "periodic"])
@pytest.mark.parametrize("name", ["mollifier", "fd"])
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_tiled_derivatives_equal_the_whole_grid_ones(boundary, name, ndim):
    shape = {1: (40,), 2: (24, 20), 3: (16, 12, 10)}[ndim]
    grid = mollifier.Grid.from_bounds([(0.0, 1.0)] * ndim, shape, periodic=boundary == "periodic")
    requests = {"lap": mollifier.laplacian(ndim), "d0": (1,) + (0,) * (ndim - 1), "bi": mollifier.biharmonic(ndim)}
    radius = {"radius": 3 * max(grid.spacing)} if name == "mollifier" else {}
    engine = mollifier.make_engine(name, grid, requests, boundary=boundary, **radius)
    _tiles_equal_whole(engine, ndim, world=3 if ndim == 1 else 2)


def test_tiled_derivatives_with_fft_stencils_and_a_learnable_radius():
    grid = mollifier.Grid.from_bounds([(0.0, 1.0)] * 2, (64, 48), periodic=True)
    fft = mollifier.make_engine("mollifier", grid, {"lap": mollifier.laplacian(2)}, radius=13 * grid.spacing[0],
                                boundary="periodic")  # 27 taps: the FFT path
    _tiles_equal_whole(fft, 2, world=2)
    learnable = mollifier.make_engine("mollifier", grid, {"lap": mollifier.laplacian(2)}, radius=3 * grid.spacing[0],
                                      learnable_radius=True, boundary="valid").double()
    _tiles_equal_whole(learnable, 2, world=4)


def test_engines_that_are_not_local_convolutions_cannot_be_tiled():
    grid = mollifier.Grid.from_bounds([(0.0, 1.0)] * 2, (16, 16))
    engine = mollifier.make_engine("autodiff", grid, {"lap": mollifier.laplacian(2)})
    with pytest.raises(ValueError, match=r"the 'autodiff' engine cannot be tiled.*'mollifier' or 'fd'"):
        TiledDerivatives(engine, Slab(0, 8, 1, 16))


def test_a_slab_with_the_wrong_halo_is_refused():
    grid = mollifier.Grid.from_bounds([(0.0, 1.0)] * 2, (16, 16))
    engine = mollifier.make_engine("mollifier", grid, {"lap": mollifier.laplacian(2)}, radius=3 / 15)
    with pytest.raises(ValueError, match="`slab` must have halo 3"):
        TiledDerivatives(engine, Slab(0, 8, 1, 16))


def test_tiled_objective_refuses_a_boundary_loss():
    problem = make_problem("heat", grid=12, seed=0)
    problem.boundary_loss = lambda d, p, k: d["u"][..., 0]
    model = InverseModel(problem)
    with pytest.raises(ValueError, match="has a `boundary_loss`, which tiled .* does not support"):
        TiledObjective(problem, model, LossWeights(data=1.0, residual=1.0), torch.device("cpu"), torch.float32,
                       DistributedContext(rank=0, world_size=2, backend="gloo"))


def test_distributed_training_in_one_process_is_the_plain_training():
    problem = make_problem("langevin", grid=32, seed=0)
    config = TrainConfig(steps=3, log_every=0)
    a, b = train(problem, config), train(problem, config, distributed=True)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert "distributed" not in b.metrics and all(h["seconds"] > 0 for h in b.history)
