"""The DeepXDE baseline on PINNacle's inverse tasks (benchmarks/pinnacle_deepxde.py).

DeepXDE is an optional extra (``mollifier[compare]``): the tests that train are skipped
without it; the missing-DeepXDE message is tested either way.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "pinnacle_deepxde.py"
for folder in (SCRIPT.parent, ROOT / "docs" / "examples"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

NUMERIC = ["iterations", "train_seconds", "parameter_relative_l2", "parameter_pearson",
           "u_relative_l2_at_data", "peak_rss_bytes"]
TEXT = ["task", "torch_version", "deepxde_version", "cpu_model"]


def _run(*args, timeout=1800):
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_missing_deepxde_names_the_extra():
    # sys.modules["deepxde"] = None makes "import deepxde" fail as if it were not installed
    code = ("import sys, runpy; sys.modules['deepxde'] = None; sys.argv = ['x', '--task', 'poisson'];"
            f" runpy.run_path({str(SCRIPT)!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'mollifier[compare]'" in lines[0]


def test_heat_network_is_blind_to_t():
    pytest.importorskip("deepxde")
    import torch

    import pinnacle_deepxde as bench

    dde, _ = bench.import_deepxde()
    torch.manual_seed(0)
    net = bench.masked_pfnn(dde, torch, [[1, 1, 1], [1, 1, 0]])
    x = torch.rand(64, 3)
    x2 = x.clone()
    x2[:, 2] = torch.rand(64)
    y, y2 = net(x), net(x2)
    assert y.shape == (64, 2)
    assert torch.equal(y[:, 1], y2[:, 1])  # a ignores t
    assert not torch.allclose(y[:, 0], y2[:, 0])  # u does not
    # 2 sub-networks of 5 hidden layers of 50: 3*50+50 + 4*(50*50+50) + 50+1 weights and biases each
    assert sum(p.numel() for p in net.parameters()) == 2 * (200 + 4 * 2550 + 51)


@pytest.mark.slow
def test_both_tasks_run_and_report_finite_fields(tmp_path):
    """20 Adam steps of each task through the CLI (40 s on a 2-core CPU, minutes when it is loaded: heat has 60k points)."""
    pytest.importorskip("deepxde")
    out = tmp_path / "runs.jsonl"
    proc = _run("--task", "both", "--seed", "0", "--iterations", "20", "--threads", "1", "--json", "--out", str(out))
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2  # --json: only the records on stdout
    records = [json.loads(line) for line in lines]
    assert [json.loads(line) for line in out.read_text().splitlines()] == records
    for rec, task in zip(records, ["poisson", "heat"]):
        assert rec["task"] == task and rec["seed"] == 0 and rec["iterations"] == 20
        for key in NUMERIC:
            assert isinstance(rec[key], (int, float)) and math.isfinite(rec[key]), (task, key, rec[key])
        for key in TEXT:
            assert isinstance(rec[key], str) and rec[key]
        assert rec["peak_rss_bytes"] > 10 * 2**20
        assert -1 <= rec["parameter_pearson"] <= 1
    # PINNacle's collocation counts reached DeepXDE (the a-boundary count is what DeepXDE finds on it)
    assert records[0]["collocation"]["pde_residual"] == 8192 + 2048
    assert records[0]["collocation"]["data"] == 2500
    assert records[1]["collocation"]["pde_residual"] == 4 * (8192 + 2048 + 2048)
    assert records[1]["collocation"]["data"] == 2500


@pytest.mark.slow
def test_time_budget_stops_training():
    pytest.importorskip("deepxde")
    proc = _run("--task", "poisson", "--iterations", "100000", "--time-budget", "2", "--threads", "1", "--json")
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    assert 1 <= rec["iterations"] < 100000
    assert rec["time_budget_s"] == 2
    assert rec["train_seconds"] >= 2
    assert rec["final_loss"]["step"] == rec["iterations"]  # losses logged at the stop, not at step 0
    assert np.isfinite(rec["parameter_relative_l2"])
