"""Tests for mollifier.imaging.images."""

from __future__ import annotations

import numpy as np
import pytest

from mollifier.imaging import ImagingError, block_downsample, read_image, reduce_stack, write_tiff

tifffile = pytest.importorskip("tifffile")


def test_tiff_round_trip_pixel_size(tmp_path):
    img = (np.arange(64 * 48).reshape(48, 64) % 4000).astype(np.uint16)
    p = write_tiff(tmp_path / "img.tif", img, pixel_size_nm=16.0)
    d = read_image(p)
    assert d.data.shape == (48, 64) and d.dtype == "uint16"
    np.testing.assert_array_equal(d.data, img)
    assert d.pixel_size_nm == pytest.approx(16.0, rel=1e-6)  # TIFF stores a rational: format precision
    # 8-bit, no calibration
    p8 = tmp_path / "img8.tif"
    tifffile.imwrite(p8, img.astype(np.uint8))
    d8 = read_image(p8)
    assert d8.pixel_size_nm is None and d8.dtype == "uint8"
    # resolution tag in centimetres (non-ImageJ writer): 1e5 px/cm = 100 nm
    pc = tmp_path / "cm.tif"
    tifffile.imwrite(pc, img, resolution=(1e5, 1e5), resolutionunit="CENTIMETER")
    assert read_image(pc).pixel_size_nm == pytest.approx(100.0, rel=1e-4)  # rational tag, unit conversion
    # user-given pixel size wins, with a note
    d = read_image(p, pixel_size_nm=20.0)
    assert d.pixel_size_nm == 20.0 and "overrides" in d.note


def test_stack_error_and_projection(tmp_path):
    stack = np.stack([np.full((8, 8), float(i)) for i in range(5)])
    p = tmp_path / "stack.npy"
    np.save(p, stack)
    with pytest.raises(ImagingError, match=r"--slice.*--project max\|mean"):
        read_image(p)
    assert read_image(p, slice=2).data[0, 0] == 2
    assert read_image(p, project="max").data[0, 0] == 4
    assert read_image(p, project="mean").data[0, 0] == 2
    np.testing.assert_array_equal(reduce_stack(stack, slice=-1), stack[-1])
    with pytest.raises(ImagingError, match="out of range"):
        reduce_stack(stack, slice=5)
    with pytest.raises(ImagingError, match="not both"):
        reduce_stack(stack, slice=0, project="max")
    with pytest.raises(ImagingError, match="project"):
        reduce_stack(stack, project="median")
    pt = write_tiff(tmp_path / "stack.tif", stack.astype(np.float32), pixel_size_nm=10)
    with pytest.raises(ImagingError, match="stack.tif"):
        read_image(pt)
    assert read_image(pt, project="max").data[0, 0] == 4


def test_huge_image_downsampled(tmp_path):
    img = np.ones((3000, 1000))
    img[:, :500] = 3.0
    p = tmp_path / "big.npy"
    np.save(p, img)
    d = read_image(p, pixel_size_nm=10.0)
    assert d.data.shape == (1500, 500)
    assert "block-averaged by 2" in d.note
    assert d.pixel_size_nm == 20.0
    np.testing.assert_allclose(d.data[:, :250], 3.0)
    assert read_image(p, max_side=None).data.shape == (3000, 1000)
    assert block_downsample(np.ones((5, 7)), 2).shape == (3, 4)


def test_png_read(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    rgb = np.zeros((10, 12, 3), dtype=np.uint8)
    rgb[..., 0] = 30
    rgb[..., 1] = 60
    p = tmp_path / "a.png"
    pil.fromarray(rgb).save(p)
    d = read_image(p)
    assert d.data.shape == (10, 12)
    np.testing.assert_allclose(d.data, 30.0)
    assert "grey" in d.note


def test_corrupt_and_unsupported(tmp_path):
    for name in ("bad.tif", "bad.png", "bad.npy"):
        p = tmp_path / name
        p.write_bytes(b"this is not an image at all" * 10)
        with pytest.raises(ImagingError, match=name):
            read_image(p)
    p = tmp_path / "x.bmp"
    p.write_bytes(b"00")
    with pytest.raises(ImagingError, match="unsupported suffix"):
        read_image(p)
    with pytest.raises(ImagingError, match="not found"):
        read_image(tmp_path / "nope.tif")


def test_missing_tifffile_message(tmp_path, monkeypatch):
    p = write_tiff(tmp_path / "a.tif", np.zeros((4, 4), np.uint8))
    monkeypatch.setitem(__import__("sys").modules, "tifffile", None)
    with pytest.raises(ImportError, match=r"pip install 'mollifier\[imaging\]'"):
        read_image(p)


def test_all_nan_image_says_it_holds_no_finite_values(tmp_path):
    p = tmp_path / "nan.npy"
    np.save(p, np.full((32, 32), np.nan))
    with pytest.raises(ImagingError, match="no finite values") as info:
        read_image(p)
    assert "all equal" not in str(info.value)
