"""Atomic writes leave the old file intact on failure."""

import os

import numpy as np
import pytest

from videobert_jax import fileio


def test_failed_write_keeps_old_content(tmp_path):
  path = tmp_path / "out.json"
  fileio.write_json(path, {"a": 1})
  with pytest.raises(RuntimeError):
    with fileio.atomic_open(path, "w") as f:
      f.write("half")
      raise RuntimeError("crash")
  assert path.read_text().strip().startswith("{")
  assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_save_npy_round_trip(tmp_path):
  x = np.arange(6, dtype=np.float32).reshape(2, 3)
  fileio.save_npy(tmp_path / "x.npy", x)
  np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), x)
  assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
  assert os.path.getsize(tmp_path / "x.npy") > 0


def test_written_files_follow_the_umask(tmp_path):
  old = os.umask(0o022)
  try:
    fileio.write_text(tmp_path / "a.txt", "x")
  finally:
    os.umask(old)
  assert (os.stat(tmp_path / "a.txt").st_mode & 0o777) == 0o644
