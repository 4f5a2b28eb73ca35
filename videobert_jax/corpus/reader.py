"""Streaming reader of a corpus folder (``videos.jsonl`` + features + transcripts).

Every later stage reads the corpus through this module. It never loads the whole
corpus: ``iter_videos`` parses one ``videos.jsonl`` line at a time and features are
memory-mapped on demand by ``load_features``, the one place where every stage
(validate, quantize fit/assign, the TFDS builders) reads a feature file.

Paths in ``videos.jsonl`` must stay inside the corpus folder: a path with ``..``
that leaves it, an absolute path or a URL (``gs://...``) is a CorpusError naming
``videos.jsonl``, the line and the field, unless the caller passes
``allow_outside_paths=True``. The index may start with a UTF-8 byte-order mark and
may hold blank lines (skipped).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
from typing import Iterator

import numpy as np

INDEX_NAME = "videos.jsonl"
DEFAULT_CLIP_SECONDS = 1.5  # 30 frames at 20 fps, as in the paper
TRANSCRIPT_SUFFIXES = (".json", ".vtt", ".srt")
KNOWN_FIELDS = ("video_id", "features", "clip_seconds", "asr", "language")
PATH_FIELDS = ("features", "asr")  # the fields the reader resolves and reads
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_NPY_MAGIC = b"\x93NUMPY"


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


def is_url(path: str) -> bool:
  """True for ``scheme://...`` paths (``gs://bucket/x.npy``)."""
  return bool(_URL_RE.match(path))


def file_exists(path: str) -> bool:
  """``os.path.isfile``, or ``tf.io.gfile.exists`` for a URL."""
  if not is_url(path):
    return os.path.isfile(path)
  from videobert_jax import quiet  # pylint: disable=g-import-not-at-top
  tf = quiet.import_tensorflow()  # without its start-up lines
  return bool(tf.io.gfile.exists(path))


def resolve_path(value: str, field: str, video_id: str, corpus_dir: str, path: str,
                 line: int, allow_outside_paths: bool = False) -> str:
  """The path ``value`` of ``field`` resolved against ``corpus_dir``.

  Raises CorpusError (naming ``path``, ``line`` and ``field``) when ``value`` is
  absolute, a URL, or leaves the corpus folder through ``..``, unless
  ``allow_outside_paths``. The check is on the path as written: a symlink inside
  the corpus pointing elsewhere (``asr`` links made by extraction) is fine.
  """
  if is_url(value):
    kind = "a URL"
  elif os.path.isabs(value):
    kind = "an absolute path"
  else:
    rel = os.path.normpath(value)
    kind = "outside the corpus folder" if rel == os.pardir or rel.startswith(
        os.pardir + os.sep) else None
  if kind is not None and not allow_outside_paths:
    raise CorpusError(path, f"video {video_id!r}: {field!r} path {value!r} is {kind}; "
                      "corpus paths must be relative to the corpus folder and stay "
                      "inside it (pass --allow-outside-paths / allow_outside_paths="
                      "True to allow this)", line, video_id)
  if is_url(value):
    return value
  return os.path.normpath(os.path.join(corpus_dir, value))


def parse_line(text: str, line: int, corpus_dir: str, path: str,
               allow_outside_paths: bool = False) -> VideoRecord:
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
  where = dict(video_id=video_id, corpus_dir=corpus_dir, path=path, line=line,
               allow_outside_paths=allow_outside_paths)
  return VideoRecord(
      video_id=video_id,
      features_path=resolve_path(features, "features", **where),
      clip_seconds=float(clip_seconds),
      asr_path=resolve_path(asr, "asr", **where) if asr else None,
      language=language,
      line=line,
      index_path=path)


def read_index(corpus_dir: str | os.PathLike, allow_outside_paths: bool = False
               ) -> Iterator[VideoRecord | CorpusError]:
  """Yields a VideoRecord, or the CorpusError of a bad line, for each line in order.

  Blank lines are skipped and a UTF-8 byte-order mark is accepted. Duplicate ids
  are reported as errors (the first wins). Only the ids seen so far are kept in
  memory. Paths leaving the corpus folder are errors unless ``allow_outside_paths``.
  """
  corpus_dir = os.fspath(corpus_dir)
  path = index_path(corpus_dir)
  if not os.path.isdir(corpus_dir):
    raise CorpusError(corpus_dir, "corpus folder does not exist")
  if not os.path.isfile(path):
    raise CorpusError(path, f"missing: a corpus needs a {INDEX_NAME} index")
  seen: dict[str, int] = {}
  with open(path, encoding="utf-8-sig") as f:
    for line_no, text in enumerate(f, start=1):
      if not text.strip():
        continue
      try:
        record = parse_line(text, line_no, corpus_dir, path, allow_outside_paths)
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
                skipped: list | None = None,
                allow_outside_paths: bool = False) -> Iterator[VideoRecord]:
  """Streams the VideoRecords of a corpus.

  Args:
    corpus_dir: the corpus folder.
    skip_bad: if False, the first bad line raises its CorpusError; if True, bad
      lines are skipped and their errors appended to ``skipped``.
    skipped: a list that collects the CorpusErrors of skipped lines.
    allow_outside_paths: accept absolute paths, URLs and ``..`` paths leaving the
      corpus folder (rejected by default).
  """
  for item in read_index(corpus_dir, allow_outside_paths):
    if isinstance(item, CorpusError):
      if not skip_bad:
        raise item
      if skipped is not None:
        skipped.append(item)
      continue
    yield item


