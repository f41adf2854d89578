"""Atomic writes keep the old file on failure and give normal permissions."""

from __future__ import annotations

import os

import pytest

from mollifier.runtime.files import atomic_write, write_json


def test_atomic_write_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o644


def test_atomic_write_failure_keeps_old_version(tmp_path):
    path = tmp_path / "b.bin"
    atomic_write(path, lambda h: h.write(b"old"))

    def broken(h):
        h.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_bytes() == b"old"
    assert not list(tmp_path.glob(".*.tmp"))
