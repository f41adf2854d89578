"""The chromatin application's accuracy target, end to end (slow: minutes).

From synthetic localisations of a 10 um nucleus at 5 % background (the generator's
defaults: 10^6 emitters, ~2.1 million localisations, 10-20 nm precision, blinking), the
``mollifier chromatin`` command recovers ``lambda`` with Pearson >= 0.90 inside its own
automatic nucleus mask, within 10 minutes on a 2-core CPU.
"""

from __future__ import annotations

import json
import time

import pytest

from mollifier.chromatin.truth import write_synthetic
from mollifier.cli.main import main

pytestmark = pytest.mark.slow
pytest.importorskip("sklearn")


def test_recovers_lambda_from_synthetic_localisations(tmp_path, capsys):
    table = write_synthetic(tmp_path / "data", "nucleus", seed=0)
    start = time.perf_counter()
    rc = main(["chromatin", str(table), "--out", str(tmp_path / "res"), "--json", "--no-figures"])
    seconds = time.perf_counter() - start
    out, _ = capsys.readouterr()
    assert rc == 0
    row = json.loads(out.strip().splitlines()[-1])["nuclei"][0]
    print(f"Pearson {row['pearson']:.3f} in {seconds:.0f} s")
    assert row["pearson"] >= 0.90
    assert seconds <= 600
