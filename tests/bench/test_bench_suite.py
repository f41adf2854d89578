"""Benchmark sweeps (resume, time limits, failures), the Markdown report, and their CLI."""

import json

import pytest

from mollifier.bench.report import find_losses, render_report, write_report
from mollifier.bench.suite import KEY_FIELDS, PRESETS, preset_specs, read_rows, row_key, run_sweep
from mollifier.cli.main import main


def _scaling(engine, grid, pde="biharmonic", order=4):
    return {"kind": "scaling", "pde": pde, "problem": None, "engine": engine, "backbone": "mlp", "grid": grid,
            "noise": None, "seed": 0, "order": order, "repeats": 1, "measure_rss": False}


def test_preset_specs_are_unique_and_small_grids_come_first():
    def group(spec):  # the key without the grid
        return tuple(v for k, v in zip(KEY_FIELDS, row_key(spec)) if k != "grid")

    for name in PRESETS:
        specs = preset_specs(name)
        assert len({row_key(s) for s in specs}) == len(specs)
        for i, s in enumerate(specs):
            assert all(t["grid"] < s["grid"] for t in specs[:i] if group(t) == group(s))
    quick = preset_specs("quick")
    assert {s["engine"] for s in quick if s["kind"] == "accuracy"} >= {"mollifier", "autodiff"}
    assert {s["problem"] for s in quick if s["kind"] == "accuracy"} == {"langevin", "heat", "chromatin"}
    with pytest.raises(ValueError, match="allowed: quick, paper"):
        preset_specs("nope")


def test_resume_skips_rows_already_in_the_results_file(tmp_path):
    results = tmp_path / "r.jsonl"
    specs = [_scaling("mollifier", 8), _scaling("autodiff", 8)]
    results.write_text("".join(json.dumps({**s, "status": "ok"}) + "\n" for s in specs) + '{"torn line')
    lines = []
    assert run_sweep(specs, results, time_limit=0.01, progress=lines.append) == []
    assert len(read_rows(results)) == 2 and all("already in" in line for line in lines)


def test_time_limit_records_timeout_then_skips_larger_grids(tmp_path):
    results = tmp_path / "r.jsonl"
    specs = [_scaling("autodiff", 8), _scaling("autodiff", 16), _scaling("autodiff", 16, "laplacian", 2)]
    # 0.05 s is less than the worker needs to start, so the first row of each order times out.
    rows = run_sweep(specs, results, time_limit=0.05, meta={"command": "test"})
    assert [r["status"] for r in rows] == ["timeout", "skipped (timeout at smaller grid)", "timeout"]
    saved = read_rows(results)
    assert [r["status"] for r in saved] == [r["status"] for r in rows] and saved[0]["command"] == "test"
    assert all(set(KEY_FIELDS) <= set(r) for r in saved)
    # Resuming keeps skipping larger grids of the engine that timed out.
    more = run_sweep([*specs, _scaling("autodiff", 32)], results, time_limit=0.05)
    assert [r["status"] for r in more] == ["skipped (timeout at smaller grid)"]
    # --retry-failed runs the failed rows again (and appends the new outcome).
    again = run_sweep([*specs, _scaling("autodiff", 32)], results, time_limit=0.05, retry_failed=True)
    assert [r["status"] for r in again] == ["timeout", "skipped (timeout at smaller grid)", "timeout",
                                            "skipped (timeout at smaller grid)"]


def test_a_failing_row_is_recorded_and_the_sweep_continues(tmp_path):
    results = tmp_path / "r.jsonl"
    bad = {**_scaling("fd", 8), "pde": "nope", "order": 3}
    rows = run_sweep([bad, _scaling("mollifier", 8, "gradient", 1)], results, time_limit=120)
    assert rows[0]["status"] == "error" and "pde" in rows[0]["error"]
    assert rows[1]["status"] == "ok" and rows[1]["step_seconds"] > 0 and rows[1]["peak_memory_bytes"] > 0


def _hand_made_rows():
    def scaling(engine, grid, order, seconds, mib, status="ok"):
        row = {**_scaling(engine, grid, {2: "laplacian", 4: "biharmonic"}[order], order), "device": "cpu", "status": status}
        if status == "ok":
            row.update(step_seconds=seconds, peak_memory_bytes=int(mib * 2**20), peak_memory_method="torch-cpu-allocations")
        return row

    def accuracy(engine, noise, pearson, rel, status="ok"):
        row = {"kind": "accuracy", "pde": None, "problem": "chromatin", "engine": engine, "backbone": "mlp", "grid": 32,
               "noise": noise, "seed": 0, "order": 4, "device": "cpu", "status": status}
        if status == "ok":
            row.update(parameter_pearson=pearson, parameter_relative_l2=rel, train_seconds=3.0, step_seconds=0.01,
                       steps=300, peak_memory_bytes=2**20, baselines={"equilibrium_guess": {"pearson": 0.9, "relative_l2": 0.2}})
        return row

    machine = {"cpu": "Test CPU", "device": "cpu", "device_name": "Test CPU", "torch": "2.x", "mollifier": "0.1.0"}
    rows = [
        scaling("mollifier", 64, 4, 0.02, 10), scaling("autodiff", 64, 4, 0.5, 300),
        scaling("mollifier", 128, 4, 0.09, 40), scaling("autodiff", 128, 4, 0, 0, status="out of memory"),
        scaling("mollifier", 64, 2, 0.3, 10), scaling("autodiff", 64, 2, 0.2, 8),  # mollifier loses both
        accuracy("mollifier", 0.05, 0.95, 0.1), accuracy("autodiff", 0.05, 0.5, 0.4),
        accuracy("mollifier", 0.1, 0.6, 0.5), accuracy("autodiff", 0.1, 0, 0, status="timeout"),
    ]
    return [{**r, "machine": machine, "command": "mollifier bench --preset quick"} for r in rows]


