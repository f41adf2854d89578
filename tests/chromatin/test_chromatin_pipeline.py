"""End-to-end tests of ``mollifier chromatin`` and the DBSCAN baseline (small and fast)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from mollifier.chromatin import InputOptions, locate_nuclei
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
    rc, stdout, _ = _run(["chromatin", small_csv, "--render-pixel-nm", 300, "--steps", 6, "--out", out, "--json"], capsys)
    assert rc == 0
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["n_ok"] == 1 and report["n_error"] == 0
    folder = out / "nucleus"
    for name in ("lambda.npy", "lambda.tif", "summary.json", "figure.png", "mask.npy", "density.npy", "phi_h.npy",
                 "nucleus.npy", "domains.csv", "training/checkpoint.pt"):
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
    assert summary["pixel_size_nm"] == 100.0  # the default density-map pixel
    assert summary["model"]["spacing_per_pixel"] == pytest.approx(0.1)  # 1 model unit = 1000 nm


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


def test_truth_sidecar_aligns_and_scores(tmp_path, capsys):
    from mollifier.chromatin.truth import read_truth, write_synthetic

    table = write_synthetic(tmp_path / "syn", "cell", compress=True, n=48, seed=3, n_emitters=30_000)
    assert table.name == "cell.csv.xz" and (tmp_path / "syn" / "cell.truth.npz").is_file()
    truth = read_truth(table)
    assert truth.lambda_map.shape == (48, 48) and truth.pixel_size_nm == pytest.approx(12_800 / 48)
    out = tmp_path / "res"
    rc, stdout, err = _run(["chromatin", tmp_path / "syn", "--preview", "--out", out, "--json"], capsys)
    assert rc == 0, err
    assert (out / "cell" / "figure.png").is_file()  # with the true map as a fourth panel
    row = json.loads(stdout.strip().splitlines()[-1])["nuclei"][0]
    assert row["input"].endswith("cell.csv.xz") and row["output"].endswith("cell")
    summary = json.loads((out / "cell" / "summary.json").read_text())
    assert summary["shape"] == [48, 48] and summary["pixel_size_nm"] == pytest.approx(truth.pixel_size_nm)
    assert -1 <= summary["pearson"] <= 1 and "pearson_equilibrium_guess" in summary
    assert "Pearson vs truth" in err
    # a pixel size other than the truth's: run, but not scored
    rc, _, err = _run(["chromatin", table, "--preview", "--render-pixel-nm", 150, "--out", tmp_path / "r2", "--no-figures"],
                      capsys)
    assert rc == 0 and "not scored" in err and "--render-pixel-nm 150" in err


def test_compressed_tables_read_like_plain_ones(small_csv, tmp_path):
    import bz2
    import gzip
    import lzma

    from mollifier.imaging import read_localizations

    plain = read_localizations(small_csv).points
    raw = small_csv.read_bytes()
    for suffix, compress in ((".gz", gzip.compress), (".xz", lzma.compress), (".bz2", bz2.compress)):
        path = tmp_path / f"n.csv{suffix}"
        path.write_bytes(compress(raw))
        np.testing.assert_array_equal(read_localizations(path).points, plain)
    corrupt = tmp_path / "c.csv.gz"
    corrupt.write_bytes(b"not gzip at all")
    from mollifier.imaging import ImagingError

    with pytest.raises(ImagingError, match="c.csv.gz"):
        read_localizations(corrupt)


def test_seeds_give_mean_map_and_spread(small_csv, tmp_path, capsys):
    out = tmp_path / "seeds"
    rc, _, err = _run(["chromatin", small_csv, "--seeds", 2, "--steps", 4, "--out", out], capsys)
    assert rc == 0, err
    folder = out / "nucleus"
    spread = np.load(folder / "lambda_std.npy")
    mask = np.load(folder / "mask.npy")
    assert (folder / "lambda_std.tif").is_file() and (folder / "figure.png").is_file()
    assert np.isfinite(spread[mask]).all() and (spread[mask] >= 0).all() and spread[mask].max() > 0
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["training"]["seeds"] == 2 and summary["mode"].endswith("mean of 2 seeds)")
    assert summary["lambda_spread_median"] > 0
    for argv, match in (
        (["--seeds", 0], "--seeds"),
        (["--seeds", 2, "--preview"], "--preview"),
        (["--radius-nm", 0], "--radius-nm"),
    ):
        rc, _, err = _run(["chromatin", small_csv, "--out", tmp_path / "x", *argv], capsys)
        assert rc != 0 and match in err and "Traceback" not in err
    rc, _, err = _run(["chromatin", "--out", tmp_path / "x"], capsys)
    assert rc != 0 and "--sample" in err


def test_cli_help_states_the_pipeline_defaults(capsys):
    from mollifier.chromatin.pipeline import PIXEL_NM, RADIUS_NM, RIM_NM, TRAINING, UNIT_NM

    with pytest.raises(SystemExit):
        main(["chromatin", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for value in (UNIT_NM, RADIUS_NM, RIM_NM, PIXEL_NM, TRAINING["steps"]):
        assert f"default: {value:g}" in text, value


def test_fine_image_is_binned_to_the_working_pixel(tmp_path):
    from mollifier.chromatin.pipeline import load_input
    from mollifier.imaging import write_tiff

    s = synthetic_nucleus(n=48, seed=3, n_emitters=30_000)
    img = s.render(pixel_size_nm=20.0)
    path = write_tiff(tmp_path / "fine.tif", img.astype(np.float32), 20.0)
    inp = load_input(path)
    assert inp.pixel_size_nm == pytest.approx(100.0)
    assert inp.density.sum() == pytest.approx(img.sum(), rel=0.02)
    assert any("blocks of 5x5" in n for n in inp.notes)
    nuclei, _ = locate_nuclei(inp)
    assert len(nuclei) == 1 and nuclei[0].mask.shape == inp.density.shape and nuclei[0].mask.any()


def test_voronoi_density_and_blur_options(small_csv, tmp_path, capsys):
    out = tmp_path / "vor"
    rc, _, err = _run(["chromatin", small_csv, "--preview", "--render", "voronoi", "--blur-nm", 15, "--out", out,
                       "--no-figures"], capsys)
    assert rc == 0, err
    assert "deprecated" not in err
    rc, _, err = _run(["chromatin", small_csv, "--preview", "--density", "voronoi", "--out", tmp_path / "old",
                       "--no-figures"], capsys)
    assert rc == 0 and "--density is deprecated: use --render" in err
    summary = json.loads((out / "nucleus" / "summary.json").read_text())
    assert "density map: Voronoi cell areas" in summary["notes"] and np.isfinite(summary["lambda_median"])
    # a bad flag is refused before any input is read (exit status 2, one line naming the flag)
    rc, _, err = _run(["chromatin", small_csv, "--preview", "--blur-nm", -1, "--out", tmp_path / "neg", "--no-figures"],
                      capsys)
    assert rc == 2 and "--blur-nm" in err and "Traceback" not in err


def test_stack_needs_a_plane_or_projection(tmp_path, capsys):
    stack = np.random.default_rng(0).poisson(5.0, (3, 40, 40)).astype(np.float32)
    stack[:, 10:30, 10:30] += 20
    path = tmp_path / "stack.npy"
    np.save(path, stack)
    rc, _, err = _run(["chromatin", path, "--preview", "--pixel-size-nm", 100, "--out", tmp_path / "a", "--no-figures"],
                      capsys)
    assert rc == 1 and "--slice" in err and "--project" in err
    rc, _, err = _run(["chromatin", path, "--preview", "--pixel-size-nm", 100, "--project", "max", "--out", tmp_path / "b",
                       "--no-figures"], capsys)
    assert rc == 0, err
    summary = json.loads((tmp_path / "b" / "stack" / "summary.json").read_text())
    assert any("max projection" in n for n in summary["notes"])


def test_packaged_sample_is_small_and_has_its_truth():
    from mollifier.chromatin.pipeline import load_input
    from mollifier.chromatin.truth import read_truth, sample_path

    path = sample_path()
    assert path.stat().st_size < 5e6
    truth = read_truth(path)
    assert truth is not None and truth.params["background_fraction"] == 0.05
    assert truth.params["diameter_nm"] == 10_000
    inp = load_input(path, InputOptions(render_pixel_nm=truth.pixel_size_nm, extent_nm=truth.extent_nm))
    assert inp.density.shape == truth.lambda_map.shape
    nuclei, _ = locate_nuclei(inp)
    assert len(nuclei) == 1
    inside = nuclei[0].mask & truth.mask
    assert inside.sum() > 0.9 * truth.mask.sum()  # the automatic mask finds the nucleus


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
