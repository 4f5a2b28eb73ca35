"""Evaluation video ids: the videos that must never enter a pretraining set.

By default these are the YouCook II ids of the official trainval annotation file,
shipped as the package resource ``videobert_jax/resources/youcook2_ids.txt``
(regenerate with ``data/make_youcook2_ids.py``). A user may pass their own list
instead: a text file with one id per line (``#`` starts a comment), a YouCook
II-style annotation ``.json`` (the keys of its "database"), or a Python sequence.
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterable

from videobert_jax.corpus.reader import CorpusError

RESOURCE_NAME = "youcook2_ids.txt"


def default_path() -> str:
  """Path of the packaged YouCook II id list."""
  return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "resources", RESOURCE_NAME)


def read_id_file(path: str) -> list[str]:
  """Ids of a text file (one per line) or an annotation ``.json``; raises CorpusError."""
  if not os.path.isfile(path):
    raise CorpusError(path, "evaluation id list is missing")
  if path.lower().endswith(".json"):
    from videobert_jax.corpus import youcook  # pylint: disable=import-outside-toplevel
    return youcook.video_ids(path)
  ids = []
  with open(path, encoding="utf-8") as f:
    for text in f:
      text = text.split("#", 1)[0].strip()
      if text:
        ids.append(text)
  return ids


def load(spec: str | Iterable[str] | None = None) -> frozenset[str]:
  """The evaluation ids for ``spec``: None = packaged YouCook II list, a path, or ids.

  An empty string or empty sequence means "exclude nothing".
  """
  if spec is None:
    return frozenset(read_id_file(default_path()))
  if isinstance(spec, (str, os.PathLike)):
    spec = os.fspath(spec)
    return frozenset(read_id_file(spec)) if spec else frozenset()
  return frozenset(str(i) for i in spec)


def fingerprint(ids: Iterable[str]) -> str:
  """A short digest of an id set, stored with a built dataset to detect a change."""
  digest = hashlib.sha1("\n".join(sorted(ids)).encode("utf-8")).hexdigest()
  return digest[:16]
