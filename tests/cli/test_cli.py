"""The `mollifier` command: run, demo, bench, config files, errors."""

import argparse
import json
import subprocess
import sys

import pytest

from mollifier.cli.main import main


def _last_json(text):
    return json.loads(text.strip().splitlines()[-1])


def test_run_json_has_the_documented_keys(tmp_path, capsys):
    code = main(["run", "heat", "--grid", "12", "--steps", "3", "--out", str(tmp_path), "--json", "--no-figures"])
    assert code == 0
    metrics = _last_json(capsys.readouterr().out)
    for key in ("problem", "engine", "backbone", "noise", "parameter_pearson", "parameter_relative_l2",
                "train_seconds", "peak_memory_bytes"):
        assert key in metrics
    assert metrics["problem"] == "heat" and metrics["engine"] == "mollifier" and metrics["noise"] == 0.05


def test_config_file_and_flags_combine_flags_winning(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('grid = 12\nnoise = 0.01\n[training]\nsteps = 2\nengine = "fd"\n')
    main(["run", "langevin", "--config", str(config), "--engine", "autodiff", "--out", str(tmp_path / "o"),
          "--json", "--no-figures"])
    metrics = _last_json(capsys.readouterr().out)
    assert metrics["engine"] == "autodiff" and metrics["noise"] == 0.01 and metrics["steps"] == 2
    recorded = json.loads((tmp_path / "o" / "config.json").read_text())
    assert recorded["problem_options"]["grid"] == 12


def test_figures_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    assert main(["run", "chromatin", "--grid", "32", "--steps", "3", "--out", str(tmp_path), "--json"]) == 0
    assert (tmp_path / "figures" / "overview.png").stat().st_size > 1000
    assert (tmp_path / "figures" / "loss.png").exists()


def test_resume_flag(tmp_path, capsys):
    args = ["run", "langevin", "--grid", "32", "--steps", "4", "--out", str(tmp_path), "--json", "--no-figures"]
    assert main(args) == 0
    assert main(args + ["--resume"]) == 0
    assert _last_json(capsys.readouterr().out)["steps"] == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "nope"], "allowed: langevin, heat, chromatin"),
        (["run", "heat", "--noise", "-0.1"], "noise"),
        (["run", "heat", "--grid", "4"], "grid"),
        (["run", "heat", "--resume", "--out", "/nonexistent/x"], "checkpoint"),
        (["run", "heat", "--config", "/nonexistent.toml"], "config"),
    ],
)
def test_bad_input_is_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unknown_engine_lists_the_allowed(capsys):
    with pytest.raises(SystemExit):
        main(["run", "heat", "--engine", "magic"])
    assert "mollifier" in capsys.readouterr().err


def test_bench_json(capsys):
    assert main(["bench", "--pde", "laplacian", "--grid", "16", "--engines", "mollifier,autodiff,fd", "--repeats", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["engine"] for r in rows] == ["mollifier", "autodiff", "fd"]
    for row in rows:
        assert row["status"] == "ok" and row["grid"] == 16
        assert row["step_seconds"] > 0 and row["peak_memory_bytes"] > 0


def test_bench_measures_autodiff_as_heavier_on_a_fourth_order_residual(capsys):
    """Not a timing claim (CI machines are noisy): the memory of the nested graphs is
    deterministic and must exceed the convolution's by a wide margin even at 32^2."""
    main(["bench", "--pde", "biharmonic", "--grid", "32", "--engines", "mollifier,autodiff", "--repeats", "1", "--json"])
    mol, auto = json.loads(capsys.readouterr().out)
    assert auto["peak_memory_bytes"] > 10 * mol["peak_memory_bytes"]


def test_help_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "mollifier", "--help"], capture_output=True, text=True, check=True)
    for command in ("demo", "run", "bench"):
        assert command in out.stdout


def test_demo_runs_the_embedded_default(tmp_path, capsys):
    assert main(["demo", "--steps", "5", "--out", str(tmp_path), "--json", "--no-figures"]) == 0
    metrics = _last_json(capsys.readouterr().out)
    assert metrics["problem"] == "chromatin" and metrics["noise"] == 0.05
    assert "equilibrium_guess" in metrics["baselines"]
    assert (tmp_path / "metrics.json").exists()


def test_network_free_engine_from_the_cli(tmp_path, capsys):
    assert main(["run", "heat", "--engine", "direct", "--smoother", "savgol", "--out", str(tmp_path), "--json",
                 "--no-figures"]) == 0
    metrics = _last_json(capsys.readouterr().out)
    assert metrics["engine"] == "direct" and metrics["smoother"] == "savgol" and metrics["peak_memory_bytes"] > 0
    # The command reports exactly what the library computes for the same data.
    from mollifier.inverse import estimate_parameter
    from mollifier.problems import make_problem

    expected = estimate_parameter(make_problem("heat", noise=0.05, seed=0), "savgol").metrics
    # the same computation in the same process (bit-identical), and JSON round-trips floats
    assert metrics["parameter_pearson"] == expected["parameter_pearson"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "langevin", "--radius", "-1"], "expected a positive radius (physical units) or 'auto', got '-1'"),
        (["run", "langevin", "--radius", "abc"], "expected a positive radius (physical units) or 'auto', got 'abc'"),
        (["bench", "--preset", "quick", "--time-limit", "0"], "expected a positive number of seconds, got '0'"),
    ],
)
def test_positive_numbers_are_checked_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_positive_number_keeps_its_words_and_parses_the_rest():
    from mollifier.cli.arguments import positive_number

    radius = positive_number("radius (physical units)", "auto")
    assert radius("auto") == "auto" and radius("0.25") == 0.25
    for bad in ("0", "-1", "nan", "inf-", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="or 'auto'"):
            radius(bad)
