"""benchmarks/heatinv_information.py: its forward solver converges to the exact HeatInv
solution at second order, and its Cramer-Rao bound behaves as a bound must."""

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
for folder in (ROOT / "benchmarks", ROOT / "docs" / "examples"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import heatinv_information as info  # noqa: E402
import pinnacle_tasks as tasks  # noqa: E402


def _error(n: int) -> float:
    solver = info.HeatSolver(n=n, snapshots=3)
    u = solver.solve(tasks.heat_a(solver.X, solver.Y))
    exact = np.exp(-solver.times)[:, None, None] * np.sin(np.pi * solver.X) * np.sin(np.pi * solver.Y)
    return float(np.abs(u - exact).max())


def test_forward_solver_is_second_order():
    # the time step is tied to h^2, so the whole error scales as h^2: halving h divides it by 4
    coarse, fine = _error(17), _error(33)
    assert 3.4 < coarse / fine < 4.6, (coarse, fine)


def test_the_bound_grows_with_the_shapes_a_may_take():
    # nested models: more free modes can only lose information about each (the modes are
    # orthogonal on the grid), and the bound is linear in the noise level
    solver = info.HeatSolver(n=17, snapshots=11)
    points, _ = tasks.heat_data(0)
    columns, _ = info.sensitivities(solver, points, modes=3)
    two, three = info.cramer_rao(solver, columns, 2), info.cramer_rao(solver, columns, 3)
    assert three["l2re_bound"] > two["l2re_bound"] > 0
    doubled = info.cramer_rao(solver, columns, 2, noise=2 * tasks.NOISE_STD)
    assert doubled["l2re_bound"] == pytest.approx(2 * two["l2re_bound"], rel=1e-9)


def test_bad_coefficient_is_refused():
    solver = info.HeatSolver(n=9)
    with pytest.raises(ValueError, match="`a` must be positive"):
        solver.solve(-np.ones((9, 9)))


def test_an_unreadable_estimate_is_refused_before_the_solving(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        info.main(["--estimate", str(tmp_path / "missing.npz")])
    assert exit_info.value.code == 2 and "--estimate" in capsys.readouterr().err
    np.savez(tmp_path / "other.npz", fit=np.zeros(3))
    with pytest.raises(SystemExit):
        info.main(["--estimate", str(tmp_path / "other.npz")])
    assert "no 'learned_a'" in capsys.readouterr().err