def with_index_line(error: ValueError, record: VideoRecord) -> CorpusError:
  """A CorpusError about one of a video's files that also says where it is listed.

  ``error`` is a CorpusError or another error with ``path``/``line``/``message``
  (the text package's TranscriptError). Errors already about the index, or
  already naming the listing, come back as they are; records not read from an
  index (``record.index_path`` empty) get no listing.
  """
  path = getattr(error, "path", None) or record.features_path
  message = getattr(error, "message", None) or str(error)
  line = getattr(error, "line", None)
  listed = f" (listed on line {record.line} of {record.index_path})"
  if not record.index_path or path == record.index_path or message.endswith(listed):
    listed = ""
  if isinstance(error, CorpusError) and not listed:
    return error
  return CorpusError(os.fspath(path), message + listed,
                     line if isinstance(line, int) else None, record.video_id)


def _npy_problem(path: str, data: bytes | None = None) -> str | None:
  """Why ``path`` is not a readable .npy (empty, no header, truncated), or None."""
  try:
    if data is None:
      with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(4096)
    else:
      size, head = len(data), data[:4096]
    if size == 0:
      return "the file is empty (0 bytes)"
    if not head.startswith(_NPY_MAGIC):
      return "no NumPy header (not a .npy file, or truncated inside its header)"
    stream = io.BytesIO(head)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
      shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    else:
      shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    expected = stream.tell() + int(np.prod(shape)) * dtype.itemsize
  except (OSError, ValueError, EOFError):
    return "truncated or corrupt .npy header"
  if size < expected:
    return (f"truncated .npy: the header says {dtype} {tuple(shape)} ({expected:,} "
            f"bytes) but the file has {size:,} bytes")
  return None


def _feature_error(record: VideoRecord, message: str) -> CorpusError:
  """A CorpusError about a video's feature file, naming where it is listed."""
  return with_index_line(CorpusError(record.features_path, message,
                                     video_id=record.video_id), record)


def _open_npy(record: VideoRecord, mmap: bool) -> np.ndarray:
  """The array of a feature file, memory-mapped when asked (local files only)."""
  path = record.features_path
  if not file_exists(path):
    raise _feature_error(record, f"feature file of video {record.video_id!r} is missing")
  data = None
  try:
    if is_url(path):
      from videobert_jax import quiet  # pylint: disable=g-import-not-at-top
      tf = quiet.import_tensorflow()  # without its start-up lines
      with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
      return np.load(io.BytesIO(data), allow_pickle=False)
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
  except Exception as e:  # numpy raises several types for a corrupt file
    why = _npy_problem(path, data) or " ".join(str(e).split()) or type(e).__name__
    raise _feature_error(record, f"cannot read features of video {record.video_id!r}: "
                         f"{why}") from None


def load_features(record: VideoRecord, mmap: bool = True,
                  dtype=np.float32) -> np.ndarray:
  """Loads a video's ``[num_clips, feature_dim]`` features as ``dtype``.

  Every stage reads features through this function. It raises a one-line
  CorpusError naming the feature file and the ``videos.jsonl`` line listing it
  when the file is missing, empty, truncated or otherwise unreadable, not 2-D,
  has zero clips, is not a float array, or holds NaN or Inf. ``dtype=None`` keeps
  the file's own dtype (no copy of a memory-mapped array).
  """
  arr = _open_npy(record, mmap)
  vid = record.video_id
  if arr.ndim != 2:
    raise _feature_error(record, f"features of video {vid!r} must be 2-D "
                         f"[num_clips, feature_dim], got shape {arr.shape}")
  if arr.shape[0] == 0:
    raise _feature_error(record, f"video {vid!r} has zero clips")
  if not np.issubdtype(arr.dtype, np.floating):
    raise _feature_error(record, f"features of video {vid!r} must be float16 or "
                         f"float32, got {arr.dtype}")
  out = np.asarray(arr, dtype=dtype)
  if not np.isfinite(out).all():
    bad = int(np.argwhere(~np.isfinite(out))[0, 0])
    raise _feature_error(record, f"features of video {vid!r} hold NaN or Inf "
                         f"(first in clip {bad})")
  return out
