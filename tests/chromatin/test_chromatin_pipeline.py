"""End-to-end tests of ``mollifier chromatin`` and the DBSCAN baseline (small and fast)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from mollifier.chromatin.baseline import baseline_from_image, baseline_from_points
from mollifier.cli.main import main
from mollifier.imaging import synthetic_nucleus

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nuclei")
    s = synthetic_nucleus(n=48, seed=3, n_emitters=30_000)
    path = folder / "nucleus.csv"
    s.write_csv(path)
    return path


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_trains_end_to_end_and_writes_outputs(small_csv, tmp_path, capsys):
    out = tmp_path / "res"
    rc, stdout, _ = _run(["chromatin", small_csv, "--pixel-size", 300, "--steps", 6, "--out", out, "--json"], capsys)
    assert rc == 0
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["n_ok"] == 1 and report["n_error"] == 0
    folder = out / "nucleus"
    for name in ("lambda.npy", "lambda.tif", "summary.json", "figure.png", "mask.npy"):
        assert (folder / name).is_file(), name
    lam = np.load(folder / "lambda.npy")
    mask = np.load(folder / "mask.npy")
    assert lam.shape == mask.shape and np.isfinite(lam[mask]).all() and np.isnan(lam[~mask]).all()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["mode"].startswith("trained (6 steps")
    for key in ("lambda_mean", "lambda_median", "heterochromatin_fraction", "domain_count", "domain_radius",
                "domain_spacing", "baseline_ratio", "runtime_seconds"):
        assert key in summary
    assert 0 < summary["heterochromatin_fraction"] < 1
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["ok"]


def test_cli_preview_is_network_free(small_csv, tmp_path, capsys):
    out = tmp_path / "prev"
    rc, _, err = _run(["chromatin", small_csv, "--preview", "--out", out, "--no-figures"], capsys)
    assert rc == 0
    assert "[1/1] nucleus.csv: ok" in err
    summary = json.loads((out / "nucleus" / "summary.json").read_text())
    assert summary["mode"].startswith("preview")
    assert np.isfinite(summary["lambda_median"])
    assert summary["pixel_size_nm"] == pytest.approx(10_000 / 64, rel=0.1)  # nucleus spans ~64 px


def test_batch_reports_bad_file_and_runs_the_others(small_csv, tmp_path, capsys):
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "a_good.csv").write_bytes(small_csv.read_bytes())
    (folder / "b_bad.csv").write_text("x_nm,y_nm\nfoo,bar\n")
    (folder / "c_good.csv").write_bytes(small_csv.read_bytes())
    out = tmp_path / "res"
    rc, stdout, err = _run(["chromatin", folder, "--preview", "--out", out, "--no-figures", "--json"], capsys)
    assert rc == 1
    report = json.loads(stdout.strip().splitlines()[-1])
    assert (report["n_ok"], report["n_error"]) == (2, 1)
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["ok", "error", "ok"]
    assert rows[1]["message"]
    assert "b_bad.csv" in err
    assert (out / "a_good" / "summary.json").is_file() and (out / "c_good" / "summary.json").is_file()


def test_csv_without_coordinates_gives_one_line_error(tmp_path, capsys):
    bad = tmp_path / "nocoords.csv"
    bad.write_text("frame,intensity\n1,100\n2,200\n")
    rc, _, err = _run(["chromatin", bad, "--preview", "--out", tmp_path / "r"], capsys)
    assert rc == 1
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1
    assert "coordinate column" in errors[0] and "nocoords.csv" in errors[0]
    assert "Traceback" not in err


def _disks(radius=50.0, spacing=300.0, n_side=5, per_disk=300, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([(i * spacing, j * spacing) for i in range(n_side) for j in range(n_side)]) + 500.0
    pts = []
    for c in centres:
        r = radius * np.sqrt(rng.random(per_disk))
        t = 2 * np.pi * rng.random(per_disk)
        pts.append(c + np.column_stack([r * np.cos(t), r * np.sin(t)]))
    return np.concatenate(pts), centres


def test_baseline_on_disks_gives_finite_radius_and_spacing():
    pts, centres = _disks()
    res = baseline_from_points(pts)
    assert res.n_domains == len(centres)
    assert np.isfinite(res.radius_nm) and np.isfinite(res.spacing_nm)
    assert res.radius_nm == pytest.approx(50.0, rel=0.1)
    assert res.spacing_nm == pytest.approx(300.0, rel=0.02)
    assert res.ratio == pytest.approx(1.0 / ((res.spacing_nm / res.radius_nm) ** 2 - 1))
    # image path: connected components of the thresholded density
    from mollifier.imaging import density_map

    img = density_map(pts, 10.0, extent=(0.0, 2000.0, 0.0, 2000.0), blur_nm=10.0)  # a rendered image
    mask = np.zeros(img.shape, dtype=bool)
    mask[20:-20, 20:-20] = True
    res_img = baseline_from_image(img, mask, 10.0)
    assert res_img.n_domains == len(centres)
    assert res_img.radius_nm == pytest.approx(50.0, rel=0.15)
    assert res_img.spacing_nm == pytest.approx(300.0, rel=0.05)
