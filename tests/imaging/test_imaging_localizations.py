"""Tests for mollifier.imaging.localizations."""

from __future__ import annotations

import numpy as np
import pytest

from mollifier.imaging import ImagingError, density_map, detect_coordinate_columns, read_localizations, write_csv

from tolerances import EPS64, sum_rounding_bound


@pytest.mark.parametrize(
    "header, unit",
    [
        (['"id"', '"frame"', '"x [nm]"', '"y [nm]"', '"uncertainty [nm]"'], "nm"),
        (["frame", "x_nm", "y_nm"], "nm"),
        (["x (nm)", "y (nm)", "photons"], "nm"),
        (["xnm", "ynm"], "nm"),
        (["X", "Y", "Z"], None),
        (["x [um]", "y [µm]"], "um"),
        (["position_x", "position_y"], None),
    ],
)
def test_detect_columns(header, unit):
    (ix, ux), (iy, uy) = detect_coordinate_columns(header)
    assert header[ix].strip('"').lower().replace("position_", "").startswith("x")
    assert header[iy].strip('"').lower().replace("position_", "").startswith("y")
    if unit == "um":
        assert ux in ("um", "µm") and uy in ("um", "µm")
    else:
        assert ux == unit and uy == unit


def test_detect_prefers_nm_over_px():
    (ix, ux), _ = detect_coordinate_columns(["x [px]", "x [nm]", "y [nm]"])
    assert ix == 1 and ux == "nm"


def test_unknown_columns_error_lists_columns():
    with pytest.raises(ImagingError, match=r"columns found.*'foo'.*x_col"):
        detect_coordinate_columns(["foo", "bar", "x_uncertainty"])


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_read_styles_and_units(tmp_path):
    p = _write(tmp_path / "a.csv", '"id","frame","x [nm]","y [nm]"\n1,1,10.5,20\n2,1,30,40\n')
    t = read_localizations(p)
    np.testing.assert_allclose(t.points, [[10.5, 20], [30, 40]])
    assert t.frame.tolist() == [1, 1]
    p = _write(tmp_path / "b.tsv", "x (um)\ty (um)\n1\t2\n")
    np.testing.assert_allclose(read_localizations(p).points, [[1000, 2000]])
    p = _write(tmp_path / "c.txt", "# comment\nx y\n1 2\n3 4\n")
    t = read_localizations(p)
    assert any("assumed nm" in n for n in t.notes)
    t = read_localizations(p, unit="px", pixel_size_nm=100)
    np.testing.assert_allclose(t.points, [[100, 200], [300, 400]])
    p = _write(tmp_path / "d.csv", "a;b;c\n1;2;3\n")
    t = read_localizations(p, x_col="b", y_col="C")
    np.testing.assert_allclose(t.points, [[2, 3]])


def test_read_errors(tmp_path):
    with pytest.raises(ImagingError, match="not found"):
        read_localizations(tmp_path / "missing.csv")
    p = _write(tmp_path / "u.csv", "alpha,beta\n1,2\n")
    with pytest.raises(ImagingError, match=r"\['alpha', 'beta'\]"):
        read_localizations(p)
    with pytest.raises(ImagingError, match="x_col='gamma'"):
        read_localizations(p, x_col="gamma", y_col="beta")
    p = _write(tmp_path / "px.csv", "x [px],y [px]\n1,2\n")
    with pytest.raises(ImagingError, match="pixel_size_nm"):
        read_localizations(p)
    p = _write(tmp_path / "bad.csv", "x_nm,y_nm\n1,abc\n")
    with pytest.raises(ImagingError, match="bad.csv"):
        read_localizations(p)
    p = _write(tmp_path / "empty.csv", "x_nm,y_nm\n")
    with pytest.raises(ImagingError, match="no rows"):
        read_localizations(p)


def test_write_csv_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    table = {"x_nm": rng.random(50) * 1e4, "y_nm": rng.random(50) * 1e4, "frame": np.arange(50), "uncertainty_nm": np.full(50, 12.0)}
    p = write_csv(tmp_path / "ts.csv", table)
    assert p.read_text().splitlines()[0] == '"id","frame","x [nm]","y [nm]","uncertainty [nm]"'
    t = read_localizations(p)
    # written with "%.3f": within half a unit of the 3rd decimal, plus parsing's rounding
    np.testing.assert_allclose(t.x_nm, table["x_nm"], rtol=0, atol=0.5e-3 + 4 * EPS64 * 1e4)
    np.testing.assert_allclose(t.uncertainty_nm, 12.0)


