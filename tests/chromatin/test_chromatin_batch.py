"""Batches of ``mollifier chromatin``: bad files, locks, early stops, checkpoints, resume, devices.

Small inputs (a 12.8 um field rendered at 400 nm: 32 x 32 pixels) keep training fast. The
tests of behaviour the first version got wrong (a corrupt file skipped, no lock, an
all-NaN image) use only flags that version knew, so that they fail there for that reason.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from mollifier.cli.main import main
from mollifier.imaging import synthetic_nucleus

pytest.importorskip("sklearn")
COARSE = ["--render-pixel-nm", "400"]


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    path = tmp_path_factory.mktemp("cells") / "cell.csv"
    synthetic_nucleus(n=48, seed=5, n_emitters=30_000).write_csv(path)
    return path


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_folder_of_20_with_a_corrupt_file_finishes_the_others(cell, tmp_path, capsys):
    folder = tmp_path / "batch"
    folder.mkdir()
    data = cell.read_bytes()
    for k in range(1, 21):
        name = folder / f"cell{k:02d}.csv"
        if k == 10:  # a truncated Picasso export in the middle: not skipped silently, reported
            name = folder / "cell10_locs.hdf5"
            name.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 200)
        else:
            name.write_bytes(data)
    out = tmp_path / "res"
    rc, stdout, err = _run(["chromatin", folder, "--preview", "--no-figures", "--out", out, "--json"], capsys)
    assert rc == 1
    report = json.loads(stdout.strip().splitlines()[-1])
    assert (report["n_inputs"], report["n_ok"], report["n_error"]) == (20, 19, 1)
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["ok"] * 9 + ["error"] + ["ok"] * 10
    assert rows[9]["input"].endswith("cell10_locs.hdf5") and rows[9]["message"]
    assert "cell10_locs.hdf5" in err and "Traceback" not in err
    assert all((out / f"cell{k:02d}" / "summary.json").is_file() for k in range(1, 21) if k != 10)


def test_summary_reports_the_steps_training_ran(cell, tmp_path, capsys):
    out = tmp_path / "early"
    rc, _, err = _run(["chromatin", cell, "--steps", 400, "--time-budget", 0.2, *COARSE, "--no-figures", "--out", out],
                      capsys)
    assert rc == 0, err
    summary = json.loads((out / "cell" / "summary.json").read_text())
    ran = summary["training"]["steps"][0]
    history = json.loads((out / "cell" / "training" / "history.json").read_text())
    assert ran == len(history) < 400  # the time budget stopped it; the summary says how far
    assert summary["training"]["stopped_early"] and summary["mode"].startswith(f"trained ({ran} steps of 400")


def test_all_nan_image_is_reported_as_holding_no_finite_values(tmp_path, capsys):
    path = tmp_path / "blank.npy"
    np.save(path, np.full((64, 64), np.nan, dtype=np.float32))
    rc, _, err = _run(["chromatin", path, "--preview", "--out", tmp_path / "r", "--no-figures"], capsys)
    assert rc == 1
    assert "no finite values" in err and "all equal" not in err and "Traceback" not in err


def test_a_second_batch_into_the_same_folder_is_refused(cell, tmp_path, capsys):
    from mollifier.runtime.lock import folder_lock

    out = tmp_path / "busy"
    with folder_lock(out, what="chromatin batch"):  # another batch holds the folder
        rc, _, err = _run(["chromatin", cell, "--preview", "--out", out, "--no-figures"], capsys)
    assert rc == 2
    assert "in use by another chromatin batch" in err and str(out) in err and "Traceback" not in err
    assert not (out / "cell").exists()
    rc, _, err = _run(["chromatin", cell, "--preview", *COARSE, "--out", out, "--no-figures"], capsys)
    assert rc == 0, err  # free again


def test_checkpoint_per_nucleus_resume_skips_complete_and_continues_unfinished(cell, tmp_path, capsys):
    out = tmp_path / "ckpt"
    args = ["chromatin", cell, "--steps", 60, *COARSE, "--no-figures", "--out", out, "--json"]
    # 1. stopped by a time budget: an unfinished training with its checkpoint
    rc, _, err = _run([*args, "--time-budget", 0.2], capsys)
    assert rc == 0, err
    first = json.loads((out / "cell" / "summary.json").read_text())["training"]["steps"][0]
    assert first < 60 and (out / "cell" / "training" / "checkpoint.pt").is_file()
    # 2. --resume without the budget continues from the checkpoint to the 60 steps
    rc, stdout, err = _run([*args, "--resume"], capsys)
    assert rc == 0, err
    summary = json.loads((out / "cell" / "summary.json").read_text())
    assert summary["training"]["resumed"] == [True] and summary["training"]["steps"] == [60]
    assert "resuming from" in err
    history = json.loads((out / "cell" / "training" / "history.json").read_text())
    assert len(history) == 60
    # 3. --resume again: complete, so skipped and reported as such; nothing rewritten
    stamp = os.stat(out / "cell" / "lambda.npy").st_mtime_ns
    rc, stdout, err = _run([*args, "--resume"], capsys)
    assert rc == 0, err
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["n_skipped"] == 1 and report["nuclei"][0]["status"] == "skipped"
    assert "skipped" in err and os.stat(out / "cell" / "lambda.npy").st_mtime_ns == stamp
    assert list(csv.DictReader((out / "summary.csv").open()))[0]["status"] == "skipped"


def test_device_defaults_to_auto_and_bad_devices_are_refused(cell, tmp_path, capsys):
    out = tmp_path / "dev"
    rc, _, err = _run(["chromatin", cell, "--steps", 2, *COARSE, "--no-figures", "--out", out], capsys)
    assert rc == 0, err
    import torch

    from mollifier.runtime.devices import resolve_device

    config = json.loads((out / "cell" / "training" / "config.json").read_text())
    assert config["training"]["device"] == str(resolve_device("auto"))
    if not torch.cuda.is_available():
        assert config["training"]["device"] == "cpu"
    rc, _, err = _run(["chromatin", cell, "--preview", "--device", "tpu9", "--out", tmp_path / "x"], capsys)
    assert rc == 2 and "device" in err and "auto" in err and "Traceback" not in err
