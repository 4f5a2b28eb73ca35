"""Validation of a corpus folder: every problem found, one line each, and a summary.

``validate_corpus`` streams ``videos.jsonl`` with the reader, opens each feature
file memory-mapped (one at a time; only counters are kept) and parses each
transcript with the text package, so that a corpus written by another tool is
checked once, up front, instead of failing deep inside a later stage.

Checks, beyond those of ``reader`` (lines that are not JSON, missing, empty or
duplicate ``video_id``, bad ``clip_seconds``/``asr``/``language``) and
``reader.load_features`` (missing or unreadable file, not 2-D, zero clips, not a
float dtype, NaN or Inf):

* the feature dimension must be the same for every video. The first good video
  sets the reference; each other dimension is reported against it, and if most
  videos turn out to disagree with that first one, a final problem says so.
* a transcript named by ``asr`` must exist and parse (timestamps readable, end not
  before start); errors carry the transcript's own line number. An empty one (no
  cue with words) is a warning, not a problem: the video counts as without ASR.

A transcript running past the last clip is not a problem (ASR often outlasts the
sampled clips), so it is not reported.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
from typing import Any

from videobert_jax.corpus import reader
from videobert_jax.corpus.reader import CorpusError, VideoRecord

# "PATH:LINE: message" or "PATH: message", the layout of CorpusError and of the
# text package's TranscriptError; used to split a foreign error into its parts.
_WHERE_RE = re.compile(r"^(?P<path>.+?)(?::(?P<line>\d+))?: (?P<message>.*)$", re.S)


@dataclasses.dataclass
class ValidationReport:
  """What ``validate_corpus`` found: totals over the good videos and every problem."""

  corpus_dir: str  # the corpus folder as given
  skip_bad: bool = False  # whether bad videos are skipped rather than failing
  num_videos: int = 0  # good videos (no problem found)
  num_bad: int = 0  # bad videos or index lines (each counted once)
  num_clips: int = 0  # clips (feature rows) over the good videos
  seconds: float = 0.0  # sum over good videos of num_clips * clip_seconds
  feature_dim: int | None = None  # the reference dimension (first good video)
  feature_dims: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)  # dimension -> readable feature files
  feature_dtypes: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)  # dtype name -> good videos
  videos_with_asr: int = 0  # good videos whose 'asr' transcript parsed, not empty
  empty_transcripts: list[str] = dataclasses.field(
      default_factory=list)  # transcripts of good videos with no text (= no ASR)
  languages: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)  # ASR language -> good videos
  problems: list[CorpusError] = dataclasses.field(default_factory=list)  # all found
  skipped: list[CorpusError] = dataclasses.field(
      default_factory=list)  # with skip_bad: one entry (first problem) per bad video

  @property
  def hours(self) -> float:
    """Hours of video over the good videos."""
    return self.seconds / 3600.0

  @property
  def asr_share(self) -> float:
    """Fraction of good videos that have a transcript (0 for an empty corpus)."""
    return self.videos_with_asr / self.num_videos if self.num_videos else 0.0

  @property
  def ok(self) -> bool:
    """True when the corpus is usable as asked.

    Without ``skip_bad``: no problem at all and at least one video. With
    ``skip_bad``: at least one good video remains.
    """
    if self.skip_bad:
      return self.num_videos > 0
    return not self.problems and self.num_videos > 0

  def to_dict(self) -> dict[str, Any]:
    """A JSON-serialisable view (for ``--json``)."""
    def error_dict(e: CorpusError) -> dict[str, Any]:
      return {"file": e.path, "line": e.line, "video_id": e.video_id,
              "message": e.message, "text": str(e)}
    return {
        "corpus": os.path.abspath(self.corpus_dir),
        "ok": self.ok,
        "skip_bad": self.skip_bad,
        "videos": self.num_videos,
        "bad": self.num_bad,
        "clips": self.num_clips,
        "hours": self.hours,
        "feature_dim": self.feature_dim,
        "feature_dims": {str(k): v for k, v in sorted(self.feature_dims.items())},
        "feature_dtypes": dict(sorted(self.feature_dtypes.items())),
        "videos_with_asr": self.videos_with_asr,
        "empty_transcripts": len(self.empty_transcripts),
        "empty_transcript_files": list(self.empty_transcripts),
        "asr_share": self.asr_share,
        "languages": dict(self.languages.most_common()),
        "problems": [error_dict(e) for e in self.problems],
        "skipped": [error_dict(e) for e in self.skipped],
    }

  def summary_lines(self) -> list[str]:
    """The human-readable summary, one string per line (no problem lines)."""
    dtypes = ", ".join(f"{k}: {v}" for k, v in sorted(self.feature_dtypes.items()))
    dims = ", ".join(f"{k}: {v}" for k, v in sorted(self.feature_dims.items()))
    langs = ", ".join(f"{k}: {v}" for k, v in self.languages.most_common()) or "-"
    bad = f" ({self.num_bad:,} bad video(s) or line(s) not counted)" if self.num_bad else ""
    empty = len(self.empty_transcripts)
    warnings = [f"warning          {empty:,} video{'s' if empty != 1 else ''} with an "
                "empty transcript: treated as no ASR"] if empty else []
    return [
        f"corpus           {os.path.abspath(self.corpus_dir)}",
        f"videos           {self.num_videos:,}{bad}",
        f"clips            {self.num_clips:,}",
        f"hours of video   {self.hours:,.2f} ({self.seconds:,.1f} s)",
        f"feature dim      {self.feature_dim if self.feature_dim is not None else '-'}"
        + (f" (feature files per dim: {dims})" if len(self.feature_dims) > 1 else ""),
        f"feature dtype    {dtypes or '-'}",
        f"videos with ASR  {self.videos_with_asr:,} of {self.num_videos:,} "
        f"({100.0 * self.asr_share:.1f}%)",
        f"ASR languages    {langs}",
    ] + warnings


def _count_lines(path: str) -> int | None:
  """Number of lines of ``path`` (a cheap pass, for the progress bar's total)."""
  try:
    with open(path, "rb") as f:
      return sum(1 for _ in f)
  except OSError:
    return None


def _from_foreign_error(error: Exception, path: str, video_id: str) -> CorpusError:
  """A CorpusError from another package's error whose ``str()`` names file and line."""
  line = getattr(error, "line", None)
  message = getattr(error, "message", None)
  err_path = getattr(error, "path", None)
  if not (isinstance(message, str) and message):
    text = str(error) or type(error).__name__
    match = _WHERE_RE.match(text)
    if match and os.path.normpath(match["path"]) == os.path.normpath(path):
      message = match["message"]
      line = int(match["line"]) if match["line"] else line
    else:
      message = text
  return CorpusError(os.fspath(err_path) if err_path else path, message,
                     line if isinstance(line, int) else None, video_id)


def _check_features(record: VideoRecord) -> tuple[int, int, str]:
  """(num_clips, feature_dim, dtype name) of a video; raises CorpusError.

  The array stays memory-mapped in its own dtype (``dtype=None``), so no copy of
  the features is made; ``load_features`` does the shape, dtype and NaN/Inf checks.
  """
  features = reader.load_features(record, mmap=True, dtype=None)
  try:
    return int(features.shape[0]), int(features.shape[1]), str(features.dtype)
  finally:
    del features  # closes the memory map before the next file is opened


def _check_transcript(record: VideoRecord) -> bool:
  """Parses a video's transcript; True when it holds text. Raises CorpusError."""
  path = record.asr_path
  if not reader.file_exists(path):
    raise CorpusError(path, f"transcript of video {record.video_id!r} is missing",
                      video_id=record.video_id)
  # The text package is imported here so that validation of a corpus without ASR
  # (and `--help`) does not need it.
  from videobert_jax.text import dedup  # pylint: disable=g-import-not-at-top
  from videobert_jax.text import transcripts  # pylint: disable=g-import-not-at-top
  try:
    return not dedup.is_empty(transcripts.read_transcript(path))
  except (transcripts.TranscriptError, ValueError, OSError, UnicodeDecodeError) as e:
    raise _from_foreign_error(e, path, record.video_id) from None


class _Validator:
  """The running state of one ``validate_corpus`` pass (one video at a time)."""

  def __init__(self, report: ValidationReport, check_transcripts: bool):
    self.report = report
    self.check_transcripts = check_transcripts
    self.reference: VideoRecord | None = None  # the first good video: sets feature_dim

  def bad(self, errors: list[CorpusError]) -> None:
    """Counts one bad video (or index line) and records its problems."""
    self.report.num_bad += 1
    self.report.problems.extend(errors)
    if self.report.skip_bad:
      self.report.skipped.append(errors[0])

  def _features(self, record: VideoRecord, errors: list) -> tuple[int, int, str] | None:
    """(num_clips, dim, dtype) of a video's features, or None (error appended)."""
    report = self.report
    try:
      shape = _check_features(record)
    except CorpusError as e:
      errors.append(reader.with_index_line(e, record))
      return None
    # Every readable file counts towards the dimension census, good or not, so
    # the majority dimension is known at the end.
    report.feature_dims[shape[1]] += 1
    if report.feature_dim is not None and shape[1] != report.feature_dim:
      errors.append(reader.with_index_line(CorpusError(
          record.features_path,
          f"features of video {record.video_id!r} have dimension {shape[1]}, but "
          f"{self.reference.features_path} (the first good video) has "
          f"{report.feature_dim}", video_id=record.video_id), record))
    return shape

  def _has_text(self, record: VideoRecord, errors: list) -> bool | None:
    """Whether the video's transcript has text; None when unchecked or bad."""
    if record.asr_path is None or not self.check_transcripts:
      return None
    try:
      return _check_transcript(record)
    except CorpusError as e:
      errors.append(reader.with_index_line(e, record))
      return None

  def add(self, record: VideoRecord) -> None:
    """Checks one video and counts it as good or bad."""
    errors: list[CorpusError] = []
    shape = self._features(record, errors)
    has_text = self._has_text(record, errors)
    if errors:
      self.bad(errors)
      return
    report = self.report
    num_clips, dim, dtype = shape
    if report.feature_dim is None:
      report.feature_dim, self.reference = dim, record
    report.num_videos += 1
    report.num_clips += num_clips
    report.seconds += num_clips * record.clip_seconds
    report.feature_dtypes[dtype] += 1
    if has_text is False:
      report.empty_transcripts.append(record.asr_path)
    elif record.asr_path is not None:
      report.videos_with_asr += 1
      report.languages[record.language or "unspecified"] += 1

  def finish(self) -> None:
    """The closing problems: an odd first dimension, an empty corpus."""
    report, reference = self.report, self.reference
    if reference is not None and len(report.feature_dims) > 1:
      majority, count = report.feature_dims.most_common(1)[0]
      if (majority != report.feature_dim
          and count > report.feature_dims[report.feature_dim]):
        # The first video was the odd one out: say so, rather than leave the user
        # to fix every other file.
        report.problems.append(CorpusError(
            reference.features_path,
            f"the first good video {reference.video_id!r} has dimension "
            f"{report.feature_dim}, used as the reference, but {count} of "
            f"{sum(report.feature_dims.values())} feature files have dimension "
            f"{majority}", video_id=reference.video_id))
    if not report.problems and report.num_videos == 0:
      report.problems.append(CorpusError(reader.index_path(report.corpus_dir),
                                         "the corpus lists no videos"))


def validate_corpus(corpus_dir: str | os.PathLike, skip_bad: bool = False,
                    check_transcripts: bool = True, progress: bool = False,
                    allow_outside_paths: bool = False) -> ValidationReport:
  """Checks a whole corpus, streaming it; never raises for a problem in the data.

  Args:
    corpus_dir: the corpus folder (holding ``videos.jsonl``).
    skip_bad: if True, a bad video is skipped (and listed in ``report.skipped``)
      and the corpus is ``ok`` when at least one good video remains.
    check_transcripts: parse every transcript with the text package (set False
      for a fast check of the index and features only).
    progress: show a tqdm progress bar (on stderr) over the index lines.
    allow_outside_paths: accept absolute paths, URLs and paths leaving the corpus
      folder in ``videos.jsonl`` (each is a problem by default).

  Returns:
    A ValidationReport: totals over the good videos and every problem found, in
    index order (problems of one video: its features first, then its transcript).
    Empty transcripts are listed in ``report.empty_transcripts`` (a warning).
  """
  corpus_dir = os.fspath(corpus_dir)
  report = ValidationReport(corpus_dir=corpus_dir, skip_bad=skip_bad)
  validator = _Validator(report, check_transcripts)
  try:
    items = reader.read_index(corpus_dir, allow_outside_paths)
    if progress:
      import tqdm  # pylint: disable=g-import-not-at-top
      items = tqdm.tqdm(items, total=_count_lines(reader.index_path(corpus_dir)),
                        unit="video", desc="validate", leave=False)
    for item in items:
      if isinstance(item, CorpusError):
        validator.bad([item])
      else:
        validator.add(item)
  except CorpusError as e:  # the folder or its videos.jsonl is missing
    report.problems.append(e)
    return report
  validator.finish()
  return report
