"""Turns every video of a corpus into a visual-token sequence with a codebook.

Output folder layout (written atomically, file by file):

```
OUT/
  tokens/<name>.npy    int32 [num_clips]: visual word of each clip (tokens[i] is clip i)
  tokens.jsonl         one line per video: {"video_id", "tokens" (path relative to OUT),
                       "num_clips", "clip_seconds"}
  summary.json         counts, skipped videos, codebook and settings
```

``<name>`` is the video id with characters other than letters, digits, ``-``,
``_`` and ``.`` replaced by ``_`` (plus a short hash when that changed it), so ids
such as ``a/b`` stay unique and stay inside ``tokens/``. Dataset builders call
``assign_video`` directly on a video's features.

Several processes (``python -m videobert_jax.quantize assign`` under
``launch/local.sh --processes N`` or on a pod) share the videos round-robin;
each writes its own token files, and process 0 the index and summary (see
``assign_corpus``). The output folder must be one folder all of them see.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from typing import Callable

import numpy as np

from videobert_jax import fileio
from videobert_jax.corpus import reader
from videobert_jax.quantize.codebook import Codebook

ROWS_PER_CALL = 8192  # clips of several videos are assigned together in one call
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def assign_video(codebook: Codebook, features: np.ndarray, exact: bool = False) -> np.ndarray:
  """Visual words (int32 ``[num_clips]``) of one video's ``[num_clips, D]`` features."""
  features = np.asarray(features)
  if features.ndim != 2 or features.shape[1] != codebook.feature_dim:
    raise ValueError(f"features must be [num_clips, {codebook.feature_dim}] for this "
                     f"codebook, got {features.shape}")
  return codebook.assign(features, exact=exact)


def token_file_name(video_id: str) -> str:
  """A safe, unique file name for a video's token array."""
  name = _UNSAFE.sub("_", video_id)
  if name != video_id or name in (".", ".."):
    name += "-" + hashlib.sha1(video_id.encode("utf-8")).hexdigest()[:8]
  return name + ".npy"


def assign_corpus(corpus_dir: str | os.PathLike, codebook: Codebook,
                  out_dir: str | os.PathLike, exact: bool = False, skip_bad: bool = False,
                  progress: bool = False, process_index: int = 0, process_count: int = 1,
                  barrier: Callable[[], None] | None = None) -> dict | None:
  """Writes the token sequence of every video of ``corpus_dir`` under ``out_dir``.

  Args:
    corpus_dir: the corpus folder (``videos.jsonl`` + features).
    codebook: the fitted codebook.
    out_dir: output folder (layout in the module docstring).
    exact: nearest leaf instead of tree descent.
    skip_bad: skip (and list) bad lines and feature files instead of raising.
    progress: show a tqdm bar over videos.
    process_index, process_count: this process and how many share the work (one
      call on each): video i of the corpus (in index order) goes to process
      i % count, which writes its token files and a part file of its index lines.
    barrier: with several processes, waits until every process got there; then
      process 0 merges the parts into ``tokens.jsonl`` and ``summary.json``, the
      bytes a one-process run writes (``summary.json``'s ``seconds`` aside).

  Returns:
    The summary dict that is also written to ``out_dir/summary.json`` (None on
    processes other than 0 of several).

  Raises:
    reader.CorpusError: naming the file (and line) of the first bad input,
      including features whose dimension differs from the codebook's.
  """
  t0 = time.perf_counter()
  out_dir = os.fspath(out_dir)
  os.makedirs(os.path.join(out_dir, "tokens"), exist_ok=True)
  share = _assign_share(corpus_dir, codebook, out_dir, exact, skip_bad, progress,
                        process_index, process_count)
  if process_count == 1:
    shares = [share]
  else:
    if barrier is None:
      raise ValueError("several processes need a barrier to meet at")
    fileio.write_json(_part_path(out_dir, process_index, process_count), share, indent=None)
    barrier()  # every part is written
    if process_index != 0:
      return None
    shares = [_read_part(out_dir, i, process_count) for i in range(process_count)]
  lines = sorted(line for part in shares for line in part["lines"])
  with fileio.atomic_open(os.path.join(out_dir, "tokens.jsonl"), "w", encoding="utf-8") as f:
    for _, line in lines:
      f.write(line + "\n")
  summary = _summary(corpus_dir, codebook, shares, exact, t0)
  fileio.write_json(os.path.join(out_dir, "summary.json"), summary)
  if process_count > 1:
    for i in range(process_count):
      os.remove(_part_path(out_dir, i, process_count))
  return summary


