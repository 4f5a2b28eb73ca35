"""YouCook II segments as evaluation inputs: visual words and pooled features.

Each video's features (``FEATURES_DIR/<video_id>.npy``, the corpus clip
convention) are read once and quantised once with the codebook; a segment gets
the visual words of the clips overlapping it (``youcook.segment_clip_range``) and
the average of those clips' features (the supervised baseline's input).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
from typing import Sequence

import numpy as np
from tqdm import tqdm

from videobert_jax.corpus import reader
from videobert_jax.corpus import youcook
from videobert_jax.corpus.reader import CorpusError


@dataclasses.dataclass(frozen=True)
class SegmentInput:
  """One annotated segment with what the evaluations feed the models."""

  segment: youcook.Segment  # video id, span, caption, subset
  visual_words: np.ndarray  # int32 [n]: codebook leaf per clip (empty w/o codebook)
  pooled: np.ndarray  # float32 [D]: mean feature over the segment's clips
  first_clip: int  # index of the segment's first clip in the video


def load_segment_inputs(annotations: str | os.PathLike, features_dir: str | os.PathLike,
                        codebook=None, subsets: Sequence[str] = ("validation",),
                        clip_seconds: float = reader.DEFAULT_CLIP_SECONDS,
                        skip_missing: bool = False, progress: bool = True,
                        ) -> tuple[list[SegmentInput], list[str]]:
  """Reads the segments of ``subsets`` with their visual words and pooled features.

  Args:
    annotations: the YouCook II annotation JSON.
    features_dir: folder of ``<video_id>.npy`` clip features.
    codebook: a ``quantize.codebook.Codebook`` (None: no visual words).
    subsets: which subsets to read.
    clip_seconds: seconds per feature row.
    skip_missing: skip videos whose feature file is missing or ends before one
      of their segments starts (listed in the second return value) instead of
      failing.
    progress: show a tqdm bar.

  Returns:
    ``(segments, skipped_video_ids)`` in annotation order.

  Raises:
    CorpusError: a bad annotation or feature file (naming it), features that
      end before a segment of their video starts, or a codebook whose feature
      size differs from the features'.
  """
  segments = youcook.load_annotations(annotations, subsets=subsets)
  by_video = collections.defaultdict(list)
  for seg in segments:
    by_video[seg.video_id].append(seg)
  out, skipped = [], []
  for video_id, video_segments in tqdm(by_video.items(), desc="loading videos",
                                       unit="video", disable=not progress, leave=False):
    try:
      features = youcook.load_video_features(features_dir, video_id, clip_seconds,
                                             mmap=False)
    except CorpusError:
      if skip_missing and not os.path.exists(
          os.path.join(os.fspath(features_dir), f"{video_id}.npy")):
        skipped.append(video_id)
        continue
      raise
    late = youcook.segment_past_the_features(video_segments, len(features), clip_seconds)
    if late is not None:
      path = youcook.features_path(features_dir, video_id)
      if skip_missing:
        logging.warning("skipping video %r: %s", video_id, late)
        skipped.append(video_id)
        continue
      raise CorpusError(path, late, video_id=video_id)
    words = np.zeros(len(features), np.int32)
    if codebook is not None:
      if features.shape[1] != codebook.feature_dim:
        raise CorpusError(youcook.features_path(features_dir, video_id),
                          f"features have dimension {features.shape[1]} but the "
                          f"codebook expects {codebook.feature_dim}", video_id=video_id)
      words = codebook.assign(features)
    for seg in video_segments:
      first, last = youcook.segment_clip_range(seg, clip_seconds, len(features))
      out.append(SegmentInput(
          segment=seg,
          visual_words=(words[first:last] if codebook is not None
                        else np.zeros(0, np.int32)),
          pooled=np.asarray(features[first:last], np.float32).mean(axis=0),
          first_clip=first))
  return out, skipped

