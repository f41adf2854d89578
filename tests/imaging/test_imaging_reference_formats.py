"""Every real export in the shared reference folder is read, with numbers established independently.

The folder (``<repo>/../shared/reference/smlm-formats`` or ``$MOLLIFIER_SMLM_FORMATS``) holds
third-party test files (locan, Picasso); CI may not have it, so these tests skip without it.

How the expected values were obtained (not with mollifier's readers):

* ThunderSTORM: Python's ``csv`` module; the one-field header re-split with ``csv`` again.
* rapidSTORM: ``line.split()`` of the lines not starting with ``#``; columns 0, 1, 2.
* Elyra: the bytes before the NUL byte, decoded as latin-1, split on tabs; the trailer's
  ``VoxelSizeX : 0.0970873786 µm`` read by eye.
* Nanoimager, locan's five_blobs_3D: ``csv.DictReader``.
* ShareLoc ``.smlm``: ``zipfile`` + ``json`` for the manifest, ``numpy.frombuffer`` with the
  manifest's packed dtype on ``table-0.bin``.
* DECODE: ``h5py``: ``data/xyz`` (float32) times ``meta.px_size`` = [127, 117].
* SMAP: ``h5py`` on the MATLAB v7.3 file: ``saveloc/loc/xnm`` etc. (shape (1, 4884)).
* Picasso: ``h5py`` on ``locs``; ``x * 130``, 130 being the last ``Pixelsize`` of the YAML
  (``yaml.safe_load_all``; the simulation document's ``Camera.Pixelsize: 160`` is not it).

Coordinates stored as float32 are compared with a relative tolerance of 1e-6 (float32 has
24 bits, 6e-8 relative; the hand values were computed in float32 or float64).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mollifier.imaging import ImagingError, open_table, read_localizations

ROOT = Path(__file__).resolve().parents[2]
FOLDER = Path(os.environ.get("MOLLIFIER_SMLM_FORMATS", ROOT.parent / "shared" / "reference" / "smlm-formats"))
if not FOLDER.is_dir():  # the worktree layout: <repo>/../.. holds shared/
    FOLDER = ROOT.parent.parent / "shared" / "reference" / "smlm-formats"
pytestmark = pytest.mark.skipif(not FOLDER.is_dir(), reason=f"reference SMLM files not found at {FOLDER}")

# file -> expected (format, count, x range nm, y range nm, extras)
REFERENCE = {
    "locan/Thunderstorm_dstorm_data.csv": ("thunderstorm", 19, (1320.109670647555, 16566.236730253124),
                                           (1432.207986370976, 27944.91738995301),
                                           {"frames": (2001, 2001), "precision_min": 7.554495700761125}),
    "locan/rapidSTORM_dstorm_data.txt": ("rapidstorm", 14, (3995.59, 32716.1), (1303.61, 26751.7), {"frames": (0, 0)}),
    "locan/rapidSTORM_dstorm_track_data.txt": ("rapidstorm", 14, (74.174, 7427.42), (700.459, 8439.85),
                                               {"frames": (1, 247)}),
    "locan/Elyra_dstorm_data.txt": ("elyra", 15, (5369.8, 29981.8), (6580.0, 30480.8),
                                    {"precision": (8.6, 32.9), "channels": {"1": 15}, "pixel": 97.0873786}),
    "locan/Nanoimager_dstorm_data.csv": ("nanoimager", 14, (3237.638672, 47927.308594), (3575.894531, 70050.382813),
                                         {"channels": {"0": 9, "1": 5}, "z": (0.0, 0.0)}),
    "locan/five_blobs_3D.txt": ("csv", 50, (119.0, 900.0), (172.0, 805.0), {"z": (146.0, 995.0), "frames": (0, 1)}),
    "locan/SMLM_dstorm_data.smlm": ("shareloc", 10, (1653.3399658203125, 14215.5), (5597.8798828125, 18577.30078125),
                                    {"frames": (0, 0)}),
    "locan/decode_dstorm_data.h5": ("decode", 96, (-76.13751220703125, 215.8079071044922),
                                    (16146.0302734375, 16379.1982421875),
                                    {"z": (-934.6268310546875, 887.2019653320312), "frames": (294, 19552),
                                     "pixel": 127.0, "first_x": -18.949453130364418, "first_precision": 35.70922474785219}),
    "locan/smap_dstorm_data.mat": ("smap", 4884, (333.8673400878906, 26891.12109375), (420.364013671875, 26215.875),
                                   {"z": (-2300.0, 2500.0), "frames": (1, 1001), "channels": {"0": 4884}, "pixel": 104.0}),
    "picasso/testdata_locs.hdf5": ("picasso", 564, (695.27294921875, 3335.8896484375), (681.409912109375, 3342.538330078125),
                                   {"frames": (11, 990), "pixel": 130.0, "first_x": 730.3435373306274,
                                    "first_precision": 2.3483353535751834}),
    "picasso/raw_movie_locs.hdf5": ("picasso", 2399, (1100.2177734375, 3339.220703125),
                                    (982.3397216796875, 3046.663330078125), {"frames": (2, 4979), "pixel": 130.0}),
}
_NOT_TABLES = {"README.md", "LICENSE.md", "LICENSE.txt"}


def test_every_reference_file_has_expected_values():
    """A file added to the folder must get its independently established numbers here."""
    files = {str(p.relative_to(FOLDER)) for p in FOLDER.rglob("*") if p.is_file() and p.name not in _NOT_TABLES
             and p.suffix != ".yaml"}
    assert files == set(REFERENCE), sorted(files ^ set(REFERENCE))


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_file_is_read_in_nm(name):
    if Path(name).suffix in (".h5", ".hdf5", ".mat"):
        pytest.importorskip("h5py")
    if name.startswith("picasso"):
        pytest.importorskip("yaml")
    fmt, count, xr, yr, extra = REFERENCE[name]
    t = read_localizations(FOLDER / name)
    assert t.format == fmt
    assert len(t) == count
    np.testing.assert_allclose([t.x_nm.min(), t.x_nm.max()], xr, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose([t.y_nm.min(), t.y_nm.max()], yr, rtol=1e-6, atol=1e-6)
    # the unit the file's coordinates are in (px: converted with the file's pixel size)
    assert t.units["x"] == t.units["y"] == ("px" if fmt in ("picasso", "decode") else "nm")
    assert t.columns_used["x"] and t.columns_used["y"]
    if "frames" in extra:
        assert (int(t.frame.min()), int(t.frame.max())) == extra["frames"]
    if "z" in extra:
        np.testing.assert_allclose([t.z_nm.min(), t.z_nm.max()], extra["z"], rtol=1e-6)
    else:
        assert t.z_nm is None
    if "precision" in extra:
        np.testing.assert_allclose([t.precision_nm.min(), t.precision_nm.max()], extra["precision"])
    if "precision_min" in extra:
        assert t.precision_nm.min() == pytest.approx(extra["precision_min"])
    if "channels" in extra:
        from mollifier.imaging.table import channel_labels

        labels, counts = np.unique(channel_labels(t.channel), return_counts=True)
        assert dict(zip(labels.tolist(), counts.tolist())) == extra["channels"]
    if "pixel" in extra:
        assert t.pixel_size_nm == pytest.approx(extra["pixel"], rel=1e-6) and t.pixel_size_source
    if "first_x" in extra:
        assert t.x_nm[0] == pytest.approx(extra["first_x"], rel=1e-6)
        assert t.precision_nm[0] == pytest.approx(extra["first_precision"], rel=1e-5)


def test_units_and_left_out_columns_are_reported():
    pytest.importorskip("h5py")
    pytest.importorskip("yaml")
    t = read_localizations(FOLDER / "picasso/testdata_locs.hdf5")
    assert t.units["x"] == "px" and t.pixel_size_source.startswith("Picasso YAML Pixelsize")
    assert "sx" in t.columns_ignored and t.columns_used["precision"] == "lpx, lpy"
    e = read_localizations(FOLDER / "locan/Elyra_dstorm_data.txt")
    assert "Z Slice" in e.columns_ignored and any("plane index" in n for n in e.notes)
    r = read_localizations(FOLDER / "locan/rapidSTORM_dstorm_track_data.txt")
    assert any("track export" in n for n in r.notes)


def test_picasso_without_its_sidecar_needs_the_pixel_size(tmp_path):
    pytest.importorskip("h5py")
    lone = tmp_path / "locs.hdf5"
    lone.write_bytes((FOLDER / "picasso/testdata_locs.hdf5").read_bytes())
    with pytest.raises(ImagingError, match=r"--pixel-size-nm.*") as info:
        read_localizations(lone)
    assert "sidecar" in str(info.value)
    t = read_localizations(lone, pixel_size_nm=100.0)
    assert t.pixel_size_source == "--pixel-size-nm"
    assert t.x_nm.min() == pytest.approx(695.27294921875 / 130 * 100, rel=1e-6)


def test_streamed_chunks_equal_the_whole_table():
    pytest.importorskip("h5py")
    for name in ("locan/smap_dstorm_data.mat", "locan/Thunderstorm_dstorm_data.csv"):
        stream = open_table(FOLDER / name)
        chunks = list(stream.chunks(7))
        whole = read_localizations(FOLDER / name)
        assert len(chunks) == -(-len(whole) // 7)
        np.testing.assert_array_equal(np.concatenate([c.x_nm for c in chunks]), whole.x_nm)
