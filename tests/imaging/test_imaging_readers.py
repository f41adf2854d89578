"""The reader table: detection by content, every format round-tripped, units, selections, errors."""

from __future__ import annotations

import gzip
import sys

import numpy as np
import pytest

from mollifier.imaging import (
    READERS,
    ImagingError,
    LocalizationTable,
    ReadOptions,
    Selection,
    detect_format,
    open_table,
    read_localizations,
    write_localizations,
)
from mollifier.imaging.table import SelectionCounts, channel_labels, select
from mollifier.imaging.writers import WRITERS

NEEDS_H5 = {"picasso", "decode", "smap"}


def _table(n=200, seed=0, z=False, channels=False):
    rng = np.random.default_rng(seed)
    t = {
        "x_nm": rng.uniform(1000, 9000, n),
        "y_nm": rng.uniform(2000, 8000, n),
        "frame": rng.integers(1, 500, n),
        "precision_nm": rng.uniform(8, 25, n),
        "photons": rng.uniform(100, 3000, n).round(),
    }
    if z:
        t["z_nm"] = rng.uniform(-400, 400, n)
    if channels:
        t["channel"] = np.where(rng.random(n) < 0.7, 647, 561)
    return t


def test_one_row_per_format_in_one_table():
    names = [r.name for r in READERS]
    assert len(names) == len(set(names))
    assert set(WRITERS) == set(names)  # every reader has a writer (tests, synthetic data)
    for r in READERS:
        assert r.suffixes and callable(r.sniff) and callable(r.open) and r.reads and r.extra in (None, "smlm")


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_every_format_round_trips_in_nm(fmt, tmp_path):
    if fmt in NEEDS_H5:
        pytest.importorskip("h5py")
    if fmt == "picasso":
        pytest.importorskip("yaml")
    t = _table(z=fmt in ("nanoimager", "decode", "smap", "shareloc", "csv", "picasso", "thunderstorm"))
    path = write_localizations(tmp_path / f"cells{WRITERS[fmt][0]}", t, fmt, pixel_size_nm=117.0)
    stream = open_table(path)
    assert detect_format(path).name == fmt and stream.format == fmt
    r = stream.read()
    assert len(r) == 200
    # text formats keep 1e-3 nm (rapidSTORM 1e-4, N-STORM 0.1), float32 ones ~1e-3 nm at 1e4 nm
    tol = 0.06 if fmt == "nstorm" else 2e-3
    np.testing.assert_allclose(r.x_nm, t["x_nm"], atol=tol)
    np.testing.assert_allclose(r.y_nm, t["y_nm"], atol=tol)
    if fmt != "rapidstorm":  # frame written by all
        np.testing.assert_array_equal(r.frame, t["frame"])
    if fmt not in ("nanoimager",):
        np.testing.assert_allclose(r.precision_nm, t["precision_nm"], rtol=1e-5, atol=6e-3)
    if "z_nm" in t and fmt not in ("thunderstorm",):
        np.testing.assert_allclose(r.z_nm, t["z_nm"], atol=2e-3)


def test_thunderstorm_both_header_styles(tmp_path):
    t = _table()
    one = write_localizations(tmp_path / "own.csv", t, "thunderstorm", whole_header=True)
    assert one.read_text().splitlines()[0].startswith('"id,""frame"",""x [nm]""')
    fields = write_localizations(tmp_path / "fields.csv", t, "thunderstorm", whole_header=False)
    assert fields.read_text().splitlines()[0].startswith('"id","frame","x [nm]"')
    a, b = read_localizations(one), read_localizations(fields)
    assert a.format == b.format == "thunderstorm" and a.columns_used == b.columns_used
    np.testing.assert_array_equal(a.x_nm, b.x_nm)


