"""``mollifier chromatin`` on real-world inputs: inspection, channels, z, units, sparsity, several nuclei, ROIs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from mollifier.cli.main import main
from mollifier.imaging import synthetic_nucleus, write_csv, write_localizations

pytest.importorskip("sklearn")
ROOT = Path(__file__).resolve().parents[2]
REF = Path(os.environ.get("MOLLIFIER_SMLM_FORMATS", ROOT.parent / "shared" / "reference" / "smlm-formats"))
if not REF.is_dir():
    REF = ROOT.parent.parent / "shared" / "reference" / "smlm-formats"


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def nikon(tmp_path_factory):
    """An N-STORM export: two channels (647 the nucleus, 561 a sparse other label) and z."""
    s = synthetic_nucleus(n=48, seed=3, n_emitters=40_000).table
    rng = np.random.default_rng(0)
    n = s["x_nm"].size
    other = rng.uniform(0, 12_800, size=(3000, 2))
    table = {
        "x_nm": np.concatenate([s["x_nm"], other[:, 0]]),
        "y_nm": np.concatenate([s["y_nm"], other[:, 1]]),
        "z_nm": np.concatenate([rng.uniform(-300, 500, n), rng.uniform(-300, 500, 3000)]),
        "frame": np.concatenate([s["frame"], rng.integers(1, 20_000, 3000)]),
        "channel": np.concatenate([np.full(n, 647), np.full(3000, 561)]),
        "precision_nm": np.concatenate([s["uncertainty_nm"], np.full(3000, 15.0)]),
    }
    path = write_localizations(tmp_path_factory.mktemp("nikon") / "cell.txt", table, "nstorm")
    return path, table


def test_inspect_json_reports_the_file_without_analysis(nikon, tmp_path, capsys):
    path, table = nikon
    out = tmp_path / "never"
    rc, stdout, _ = _run(["chromatin", path, "--inspect", "--json", "--out", out], capsys)
    assert rc == 0 and not out.exists()
    facts = json.loads(stdout.strip())
    assert facts["format"] == "nstorm" and facts["localizations"] == table["x_nm"].size
    np.testing.assert_allclose(facts["x_range_nm"], [table["x_nm"].min(), table["x_nm"].max()], atol=0.06)
    np.testing.assert_allclose(facts["y_range_nm"], [table["y_nm"].min(), table["y_nm"].max()], atol=0.06)
    np.testing.assert_allclose(facts["z_range_nm"], [table["z_nm"].min(), table["z_nm"].max()], atol=0.06)
    assert facts["channels"] == {"561": 3000, "647": table["x_nm"].size - 3000}
    assert facts["columns_used"]["x"] == "Xc" and "X" in facts["columns_ignored"]
    assert facts["frames"] == [int(table["frame"].min()), int(table["frame"].max())]
    assert any(item.startswith("z not used") for item in facts["left_out"])
    rc, stdout, _ = _run(["chromatin", path, "--inspect", "--json", "--channel", "647", "--z-range", "0,500"], capsys)
    sel = json.loads(stdout.strip())
    z = np.round(table["z_nm"], 1)  # the export keeps 0.1 nm
    keep = (table["channel"] == 647) & (z >= 0) & (z <= 500)
    assert sel["localizations"] == int(keep.sum()) and sel["localizations_read"] == table["x_nm"].size


@pytest.mark.skipif(not REF.is_dir(), reason="reference SMLM files not found")
def test_inspect_reads_a_reference_export(capsys):
    pytest.importorskip("h5py")
    rc, stdout, _ = _run(["chromatin", REF / "locan" / "decode_dstorm_data.h5", "--inspect", "--json"], capsys)
    assert rc == 0
    facts = json.loads(stdout.strip())
    # data/xyz (px) times meta.px_size [127, 117], by hand with h5py (test_imaging_reference_formats)
    assert facts["format"] == "decode" and facts["localizations"] == 96
    np.testing.assert_allclose(facts["x_range_nm"], [-76.13751220703125, 215.8079071044922], rtol=1e-6)
    assert facts["pixel_size_nm"] == 127.0 and facts["pixel_size_source"] == "DECODE meta px_size"


def test_several_channels_need_a_choice_and_z_is_named(nikon, tmp_path, capsys):
    path, _ = nikon
    rc, _, err = _run(["chromatin", path, "--preview", "--out", tmp_path / "a", "--no-figures"], capsys)
    assert rc == 1 and "--channel" in err and "561" in err and "647" in err
    rc, _, err = _run(["chromatin", path, "--preview", "--channel", "647", "--out", tmp_path / "b", "--no-figures"],
                      capsys)
    assert rc == 0, err
    assert "z not used: the map is a 2-D projection" in err and "use --z-range" in err
    summary = json.loads((tmp_path / "b" / "cell" / "summary.json").read_text())
    assert summary["data"]["format"] == "nstorm" and summary["data"]["removed"] == {"channel": 3000}
    assert any(s.startswith("z not used") for s in summary["left_out"])
    assert any("other channels not used: 561" in s for s in summary["left_out"])


def test_counting_noise_rule_matches_a_monte_carlo():
    """sigma_lambda / lambda = G / sqrt(mu) (sparsity module) against uniform Poisson data.

    The interior (240 px square) holds ~240^2 / (pi 8^2) = 290 independent kernel disks, so
    the measured standard deviation has a relative error of 1/sqrt(2 * 290) = 4 %; 12 % is 3 sigma.
    """
    from mollifier.chromatin.analysis import Region, estimate_preview, volume_fractions
    from mollifier.chromatin.options import AnalysisOptions
    from mollifier.chromatin.sparsity import noise_gain
    from mollifier.problems.chromatin import CHROMATIN

    gain = noise_gain(100.0, 800.0, 1000.0, CHROMATIN, 0.5)
    assert gain == pytest.approx(1.380, abs=1e-3)
    rng = np.random.default_rng(0)
    options = AnalysisOptions(preview=True)
    for mu in (30.0, 300.0):
        density = rng.poisson(mu, (300, 300)).astype(float)
        mask = np.zeros(density.shape, dtype=bool)
        mask[5:-5, 5:-5] = True
        fractions = volume_fractions(density, Region(mask, mask, 0, 100.0), 0.0, "given", options)
        lam = estimate_preview(fractions.phi_d, mask, pixel_nm=100.0, radius_nm=800.0, options=options).lambda_map
        inner = lam[30:-30, 30:-30]
        assert inner.std() / inner.mean() == pytest.approx(gain / np.sqrt(mu), rel=0.12)


def test_too_sparse_tables_are_refused_unless_forced(tmp_path, capsys):
    path = tmp_path / "sparse.csv"
    synthetic_nucleus(n=48, seed=3, n_emitters=2_000).write_csv(path)  # ~0.5 localisations per 100 nm pixel
    rc, _, err = _run(["chromatin", path, "--preview", "--out", tmp_path / "a", "--no-figures"], capsys)
    assert rc == 1 and "too sparse" in err and "--force" in err and "per um^2" in err
    rc, _, err = _run(["chromatin", path, "--preview", "--force", "--out", tmp_path / "b", "--no-figures"], capsys)
    assert rc == 0, err
    summary = json.loads((tmp_path / "b" / "sparse" / "summary.json").read_text())
    assert summary["sparsity"]["verdict"] == "refuse" and summary["sparsity"]["noise"] > 1
    assert summary["warnings"] and summary["warnings"][0].startswith("analysed with --force")


@pytest.mark.skipif(not REF.is_dir(), reason="reference SMLM files not found")
def test_the_nanoimager_sample_is_refused(tmp_path, capsys):
    path = REF / "locan" / "Nanoimager_dstorm_data.csv"
    rc, _, err = _run(["chromatin", path, "--preview", "--channel", "all", "--out", tmp_path / "r"], capsys)
    assert rc == 1 and "14 localisations cannot support a map" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def two_nuclei(tmp_path_factory):
    a = synthetic_nucleus(n=48, seed=3, n_emitters=60_000).table
    b = synthetic_nucleus(n=48, seed=4, n_emitters=60_000, diameter_nm=8000).table
    table = {k: np.concatenate([a[k], b[k] + (14_000 if k == "x_nm" else 0)]) for k in ("x_nm", "y_nm", "frame")}
    return write_csv(tmp_path_factory.mktemp("field") / "field.csv", table)


def test_every_nucleus_of_a_field_is_analysed(two_nuclei, tmp_path, capsys):
    out = tmp_path / "all"
    rc, stdout, err = _run(["chromatin", two_nuclei, "--preview", "--out", out, "--json"], capsys)
    assert rc == 0, err
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["n_inputs"] == 1 and report["n_nuclei"] == report["n_ok"] == 2
    assert "2 nuclei found" in err
    s1, s2 = (json.loads((out / "field" / f"nucleus-{k}" / "summary.json").read_text()) for k in (1, 2))
    assert (s1["nucleus"], s2["nucleus"], s1["nuclei_in_field"]) == (1, 2, 2)
    assert s1["nucleus_area_um2"] > s2["nucleus_area_um2"]  # numbered by size
    assert s1["nucleus_centroid_nm"][0] < 12_800 < s2["nucleus_centroid_nm"][0]
    assert (out / "field" / "nucleus-2" / "figure.png").is_file()
    rc, _, err = _run(["chromatin", two_nuclei, "--preview", "--nucleus", 2, "--out", tmp_path / "two",
                       "--no-figures"], capsys)
    assert rc == 0, err
    assert (tmp_path / "two" / "field" / "nucleus-2").is_dir() and not (tmp_path / "two" / "field" / "nucleus-1").exists()
    rc, _, err = _run(["chromatin", two_nuclei, "--preview", "--nucleus", 3, "--out", tmp_path / "three"], capsys)
    assert rc == 1 and "--nucleus 3" in err and "1..2" in err


def test_roi_polygon_is_the_nucleus(two_nuclei, tmp_path, capsys):
    roi = "14500,1500 26500,1500 26500,11300 14500,11300"
    rc, _, err = _run(["chromatin", two_nuclei, "--preview", "--roi", roi, "--out", tmp_path / "r", "--no-figures"],
                      capsys)
    assert rc == 0, err
    summary = json.loads((tmp_path / "r" / "field" / "summary.json").read_text())
    assert summary["nucleus_source"] == "--roi" and summary["nuclei_in_field"] == 1
    assert summary["nucleus_centroid_nm"][0] == pytest.approx(20_500, abs=200)
    rc, _, err = _run(["chromatin", two_nuclei, "--roi", "1,2 3", "--out", tmp_path / "bad"], capsys)
    assert rc == 2 and "--roi" in err and "Traceback" not in err


def test_pixel_flags(tmp_path, capsys):
    s = synthetic_nucleus(n=48, seed=3, n_emitters=40_000).table
    px = tmp_path / "camera.csv"  # a table in camera pixels of 160 nm
    px.write_text("frame,x [px],y [px]\n" + "\n".join(
        f"{f},{x / 160:.5f},{y / 160:.5f}" for f, x, y in zip(s["frame"], s["x_nm"], s["y_nm"])) + "\n")
    rc, _, err = _run(["chromatin", px, "--preview", "--out", tmp_path / "a", "--no-figures"], capsys)
    assert rc == 1 and "--pixel-size-nm" in err
    rc, _, err = _run(["chromatin", px, "--preview", "--pixel-size-nm", 160, "--render-pixel-nm", 200,
                       "--out", tmp_path / "b", "--no-figures"], capsys)
    assert rc == 0, err
    summary = json.loads((tmp_path / "b" / "camera" / "summary.json").read_text())
    assert summary["pixel_size_nm"] == 200 and summary["data"]["pixel_size_source"] == "--pixel-size-nm"
    assert summary["data"]["x_range_nm"][1] == pytest.approx(s["x_nm"].max(), abs=0.01)
    # the deprecated --pixel-size is the render pixel for tables, with a note
    rc, _, err = _run(["chromatin", px, "--preview", "--pixel-size-nm", 160, "--pixel-size", 250,
                       "--out", tmp_path / "c", "--no-figures"], capsys)
    assert rc == 0 and "--pixel-size is deprecated" in err
    assert json.loads((tmp_path / "c" / "camera" / "summary.json").read_text())["pixel_size_nm"] == 250


def test_precision_render(tmp_path, capsys):
    path = tmp_path / "cell.csv"
    synthetic_nucleus(n=48, seed=3, n_emitters=40_000).write_csv(path)
    rc, _, err = _run(["chromatin", path, "--preview", "--render", "precision", "--out", tmp_path / "p",
                       "--no-figures"], capsys)
    assert rc == 0, err
    summary = json.loads((tmp_path / "p" / "cell" / "summary.json").read_text())
    assert any("blurred by its own precision" in n for n in summary["notes"])
    assert not any(s.startswith("precision") for s in summary["left_out"])
    bare = tmp_path / "bare.csv"
    bare.write_text("x_nm,y_nm\n" + "\n".join(f"{x},{y}" for x, y in np.random.default_rng(0).uniform(0, 5e3, (50, 2))))
    rc, _, err = _run(["chromatin", bare, "--preview", "--render", "precision", "--out", tmp_path / "q"], capsys)
    assert rc == 1 and "--render precision needs a precision column" in err


def test_figure_is_drawn_from_the_written_files_alone(two_nuclei, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from mollifier.plotting.chromatin import nucleus_figure

    out = tmp_path / "fig"
    rc, _, err = _run(["chromatin", two_nuclei, "--preview", "--nucleus", 1, "--out", out, "--no-figures"], capsys)
    assert rc == 0, err
    folder = out / "field" / "nucleus-1"
    assert not (folder / "figure.png").exists()
    path = nucleus_figure(folder)  # a fresh call: nothing but the files
    assert path.stat().st_size > 10_000


