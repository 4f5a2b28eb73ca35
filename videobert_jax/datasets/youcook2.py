"""``youcook2``: the YouCook II evaluation set, one example per annotated segment.

Inputs are the official annotation file and one feature file per video
(``FEATURES_DIR/<video_id>.npy``, corpus clip convention). The default layout is
a folder passed as ``--manual_dir`` holding ``youcookii_annotations_trainval.json``
and ``features/``; ``annotations=`` and ``features_dir=`` override each::

  tfds build youcook2/codebook=/abs/codebook.npz --imports videobert_jax.datasets \
      --manual_dir /abs/youcook --data_dir /abs/tfds

Splits: ``train`` (subset "training") and ``validation`` (subset "validation").
A video without a feature file is an error naming it, unless ``skip_missing=True``
(YouTube videos disappear; the skipped ids are then listed in metadata.json).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from videobert_jax.corpus import reader
from videobert_jax.corpus import youcook
from videobert_jax.datasets import builder_support
from videobert_jax.datasets import segments

ANNOTATION_FILE = "youcookii_annotations_trainval.json"
SPLITS = {"train": "training", "validation": "validation"}


@dataclasses.dataclass(frozen=True)
class YouCookSpec:
  """What a worker needs to turn one video's segments into examples (picklable)."""

  features_dir: str
  codebook_path: str
  vocab_path: str | None
  clip_seconds: float


def video_examples(video_segments: list, spec: YouCookSpec) -> list:
  """``(key, example)`` for each annotated segment of one video."""
  video_id = video_segments[0].video_id
  features = youcook.load_video_features(spec.features_dir, video_id,
                                         clip_seconds=spec.clip_seconds)
  record = reader.VideoRecord(video_id=video_id,
                              features_path=youcook.features_path(spec.features_dir,
                                                                  video_id),
                              clip_seconds=spec.clip_seconds)
  late = youcook.segment_past_the_features(video_segments, len(features), spec.clip_seconds)
  if late is not None:  # it would silently get the last clip
    raise reader.CorpusError(record.features_path, late, video_id=video_id)
  words = segments.visual_words(record, spec.codebook_path)
  captions = segments.tokenize([s.sentence for s in video_segments], spec.vocab_path)
  out = []
  for segment, caption_ids in zip(video_segments, captions):
    first, last = youcook.segment_clip_range(segment, spec.clip_seconds, len(features))
    out.append((f"{video_id}/{segment.segment_index:04d}", {
        "video_id": video_id,
        "segment_index": segment.segment_index,
        "start": np.float32(segment.start),
        "end": np.float32(segment.end),
        "caption": segment.sentence,
        "caption_ids": np.asarray(caption_ids, np.int32),
        "recipe_type": segment.recipe_type,
        "subset": segment.subset,
        "visual_words": words[first:last],
        # The supervised baseline's input: the mean S3D feature of the segment.
        "pooled_features": features[first:last].mean(axis=0).astype(np.float32),
    }))
  return out


class Youcook2(builder_support.BuilderSupport, tfds.core.GeneratorBasedBuilder):
  """YouCook II segments: visual words, caption, recipe type, pooled features."""

  name = "youcook2"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Put {ANNOTATION_FILE} and features/<video_id>.npy in a folder and pass it as
