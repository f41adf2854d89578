"""Multi-process runs on the CPU (gloo, 2 processes): tiled training, batches, failures, torchrun.

Each launch starts 2 processes with torchrun's environment variables (``launch``) or
torchrun itself (``torchrun``), with ``OMP_NUM_THREADS=1`` and a hard time limit, so a
hang fails the test instead of stalling the suite. Tolerances (float64):

- loss terms, gradients, gathered fields: rounding bounds computed by the worker from the
  arithmetic (``_worker._rounding_bounds``, with tests/tolerances.py): the tiled and the
  single-process objective compute the same exact quantities, in batches of other sizes
  and sums in other orders;
- training (4 Adam steps): an iterated quantity, see test_tiled_training_matches_single_process_training.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
LIMIT = 120  # seconds per launch: far above the ~5-10 s these take, far below a hang


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def launch(scenario: str, out: Path, nprocs: int = 2) -> tuple[list[dict], list[subprocess.CompletedProcess], float]:
    """Run ``_worker.py SCENARIO OUT`` as ``nprocs`` ranks: their JSON reports (``None``: none
    written), finished processes and the wall time."""
    port = str(_free_port())
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "_worker.py"), scenario, str(out)],
            env=_env(WORLD_SIZE=str(nprocs), RANK=str(r), LOCAL_RANK=str(r), MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for r in range(nprocs)
    ]
    done = []
    try:
        for p in procs:
            stdout, _ = p.communicate(timeout=max(LIMIT - (time.monotonic() - start), 1))
            done.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, ""))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    elapsed = time.monotonic() - start
    reports = [json.loads(p.read_text()) if (p := out / f"rank{r}.json").exists() else None for r in range(nprocs)]
    return reports, done, elapsed


def torchrun(args: list[str], cwd: Path, nprocs: int = 2) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nprocs}",
               "--master_addr=127.0.0.1", f"--master_port={_free_port()}", *args]
    return subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=LIMIT)


@pytest.fixture(scope="module")
def equivalence_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("equivalence")
    reports, procs, _ = launch("equivalence", out)
    assert all(p.returncode == 0 for p in procs) and None not in reports, [p.stdout[-2000:] for p in procs]
    return reports, out


@pytest.fixture(scope="module")
def equivalence(equivalence_run):
    return equivalence_run[0]


def test_a_gaussian_process_prior_is_counted_once_across_ranks(equivalence):
    # float64 sums of ~10^3 terms reorder to ~1e-13 relative; the prior term is above 1e-6 of
    # the loss, so counting it on both ranks (or on none) would show a thousand times over
    for report in equivalence:
        r = report["prior-share"]
        assert r["prior"] > 1e-6 * r["loss"]
        assert r["tiled_loss"] == pytest.approx(r["loss"], rel=1e-9, abs=0)
        assert r["grad_max_abs_diff"] <= 1e-9 * r["grad_max_abs"]


@pytest.mark.parametrize("case", ["chromatin-mollifier", "heat-mollifier", "heat-fd"])
def test_tiled_loss_and_gradients_equal_the_single_process_ones(equivalence, case):
    """chromatin: periodic, 4th order; heat: valid boundary, known field, 70 % observed."""
    for report in equivalence:
        r = report[f"objective-{case}"]
        for term in ("loss", "data", "residual"):
            assert abs(r[f"tiled_{term}"] - r[term]) <= r[f"{term}_bound"], term
        assert r["grad_max_ratio"] <= 1.0, (r["grad_max_abs_diff"], r["grad_max_abs"])
        assert r["field_max_ratio"] <= 1.0, (r["field_max_abs_diff"], r["field_bounds"])
        # The bounds stay far below a real discrepancy: a missing halo row, a gradient not
        # summed over ranks or a slab off by one changes these by percents. Loss terms are
        # bounded to 1e-10 .. 1e-9 relative (a float32 slip, ~1e-7, would fail); the
        # gradient bound is a first-order worst case in absolute values through the
        # stencils and the networks (cancellation-free), so looser.
        assert r["loss_bound"] <= 1e-8 * abs(r["loss"]) and r["grad_max_relative_bound"] <= 1e-3
    assert [report["objective-" + case]["rows"] for report in equivalence] == [equivalence[0][f"objective-{case}"]["rows"]] * 2


@pytest.mark.parametrize("name", ["chromatin", "heat"])
def test_tiled_training_matches_single_process_training(equivalence, name):
    # An iterated quantity (a training target, not a rounding bound): both runs start equal
    # and take 4 Adam steps on gradients that differ by rounding (checked against the
    # derived bound in the test above; the difference itself is ~1e-16 here and was within
    # these tolerances on Intel and AMD CPUs). Adam's step lr * m / (sqrt(v) + eps_adam) moves
    # an entry by about lr * eps_adam * dg / (|g| + eps_adam)^2 for a gradient change dg: far
    # below dg unless |g| ~ eps_adam (then up to lr / eps_adam = 5e5 times dg). A wrong step
    # (a missing all-reduce, a halo error) moves parameters by ~lr = 5e-3 instead.
    for report in equivalence:
        r = report[f"train-{name}"]
        assert r["param_max_abs_diff"] < 1e-9
        assert r["loss"] == pytest.approx(r["single_loss"], rel=1e-10)
        assert r["pearson"] == pytest.approx(r["single_pearson"], abs=1e-9)  # metrics on the gathered fields
        assert r["distributed"]["world_size"] == 2 and r["distributed"]["backend"] == "gloo"
        assert sum(r["distributed"]["rows_per_rank"]) == {"chromatin": 32, "heat": 20}[name]


def test_tiled_training_writes_the_results_folder(equivalence_run):
    folder = equivalence_run[1] / "run-heat"  # written by rank 0; the metrics carry the decomposition
    for name in ("config.json", "metrics.json", "arrays.npz", "history.json"):
        assert (folder / name).is_file(), name
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["distributed"]["halo_rows"] == 4 and metrics["distributed"]["extra_rows_fraction"] == pytest.approx(0.8)
    assert not list(folder.glob(".*.tmp"))


def test_batch_covers_every_input_once_and_reports_the_failing_one(equivalence):
    for report in equivalence:
        rows = report["batch"]
        assert [row["item"] for row in rows] == list(range(11))  # each once, in input order
        assert {row["rank"] for row in rows} == {0, 1}  # both ranks worked
        assert rows[7]["error"] == "input 7 is broken"
        assert all("error" not in row for i, row in enumerate(rows) if i != 7)
    assert equivalence[0]["batch"] == equivalence[1]["batch"]


def test_batch_with_a_rank_that_stops_reports_its_inputs(equivalence):
    """Rank 1 raises SystemExit at input 3: its inputs 3, 5, 7 come back as errors naming it."""
    rows = equivalence[0]["batch_rank_failure"]
    assert [row["item"] for row in rows] == list(range(8))
    failed = {row["item"]: row["error"] for row in rows if "error" in row}
    assert sorted(failed) == [3, 5, 7]
    assert "rank 1 failed while processing this input (SystemExit: rank 1 is leaving)" in failed[3]
    assert "rank 1 failed at an earlier input" in failed[5]
    assert equivalence[0]["batch_rank_failure_raised"] is None
    assert "rank 1 stopped its share of the batch after 1 input(s): SystemExit" in equivalence[1]["batch_rank_failure_raised"]


def test_a_rank_that_raises_in_training_gives_a_clear_error_not_a_hang(tmp_path):
    reports, procs, elapsed = launch("raises_in_training", tmp_path)
    assert elapsed < LIMIT
    assert reports[1] == {"rank": 1, "error": "injected failure in the residual", "type": "ValueError"}
    assert procs[1].returncode == 3
    assert reports[0]["type"] == "RankFailedError"
    assert "failed on rank 0 of 2: rank 1 failed with ValueError: injected failure in the residual" in reports[0]["error"]


def test_a_rank_that_dies_gives_a_clear_error_not_a_hang(tmp_path):
    reports, procs, elapsed = launch("dies_in_batch", tmp_path / "d")
    assert elapsed < LIMIT and procs[1].returncode == 9 and reports[1] is None
    assert "gathering batch results failed on rank 0 of 2: another rank stopped answering" in reports[0]["error"]


def test_torchrun_mollifier_run_matches_the_single_process_run(tmp_path):
    args = ["chromatin", "--grid", "32", "--steps", "4", "--json", "--no-figures"]
    proc = torchrun(["-m", "mollifier", "run", *args, "--out", str(tmp_path / "tiled")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1  # rank 0 alone reports
    tiled = json.loads(lines[0])
    single = subprocess.run([sys.executable, "-m", "mollifier", "run", *args, "--out", str(tmp_path / "single")],
                            env=_env(), capture_output=True, text=True, timeout=LIMIT)
    assert single.returncode == 0, single.stderr[-2000:]
    single_metrics = json.loads(single.stdout.strip().splitlines()[-1])
    assert tiled["distributed"]["world_size"] == 2 and "distributed" not in single_metrics
    # float32: the tiled sums round differently, so compare loosely
    assert tiled["final_loss"]["loss"] == pytest.approx(single_metrics["final_loss"]["loss"], rel=1e-4)
    assert tiled["parameter_pearson"] == pytest.approx(single_metrics["parameter_pearson"], abs=1e-3)
    for name in ("metrics.json", "arrays.npz", "history.json", "checkpoint.pt", "config.json"):
        assert (tmp_path / "tiled" / name).is_file(), name


def test_torchrun_mollifier_chromatin_spreads_the_batch(tmp_path):
    pytest.importorskip("sklearn")
    from mollifier.imaging import synthetic_nucleus

    folder = tmp_path / "nuclei"
    folder.mkdir()
    synthetic_nucleus(n=48, seed=3, n_emitters=20_000).write_csv(folder / "a.csv")
    (folder / "b.csv").write_text("x_nm,y_nm\nfoo,bar\n")
    (folder / "c.csv").write_bytes((folder / "a.csv").read_bytes())
    out = tmp_path / "res"
    proc = torchrun(["-m", "mollifier", "chromatin", str(folder), "--preview", "--out", str(out), "--no-figures", "--json"],
                    cwd=tmp_path)
    assert proc.returncode != 0  # one input failed: exit status 1 on every rank
    report = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    assert (report["n_inputs"], report["n_ok"], report["n_error"]) == (3, 2, 1)
    assert [Path(row["input"]).name for row in report["nuclei"]] == ["a.csv", "b.csv", "c.csv"]
    assert [row["status"] for row in report["nuclei"]] == ["ok", "error", "ok"]
    assert (out / "summary.csv").read_text().count("\n") == 4  # header + one row per input
    assert "[rank 1]" in proc.stderr  # b.csv went to rank 1, which reported it