def test_nstorm_reads_drift_corrected_columns(tmp_path):
    t = _table(z=True, channels=True)
    path = write_localizations(tmp_path / "nikon.txt", t, "nstorm")
    header = path.read_text().splitlines()[0].split("\t")
    assert header[:5] == ["Channel Name", "X", "Y", "Xc", "Yc"] and "Lateral Localization Accuracy" in header
    r = read_localizations(path)
    assert r.columns_used["x"] == "Xc" and r.columns_used["y"] == "Yc" and r.columns_used["z"] == "Zc"
    assert r.columns_used["channel"] == "Channel Name" and "X" in r.columns_ignored
    np.testing.assert_allclose(r.x_nm, t["x_nm"], atol=0.06)  # the raw X drifts by up to 35 nm
    raw = np.loadtxt(path, delimiter="\t", skiprows=1, usecols=1)
    assert np.abs(raw - t["x_nm"]).max() > 30
    assert sorted(set(channel_labels(r.channel).tolist())) == ["561", "647"]
    named = dict(t, channel=np.where(t["channel"] == 647, "Storm 647", "Storm 561"))
    r = read_localizations(write_localizations(tmp_path / "named.txt", named, "nstorm"))
    assert sorted(set(r.channel.tolist())) == ["Storm 561", "Storm 647"]  # text labels parsed as text
    kept = select(r, Selection.from_flags("Storm 647"), SelectionCounts())
    assert len(kept) == int((t["channel"] == 647).sum())


def test_picasso_pixels_and_precision_rescaled(tmp_path):
    pytest.importorskip("h5py")
    pytest.importorskip("yaml")
    t = _table()
    path = write_localizations(tmp_path / "p_locs.hdf5", t, "picasso", pixel_size_nm=160.0)
    import h5py

    with h5py.File(path) as h:
        raw = h["locs"][()]
    np.testing.assert_allclose(raw["x"], t["x_nm"] / 160, rtol=1e-6)  # stored in camera pixels
    r = read_localizations(path)
    assert r.units["x"] == "px" and r.pixel_size_nm == 160.0
    np.testing.assert_allclose(r.precision_nm, t["precision_nm"], rtol=1e-5)  # lpx, lpy rescaled to nm
    over = read_localizations(path, pixel_size_nm=100.0)
    assert any("overrides" in n for n in over.notes)
    np.testing.assert_allclose(over.x_nm, t["x_nm"] / 160 * 100, rtol=1e-6)


def test_smap_v5_mat_is_read_with_scipy(tmp_path):
    from scipy import io as sio

    t = _table()
    loc = {"xnm": t["x_nm"][None], "ynm": t["y_nm"][None], "frame": t["frame"][None].astype(float),
           "locprecnm": t["precision_nm"][None], "channel": np.zeros((1, 200))}
    sio.savemat(tmp_path / "old.mat", {"saveloc": {"loc": loc}})
    r = read_localizations(tmp_path / "old.mat")
    assert r.format == "smap"
    np.testing.assert_allclose(r.x_nm, t["x_nm"])
    np.testing.assert_array_equal(r.frame, t["frame"])


def test_content_not_the_suffix_picks_the_reader(tmp_path):
    t = _table()
    path = write_localizations(tmp_path / "export.dat", t, "elyra")
    r = read_localizations(path)
    assert r.format == "elyra" and any("although named .dat" in n for n in r.notes)
    assert r.pixel_size_nm == pytest.approx(100.0) and r.pixel_size_source == "Elyra trailer VoxelSizeX"
    gz = tmp_path / "nikon.txt.gz"
    gz.write_bytes(gzip.compress(write_localizations(tmp_path / "n.txt", t, "nstorm").read_bytes()))
    assert read_localizations(gz).format == "nstorm"
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ImagingError, match="readable formats: ShareLoc"):
        read_localizations(junk)


