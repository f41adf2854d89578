"""Test-suite setup shared by every folder.

- Puts ``tests/`` on ``sys.path`` so that any test module can ``import tolerances`` (the
  rounding bounds every floating-point tolerance is derived from), whatever the rootdir
  or import mode.
- Isolates the global torch state per test: each test starts from the same RNG state
  (so a test's random data does not depend on which tests ran before it, e.g. under
  ``pytest-randomly``), and a test that changes the default dtype, the number of
  threads or the grad mode cannot leak it into the next one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

SEED = 20240611
"""Seed of torch's global RNG at the start of every test (any fixed value would do)."""


@pytest.fixture(autouse=True)
def _isolated_torch_state():
    dtype, threads, grad = torch.get_default_dtype(), torch.get_num_threads(), torch.is_grad_enabled()
    torch.manual_seed(SEED)
    yield
    torch.set_grad_enabled(grad)
    torch.set_default_dtype(dtype)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