def test_density_map_conserves_counts():
    rng = np.random.default_rng(1)
    pts = rng.normal(5000, 800, size=(10_000, 2))
    img, ext = density_map(pts, 50.0, return_extent=True)
    assert img.sum() == pts.shape[0]
    # the grid is aligned to whole multiples of the pixel (chunked and whole renders agree)
    assert ext[0] % 50 == 0 and ext[0] <= pts[:, 0].min() < ext[0] + 50 and ext[1] > pts[:, 0].max()
    blurred = density_map(pts, 50.0, blur_nm=15.0)
    assert blurred.shape == img.shape
    # A normalised symmetric kernel with mode="reflect" conserves mass exactly (the
    # samples a shift j repeats at one edge, the shift -j omits there, with the same
    # weight); what is left is rounding: the weights sum to 1 within a few eps, each
    # output sums 2 r + 1 products, the total sums the image: (size + 8) eps of the mass.
    assert abs(blurred.sum() - pts.shape[0]) <= sum_rounding_bound(blurred.size + 8, pts.shape[0], EPS64)
    # explicit extent: points outside are dropped, orientation is [iy, ix]
    img = density_map(np.array([[10.0, 90.0], [500.0, 0.0]]), 10.0, extent=(0, 100, 0, 100))
    assert img.shape == (10, 10) and img.sum() == 1 and img[9, 1] == 1


def test_density_map_voronoi():
    rng = np.random.default_rng(2)
    # denser on the right half
    left = rng.random((1000, 2)) * [500, 1000]
    right = rng.random((3000, 2)) * [500, 1000] + [500, 0]
    img = density_map(np.vstack([left, right]), 50.0, extent=(0, 1000, 0, 1000), method="voronoi")
    inner = img[4:16]
    assert inner[:, 12:18].mean() > 2 * inner[:, 2:8].mean()
    # localisations per pixel: about 3000 / 200 pixels on the right
    assert 8 < np.median(inner[:, 12:18]) < 25
    with pytest.raises(ImagingError, match="method"):
        density_map(left, 50.0, method="kde")


def test_density_map_bad_args():
    with pytest.raises(ImagingError, match="pixel_size_nm"):
        density_map(np.zeros((3, 2)), 0.0)
    with pytest.raises(ImagingError, match="points_nm"):
        density_map(np.zeros((3, 3)), 10.0)


def test_chunked_render_equals_whole_render():
    from mollifier.imaging import DensityAccumulator

    rng = np.random.default_rng(3)
    pts = rng.normal(5000, 900, size=(50_000, 2))
    whole, ext = density_map(pts, 40.0, return_extent=True)
    acc = DensityAccumulator(40.0)
    for start in range(0, len(pts), 7_000):  # chunks extend the grid left, right, up and down
        acc.add(pts[start:start + 7_000, 0], pts[start:start + 7_000, 1])
    chunked, ext2 = acc.image()
    assert ext2 == ext
    np.testing.assert_array_equal(chunked, whole)


def test_precision_render_blurs_each_localisation_by_its_own_precision():
    from scipy.special import ndtr

    # one localisation at a pixel centre with sigma = half a pixel: mass per pixel is a
    # product of normal-CDF differences, (Phi(1) - Phi(-1)) = 0.6827 in the centre per axis
    img = density_map(np.array([[125.0, 125.0]]), 50.0, extent=(0, 250, 0, 250), method="precision",
                      precision_nm=np.array([25.0]))
    centre = (ndtr(1.0) - ndtr(-1.0))
    assert img.sum() == pytest.approx(1.0, abs=1e-12)  # counts are conserved
    assert img[2, 2] == pytest.approx(centre**2 / (ndtr(4) - ndtr(-4)) ** 2, rel=1e-3)
    assert img[2, 1] == pytest.approx(img[1, 2]) and img[2, 1] == pytest.approx(img[3, 2])
    # vanishing precision = the histogram
    rng = np.random.default_rng(4)
    pts = rng.uniform(0, 1000, size=(2000, 2))
    sharp = density_map(pts, 50.0, extent=(0, 1000, 0, 1000), method="precision", precision_nm=np.full(2000, 1e-6))
    np.testing.assert_allclose(sharp, density_map(pts, 50.0, extent=(0, 1000, 0, 1000)))
    with pytest.raises(ImagingError, match="precision"):
        density_map(pts, 50.0, method="precision")
