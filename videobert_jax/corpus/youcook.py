"""The YouCook II evaluation set: official annotations and one feature file per video.

The annotation file (``youcookii_annotations_trainval.json``) has the schema::

  {"database": {VIDEO_ID: {"duration": seconds, "subset": "training"|"validation"
                                                          |"testing",
                           "recipe_type": "113", "video_url": "...",
                           "annotations": [{"id": 0, "segment": [start, end],
                                            "sentence": "spread margarine on ..."},
                                           ...]}}}

The trainval release has 1,790 videos (1,333 training, 457 validation) and 13,829
segments (10,337 training, 3,492 validation). Features are read from
``FEATURES_DIR/<video_id>.npy`` with the corpus clip convention: row i covers
``[i * clip_seconds, (i + 1) * clip_seconds)``.

Malformed input raises ``CorpusError`` naming the file (and the video and
annotation) and what is wrong.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Iterable

import numpy as np

from videobert_jax.corpus import reader
from videobert_jax.corpus.reader import CorpusError

SUBSETS = ("training", "validation", "testing")
# Segment boundaries are whole seconds in the release; the tolerance only absorbs
# float rounding in start/clip_seconds so a boundary on a clip edge stays there.
_EDGE_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class Segment:
  """One annotated recipe step of a YouCook II video."""

  video_id: str  # YouTube id, the key in "database"
  segment_index: int  # the annotation's "id": 0, 1, ... in temporal order
  start: float  # seconds
  end: float  # seconds, >= start
  sentence: str  # the step's caption ("" for a testing video without captions)
  subset: str  # "training", "validation" or "testing"
  recipe_type: str  # recipe class id, e.g. "113"
  duration: float  # length of the whole video in seconds


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
  """json object hook: a repeated key (e.g. a video id twice) is an error, not a loss."""
  out: dict[str, Any] = {}
  for key, value in pairs:
    if key in out:
      raise ValueError(f"duplicate key {key!r}")
    out[key] = value
  return out


def _is_number(value: Any) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


def _read_database(path: str) -> dict[str, Any]:
  """The "database" object of an annotation file; raises CorpusError."""
  if not os.path.isfile(path):
    raise CorpusError(path, "YouCook II annotation file is missing")
  try:
    with open(path, encoding="utf-8") as f:
      root = json.load(f, object_pairs_hook=_reject_duplicate_keys)
  except json.JSONDecodeError as e:
    raise CorpusError(path, f"not valid JSON ({e.msg} at column {e.colno})",
                      e.lineno) from None
  except (ValueError, UnicodeDecodeError) as e:  # duplicate keys, bad encoding
    raise CorpusError(path, f"not a valid annotation file: {e}") from None
  if not isinstance(root, dict) or not isinstance(root.get("database"), dict):
    raise CorpusError(path, 'expected a JSON object with a "database" object of videos')
  return root["database"]


def _parse_video(path: str, video_id: str, entry: Any) -> list[Segment]:
  """The segments of one "database" entry; raises CorpusError naming the video."""
  where = f"video {video_id!r}"
  if not isinstance(entry, dict):
    raise CorpusError(path, f"{where}: expected an object", video_id=video_id)
  duration = entry.get("duration")
  if not _is_number(duration) or duration <= 0:
    raise CorpusError(path, f"{where}: 'duration' must be a positive number of seconds, "
                      f"got {duration!r}", video_id=video_id)
  subset = entry.get("subset")
  if subset not in SUBSETS:
    raise CorpusError(path, f"{where}: 'subset' must be one of {', '.join(SUBSETS)}, "
                      f"got {subset!r}", video_id=video_id)
  recipe_type = entry.get("recipe_type")
  if isinstance(recipe_type, bool) or not isinstance(recipe_type, (str, int)):
    raise CorpusError(path, f"{where}: 'recipe_type' must be a string such as '113', "
                      f"got {recipe_type!r}", video_id=video_id)
  annotations = entry.get("annotations")
  if not isinstance(annotations, list):
    raise CorpusError(path, f"{where}: 'annotations' must be a list", video_id=video_id)
  segments = []
  for position, ann in enumerate(annotations):
    at = f"{where}, annotation {position}"
    if not isinstance(ann, dict):
      raise CorpusError(path, f"{at}: expected an object", video_id=video_id)
    index = ann.get("id", position)
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
      raise CorpusError(path, f"{at}: 'id' must be a non-negative integer, got "
                        f"{index!r}", video_id=video_id)
    span = ann.get("segment")
    if (not isinstance(span, (list, tuple)) or len(span) != 2
        or not all(_is_number(t) for t in span)):
      raise CorpusError(path, f"{at}: 'segment' must be [start, end] in seconds, got "
                        f"{span!r}", video_id=video_id)
    start, end = float(span[0]), float(span[1])
    if start < 0 or end < start:
      raise CorpusError(path, f"{at}: segment [{span[0]}, {span[1]}] must have "
                        "0 <= start <= end", video_id=video_id)
    sentence = ann.get("sentence", "" if subset == "testing" else None)
    if not isinstance(sentence, str) or (not sentence.strip() and subset != "testing"):
      raise CorpusError(path, f"{at}: 'sentence' must be a non-empty string, got "
                        f"{sentence!r}", video_id=video_id)
    segments.append(Segment(video_id=video_id, segment_index=index, start=start,
                            end=end, sentence=sentence.strip(), subset=subset,
                            recipe_type=str(recipe_type), duration=float(duration)))
  return segments


def load_annotations(path: str | os.PathLike,
                     subsets: Iterable[str] | None = None) -> list[Segment]:
  """Reads the official annotation JSON into segments, in file order.

  Args:
    path: the annotation file, e.g. ``youcookii_annotations_trainval.json``.
    subsets: keep only videos of these subsets (e.g. ``["validation"]``); all
      when None.

  Returns:
    The segments of every kept video, videos in file order, segments in
    annotation order.

  Raises:
    CorpusError: naming the file (and video and annotation) of the first problem:
      not JSON, no "database", a bad duration/subset/recipe_type, a segment that is
      not ``[start, end]`` with ``0 <= start <= end``, or a missing sentence.
  """
  path = os.fspath(path)
  wanted = None if subsets is None else set(subsets)
  if wanted is not None and not wanted <= set(SUBSETS):
    raise ValueError(f"unknown subsets {sorted(wanted - set(SUBSETS))}; "
                     f"expected some of {SUBSETS}")
  segments: list[Segment] = []
  for video_id, entry in _read_database(path).items():
    if not video_id:
      raise CorpusError(path, "empty video id in 'database'")
    video_segments = _parse_video(path, video_id, entry)
    if wanted is None or entry["subset"] in wanted:
      segments.extend(video_segments)
  return segments


def video_ids(path: str | os.PathLike, subsets: Iterable[str] | None = None) -> list[str]:
  """The video ids of an annotation file (file order), optionally of some subsets.

  Every entry is validated as in ``load_annotations``, so a bad file fails here too.
  """
  path = os.fspath(path)
  wanted = None if subsets is None else set(subsets)
  ids = []
  for video_id, entry in _read_database(path).items():
    _parse_video(path, video_id, entry)
    if wanted is None or entry["subset"] in wanted:
      ids.append(video_id)
  return ids


def segment_clip_range(segment: Segment, clip_seconds: float,
                       num_clips: int) -> tuple[int, int]:
  """The clips ``[first, last_exclusive)`` of a video that overlap a segment.

  Clip i covers ``[i * clip_seconds, (i + 1) * clip_seconds)``; it belongs to the
  segment ``[start, end]`` when the two intervals overlap with positive length,
  i.e. ``first = floor(start / clip_seconds)`` and
  ``last_exclusive = ceil(end / clip_seconds)``. The range always holds at least
  one clip (a zero-length segment gets the clip containing it), and it is clipped
  to the video's ``num_clips``; a segment starting after the last clip (features
  shorter than the annotated video) gets the last clip.

  Args:
    segment: anything with ``start`` and ``end`` in seconds (a Segment).
    clip_seconds: seconds per clip (1.5 for 30 frames at 20 fps).
    num_clips: rows of the video's feature array (>= 1).

  Returns:
    ``(first, last_exclusive)`` with ``0 <= first < last_exclusive <= num_clips``.
  """
  if not clip_seconds > 0:
    raise ValueError(f"clip_seconds must be positive, got {clip_seconds}")
  if num_clips < 1:
    raise ValueError(f"num_clips must be at least 1, got {num_clips}")
  if segment.end < segment.start:
    raise ValueError(f"segment ends ({segment.end}) before it starts ({segment.start})")
  first = max(0, math.floor(segment.start / clip_seconds + _EDGE_EPS))
  last = math.ceil(segment.end / clip_seconds - _EDGE_EPS)
  first = min(first, num_clips - 1)
  last = min(max(last, first + 1), num_clips)
  return first, last


def features_path(features_dir: str | os.PathLike, video_id: str) -> str:
  """``FEATURES_DIR/<video_id>.npy``; raises CorpusError naming it when missing."""
  path = os.path.join(os.fspath(features_dir), f"{video_id}.npy")
  if not os.path.isfile(path):
    raise CorpusError(path, f"feature file of YouCook II video {video_id!r} is missing",
                      video_id=video_id)
  return path


def load_video_features(features_dir: str | os.PathLike, video_id: str,
                        clip_seconds: float = reader.DEFAULT_CLIP_SECONDS,
                        mmap: bool = True, dtype=np.float32) -> np.ndarray:
  """A video's ``[num_clips, feature_dim]`` features, checked like corpus features.

  Raises CorpusError naming the file when it is missing, not 2-D, empty, not a
  float array, or holds NaN or Inf.
  """
  record = reader.VideoRecord(video_id=video_id,
                              features_path=features_path(features_dir, video_id),
                              clip_seconds=clip_seconds)
  return reader.load_features(record, mmap=mmap, dtype=dtype)


def segment_past_the_features(video_segments, num_clips: int,
                              clip_seconds: float) -> str | None:
  """Why a video's features cannot be its annotated video, or None when they can.

  The evaluation readers and the youcook2 builder call this for every video.

  Features end at most one clip before the video (the last, partial clip is
  dropped); a segment starting later than that would silently get the last
  clip (``segment_clip_range``), so it is an error instead: the
  features are of a truncated or another video.
  """
  length = num_clips * clip_seconds
  for seg in video_segments:
    if seg.start >= length + clip_seconds:
      return (f"segment {seg.segment_index} of video {seg.video_id!r} starts at "
              f"{seg.start:g} s, after the end of its features ({num_clips} clips of "
              f"{clip_seconds:g} s = {length:g} s): a truncated or another video's "
              "features?")
  return None