--manual_dir (or pass annotations=... and features_dir=...), plus codebook=PATH.
"""

  def __init__(self, *, annotations: str | None = None, features_dir: str | None = None,
               codebook: str | None = None, vocab_path: str | None = None,
               clip_seconds: float = reader.DEFAULT_CLIP_SECONDS,
               skip_missing: bool = False, **kwargs):
    """Creates the builder.

    Args:
      annotations: the official annotation JSON; default MANUAL_DIR/ANNOTATION_FILE.
      features_dir: folder of ``<video_id>.npy``; default MANUAL_DIR/features.
      codebook: the codebook file that turns features into visual words.
      vocab_path: a WordPiece vocab.txt; None = bert-base-uncased.
      clip_seconds: seconds per feature row.
      skip_missing: skip videos without a feature file instead of failing.
      **kwargs: passed to ``tfds.core.GeneratorBasedBuilder``.
    """
    self._annotations = os.path.abspath(annotations) if annotations else None
    self._features_dir = os.path.abspath(features_dir) if features_dir else None
    self._codebook = os.path.abspath(codebook) if codebook else None
    self._vocab_path = os.path.abspath(vocab_path) if vocab_path else None
    self._clip_seconds = float(clip_seconds)
    self._skip_missing = bool(skip_missing)
    super().__init__(**kwargs)
    self._original_state.update(
        annotations=annotations, features_dir=features_dir, codebook=codebook,
        vocab_path=vocab_path, clip_seconds=clip_seconds, skip_missing=skip_missing)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.__doc__,
        features=tfds.features.FeaturesDict({
            "video_id": tfds.features.Text(),
            "segment_index": tf.int32,
            "start": tf.float32,  # seconds, as annotated
            "end": tf.float32,
            "caption": tfds.features.Text(),
            "caption_ids": tfds.features.Sequence(tf.int32),  # WordPieces
            "recipe_type": tfds.features.Text(),
            "subset": tfds.features.Text(),
            "visual_words": tfds.features.Sequence(tf.int32),  # codebook indices
            "pooled_features": tfds.features.Tensor(shape=(None,), dtype=tf.float32),
        }),
        homepage="http://youcook2.eecs.umich.edu/",
        metadata=tfds.core.MetadataDict(),
    )

  def _paths(self, dl_manager) -> tuple[str, str]:
    annotations, features_dir = self._annotations, self._features_dir
    if annotations is None or features_dir is None:
      try:
        manual = os.fspath(dl_manager.manual_dir)
      except AssertionError:
        raise reader.CorpusError(
            self.name, "no input: pass --manual_dir (a folder with the annotation "
            "file and features/) or annotations=... and features_dir=...") from None
      annotations = annotations or os.path.join(manual, ANNOTATION_FILE)
      features_dir = features_dir or os.path.join(manual, "features")
    return annotations, features_dir

  def _split_generators(self, dl_manager):
    annotations, features_dir = self._paths(dl_manager)
    if not self._codebook:
      raise reader.CorpusError(self.name, "no codebook: pass codebook=PATH")
    by_video: dict[str, list] = {}
    for segment in youcook.load_annotations(annotations, subsets=SPLITS.values()):
      by_video.setdefault(segment.video_id, []).append(segment)
    missing = sorted(v for v in by_video
                     if not os.path.isfile(os.path.join(features_dir, f"{v}.npy")))
    if missing and not self._skip_missing:
      raise reader.CorpusError(
          os.path.join(features_dir, f"{missing[0]}.npy"),
          f"{len(missing)} of {len(by_video)} annotated videos have no feature file "
          "(this is the first); pass skip_missing=True to build from the rest")
    if missing:
      logging.warning("youcook2: skipping %d videos without features", len(missing))
    book = segments._codebook(self._codebook)  # pylint: disable=protected-access
    self.info.metadata.update(
        annotations=annotations, features_dir=features_dir, codebook=self._codebook,
        vocab_path=self._vocab_path, num_visual_words=int(book.num_words),
        feature_dim=int(book.feature_dim), missing_videos=missing,
        built_with_beam=self._use_beam)
    spec = YouCookSpec(features_dir=features_dir, codebook_path=self._codebook,
                       vocab_path=self._vocab_path, clip_seconds=self._clip_seconds)
    present = [s for v, s in by_video.items() if v not in set(missing)]
    for split, subset in SPLITS.items():
      if not any(s[0].subset == subset for s in present):  # TFDS fails deep inside
        raise reader.CorpusError(annotations, f"youcook2: no {subset} video with a "
                                 f"feature file in {features_dir}, so no {split} split")
    return {split: self._generate_examples(
        videos=[s for s in present if s[0].subset == subset], spec=spec)
            for split, subset in SPLITS.items()}

  def _generate_examples(self, videos: list, spec: YouCookSpec):
    """A generator of ``(key, example)``, or a ``beam.PTransform`` on Beam builds."""
    fn = functools.partial(video_examples, spec=spec)
    if self._use_beam:
      import apache_beam as beam  # pylint: disable=import-outside-toplevel
      return beam.Create(videos) | beam.Reshuffle() | beam.FlatMap(fn)
    return (pair for video in videos for pair in fn(video))
