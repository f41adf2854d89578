"""Tests for mollifier.imaging.synthetic."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mollifier.imaging import ImagingError, read_localizations, synthetic_nucleus

from tolerances import EPS64


@pytest.fixture(scope="module")
def syn():
    return synthetic_nucleus(n=64, seed=3, n_emitters=60_000)


def test_reproducible(syn):
    again = synthetic_nucleus(n=64, seed=3, n_emitters=60_000)
    for k in syn.table:
        np.testing.assert_array_equal(syn.table[k], again.table[k])
    np.testing.assert_array_equal(syn.lambda_true, again.lambda_true)
    other = synthetic_nucleus(n=64, seed=4, n_emitters=60_000)
    assert not np.array_equal(other.lambda_true, syn.lambda_true)


def test_shapes_and_microscope_model(syn):
    n = 64
    assert syn.lambda_true.shape == syn.phi_h.shape == syn.mask.shape == (n, n)
    np.testing.assert_array_equal(syn.lambda_true, syn.sim["lambda"].T)
    # ~10 um circular nucleus in a 12 um field
    area_um2 = syn.mask.sum() * (syn.pixel_size_nm / 1000) ** 2
    assert abs(area_um2 - np.pi * 25) / (np.pi * 25) < 0.05  # a pixelated disk (discretisation)
    t = syn.table
    N = t["x_nm"].size
    assert all(v.shape == (N,) for v in t.values())
    assert 10 <= t["uncertainty_nm"].min() and t["uncertainty_nm"].max() <= 20
    bg = t["emitter"] == -1
    assert 0.03 < bg.mean() < 0.07
    # blinking: about 2 localisations per emitter
    assert 1.7 < (~bg).sum() / syn.params["n_emitters"] < 2.3
    assert syn.params["n_localizations"] == N


def test_density_correlates_with_phi_h(syn):
    img = syn.render(blur_nm=1.5 * syn.pixel_size_nm)
    m = ndimage.binary_erosion(syn.mask, iterations=3)
    r = np.corrcoef(img[m], syn.phi_h[m])[0, 1]
    assert r > 0.8
    # outside the nucleus only background
    assert img[~syn.mask].mean() < 0.2 * img[m].mean()


def test_write_csv_thunderstorm(syn, tmp_path):
    p = syn.write_csv(tmp_path / "locs.csv")
    header = p.read_text().splitlines()[0]
    assert '"x [nm]"' in header and '"y [nm]"' in header and "emitter" not in header
    t = read_localizations(p)
    assert len(t) == syn.table["x_nm"].size
    # written with "%.3f": within half a unit of the 3rd decimal, plus parsing's rounding
    np.testing.assert_allclose(t.y_nm, syn.table["y_nm"], rtol=0, atol=0.5e-3 + 4 * EPS64 * float(np.abs(t.y_nm).max()))


def test_bad_arguments():
    with pytest.raises(ImagingError, match="diameter_nm"):
        synthetic_nucleus(n=16, diameter_nm=20_000, field_nm=12_000)
    with pytest.raises(ImagingError, match="background_fraction"):
        synthetic_nucleus(n=16, background_fraction=1.0)
