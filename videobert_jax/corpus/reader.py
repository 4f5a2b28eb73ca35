"""Streaming reader of a corpus folder (``videos.jsonl`` + features + transcripts).

Every later stage reads the corpus through this module. It never loads the whole
corpus: ``iter_videos`` parses one ``videos.jsonl`` line at a time and features are
memory-mapped on demand by ``load_features``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Iterator

import numpy as np

INDEX_NAME = "videos.jsonl"
DEFAULT_CLIP_SECONDS = 1.5  # 30 frames at 20 fps, as in the paper
TRANSCRIPT_SUFFIXES = (".json", ".vtt", ".srt")
KNOWN_FIELDS = ("video_id", "features", "clip_seconds", "asr", "language")


class CorpusError(ValueError):
  """A problem with one file (and line) of a corpus; ``str()`` is one readable line."""

  def __init__(self, path: str, message: str, line: int | None = None,
               video_id: str | None = None):
    self.path = path
    self.line = line
    self.video_id = video_id
    self.message = message
    where = f"{path}:{line}" if line is not None else path
    super().__init__(f"{where}: {message}")


@dataclasses.dataclass(frozen=True)
class VideoRecord:
  """One line of ``videos.jsonl``, with paths resolved against the corpus folder."""

  video_id: str  # unique id
  features_path: str  # absolute path of the [num_clips, feature_dim] .npy
  clip_seconds: float = DEFAULT_CLIP_SECONDS  # row i covers [i*c, (i+1)*c) seconds
  asr_path: str | None = None  # absolute path of a .json/.vtt/.srt transcript
  language: str | None = None  # language of the ASR, e.g. "en"
  line: int = 0  # 1-based line number in videos.jsonl (for error messages)
  index_path: str = ""  # the videos.jsonl this came from

  @property
  def is_english(self) -> bool:
    """True when the ASR is English (a missing language counts as English)."""
    return self.language is None or self.language.lower().split("-")[0] == "en"

  def clip_span(self, index: int) -> tuple[float, float]:
    """Start and end seconds of clip ``index``."""
    return index * self.clip_seconds, (index + 1) * self.clip_seconds


def index_path(corpus_dir: str | os.PathLike) -> str:
  """The ``videos.jsonl`` of a corpus folder."""
  return os.path.join(os.fspath(corpus_dir), INDEX_NAME)


def parse_line(text: str, line: int, corpus_dir: str, path: str) -> VideoRecord:
  """Parses one ``videos.jsonl`` line; raises CorpusError naming the file and line."""
  try:
    obj = json.loads(text)
  except json.JSONDecodeError as e:
    raise CorpusError(path, f"not valid JSON ({e.msg} at column {e.colno})", line) from None
  if not isinstance(obj, dict):
    raise CorpusError(path, f"expected a JSON object, got {type(obj).__name__}", line)
  video_id = obj.get("video_id")
  if not isinstance(video_id, str) or not video_id:
    raise CorpusError(path, "missing or empty 'video_id' (a non-empty string)", line)
  features = obj.get("features")
  if not isinstance(features, str) or not features:
    raise CorpusError(path, f"video {video_id!r}: missing 'features' path", line, video_id)
  clip_seconds = obj.get("clip_seconds", DEFAULT_CLIP_SECONDS)
  if (isinstance(clip_seconds, bool) or not isinstance(clip_seconds, (int, float))
      or not clip_seconds > 0):
    raise CorpusError(path, f"video {video_id!r}: 'clip_seconds' must be a positive "
                      f"number, got {clip_seconds!r}", line, video_id)
  asr = obj.get("asr")
  if asr is not None:
    if not isinstance(asr, str) or not asr:
      raise CorpusError(path, f"video {video_id!r}: 'asr' must be a path string", line,
                        video_id)
    if not asr.lower().endswith(TRANSCRIPT_SUFFIXES):
      raise CorpusError(path, f"video {video_id!r}: transcript {asr!r} must end in one "
                        f"of {', '.join(TRANSCRIPT_SUFFIXES)}", line, video_id)
  language = obj.get("language")
  if language is not None and (not isinstance(language, str) or not language):
    raise CorpusError(path, f"video {video_id!r}: 'language' must be a string such as "
                      f"'en', got {language!r}", line, video_id)
  return VideoRecord(
      video_id=video_id,
      features_path=os.path.normpath(os.path.join(corpus_dir, features)),
      clip_seconds=float(clip_seconds),
      asr_path=os.path.normpath(os.path.join(corpus_dir, asr)) if asr else None,
      language=language,
      line=line,
      index_path=path)


def read_index(corpus_dir: str | os.PathLike) -> Iterator[VideoRecord | CorpusError]:
  """Yields a VideoRecord, or the CorpusError of a bad line, for each line in order.

  Blank lines are skipped. Duplicate ids are reported as errors (the first wins).
  Only the ids seen so far are kept in memory.
  """
  corpus_dir = os.fspath(corpus_dir)
  path = index_path(corpus_dir)
  if not os.path.isdir(corpus_dir):
    raise CorpusError(corpus_dir, "corpus folder does not exist")
  if not os.path.isfile(path):
    raise CorpusError(path, f"missing: a corpus needs a {INDEX_NAME} index")
  seen: dict[str, int] = {}
  with open(path, encoding="utf-8") as f:
    for line_no, text in enumerate(f, start=1):
      if not text.strip():
        continue
      try:
        record = parse_line(text, line_no, corpus_dir, path)
      except CorpusError as e:
        yield e
        continue
      if record.video_id in seen:
        yield CorpusError(path, f"duplicate video_id {record.video_id!r} (first on line "
                          f"{seen[record.video_id]})", line_no, record.video_id)
        continue
      seen[record.video_id] = line_no
      yield record


def iter_videos(corpus_dir: str | os.PathLike, skip_bad: bool = False,
                skipped: list | None = None) -> Iterator[VideoRecord]:
  """Streams the VideoRecords of a corpus.

  Args:
    corpus_dir: the corpus folder.
    skip_bad: if False, the first bad line raises its CorpusError; if True, bad
      lines are skipped and their errors appended to ``skipped``.
    skipped: a list that collects the CorpusErrors of skipped lines.
  """
  for item in read_index(corpus_dir):
    if isinstance(item, CorpusError):
      if not skip_bad:
        raise item
      if skipped is not None:
        skipped.append(item)
      continue
    yield item


def load_features(record: VideoRecord, mmap: bool = True,
                  dtype=np.float32) -> np.ndarray:
  """Loads a video's ``[num_clips, feature_dim]`` features as ``dtype``.

  Raises CorpusError naming the feature file when it is missing, unreadable, not
  2-D, empty, or holds NaN or Inf.
  """
  path = record.features_path
  if not os.path.isfile(path):
    raise CorpusError(path, f"feature file of video {record.video_id!r} is missing",
                      video_id=record.video_id)
  try:
    arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
  except Exception as e:  # numpy raises several types for a corrupt file
    raise CorpusError(path, f"cannot read features of video {record.video_id!r}: {e}",
                      video_id=record.video_id) from None
  if arr.ndim != 2:
    raise CorpusError(path, f"features of video {record.video_id!r} must be 2-D "
                      f"[num_clips, feature_dim], got shape {arr.shape}",
                      video_id=record.video_id)
  if arr.shape[0] == 0:
    raise CorpusError(path, f"video {record.video_id!r} has zero clips",
                      video_id=record.video_id)
  if not np.issubdtype(arr.dtype, np.floating):
    raise CorpusError(path, f"features of video {record.video_id!r} must be float16 or "
                      f"float32, got {arr.dtype}", video_id=record.video_id)
  out = np.asarray(arr, dtype=dtype)
  if not np.isfinite(out).all():
    bad = int(np.argwhere(~np.isfinite(out))[0, 0])
    raise CorpusError(path, f"features of video {record.video_id!r} hold NaN or Inf "
                      f"(first in clip {bad})", video_id=record.video_id)
  return out
