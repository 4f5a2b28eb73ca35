"""What a folder holds, for tests that check a command left it as it was."""

from __future__ import annotations

import os


def file_bytes(root: str | os.PathLike) -> dict[str, bytes]:
  """Relative path -> bytes of every file under ``root``."""
  found = {}
  for folder, _, names in os.walk(root):
    for name in names:
      path = os.path.join(folder, name)
      with open(path, "rb") as f:
        found[os.path.relpath(path, root)] = f.read()
  return found
