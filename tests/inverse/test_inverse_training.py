"""Training: end-to-end recovery, results folder, checkpoints and resume, NaN handling."""

import importlib.util
import os
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import mollifier
from mollifier.inverse import InverseProblem, NonFiniteLossError, Observations, TrainConfig, train
from mollifier.problems import make_problem

ROOT = Path(__file__).resolve().parents[2]


def _load_example():
    spec = importlib.util.spec_from_file_location("custom_problem", ROOT / "docs/examples/custom_problem.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_documented_custom_problem_recovers_its_rate_field():
    """The docs' ~35-line example recovers k(x) from 1 % noisy data made by scipy's BVP solver."""
    problem = _load_example().build_problem(n=128, noise=0.01, seed=0)
    result = train(problem, TrainConfig(steps=2000, lbfgs_steps=200, log_every=0))
    assert result.metrics["parameter_pearson"] > 0.95
    assert result.metrics["parameter_relative_l2"] < 0.15


def test_results_folder_and_metrics(tmp_path):
    problem = make_problem("heat", grid=16, noise=0.05, seed=0)
    result = train(problem, TrainConfig(steps=6, log_every=3), tmp_path)
    for name in ("config.json", "metrics.json", "arrays.npz", "history.json", "checkpoint.pt"):
        assert (tmp_path / name).exists(), name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("problem", "engine", "backbone", "noise", "parameter_pearson", "parameter_relative_l2",
                "train_seconds", "peak_memory_bytes", "step_seconds"):
        assert key in metrics
    assert metrics["peak_memory_bytes"] > 0
    arrays = np.load(tmp_path / "arrays.npz")
    assert arrays["fit"].shape == (1, 16, 16) and arrays["true_lambda"].shape == (16, 16)
    assert len(result.history) == 6 and "parameter_error" in result.history[2]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


def _interrupt_after(problem, calls_before_interrupt):
    original, calls = problem.residual, {"n": 0}

    def interrupting(d, p, k):
        calls["n"] += 1
        if calls["n"] == calls_before_interrupt + 1:
            raise KeyboardInterrupt
        return original(d, p, k)

    problem.residual = interrupting
    return original


def test_resume_after_interrupt_reaches_the_same_state(tmp_path):
    problem = make_problem("langevin", grid=32, noise=0.05, seed=0)
    straight = train(problem, TrainConfig(steps=12, log_every=0))
    original = _interrupt_after(problem, 8)
    with pytest.raises(KeyboardInterrupt):
        train(problem, TrainConfig(steps=12, log_every=0, checkpoint_every=0), tmp_path / "run")
    problem.residual = original
    resumed = train(problem, TrainConfig(steps=12, log_every=0, checkpoint_every=0), tmp_path / "run", resume=True)
    assert len(resumed.history) == 12
    # A training target, not a rounding bound: the resumed run repeats the same float32
    # operations (bit-identical in practice), so rtol 1e-5 is slack, not tuned to a machine.
    np.testing.assert_allclose(resumed.history[-1]["loss"], straight.history[-1]["loss"], rtol=1e-5)
    with pytest.raises(ValueError, match="different settings"):
        train(problem, TrainConfig(steps=12, lr=1e-2, log_every=0), tmp_path / "run", resume=True)
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        train(problem, TrainConfig(steps=2, log_every=0), tmp_path / "empty", resume=True)


def test_interrupt_keeps_a_checkpoint(tmp_path):
    problem = make_problem("langevin", grid=32, noise=0.0, seed=0)
    original = _interrupt_after(problem, 5)
    with pytest.raises(KeyboardInterrupt):
        train(problem, TrainConfig(steps=50, log_every=0, checkpoint_every=0), tmp_path)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert saved["step"] == 5
    problem.residual = original
    resumed = train(problem, TrainConfig(steps=50, log_every=0, checkpoint_every=0), tmp_path, resume=True)
    assert len(resumed.history) == 50


def test_nan_loss_stops_with_a_message_and_keeps_the_last_checkpoint(tmp_path):
    problem = make_problem("langevin", grid=32, noise=0.0, seed=0)
    original, calls = problem.residual, {"n": 0}

    def exploding(d, p, k):
        calls["n"] += 1
        r = original(d, p, k)
        return r * float("nan") if calls["n"] > 4 else r

    problem.residual = exploding
    with pytest.raises(NonFiniteLossError, match="step 4"):
        train(problem, TrainConfig(steps=20, log_every=0, checkpoint_every=2), tmp_path)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 4


@pytest.mark.parametrize("engine", ["mollifier", "autodiff", "autodiff-forward", "fd"])
@pytest.mark.parametrize("backbone", ["mlp", "piratenet", "pinnsformer"])
def test_every_engine_and_backbone_trains(engine, backbone):
    # on the device this machine has ("auto"), or the one MOLLIFIER_TEST_DEVICE names
    # (benchmarks/gpu.sh runs this test with "cuda" on a GPU machine)
    device = os.environ.get("MOLLIFIER_TEST_DEVICE", "auto")
    problem = make_problem("heat", grid=12, noise=0.05, seed=0)
    options = {"width": 16} if backbone != "pinnsformer" else {"d_model": 8, "d_hidden": 16}
    config = TrainConfig(engine=engine, backbone=backbone, backbone_options=options, steps=2, log_every=0, device=device)
    result = train(problem, config)
    assert np.isfinite(result.metrics["final_loss"]["loss"])
    if device != "auto":
        assert result.metrics["device"].split(":")[0] == device.split(":")[0]


def test_grid_too_small_for_the_radius_fails_before_training():
    problem = make_problem("chromatin", grid=16, noise=0.0, seed=0)
    with pytest.raises(ValueError, match="too small for the mollifier engine's stencils"):
        train(problem, TrainConfig(steps=1, radius=6.0))


def test_unknown_scalar_and_boundary_loss():
    """u_t = u + c with a constant unknown c and u(0) = 1 as a boundary term: recover c."""
    from mollifier.inverse import UnknownScalar

    t = np.linspace(0.0, 1.0, 65)
    c_true = 0.7
    u = (1.0 + c_true) * np.exp(t) - c_true  # exact solution, u(0) = 1
    problem = InverseProblem(
        name="scalar",
        grid=mollifier.Grid.from_bounds([(0.0, 1.0)], (65,)),
        observations=Observations(u),
        derivatives={"u_t": (1,)},
        unknowns=[UnknownScalar("c", init=0.2)],
        residual=lambda d, p, k: d["u_t"] - d["u"] - p["c"],
        truth={"c": c_true},
        radius=4 / 64,
        boundary_loss=lambda d, p, k: d["u"][..., 0] - 1.0,
    )
    result = train(problem, TrainConfig(steps=1500, log_every=0))
    assert "boundary" in result.history[-1]
    assert result.metrics["parameter_relative_l2"] < 0.05  # |c - 0.7| / 0.7


def test_early_stopping():
    problem = make_problem("langevin", grid=32, noise=0.0, seed=0)
    result = train(problem, TrainConfig(steps=5000, lr=1e-9, lr_final=1e-9, patience=5, log_every=0))
    assert len(result.history) < 50


def test_resuming_a_finished_run_does_not_repeat_lbfgs(tmp_path):
    problem = make_problem("langevin", grid=32, noise=0.0, seed=0)
    config = TrainConfig(steps=3, lbfgs_steps=4, log_every=0)
    first = train(problem, config, tmp_path)
    again = train(problem, config, tmp_path, resume=True)
    assert len(again.history) == len(first.history) > 3
