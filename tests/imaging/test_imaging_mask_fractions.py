"""Tests for mollifier.imaging.mask and mollifier.imaging.fractions."""

from __future__ import annotations

import numpy as np
import pytest

from mollifier.imaging import (
    ImagingError,
    check_mask,
    find_nucleus_mask,
    fractions_from_density,
    largest_component,
    load_mask,
    nucleus_mask,
    otsu_threshold,
)


def _disk_image(seed=0, n=96):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    disk = (xx - 50) ** 2 + (yy - 45) ** 2 <= 30**2
    img = np.where(disk, 10.0, 2.0) + rng.normal(0, 2.0, (n, n))
    img[5:9, 5:9] = 14.0  # a small bright speck outside the nucleus
    img[40:46, 45:51] = 2.0  # a dark hole inside
    return img, disk


def test_otsu_bimodal():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(0, 1, 5000), rng.normal(10, 1, 5000)])
    assert 3 < otsu_threshold(v) < 7
    with pytest.raises(ImagingError, match="flat"):
        otsu_threshold(np.ones(10))


def test_auto_mask_on_noisy_disk():
    img, disk = _disk_image()
    m = find_nucleus_mask(img, smooth_px=2.0)
    assert m.dtype == bool
    assert not m[5:9, 5:9].any()  # speck removed by largest component
    assert m[40:46, 45:51].all()  # hole filled
    iou = (m & disk).sum() / (m | disk).sum()
    assert iou > 0.95
    lc = largest_component(np.array([[1, 0, 1, 1], [0, 0, 1, 1]]))
    assert lc.sum() == 4


def test_mask_errors(tmp_path):
    with pytest.raises(ImagingError, match="empty"):
        check_mask(np.zeros((5, 5)))
    with pytest.raises(ImagingError, match="whole frame|100.0%"):
        check_mask(np.ones((5, 5)))
    with pytest.raises(ImagingError, match="flat"):
        find_nucleus_mask(np.ones((20, 20)))
    with pytest.raises(ImagingError, match="empty"):
        find_nucleus_mask(np.random.default_rng(0).random((20, 20)), threshold=10.0)
    with pytest.raises(ImagingError, match="covers"):
        find_nucleus_mask(np.random.default_rng(0).random((20, 20)) + 1, threshold=0.0)


def test_mask_from_file(tmp_path):
    img, disk = _disk_image()
    p = tmp_path / "m.npy"
    np.save(p, disk.astype(np.uint8) * 255)
    np.testing.assert_array_equal(load_mask(p, shape=img.shape), disk)
    np.testing.assert_array_equal(nucleus_mask(img, p), disk)
    with pytest.raises(ImagingError, match="shape"):
        load_mask(p, shape=(10, 10))
    np.save(tmp_path / "z.npy", np.zeros((4, 4)))
    with pytest.raises(ImagingError, match="z.npy.*empty"):
        load_mask(tmp_path / "z.npy")


def test_fractions_ranges_and_rule():
    img, disk = _disk_image()
    f = fractions_from_density(img, disk, phi_c=0.8, contrast=0.4)
    inside = f.mask
    assert inside.sum() == disk.sum() and np.isnan(f.phi_h[~disk]).all()
    for name in ("phi_h", "phi_e"):
        a = getattr(f, name)[inside]
        assert a.min() >= 0.5 * 0.8 * 0.6 - 1e-12 and a.max() <= 0.5 * 0.8 * 1.4 + 1e-12
    np.testing.assert_allclose(f.phi_h[inside] + f.phi_e[inside] + f.phi_w[inside], 1.0)
    np.testing.assert_allclose(f.phi_d[inside], f.phi_h[inside] - f.phi_e[inside])
    assert f.rho_norm[inside].min() == 0.0 and f.rho_norm[inside].max() == 1.0
    # monotone in density
    order = np.argsort(img[inside])
    assert np.all(np.diff(f.phi_h[inside][order]) >= -1e-12)
    with pytest.raises(ImagingError, match="contrast"):
        fractions_from_density(img, disk, contrast=1.0)
    with pytest.raises(ImagingError, match="phi_c"):
        fractions_from_density(img, disk, phi_c=1.5)
    with pytest.raises(ImagingError, match="flat"):
        fractions_from_density(np.ones_like(img), disk)
