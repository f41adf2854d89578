"""Reading and rendering 2 million localisations stays under 500 MB and 20 s (slow: writes a 107 MB table).

The measurement is the documented command (``python -m mollifier.imaging.bench_render N``),
run in a fresh process so that its peak resident memory is the reader's and renderer's
(plus the interpreter, numpy and torch, ~264 MB), not the table generator's.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_two_million_localisations_stream_in_bounded_memory(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mollifier.imaging.bench_render", "2000000", "--folder", str(tmp_path)],
                         check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["localizations"] == 2_000_000 and result["map_sum"] == 2_000_000
    assert result["peak_rss_mb"] < 500, result
    assert result["seconds"] < 20, result
