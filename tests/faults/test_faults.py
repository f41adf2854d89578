"""Fault injection: runs killed, writes that fail, folders shared, checkpoints corrupted.

Each test makes the fault happen for real (SIGKILL of a training process, an OSError
inside the atomic writer, a second process on the same folder, a truncated file) and
checks that nothing is lost, nothing is silently wrong, and the error says what and where.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mollifier.cli.main import main
from mollifier.inverse import CheckpointError, TrainConfig, train
from mollifier.inverse.checkpoint import load_checkpoint
from mollifier.problems import make_problem
from mollifier.runtime import FolderBusyError, folder_lock

CHILD = Path(__file__).with_name("_train_child.py")
TIMING_KEYS = {"train_seconds", "step_seconds", "peak_memory_bytes", "seconds"}


def _without_timings(record):
    """``record`` less its wall-clock entries, at every depth (they differ between any two runs)."""
    if isinstance(record, dict):
        return {k: _without_timings(v) for k, v in record.items()
                if k not in TIMING_KEYS and not k.endswith("_seconds")}
    if isinstance(record, list):
        return [_without_timings(v) for v in record]
    return record


def _child(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(CHILD), str(out), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(out: Path, *extra: str) -> None:
    proc = _child(out, *extra)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


def _comparable(run: Path) -> tuple[dict, list, dict]:
    metrics = json.loads((run / "metrics.json").read_text())
    history = json.loads((run / "history.json").read_text())
    with np.load(run / "arrays.npz") as data:
        arrays = {k: data[k] for k in data.files}
    metrics = _without_timings(metrics)
    history = [_without_timings(h) for h in history]
    return metrics, history, arrays


def _assert_same_run(a: Path, b: Path) -> None:
    ma, ha, aa = _comparable(a)
    mb, hb, ab = _comparable(b)
    assert ma == mb
    assert ha == hb
    assert aa.keys() == ab.keys()
    for key in aa:
        assert np.array_equal(aa[key], ab[key]), key  # bit for bit on the CPU


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    _finish(out)
    return out


def test_sigkill_during_a_checkpoint_write_then_resume_is_bit_identical(tmp_path, reference):
    out = tmp_path / "run"
    proc = _child(out, "--kill-in-checkpoint-write", "3")  # dies while writing step 60's checkpoint
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    leftovers = list(out.glob(".checkpoint.pt.*.tmp"))
    assert leftovers, "the kill should have left the half-written temporary file"
    assert not (out / "metrics.json").exists()
    _finish(out, "--resume")  # resumes from step 40's checkpoint, intact
    assert not list(out.glob(".*.tmp")), "the resumed run clears the dead run's temporary file"
    _assert_same_run(reference, out)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path, reference):
    out = tmp_path / "run"
    rng = random.Random(11)
    kills = 0
    while kills < 5:
        resume = (out / "checkpoint.pt").exists()
        # 80 ms a step: a run of 240 steps lasts 19 s or more on any CPU, so each kill, 2-6 s
        # after its start, leaves at least 90 steps for the next run: at least 3 kills land
        proc = _child(out, *(["--resume"] if resume else []), "--pace", "0.08")
        time.sleep(rng.uniform(2.0, 6.0))  # python + torch start-up, then some steps
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        kills += 1
    if not (out / "metrics.json").exists():
        _finish(out, *(["--resume"] if (out / "checkpoint.pt").exists() else []))
    assert kills >= 3, "the runs finished before the kills: lengthen the child's run"
    _assert_same_run(reference, out)


def test_a_failing_write_keeps_the_previous_results_and_says_which_file(tmp_path, monkeypatch):
    problem = make_problem("langevin", grid=32, noise=0.05, seed=0)
    first = train(problem, TrainConfig(steps=5, log_every=0, device="cpu"), tmp_path)
    before = (tmp_path / "metrics.json").read_bytes()
    import mollifier.runtime.files as files

    real = files.os.replace

    def disk_full(src, dst):
        if str(dst).endswith("metrics.json"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", disk_full)
    with pytest.raises(OSError, match=r"cannot write .*metrics\.json: No space left on device .*unchanged"):
        train(problem, TrainConfig(steps=7, log_every=0, device="cpu"), tmp_path)
    assert (tmp_path / "metrics.json").read_bytes() == before
    assert json.loads(before)["steps"] == first.metrics["steps"] == 5
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file is left behind"


def test_an_unwritable_results_folder_is_one_clear_cli_error(tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the results folder should be")
    code = main(["run", "langevin", "--grid", "32", "--steps", "3", "--out", str(blocker / "run"), "--no-figures"])
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the run's opening line
    assert code in (1, 2)
    assert err.startswith("mollifier run: error:") and "not-a-folder" in err


def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "shared"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(
        [sys.executable, "-m", "mollifier", "run", "heat", "--grid", "32", "--steps", "100000", "--out", str(out), "--no-figures"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.time() + 120
        while not (out / "config.json").exists():  # written once the run holds the folder
            assert first.poll() is None, first.stderr.read()
            assert time.time() < deadline
            time.sleep(0.2)
        second = subprocess.run(
            [sys.executable, "-m", "mollifier", "run", "heat", "--grid", "32", "--steps", "5", "--out", str(out), "--no-figures"],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert second.returncode == 2
        assert "is in use by another run" in second.stderr and f"pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None, "the first run goes on undisturbed"
    finally:
        first.kill()
        first.communicate()
    with folder_lock(out):  # the kill released the lock: the folder is free again
        pass


def test_the_lock_refuses_a_second_holder_in_one_process(tmp_path):
    with folder_lock(tmp_path):
        with pytest.raises(FolderBusyError, match="in use by another run"):
            with folder_lock(tmp_path):
                pass


@pytest.mark.parametrize("damage", ["truncated", "garbage", "pickle-garbage", "zip-garbage", "empty", "foreign"])
def test_a_damaged_checkpoint_is_a_clear_error_and_never_a_fresh_start(tmp_path, capsys, damage):
    argv = ["run", "langevin", "--grid", "32", "--steps", "4", "--out", str(tmp_path), "--no-figures"]
    assert main(argv) == 0
    checkpoint = tmp_path / "checkpoint.pt"
    data = checkpoint.read_bytes()
    if damage == "truncated":
        checkpoint.write_bytes(data[: len(data) // 2])
    elif damage in ("garbage", "pickle-garbage", "zip-garbage"):
        # many seeds: random bytes once made torch's legacy unpickler raise MemoryError
        rng = random.Random(0)
        for seed in range(20):
            rng.seed(seed)
            noise = rng.randbytes(len(data))
            if damage == "pickle-garbage":  # a legacy pickle claiming a 1 TB bytes object: MemoryError
                noise = b"\x80\x04\x8e" + (2**40).to_bytes(8, "little") + noise[11:]
            elif damage == "zip-garbage":  # a zip header, then nonsense
                noise = data[:64] + noise[64:]
            checkpoint.write_bytes(noise)
            with pytest.raises(CheckpointError, match="unreadable"):
                load_checkpoint(checkpoint)
    elif damage == "empty":
        checkpoint.write_bytes(b"")
    else:
        import torch

        torch.save({"weights": torch.zeros(3)}, checkpoint)
    metrics = (tmp_path / "metrics.json").read_bytes()
    capsys.readouterr()
    assert main([*argv, "--resume", "--steps", "8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the run's opening line
    assert err.startswith("mollifier run: error:") and str(checkpoint) in err
    assert ("unreadable" in err) or ("not a mollifier training checkpoint" in err)
    assert (tmp_path / "metrics.json").read_bytes() == metrics, "--resume must not start over"


def test_checkpoint_error_is_a_value_error_naming_the_file(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"\x00" * 10)
    from mollifier.inverse.checkpoint import load_checkpoint

    with pytest.raises(CheckpointError, match=str(bad)):
        load_checkpoint(bad)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
