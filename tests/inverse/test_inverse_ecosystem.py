"""Fitting the PyTorch training ecosystem: callbacks, loggers, devices, compilation,
mixed precision, trained runs loaded back."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

import mollifier
from mollifier.cli.main import main
from mollifier.inverse import Callback, TrainConfig, train
from mollifier.problems import make_problem

CPU = {"device": "cpu", "checkpoint_every": 0}


class Recorder(Callback):
    """Records the hooks in order, adds its own quantity, stops after ``stop_at`` steps."""

    def __init__(self, stop_at=None):
        self.calls, self.stop_at = [], stop_at

    def on_train_start(self, state):
        self.calls.append(("start", state.step))

    def on_evaluation(self, state, entry):
        self.calls.append(("evaluation", entry["step"], math.isfinite(entry["parameter_error"])))

    def on_step_end(self, state, entry):
        entry["loss_squared"] = entry["loss"] ** 2
        self.calls.append(("step", entry["step"]))
        if self.stop_at is not None and entry["step"] >= self.stop_at:
            state.stop("recorder says so")

    def on_checkpoint(self, state, path):
        self.calls.append(("checkpoint", state.step))

    def on_train_end(self, state, result):
        self.calls.append(("end", result.metrics["steps"]))

    def close(self):
        self.calls.append(("close",))


def test_a_callback_sees_every_hook_in_order_and_can_stop_the_run(tmp_path):
    recorder = Recorder(stop_at=4)
    problem = make_problem("langevin", grid=32, seed=0)
    result = train(problem, TrainConfig(steps=10, log_every=2, checkpoint_every=2, device="cpu"), tmp_path, callbacks=[recorder])
    assert recorder.calls == [
        ("start", 0),
        ("step", 1), ("evaluation", 2, True), ("step", 2), ("checkpoint", 2), ("step", 3),
        ("evaluation", 4, True), ("step", 4), ("checkpoint", 4),
        ("checkpoint", 4),  # the final checkpoint
        ("end", 4), ("close",),
    ]
    assert result.metrics["steps"] == 4 and result.metrics["stop_reason"] == "recorder says so"
    assert all(h["loss_squared"] == h["loss"] ** 2 for h in result.history)
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved[0]["loss_squared"] == result.history[0]["loss_squared"]


def test_callbacks_are_closed_after_an_error():
    class Boom(Callback):
        closed = False

        def on_step_end(self, state, entry):
            raise RuntimeError("boom")

        def close(self):
            Boom.closed = True

    with pytest.raises(RuntimeError, match="boom"):
        train(make_problem("langevin", grid=32, seed=0), TrainConfig(steps=3, log_every=0, **CPU), callbacks=[Boom()])
    assert Boom.closed
    with pytest.raises(TypeError, match="must be mollifier.inverse.Callback instances"):
        train(make_problem("langevin", grid=32, seed=0), TrainConfig(steps=1, log_every=0, **CPU), callbacks=[print])


def test_the_built_in_time_budget_and_early_stopping_are_callbacks():
    problem = make_problem("langevin", grid=32, seed=0)
    budget = train(problem, TrainConfig(steps=10_000, time_budget=1e-9, log_every=0, **CPU))
    assert budget.metrics["steps"] == 1 and budget.metrics["stop_reason"] == "time budget"
    patient = train(problem, TrainConfig(steps=10_000, patience=1, lr=1e-9, lr_final=1e-9, log_every=0, **CPU))
    assert patient.metrics["stop_reason"] == "early stopping" and patient.metrics["steps"] < 10


def test_csv_log_has_a_row_per_step_and_resumes_without_repeats(tmp_path):
    problem = make_problem("langevin", grid=32, seed=0)
    config = TrainConfig(steps=6, log_every=3, checkpoint_every=3, log=("csv",), device="cpu")
    train(problem, config, tmp_path)
    path = tmp_path / "logs" / "history.csv"
    rows = list(csv.DictReader(path.open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "data", "residual", "lr", "seconds", "parameter_error"} <= set(rows[0])
    assert rows[0]["parameter_error"] == "" and float(rows[2]["parameter_error"]) > 0
    assert float(rows[0]["lr"]) == pytest.approx(config.lr)
    # a longer resumed run repeats nothing and continues the file
    train(problem, TrainConfig(steps=9, log_every=3, checkpoint_every=3, log=("csv",), device="cpu"), tmp_path, resume=True)
    rows = list(csv.DictReader(path.open()))
    assert [int(r["step"]) for r in rows] == list(range(1, 10))


def test_tensorboard_log_has_the_scalars_and_the_figures(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    pytest.importorskip("matplotlib")
    problem = make_problem("heat", grid=24, seed=0)
    train(problem, TrainConfig(steps=4, log_every=2, log=("tensorboard",), **CPU), tmp_path, figures=True)
    events = EventAccumulator(str(tmp_path / "logs" / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"loss/total", "loss/data", "loss/residual", "train/lr", "train/seconds", "train/parameter_error",
            "final/parameter_pearson"} <= scalars
    assert [e.step for e in events.Scalars("loss/total")] == [1, 2, 3, 4]
    assert {"figures/overview", "figures/loss"} <= set(events.Tags()["images"])


def test_loggers_need_a_folder_and_known_names():
    with pytest.raises(ValueError, match="`log` must be one of"):
        TrainConfig(log=("wandb",))
    with pytest.raises(ValueError, match="needs a results folder"):
        train(make_problem("langevin", grid=32, seed=0), TrainConfig(steps=1, log=("csv",), **CPU))


def test_auto_device_is_the_best_one_here_and_is_recorded():
    result = train(make_problem("langevin", grid=32, seed=0), TrainConfig(steps=2, log_every=0, checkpoint_every=0))
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert result.metrics["device"].startswith(expected.split(":")[0])
    with pytest.raises(ValueError, match="`device` must be"):
        train(make_problem("langevin", grid=32, seed=0), TrainConfig(steps=1, log_every=0, device="gpu7"))


def test_autocast_trains_the_networks_in_bfloat16_and_keeps_the_stencils_in_float32():
    problem = make_problem("heat", grid=24, seed=0)
    plain = train(problem, TrainConfig(steps=20, log_every=0, **CPU))
    mixed = train(problem, TrainConfig(steps=20, log_every=0, autocast=True, **CPU))
    assert mixed.arrays["fit"].dtype == np.float64 and np.isfinite(mixed.arrays["fit"]).all()
    # bfloat16 networks (8 significant bits): the losses follow the float32 run to a few per cent
    for a, b in zip(plain.history, mixed.history):
        assert abs(a["loss"] - b["loss"]) <= 0.05 * abs(a["loss"])
    assert not np.array_equal(plain.arrays["fit"], mixed.arrays["fit"])  # it really ran in bfloat16
    with pytest.raises(ValueError, match="`autocast`.*float32"):
        TrainConfig(autocast=True, dtype="float64")


@pytest.mark.slow
def test_compiled_networks_give_the_uncompiled_results():
    problem = make_problem("heat", grid=24, seed=0)
    plain = train(problem, TrainConfig(steps=5, log_every=0, **CPU))
    compiled = train(problem, TrainConfig(steps=5, log_every=0, compile=True, **CPU))
    for a, b in zip(plain.history, compiled.history):  # fused kernels round differently, not much
        assert abs(a["loss"] - b["loss"]) <= 1e-4 * abs(a["loss"])


def test_a_loaded_run_evaluates_its_fields_where_training_left_them(tmp_path):
    problem = make_problem("heat", grid=24, seed=0)
    result = train(problem, TrainConfig(steps=5, log_every=0, **CPU), tmp_path)
    run = mollifier.load(tmp_path)
    assert run.fields == ["u", "lambda"] and run.engine == "mollifier" and run.metrics["steps"] == 5
    on_grid = run.evaluate()
    assert np.allclose(on_grid["lambda"], result.arrays["learned_lambda"], rtol=0, atol=1e-6)
    # the run's own engine and radius on the training grid: the mollified field it fitted
    mollified = run.derivatives("u", run.grid, {"lap": mollifier.laplacian(2)})
    assert np.allclose(mollified["u"], result.arrays["fit"], rtol=0, atol=1e-6)
    # anywhere else, from any engine
    fine = mollifier.Grid.from_bounds([(0.0, 1.0), (0.0, 1.0)], (47, 47))
    assert run.evaluate(fine)["u"].shape == (1, 47, 47)
    exact = run.derivatives("u", fine, {"u_x": (1, 0)}, engine="autodiff")
    assert exact["u_x"].shape == (1, 47, 47)
    points = np.array([[0.5, 0.5], [0.25, 0.75]])
    assert run.field(points).shape == (2, 1) and run.unknown("lambda", points).shape == (2,)
    with pytest.raises(ValueError, match="must be one of the run's fields"):
        run.unknown("kappa", points)
    with pytest.raises(FileNotFoundError, match="has no model.pt"):
        mollifier.load(tmp_path / "nowhere")


def test_eval_command_writes_the_fields_on_a_new_grid(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["run", "heat", "--grid", "24", "--steps", "3", "--out", str(run_dir), "--no-figures", "--json"]) == 0
    capsys.readouterr()
    trained = mollifier.load(run_dir)
    wide = 2.5 * max(hi - lo for lo, hi in trained.grid.bounds) / 19  # 2.5 cells of the coarser new axis
    assert main(["eval", str(run_dir), "--grid", "30,20", "--derivatives", "--radius", str(wide), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["grid"] == [30, 20] and summary["fields"]["lambda"]["shape"] == [30, 20]
    with np.load(summary["out"]) as data:
        assert data["u"].shape == (1, 30, 20) and data["mollifier_lap_u"].shape == (1, 30, 20)
    # on a 3-point grid a cell is half the domain: the run's radius spans under 2 cells
    assert main(["eval", str(run_dir), "--grid", "3", "--derivatives"]) == 2
    assert "pass a finer --grid or a wider --radius" in capsys.readouterr().err
    assert main(["eval", str(run_dir), "--grid", "3,4,5"]) == 2
    assert "`--grid` must give one N" in capsys.readouterr().err
