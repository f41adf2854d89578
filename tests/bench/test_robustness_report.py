"""The robustness sweep's rows and the report's cell-by-cell targets and reasons."""

from __future__ import annotations

from mollifier.bench.report import FLOOR_MARGIN, WIN_MARGIN, robustness_cells, robustness_section
from mollifier.bench.suite import PRESETS, robustness_specs
from mollifier.problems import PROBLEMS


def test_quick_robustness_rows_cover_every_problem_length_noise_and_smoother():
    preset = PRESETS["quick"]
    specs = robustness_specs(preset)
    smoothers = [e for e in preset.robustness_engines if e.startswith("direct")]
    cells = {(s["problem"], s["grid"], s["correlation_length"], s["noise"]) for s in specs}
    expected = sum(len(v["grids"]) * len(v["correlation_lengths"]) for v in preset.robustness.values()) * len(preset.robustness_noises)
    assert len(cells) == expected and len(specs) == expected * len(preset.robustness_engines)
    for spec in specs:
        assert spec["problem_options"] == {"correlation_length": spec["correlation_length"]}
        assert spec["order"] == PROBLEMS[spec["problem"]].order
        assert spec["training"] == {}  # the defaults a user gets
        if not spec["engine"].startswith("direct"):
            assert spec["compare"] == smoothers


def _rows(net_pearson: float, on_support: float, smoother: float, noise: float, **net: object) -> list[dict]:
    key = {"kind": "robustness", "problem": "heat", "grid": 64, "correlation_length": 0.1, "noise": noise, "seed": 0}
    network = {**key, "engine": "mollifier", "status": "ok", "parameter_pearson": net_pearson,
               "pearson_on_support": {"direct": on_support}, "diagnostics": [], "fit_check": {}, **net}
    free = {**key, "engine": "direct", "status": "ok", "parameter_pearson": smoother}
    return [network, free]


def test_targets_are_judged_on_the_smoothers_support():
    win = robustness_cells(_rows(0.80, 0.90, 0.90 - WIN_MARGIN - 0.01, noise=0.05))[0]
    assert win["floor"] and win["win"] and win["why"] == ""
    # same network, a smoother just above the floor margin: target 1 missed, and said why
    lose = robustness_cells(_rows(0.80, 0.90, 0.90 + FLOOR_MARGIN + 0.001, noise=0.05))[0]
    assert lose["floor"] is False and lose["why"]
    quiet = robustness_cells(_rows(0.80, 0.90, 0.89, noise=0.01))[0]
    assert quiet["win"] is None  # target 2 applies at 5 % noise or more only


def test_a_collapsed_recovery_is_named_as_the_reason():
    rows = _rows(0.07, 0.07, 0.99, noise=0.05, recovery="learned", recoveries={"direct": 0.96, "learned": 0.07},
                 diagnostics=["network-free-better"])
    why = robustness_cells(rows)[0]["why"]
    assert "learned recovery collapsed" in why and "0.96" in why
    same = _rows(0.90, 0.90, 0.99, noise=0.05, recovery="learned", recoveries={"direct": 0.91, "learned": 0.90},
                 diagnostics=["network-free-better"])
    why = robustness_cells(same)[0]["why"]
    assert "collapsed" not in why and "network-free estimate scores higher" in why


def test_the_section_counts_the_cells_that_meet_each_target():
    rows = _rows(0.80, 0.90, 0.85, noise=0.05) + [
        {**r, "correlation_length": 0.2} for r in _rows(0.80, 0.90, 0.95, noise=0.05)
    ]
    text = "\n".join(robustness_section(rows))
    assert "met in 1 of 2 cells" in text and "### heat" in text


def _ceiling(oracle: float, headroom: float) -> dict:
    return {"problem": "heat", "grid": 64, "correlation_length": 0.1, "noise": 0.05, "seed": 0,
            "oracle_pearson": oracle, "headroom": headroom}


def test_what_the_data_allow_says_whether_a_missed_target_was_reachable():
    # the network beats the best smoother (0.85) by 0.01: target 2 missed
    rows = _rows(0.86, 0.86, 0.85, noise=0.05)
    assert robustness_cells(rows)[0]["headroom"] is None
    beyond = robustness_cells(rows, [_ceiling(0.855, 0.005)])[0]
    assert beyond["win"] is False and beyond["why"].startswith("beyond these data") and "+0.005" in beyond["why"]
    reachable = robustness_cells(rows, [_ceiling(0.95, 0.10)])[0]
    assert reachable["why"].startswith("not the data") and "0.950" in reachable["why"]
    # a ceiling row of another cell is not used
    other = robustness_cells(rows, [{**_ceiling(0.855, 0.005), "noise": 0.1}])[0]
    assert other["headroom"] is None and not other["why"].startswith("beyond")
    text = "\n".join(robustness_section(rows, [_ceiling(0.855, 0.005)]))
    assert "data allow: P (headroom)" in text and "0.855 (+0.005)" in text


def test_what_the_data_allow_is_read_on_the_best_smoothers_support():
    bound = {**_ceiling(0.99, 0.005), "best_smoother": "gaussian",
             "smoothers": {"gaussian": {"pearson": 0.85, "oracle_on_support": 0.855}}}
    cell = robustness_cells(_rows(0.86, 0.86, 0.85, noise=0.05), [bound])[0]
    assert cell["ceiling"] == 0.855 and cell["headroom"] == 0.005


def test_the_report_reads_ceiling_rows_and_names_a_bad_file(tmp_path):
    import json

    import pytest

    from mollifier.bench.report import write_report

    results, ceiling = tmp_path / "bench.jsonl", tmp_path / "ceiling.jsonl"
    results.write_text("\n".join(json.dumps(r) for r in _rows(0.86, 0.86, 0.85, noise=0.05)) + "\n")
    ceiling.write_text(json.dumps(_ceiling(0.855, 0.005)) + "\n")
    pytest.importorskip("matplotlib")  # the plots read every row: a ceiling row must not reach them
    text = write_report(results, tmp_path / "out", ceiling=ceiling).read_text()
    assert "0.855 (+0.005)" in text and "beyond these data" in text
    with pytest.raises(FileNotFoundError, match="ceiling"):
        write_report(results, tmp_path / "out", ceiling=tmp_path / "missing.jsonl", plots=False)
    results_only = tmp_path / "not-ceiling.jsonl"
    results_only.write_text(results.read_text())
    with pytest.raises(ValueError, match="robustness_ceiling.py --json"):
        write_report(results, tmp_path / "out", ceiling=results_only, plots=False)
