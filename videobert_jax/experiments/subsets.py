"""Nested random subsets of a corpus's videos, written as corpora of their own.

Table 2 pretrains on 10, 25, 50 and 100% of the videos. The subsets are nested (each
holds the smaller ones) so that a larger run only adds data: one seeded permutation of
the video ids, of which each subset takes a prefix. A subset corpus is a folder with
its own ``videos.jsonl`` (the chosen lines as written) and symbolic links to the
chosen videos' files, so nothing is copied and every path stays inside the corpus
(``corpus/reader.py`` follows links inside the corpus folder).
"""

from __future__ import annotations

import json
import math
import os
from typing import Sequence

import numpy as np

from videobert_jax import fileio

INDEX = "videos.jsonl"


def nested_subsets(video_ids: Sequence[str], fractions: Sequence[float],
                   seed: int = 0) -> dict[float, list[str]]:
  """``{fraction: ids}``, each a prefix of one seeded permutation (so nested).

  A subset keeps at least 2 videos: one validation video and one to train on.
  """
  for fraction in fractions:
    if not 0 < fraction <= 1:
      raise ValueError(f"subset fraction must be in (0, 1], got {fraction}")
  order = np.random.default_rng(seed).permutation(len(video_ids))
  ranked = [video_ids[i] for i in order]
  return {f: ranked[:max(2, math.ceil(f * len(ranked)))] for f in fractions}


def _index_lines(corpus_dir: str) -> list[tuple[str, dict]]:
  """``(line as written, parsed record)`` of each non-blank ``videos.jsonl`` line."""
  path = os.path.join(corpus_dir, INDEX)
  out = []
  with open(path, encoding="utf-8-sig") as f:
    for line_no, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        out.append((line.rstrip("\n"), json.loads(line)))
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{line_no}: not valid JSON ({e.msg})") from None
  return out


def corpus_video_ids(corpus_dir: str) -> list[str]:
  """The video ids of ``corpus_dir/videos.jsonl``, in file order."""
  return [record["video_id"] for _, record in _index_lines(corpus_dir)]


def write_subset_corpus(corpus_dir: str, video_ids: Sequence[str], out_dir: str) -> str:
  """Writes the corpus of ``video_ids`` into ``out_dir`` (links, not copies).

  Returns ``out_dir``. Rewriting the same subset changes no file (the index keeps
  its mtime, which built datasets check); the index is written last, through a
  temporary name, so a half-written subset never reads as whole.
  """
  corpus_dir, out_dir = os.path.abspath(corpus_dir), os.path.abspath(out_dir)
  wanted = set(video_ids)
  lines = [(text, rec) for text, rec in _index_lines(corpus_dir)
           if rec.get("video_id") in wanted]
  missing = wanted - {rec["video_id"] for _, rec in lines}
  if missing:
    raise ValueError(f"{os.path.join(corpus_dir, INDEX)}: no videos {sorted(missing)[:5]}")
  for _, record in lines:
    for key in ("features", "asr"):
      rel = record.get(key)
      if not rel:
        continue
      if os.path.isabs(rel) or "://" in rel:
        raise ValueError(f"{os.path.join(corpus_dir, INDEX)}: video "
                         f"{record['video_id']}: {key} path {rel!r} is not relative; "
                         "subsets need a corpus whose paths are inside it")
      link = os.path.join(out_dir, rel)
      os.makedirs(os.path.dirname(link), exist_ok=True)
      if not os.path.lexists(link):
        os.symlink(os.path.join(corpus_dir, rel), link)
  index, text = os.path.join(out_dir, INDEX), "".join(t + "\n" for t, _ in lines)
  if not os.path.isfile(index) or _read(index) != text:
    # Only when it changed: TFDS datasets built from the subset stamp its mtime.
    fileio.write_text(index, text)
  return out_dir


def _read(path: str) -> str:
  with open(path, encoding="utf-8") as f:
    return f.read()
