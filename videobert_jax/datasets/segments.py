"""Turns one corpus video into the examples of the pretraining builders (no TF here).

The three builders share this module so that the plain and the Beam build run the
very same code on each video (``examples_for_video``), and so that the rules are in
one place:

* text (``videobert_text``): one example per ASR sentence of an English video, its
  WordPiece ids and the ids of the next sentence of the same video (the
  preprocessors concatenate neighbouring sentences at random).
* video (``videobert_video``): one example per segment of every video, whatever
  its language. A segment is the clips inside an ASR sentence's time span when the
  video has a transcript whose sentences cover some clips; otherwise consecutive
  chunks of ``chunk_tokens`` (16, as in the paper) clips.
* video-text (``videobert_video_text``): one example per English ASR sentence whose
  span covers at least one clip: its WordPieces, the visual words of the same span,
  the action group of each WordPiece (its verb-object pairs, ``text.actions``), and
  the same for the next sentence.

Visual words are stored as codebook indices ``0..K-1``; the preprocessors map them
to token ids with ``videobert_jax.tokens.TokenLayout``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any

import numpy as np

from videobert_jax.corpus import reader

TEXT = "text"
VIDEO = "video"
VIDEO_TEXT = "video_text"
KINDS = (TEXT, VIDEO, VIDEO_TEXT)
CHUNK_TOKENS = 16  # segment length of a video without usable ASR (the paper's choice)
SOURCE_ASR = "asr"
SOURCE_CHUNK = "chunk"
_EDGE_EPS = 1e-6  # float slack so a boundary exactly on a clip edge stays there

Example = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class BuildSpec:
  """Everything a worker needs to turn a VideoRecord into examples (picklable)."""

  kind: str  # one of KINDS
  codebook_path: str | None = None  # needed by the video and video-text builders
  vocab_path: str | None = None  # None = the real bert-base-uncased vocabulary
  chunk_tokens: int = CHUNK_TOKENS
  skip_bad: bool = False  # skip (and log) a video whose files are bad


@functools.lru_cache(maxsize=4)
def _codebook(codebook_path: str):
  from videobert_jax.quantize import codebook  # pylint: disable=import-outside-toplevel
  return codebook.load_codebook(codebook_path)


def tokenize(texts: list[str], vocab_path: str | None) -> list[list[int]]:
  """WordPiece ids of each text (no [CLS]/[SEP])."""
  from videobert_jax.text import wordpiece  # pylint: disable=import-outside-toplevel
  return [wordpiece.encode(t, vocab_path) for t in texts]


def load_sentences(record: reader.VideoRecord) -> list:
  """The ASR sentences of a video (``[]`` without a transcript)."""
  if record.asr_path is None:
    return []
  from videobert_jax.text import sentences  # pylint: disable=import-outside-toplevel
  return list(sentences.load_sentences(record.asr_path))


def visual_words(record: reader.VideoRecord, codebook_path: str) -> np.ndarray:
  """The visual word (codebook index) of every clip of a video, int32 [num_clips]."""
  codebook = _codebook(codebook_path)
  features = reader.load_features(record)
  if features.shape[1] != codebook.feature_dim:
    raise reader.with_index_line(reader.CorpusError(
        record.features_path, f"features of video {record.video_id!r} have dimension "
        f"{features.shape[1]}, the codebook {codebook_path} expects "
        f"{codebook.feature_dim}", video_id=record.video_id), record)
  return np.asarray(codebook.assign(features), dtype=np.int32)


def clip_range(start: float, end: float, clip_seconds: float,
               num_clips: int) -> tuple[int, int] | None:
  """The clips ``[first, last)`` overlapping ``[start, end]``; None past the last clip.

  A span shorter than a clip still gets the clip containing it.
  """
  first = max(0, int(np.floor(start / clip_seconds + _EDGE_EPS)))
  if first >= num_clips:
    return None
  last = int(np.ceil(end / clip_seconds - _EDGE_EPS))
  last = min(max(last, first + 1), num_clips)
  return first, last


def sentence_segments(sentences, clip_seconds: float, num_clips: int) -> list[tuple]:
  """``(sentence_index, first, last)`` for each sentence covering at least one clip."""
  out = []
  for index, sentence in enumerate(sentences):
    span = clip_range(float(sentence.start), float(sentence.end), clip_seconds, num_clips)
    if span is not None:
      out.append((index,) + span)
  return out


def chunk_segments(num_clips: int, chunk_tokens: int) -> list[tuple[int, int]]:
  """``(first, last)`` of consecutive chunks of ``chunk_tokens`` clips (last may be short)."""
  return [(i, min(i + chunk_tokens, num_clips)) for i in range(0, num_clips, chunk_tokens)]


def _key(video_id: str, index: int) -> str:
  return f"{video_id}/{index:06d}"


def text_examples(record: reader.VideoRecord, sentences, ids: list[list[int]]) -> list:
  """Examples of ``videobert_text`` for one English video."""
  out = []
  for i, sentence in enumerate(sentences):
    if not ids[i]:
      continue
    next_ids = ids[i + 1] if i + 1 < len(ids) else []
    out.append((_key(record.video_id, i), {
        "video_id": record.video_id,
        "sentence_index": i,
        "start": np.float32(sentence.start),
        "end": np.float32(sentence.end),
        "text": sentence.text,
        "text_ids": np.asarray(ids[i], np.int32),
        "next_text_ids": np.asarray(next_ids, np.int32),
    }))
  return out


def video_examples(record: reader.VideoRecord, sentences, words: np.ndarray,
                   chunk_tokens: int) -> list:
  """Examples of ``videobert_video`` for one video (any language)."""
  n = len(words)
  spans = [(f, l) for _, f, l in sentence_segments(sentences, record.clip_seconds, n)]
  source = SOURCE_ASR
  if not spans:
    spans, source = chunk_segments(n, chunk_tokens), SOURCE_CHUNK
  out = []
  for i, (first, last) in enumerate(spans):
    nxt = words[spans[i + 1][0]:spans[i + 1][1]] if i + 1 < len(spans) else words[:0]
    start, _ = record.clip_span(first)
    _, end = record.clip_span(last - 1)
    out.append((_key(record.video_id, i), {
        "video_id": record.video_id,
        "segment_index": i,
        "start": np.float32(start),
        "end": np.float32(end),
        "source": source,
        "visual_words": np.asarray(words[first:last], np.int32),
        "next_visual_words": np.asarray(nxt, np.int32),
    }))
  return out


def video_text_examples(record: reader.VideoRecord, sentences, ids: list[list[int]],
                        words: np.ndarray, groups: list[np.ndarray]) -> list:
  """Examples of ``videobert_video_text`` for one English video.

  ``groups`` holds each sentence's action group ids (``text.actions``), one per
  WordPiece.
  """
  segs = [s for s in sentence_segments(sentences, record.clip_seconds, len(words))
          if ids[s[0]]]
  out = []
  for position, (index, first, last) in enumerate(segs):
    if position + 1 < len(segs):
      n_index, n_first, n_last = segs[position + 1]
      next_ids, next_words = ids[n_index], words[n_first:n_last]
      next_groups = groups[n_index]
    else:
      next_ids, next_words, next_groups = [], words[:0], []
    sentence = sentences[index]
    out.append((_key(record.video_id, index), {
        "video_id": record.video_id,
        "sentence_index": index,
        "start": np.float32(sentence.start),
        "end": np.float32(sentence.end),
        "text": sentence.text,
        "text_ids": np.asarray(ids[index], np.int32),
        "visual_words": np.asarray(words[first:last], np.int32),
        "next_text_ids": np.asarray(next_ids, np.int32),
        "next_visual_words": np.asarray(next_words, np.int32),
        "action_groups": np.asarray(groups[index], np.int32),
        "next_action_groups": np.asarray(next_groups, np.int32),
    }))
  return out


def examples_for_video(record: reader.VideoRecord, spec: BuildSpec,
                       empty_transcripts: list | None = None) -> list:
  """All ``(key, example)`` pairs of one video for ``spec.kind``.

  Raises a one-line CorpusError naming the bad file (a truncated .npy, a bad
  transcript) and the ``videos.jsonl`` line listing the video, unless
  ``spec.skip_bad``, in which case the video is logged and gives no examples.
  A transcript without words is no ASR: its path goes to ``empty_transcripts``
  (builds count them; Beam workers through ``corpus_builder.beam_examples_for_video``)
  or, where no list is given, to a logged warning.
  """
  try:
    if spec.kind in (TEXT, VIDEO_TEXT) and not record.is_english:
      return []
    sentences = load_sentences(record)
    if record.asr_path and not sentences:
      if empty_transcripts is None:
        logging.warning("%s: empty transcript, treated as no ASR", record.asr_path)
      else:
        empty_transcripts.append(record.asr_path)
    if spec.kind == TEXT:
      return text_examples(record, sentences,
                           tokenize([s.text for s in sentences], spec.vocab_path))
    words = visual_words(record, spec.codebook_path)
    if spec.kind == VIDEO:
      return video_examples(record, sentences, words, spec.chunk_tokens)
    texts = [s.text for s in sentences]
    ids = tokenize(texts, spec.vocab_path)
    from videobert_jax.text import actions  # pylint: disable=import-outside-toplevel
    groups = actions.action_groups(texts, ids, spec.vocab_path)
    return video_text_examples(record, sentences, ids, words, groups)
  except ValueError as e:  # CorpusError and transcript errors are ValueErrors
    if not isinstance(e, reader.CorpusError) and not hasattr(e, "path"):
      raise  # not about a file of the corpus: a bug, keep its traceback
    error = reader.with_index_line(e, record)
    if not spec.skip_bad:
      raise error from None
    logging.warning("skipping video %r: %s", record.video_id, error)
    return []
