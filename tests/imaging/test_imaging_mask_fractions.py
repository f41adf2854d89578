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

from tolerances import EPS64


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


def test_fractions_rule_ranges_and_background():
    img, disk = _disk_image()
    f = fractions_from_density(img, disk, phi_c=0.8, share=0.5)
    inside = f.mask
    assert inside.sum() == disk.sum() and np.isnan(f.phi_h[~disk]).all()
    # background = median outside the (dilated) disk, ~2 in this image (speck ignored)
    assert abs(f.params["background"] - 2.0) < 0.2
    h = f.phi_h[inside]
    # np.clip returns the bounds clip * phi_c and (1 - clip) * phi_c themselves; the test
    # writes them as other products of the same numbers: an ulp (< eps, values < 1) apart
    assert h.min() >= 0.02 * 0.8 - EPS64 and h.max() <= 0.98 * 0.8 + EPS64
    # The mean share holds where nothing is clipped: phi_h = share phi_c signal / mean(signal)
    # rounds 3 times per pixel, and the two means over n pixels (positive terms) n times
    # each, relative to 0.4.
    if f.params["clipped_fraction"] == 0:
        assert abs(h.mean() - 0.4) <= (2 * h.size + 6) * EPS64 * 0.4
    # phi_e = phi_c - phi_h, phi_w = 1 - phi_c (one rounding each), the sum two more
    np.testing.assert_allclose(f.phi_h[inside] + f.phi_e[inside] + f.phi_w[inside], 1.0, rtol=0, atol=4 * EPS64)
    # phi_d is computed as phi_h - phi_e, the same operation on the same values
    np.testing.assert_array_equal(f.phi_d[inside], f.phi_h[inside] - f.phi_e[inside])
    # Monotone in density, exactly: subtracting the background, clipping, and scaling by a
    # positive number are monotone operations in IEEE arithmetic (rounding is monotone).
    order = np.argsort(img[inside], kind="stable")
    assert np.all(np.diff(h[order]) >= 0)


def test_fractions_proportional_to_background_free_density():
    rng = np.random.default_rng(1)
    phi_h = 0.4 + 0.08 * rng.standard_normal((40, 40)).clip(-3, 3)
    mask = np.zeros((60, 60), dtype=bool)
    mask[10:50, 10:50] = True
    density = np.full((60, 60), 7.0)  # background
    density[mask] += 100.0 * phi_h.ravel()
    f = fractions_from_density(density, mask, phi_c=0.8, share=float(phi_h.mean() / 0.8))
    assert f.params["background"] == 7.0 and f.params["clipped_fraction"] == 0.0
    # density = 7 + 100 phi_h rounds by eps (7 + 100 phi_h), i.e. <= eps (1 + 7 / (100 min phi_h))
    # relative to the signal 100 phi_h (after the exact-enough subtraction of 7: one more
    # rounding); phi_h = share phi_c signal / mean(signal) with share itself a mean: two
    # sums over n pixels and a few products, each relative.
    n = int(mask.sum())
    rtol = (2 * n + 16) * EPS64 * (1 + 7 / (100 * float(phi_h.min())))
    np.testing.assert_allclose(f.phi_h[mask], phi_h.ravel(), rtol=rtol)
    # without subtracting the background the map would be compressed towards the mean
    g = fractions_from_density(density, mask, phi_c=0.8, share=float(phi_h.mean() / 0.8), background=0.0)
    assert np.std(g.phi_h[mask]) < 0.95 * np.std(phi_h)


def test_fractions_clip_and_errors():
    img, disk = _disk_image()
    spiky = img.copy()
    spiky[45, 50] = 1e4
    f = fractions_from_density(spiky, disk)
    assert f.params["clipped_fraction"] > 0 and np.nanmax(f.phi_h) == pytest.approx(0.98 * 0.8)
    assert np.nanmin(f.phi_e) > 0
    full = fractions_from_density(img, np.ones_like(disk))
    assert full.params["background"] == 0.0 and "no frame outside" in full.params["background_estimate"]
    with pytest.raises(ImagingError, match="share"):
        fractions_from_density(img, disk, share=1.0)
    with pytest.raises(ImagingError, match="phi_c"):
        fractions_from_density(img, disk, phi_c=1.5)
    with pytest.raises(ImagingError, match="clip"):
        fractions_from_density(img, disk, clip=0.6)
    with pytest.raises(ImagingError, match="no denser than the background"):
        fractions_from_density(np.ones_like(img), disk)
    with pytest.raises(ImagingError, match="mask is empty"):
        fractions_from_density(img, np.zeros_like(disk))


def test_find_nuclei_returns_every_nucleus_largest_first():
    from mollifier.imaging import find_nuclei

    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:80, :160]
    big = (xx - 40) ** 2 + (yy - 40) ** 2 <= 25**2
    small = (xx - 120) ** 2 + (yy - 40) ** 2 <= 18**2
    speck = (xx - 150) ** 2 + (yy - 72) ** 2 <= 5**2
    img = 1.0 + 10 * (big | small | speck) + rng.normal(0, 1, xx.shape)
    masks, notes = find_nuclei(img)
    assert len(masks) == 2
    assert (masks[0] & big).sum() > 0.9 * big.sum() and (masks[1] & small).sum() > 0.9 * small.sum()
    assert masks[0].sum() > masks[1].sum()
    assert any("left out" in n for n in notes)  # the speck is named, not silently dropped


def test_roi_polygon_parsing_and_rasterising(tmp_path):
    from mollifier.imaging import parse_roi, polygon_mask

    square = parse_roi("100,100 900,100 900,900 100,900")
    m = polygon_mask(square, (10, 10), (0, 1000, 0, 1000))
    assert m[1:9, 1:9].all() and m.sum() == 64  # pixel centres 150..850 inside
    (tmp_path / "roi.json").write_text('{"polygon": [[100, 100], [900, 100], [900, 900], [100, 900]]}')
    np.testing.assert_array_equal(parse_roi(tmp_path / "roi.json"), square)
    (tmp_path / "roi.csv").write_text("x,y\n100,100\n900,100\n900,900\n100,900\n")
    np.testing.assert_array_equal(parse_roi(str(tmp_path / "roi.csv")), square)
    for bad in ("1,2 3,4", "a,b c,d e,f", "1,2,3 4,5 6,7"):
        with pytest.raises(ImagingError, match="--roi"):
            parse_roi(bad)
    with pytest.raises(ImagingError, match="covers no pixel"):
        polygon_mask(parse_roi("5000,5000 6000,5000 6000,6000"), (10, 10), (0, 1000, 0, 1000))
