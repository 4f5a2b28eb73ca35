"""The three pretraining datasets: ``videobert_text``, ``videobert_video``, ``videobert_video_text``.

Build them on the command line (``--imports`` registers the builders)::

  tfds build videobert_text --imports videobert_jax.datasets \
      --manual_dir /abs/CORPUS --data_dir /abs/tfds
  tfds build videobert_video/codebook=/abs/codebook.npz \
      --imports videobert_jax.datasets --manual_dir /abs/CORPUS --data_dir /abs/tfds
  # Apache Beam (Dataflow or Flink on a real corpus):
  tfds build videobert_video_text/codebook=/abs/codebook.npz ... \
      --beam_pipeline_options=runner=DirectRunner

See ``corpus_builder`` for the arguments and ``segments`` for what an example is.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_datasets as tfds

from videobert_jax.datasets import corpus_builder
from videobert_jax.datasets import segments

_ids = lambda: tfds.features.Sequence(tf.int32)  # pylint: disable=unnecessary-lambda-assignment


class VideobertText(corpus_builder.CorpusBuilder):
  """Text-only VideoBERT pretraining data: English ASR sentences as WordPiece ids.

  One example per ASR sentence of each English video, with the next sentence's
  ids of the same video for neighbour-sentence concatenation.
  """

  name = "videobert_text"
  KIND = segments.TEXT

  def _features(self) -> dict:
    return {
        "video_id": tfds.features.Text(),
        "sentence_index": tf.int32,  # position of the sentence in its video
        "start": tf.float32,  # seconds
        "end": tf.float32,
        "text": tfds.features.Text(),
        "text_ids": _ids(),  # WordPiece ids, no [CLS]/[SEP]
        "next_text_ids": _ids(),  # the next sentence of the video ([] for the last)
    }


class VideobertVideo(corpus_builder.CorpusBuilder):
  """Video-only VideoBERT pretraining data: visual-word sequences of every video.

  One example per segment: the clips inside an ASR sentence's time span when the
  video has usable ASR (any language), else consecutive 16-clip chunks.
  """

  name = "videobert_video"
  KIND = segments.VIDEO

  def _features(self) -> dict:
    return {
        "video_id": tfds.features.Text(),
        "segment_index": tf.int32,
        "start": tf.float32,  # seconds, start of the first clip
        "end": tf.float32,  # seconds, end of the last clip
        "source": tfds.features.Text(),  # "asr" (sentence spans) or "chunk"
        "visual_words": _ids(),  # codebook indices 0..K-1, one per clip
        "next_visual_words": _ids(),  # the next segment of the video
    }


class VideobertVideoText(corpus_builder.CorpusBuilder):
  """Video-text VideoBERT pretraining data: aligned ASR sentences and visual words.

  One example per English ASR sentence covering at least one clip: the sentence's
  WordPieces, the visual words of its span, its verb-object pairs marked on the
  WordPieces (``videobert_jax.text.actions``), and the same for the next sentence.
  """

  name = "videobert_video_text"
  KIND = segments.VIDEO_TEXT

  def _features(self) -> dict:
    return {
        "video_id": tfds.features.Text(),
        "sentence_index": tf.int32,
        "start": tf.float32,
        "end": tf.float32,
        "text": tfds.features.Text(),
        "text_ids": _ids(),
        "visual_words": _ids(),
        "next_text_ids": _ids(),
        "next_visual_words": _ids(),
        # per WordPiece: i for the i-th verb-object pair of the sentence, else 0
        "action_groups": _ids(),
        "next_action_groups": _ids(),
    }