def _assign_share(corpus_dir, codebook: Codebook, out_dir: str, exact: bool,
                  skip_bad: bool, progress: bool, index: int, count: int) -> dict:
  """Assigns and writes this process's videos; returns its share of the index.

  The share (JSON-ready): ``lines`` and ``skipped`` as ``[videos.jsonl line,
  text]`` pairs (sorted by line they merge into a one-process run's order),
  the word ``histogram`` and the ``clips``. Bad index lines, which every process
  reads, are listed by process 0 only.
  """
  from tqdm.auto import tqdm
  skipped: list[reader.CorpusError] = []
  writer = _TokenWriter(codebook, out_dir, exact)
  videos = reader.iter_videos(corpus_dir, skip_bad=skip_bad, skipped=skipped)
  failed = []
  for position, record in enumerate(tqdm(videos, desc="assign", unit="video",
                                         disable=not progress)):
    if position % count != index:
      continue
    try:
      features = _load_features(record, codebook)
    except reader.CorpusError as e:
      if not skip_bad:
        raise
      failed.append([record.line, str(e)])
      continue
    writer.add(record, features)
  writer.flush()
  listed = [[e.line or 0, str(e)] for e in skipped] if index == 0 else []
  return {"lines": writer.index_lines, "skipped": sorted(listed + failed),
          "histogram": writer.histogram.tolist(), "clips": writer.clips}


def _part_path(out_dir: str, index: int, count: int) -> str:
  """Where process ``index`` of ``count`` leaves its share for process 0."""
  return os.path.join(out_dir, f".assign-part-{index:05d}-of-{count:05d}.json")


def _read_part(out_dir: str, index: int, count: int) -> dict:
  with open(_part_path(out_dir, index, count), encoding="utf-8") as f:
    return json.load(f)


def _load_features(record: reader.VideoRecord, codebook: Codebook) -> np.ndarray:
  """A video's features; a CorpusError naming the file when their size is not the
  codebook's (caught here rather than deep inside a batched ``assign`` call)."""
  features = reader.load_features(record)
  if features.shape[1] != codebook.feature_dim:
    raise reader.CorpusError(
        record.features_path, f"features of video {record.video_id!r} are "
        f"{features.shape[1]}-d, the codebook is {codebook.feature_dim}-d",
        video_id=record.video_id)
  return features


class _TokenWriter:
  """Assigns videos in batches of about ``ROWS_PER_CALL`` clips (one codebook call
  each) and writes every video's token file, keeping its index line and counts."""

  def __init__(self, codebook: Codebook, out_dir: str, exact: bool):
    self.codebook, self.out_dir, self.exact = codebook, out_dir, exact
    self.index_lines: list[list] = []  # [videos.jsonl line, tokens.jsonl line]
    self.histogram = np.zeros(codebook.num_words, np.int64)
    self.clips = 0
    self._pending: list[tuple[reader.VideoRecord, np.ndarray]] = []
    self._pending_rows = 0

  def add(self, record: reader.VideoRecord, features: np.ndarray) -> None:
    """Queues one video; assigns the queue once it holds enough clips."""
    self._pending.append((record, features))
    self._pending_rows += features.shape[0]
    if self._pending_rows >= ROWS_PER_CALL:
      self.flush()

  def flush(self) -> None:
    """Assigns and writes every queued video."""
    if not self._pending:
      return
    tokens = self.codebook.assign(np.concatenate([f for _, f in self._pending]),
                                  exact=self.exact)
    start = 0
    for record, features in self._pending:
      seq = tokens[start:start + features.shape[0]]
      start += features.shape[0]
      name = token_file_name(record.video_id)
      fileio.save_npy(os.path.join(self.out_dir, "tokens", name), seq)
      self.index_lines.append([record.line, json.dumps(
          {"video_id": record.video_id, "tokens": f"tokens/{name}",
           "num_clips": int(seq.shape[0]), "clip_seconds": record.clip_seconds})])
      np.add.at(self.histogram, seq, 1)
      self.clips += int(seq.shape[0])
    self._pending, self._pending_rows = [], 0


def _summary(corpus_dir, codebook: Codebook, shares: list[dict], exact: bool,
             t0: float) -> dict:
  """What ``summary.json`` holds: counts, word usage, skipped inputs and time."""
  histogram = np.sum([np.asarray(part["histogram"], np.int64) for part in shares], axis=0)
  used = histogram > 0
  return {
      "corpus": os.path.abspath(os.fspath(corpus_dir)),
      "videos": sum(len(part["lines"]) for part in shares),
      "clips": sum(part["clips"] for part in shares),
      "method": "exact" if exact else "tree",
      "num_words": codebook.num_words,
      "words_used": int(used.sum()),
      "most_frequent": [[int(i), int(histogram[i])]
                        for i in np.argsort(-histogram, kind="stable")[:10] if used[i]],
      "skipped": [text for _, text in sorted(e for part in shares for e in part["skipped"])],
      "seconds": round(time.perf_counter() - t0, 3),
  }


def read_tokens(out_dir: str | os.PathLike) -> dict[str, np.ndarray]:
  """Loads ``tokens.jsonl`` and every token array of an ``assign_corpus`` folder."""
  out_dir = os.fspath(out_dir)
  result = {}
  with open(os.path.join(out_dir, "tokens.jsonl"), encoding="utf-8") as f:
    for line in f:
      if line.strip():
        entry = json.loads(line)
        result[entry["video_id"]] = np.load(os.path.join(out_dir, entry["tokens"]))
  return result