def test_report_tables_keep_failed_rows_and_state_losses(tmp_path):
    rows = _hand_made_rows()
    text = render_report(rows, tmp_path, note="Under load.", report_command="mollifier report r.jsonl", plots=False)
    assert "Under load." in text and "mollifier bench --preset quick" in text and "Test CPU" in text
    assert "GPU numbers are not yet recorded" in text
    assert "**out of memory**" in text and "**timeout**" in text
    assert "25x" in text  # autodiff / mollifier time at order 4, 64^2
    assert "baseline: equilibrium_guess" in text
    losses = find_losses(rows)
    assert any("order 2, grid 64^2" in s and "time per step" in s for s in losses)
    assert any("order 2, grid 64^2" in s and "peak memory" in s for s in losses)
    assert any("noise 0.1" in s and "equilibrium_guess" in s for s in losses)
    assert not any("order 4" in s for s in losses)
    assert not any("noise 0.05" in s for s in losses)


def test_report_command_writes_markdown_and_small_plots(tmp_path):
    pytest.importorskip("matplotlib")
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in _hand_made_rows()))
    assert main(["report", str(results), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "benchmarks.md").read_text()
    pngs = sorted((tmp_path / "out" / "figures").glob("*.png"))
    assert len(pngs) == 4 and all(1000 < p.stat().st_size < 200_000 for p in pngs)
    assert all(f"figures/{p.name}" in text for p in pngs)
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "missing.jsonl", tmp_path)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bench", "--results", "x.jsonl"], "--preset"),
        (["bench", "--time-limit", "5"], "--preset"),
        (["bench", "--retry-failed"], "--preset"),
        (["bench", "--preset", "quick", "--memory-limit", "-1"], "--memory-limit"),
        (["bench", "--preset", "quick", "--grid", "32"], "cannot be combined with --preset"),
        (["bench", "--preset", "quick", "--json"], "cannot be combined with --preset"),
        (["bench", "--preset", "quick", "--problems", "heat,wave"], "--problems: expected comma-separated names"),
        (["bench", "--problems", "heat"], "only apply to a sweep"),
        (["report", "/nonexistent/results.jsonl"], "no results file"),
    ],
)
def test_sweep_argument_errors_are_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, message",
    [(["bench", "--preset", "slow"], "choose from 'quick', 'paper'"), (["bench", "--preset", "quick", "--time-limit", "0"], "positive")],
)
def test_bad_preset_values_are_rejected_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


def test_accuracy_rows_store_parameter_maps_and_the_report_draws_them(tmp_path):
    pytest.importorskip("matplotlib")
    specs = [{"kind": "accuracy", "pde": None, "problem": "chromatin", "engine": "direct", "backbone": "mlp",
              "grid": 32, "noise": 0.05, "seed": 0, "order": 4, "device": "cpu", "problem_options": {},
              "training": {}, "time_limit": 120.0}]
    results = tmp_path / "r.jsonl"
    (row,) = run_sweep(specs, results)
    assert row["status"] == "ok" and "arrays_path" not in row
    assert (tmp_path / row["arrays"]).exists()
    out = write_report(results, tmp_path / "report")
    assert "parameter maps" in out.read_text()
    assert (tmp_path / "report" / "figures" / "bench_parameter_maps_chromatin.png").exists()


def test_kind_filter_runs_only_that_part_of_a_preset(tmp_path, capsys):
    results = tmp_path / "r.jsonl"
    # --time-limit 0.001 makes every scaling row time out at once: the filter is what is tested.
    main(["bench", "--preset", "quick", "--kind", "scaling", "--results", str(results), "--time-limit", "0.001"])
    rows = read_rows(results)
    assert rows and {r["kind"] for r in rows} == {"scaling"}


def test_problems_filter_keeps_only_those_problems_rows(tmp_path):
    results = tmp_path / "r.jsonl"
    # every row times out at once: the filter is what is tested
    main(["bench", "--preset", "paper", "--kind", "robustness", "--problems", "langevin", "--results", str(results),
          "--time-limit", "0.001"])
    rows = read_rows(results)
    assert rows and {r["problem"] for r in rows} == {"langevin"}
    assert {r["grid"] for r in rows} == {64, 128, 256} and {r["noise"] for r in rows} == {0.0, 0.01, 0.05, 0.1}
