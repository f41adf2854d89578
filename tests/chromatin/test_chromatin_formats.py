"""One synthetic nucleus written in every format gives the same lambda map through ``mollifier chromatin``.

Each copy carries the truth sidecar, so all are rendered on the truth's grid; the
network-free ``--preview`` estimate is deterministic, so the maps may differ only where a
format rounds a coordinate across a pixel edge (text formats keep 1e-3 nm, N-STORM 0.1 nm,
float32 formats ~1e-3 nm at 10^4 nm): a handful of the ~84 000 localisations, far below
Pearson 0.999.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from mollifier.chromatin.truth import truth_path, write_synthetic
from mollifier.cli.main import main
from mollifier.imaging import read_localizations, write_localizations
from mollifier.imaging.writers import WRITERS

pytest.importorskip("sklearn")


def test_every_format_gives_the_same_map(tmp_path, capsys):
    import importlib.util

    h5 = importlib.util.find_spec("h5py") is not None and importlib.util.find_spec("yaml") is not None
    source = write_synthetic(tmp_path / "src", "nucleus", n=48, seed=3, n_emitters=40_000)
    table = read_localizations(source)
    folder = tmp_path / "formats"
    folder.mkdir()
    names = {}
    for fmt, (suffix, _) in sorted(WRITERS.items()):
        if fmt in ("picasso", "decode", "smap") and not h5:
            continue
        path = write_localizations(folder / f"cell_{fmt}{suffix}", table, fmt, pixel_size_nm=117.0)
        shutil.copy(truth_path(source), truth_path(path))
        names[fmt] = path
    out = tmp_path / "res"
    rc = main(["chromatin", str(folder), "--preview", "--no-figures", "--out", str(out), "--json"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0, report
    assert report["n_ok"] == len(names) == report["n_inputs"]
    rows = {r["format"]: r for r in report["nuclei"]}
    assert set(rows) == set(names)
    assert len({r["localizations"] for r in rows.values()}) == 1  # every reader found every localisation
    reference = np.load(out / "cell_thunderstorm" / "lambda.npy")
    inside = np.isfinite(reference)
    for fmt in names:
        lam = np.load(out / f"cell_{fmt}" / "lambda.npy")
        assert np.array_equal(np.isfinite(lam), inside), fmt
        r = np.corrcoef(lam[inside], reference[inside])[0, 1]
        assert r >= 0.999, (fmt, r)
        assert rows[fmt]["pearson"] == pytest.approx(rows["thunderstorm"]["pearson"], abs=2e-3)