def test_rapidstorm_track_rows_read_the_track(tmp_path):
    xml = ('# <localizations insequence="true" repetitions="variable"><field identifier="Position-0-0" '
           'semantic="position in sample space in X" unit="nanometer" /><field identifier="Position-1-0" '
           'semantic="position in sample space in Y" unit="micrometer" /><field identifier="ImageNumber-0-0" '
           'semantic="frame number" unit="frame" /><localizations><field identifier="Position-0-0" '
           'semantic="position in sample space in X" unit="nanometer" /></localizations></localizations>')
    path = tmp_path / "tracks.txt"
    path.write_text(f"{xml}\n100.5 2.5 3 2 99 98\n200 3 4 1 97\n")
    r = read_localizations(path)
    np.testing.assert_allclose(r.x_nm, [100.5, 200])
    np.testing.assert_allclose(r.y_nm, [2500, 3000])  # micrometre -> nm from the XML unit
    assert r.frame.tolist() == [3, 4] and any("track export" in n for n in r.notes)


def test_pixel_columns_need_a_pixel_size(tmp_path):
    p = tmp_path / "px.csv"
    p.write_text("x [px],y [px],frame\n1,2,0\n3,4,1\n")
    with pytest.raises(ImagingError, match="--pixel-size-nm"):
        read_localizations(p)
    r = read_localizations(p, pixel_size_nm=107.0)
    np.testing.assert_allclose(r.points, [[107, 214], [321, 428]])
    assert r.pixel_size_source == "--pixel-size-nm"
    q = tmp_path / "plain.csv"
    q.write_text("x,y\n1,2\n")
    assert read_localizations(q, unit="um").x_nm[0] == 1000.0


def test_missing_optional_parsers_name_the_extra(tmp_path, monkeypatch):
    pytest.importorskip("h5py")
    path = write_localizations(tmp_path / "d.h5", _table(), "decode", pixel_size_nm=100.0)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"pip install 'mollifier\[smlm\]'"):
        read_localizations(path)


def test_missing_yaml_names_the_extra(tmp_path, monkeypatch):
    pytest.importorskip("h5py")
    pytest.importorskip("yaml")
    path = write_localizations(tmp_path / "p.hdf5", _table(), "picasso", pixel_size_nm=100.0)
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ImportError, match=r"pyyaml.*pip install 'mollifier\[smlm\]'"):
        read_localizations(path)


def test_selection_counts_and_errors(tmp_path):
    t = _table(z=True, channels=True)
    table = LocalizationTable(t["x_nm"], t["y_nm"], z_nm=t["z_nm"], frame=t["frame"], channel=t["channel"],
                              precision_nm=t["precision_nm"], source=tmp_path / "x.csv",
                              columns_used={"x": "x", "y": "y"})
    sel = Selection.from_flags("647", "-100,100", "1,250", 20.0)
    counts = SelectionCounts()
    kept = select(table, sel, counts)
    expect = ((t["channel"] == 647) & (np.abs(t["z_nm"]) <= 100) & (t["frame"] <= 250) & (t["precision_nm"] <= 20))
    assert len(kept) == expect.sum() == counts.kept
    assert counts.channels == {"561": int((t["channel"] == 561).sum()), "647": int((t["channel"] == 647).sum())}
    assert counts.read == 200 and sum(counts.removed.values()) == 200 - expect.sum()
    bare = LocalizationTable(t["x_nm"], t["y_nm"], source=tmp_path / "bare.csv", columns_used={"x": "x", "y": "y"})
    for flags, match in (({"z_range": "0,1"}, "--z-range"), ({"frames": "1,2"}, "--frames"),
                         ({"max_precision_nm": 5.0}, "--max-precision-nm"), ({"channel": "1"}, "--channel")):
        with pytest.raises(ImagingError, match=match):
            select(bare, Selection.from_flags(**flags), SelectionCounts())
    for bad, match in ((("z_range", "5"), "--z-range"), (("frames", "9,1"), "--frames"),
                       (("max_precision_nm", -1.0), "--max-precision-nm")):
        with pytest.raises(ImagingError, match=match):
            Selection.from_flags(**{bad[0]: bad[1]})


def test_read_options_are_checked():
    with pytest.raises(ImagingError, match="--coord-unit"):
        ReadOptions(coord_unit="furlong")
    with pytest.raises(ImagingError, match="--pixel-size-nm"):
        ReadOptions(pixel_size_nm=0)
