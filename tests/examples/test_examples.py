"""The documented examples pose their problems, their independent solvers converge, and
(slow) the PINNacle tasks and the heated ring are recovered as docs/inverse.md reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from mollifier.cli.main import main
from mollifier.problems.files import load_problem_file

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))


def test_poisson_inv_source_is_consistent_with_its_truth():
    import pinnacle_poisson_inv as example

    # central differences of step h in flux form: truncation ~ h^2 * (4th derivatives ~ pi^4 a)
    # ~ 1e-8 * 100, rounding ~ eps * |u| / h^2 ~ 2e-8: far below PINNacle's published
    # source's error (up to 2.6)
    assert example.check_source(1e-4) < 1e-5


@pytest.mark.parametrize("name", ["pinnacle_poisson_inv", "pinnacle_heat_inv", "annulus_latent"])
def test_each_example_poses_its_problem(name):
    spec = load_problem_file(EXAMPLES / f"{name}.py")
    problem = spec.build(seed=1)
    assert problem.parameter == "a" and problem.truth["a"].shape in (problem.grid.shape, problem.grid.shape[:2])
    assert spec.training["steps"] > 0
    # the same seed gives the same data; another seed other data
    again = spec.build(seed=1).observations
    other = spec.build(seed=2).observations
    values = lambda obs: np.asarray(obs.values)  # noqa: E731
    assert np.array_equal(values(problem.observations), values(again))
    assert not np.array_equal(values(problem.observations), values(other))


def test_annulus_solver_converges_at_second_order():
    import annulus_latent as example

    # three polar grids, each twice as fine; at the common nodes the differences between
    # successive solutions shrink 4x for a second-order scheme
    coarse, middle, fine = example.solve(36, 128), example.solve(71, 256), example.solve(141, 512)
    d1 = np.abs(coarse["u"] - middle["u"][::2, ::2]).max()
    d2 = np.abs(middle["u"] - fine["u"][::2, ::2]).max()
    assert 3.0 < d1 / d2 < 5.0
    assert d2 / np.abs(fine["u"]).max() < 1e-3


def _run(name: str, seed: int, tmp_path: Path, capsys) -> dict:
    out = tmp_path / f"{name}-{seed}"
    assert main(["run", str(EXAMPLES / f"{name}.py"), "--seed", str(seed), "--json", "--out", str(out), "--no-figures"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


HEAT_INV_MISSES = pytest.mark.xfail(
    strict=True,
    reason="a known gap: HeatInv's L2RE of a is 0.041 / 0.037 / 0.054 for seeds 0-2 (mean 0.044 > 0.02), near the "
    "Cramer-Rao bound of a 3 x 3-mode a (0.040; benchmarks/heatinv_information.py); docs/benchmarks.md, PINNacle section",
)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pinnacle_poisson_inv", pytest.param("pinnacle_heat_inv", marks=HEAT_INV_MISSES)])
def test_pinnacle_tasks_reach_the_target(name, tmp_path, capsys):
    # target: mean relative L2 error of a over seeds 0-2 at most 0.02
    errors = [_run(name, seed, tmp_path, capsys)["parameter_relative_l2"] for seed in (0, 1, 2)]
    assert np.mean(errors) <= 0.02, errors


@pytest.mark.slow
def test_annulus_recovers_the_conductivity(tmp_path, capsys):
    metrics = _run("annulus_latent", 0, tmp_path, capsys)
    assert metrics["parameter_relative_l2"] < 0.06 and metrics["parameter_pearson"] > 0.9
