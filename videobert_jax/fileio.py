"""Atomic file writes: a reader never sees a half-written file, a crash loses nothing.

Every command writes its outputs through these helpers: the bytes go to a
temporary file in the destination's folder, which is then renamed over the
destination (``os.replace`` is atomic on POSIX within one file system).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from typing import Any, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[io.IOBase]:
  """Opens a temporary sibling of ``path`` for writing; renames it to ``path`` on success.

  On an exception the temporary file is removed and ``path`` is left as it was.
  """
  if not any(c in mode for c in "wx"):
    raise ValueError(f"atomic_open is for writing, got mode {mode!r}")
  path = os.fspath(path)
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                             suffix=".tmp")
  os.close(fd)
  # mkstemp creates the file 0600; give it the mode a plain open() would (umask).
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(tmp, 0o666 & ~umask)
  try:
    with open(tmp, mode.replace("x", "w"), **kwargs) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)
    raise


def write_text(path: str | os.PathLike, text: str) -> None:
  """Writes ``text`` to ``path`` atomically (UTF-8)."""
  with atomic_open(path, "w", encoding="utf-8") as f:
    f.write(text)


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
  """Writes ``obj`` as JSON to ``path`` atomically."""
  write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
  """Saves one array as ``.npy`` atomically."""
  with atomic_open(path, "wb") as f:
    np.save(f, array, allow_pickle=False)


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
  """Saves named arrays as an uncompressed ``.npz`` atomically."""
  with atomic_open(path, "wb") as f:
    np.savez(f, **arrays)
