"""Evaluation inputs: templates with ``[MASK]`` slots plus visual words -> model batches.

A template is the text part of an input, e.g. ``now let me show you how to [MASK]
the [MASK] .``; ``[MASK]`` marks a slot to predict and the rest is WordPiece
tokenised. The assembled sequence follows pretraining (``preprocessors.assemble``):
``[CLS] text [>] video [SEP]`` with token type 0 up to the text's end and 1 from
``[>]`` on, or ``[CLS] text [SEP]`` (all type 0) without video. When the visual
words do not fit, they are subsampled evenly over the segment (pretraining also
subsamples video, by 1..5), so the model sees the whole segment.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Sequence

import numpy as np

from videobert_jax import batch as batch_lib
from videobert_jax import tokens

MASK_TOKEN = "[MASK]"
ZEROSHOT_TEMPLATE = "now let me show you how to [MASK] the [MASK] ."
CAPTIONING_TEMPLATE = "now let's [MASK] the [MASK] to the [MASK], and then [MASK] the [MASK] ."


@dataclasses.dataclass(frozen=True)
class Example:
  """One assembled input sequence (unpadded) and where its masks are."""

  input_ids: np.ndarray  # int32 [n]
  token_type_ids: np.ndarray  # int32 [n]
  text_mask_positions: tuple[int, ...]  # positions of [MASK] in the text, in order
  video_positions: tuple[int, ...]  # positions of the visual-word (or masked video) slots


def encode_template(template: str, vocab_path: str | None = None) -> list[int]:
  """WordPiece ids of a template, ``[MASK]`` slots as ``tokens.MASK_ID``.

  Raises:
    ValueError: the template has no ``[MASK]``.
  """
  from videobert_jax.text import wordpiece  # pylint: disable=g-import-not-at-top
  parts = re.split(r"(\[MASK\])", template)
  ids = []
  for part in parts:
    if part == MASK_TOKEN:
      ids.append(tokens.MASK_ID)
    elif part.strip():
      ids.extend(wordpiece.encode(part, vocab_path))
  if tokens.MASK_ID not in ids:
    raise ValueError(f"template {template!r} has no {MASK_TOKEN} slot")
  return ids


def fit_video(video_ids: Sequence[int], budget: int) -> np.ndarray:
  """At most ``budget`` ids of ``video_ids``, subsampled evenly when too many."""
  video_ids = np.asarray(video_ids, np.int64)
  if budget <= 0:
    return video_ids[:0]
  if len(video_ids) <= budget:
    return video_ids
  keep = np.linspace(0, len(video_ids) - 1, budget).round().astype(np.int64)
  return video_ids[keep]


def assemble(text_ids: Sequence[int], video_token_ids: Sequence[int] | None,
             layout: tokens.TokenLayout, max_len: int,
             max_video_tokens: int | None = None) -> Example:
  """``[CLS] text [>] video [SEP]`` (or ``[CLS] text [SEP]`` when video is None).

  Args:
    text_ids: WordPiece ids (``MASK_ID`` at slots); kept whole, never truncated.
    video_token_ids: token ids of visual words (``layout.visual_ids``) or of
      ``[MASK]`` for video slots to predict; None for a text-only input.
    layout: the token layout.
    max_len: the model's sequence length T.
    max_video_tokens: extra cap on the video part (pretraining's budget).

  Raises:
    ValueError: the text alone does not fit ``max_len``.
  """
  text_ids = np.asarray(text_ids, np.int64)
  room = max_len - len(text_ids) - (3 if video_token_ids is not None else 2)
  if room < (1 if video_token_ids is not None else 0):
    raise ValueError(f"the template's {len(text_ids)} WordPieces leave no room in a "
                     f"sequence of {max_len} tokens")
  ids = [layout.cls_id, *text_ids.tolist()]
  types = [0] * len(ids)
  video_positions: tuple[int, ...] = ()
  if video_token_ids is not None:
    budget = room if max_video_tokens is None else min(room, max_video_tokens)
    video = fit_video(video_token_ids, budget)
    start = len(ids) + 1
    ids += [layout.video_sep_id, *video.tolist(), layout.sep_id]
    types += [1] * (len(video) + 2)
    video_positions = tuple(range(start, start + len(video)))
  else:
    ids.append(layout.sep_id)
    types.append(0)
  text_masks = tuple(i for i in range(1, 1 + len(text_ids))
                     if ids[i] == tokens.MASK_ID)
  return Example(input_ids=np.asarray(ids, np.int32),
                 token_type_ids=np.asarray(types, np.int32),
                 text_mask_positions=text_masks, video_positions=video_positions)


def make_batch(examples: Sequence[Example], seq_len: int,
               positions: Sequence[Sequence[int]], batch_size: int | None = None) -> dict:
  """Pads examples into a model batch (``videobert_jax.batch``).

  Args:
    examples: assembled inputs, each at most ``seq_len`` long.
    seq_len: T.
    positions: per example, the positions to predict (masked_positions); P is
      the longest list; shorter lists are padded with weight 0.
    batch_size: pad the batch to this many rows (fixed shapes for jit); rows
      past ``len(examples)`` are all padding.
  """
  batch_size = batch_size or len(examples)
  num_predictions = max(1, max((len(p) for p in positions), default=1))
  out = batch_lib.zeros(batch_size, seq_len, num_predictions)
  for row, (example, pos) in enumerate(zip(examples, positions)):
    n = len(example.input_ids)
    if n > seq_len:
      raise ValueError(f"example of {n} tokens is longer than seq_len {seq_len}")
    out["input_ids"][row, :n] = example.input_ids
    out["token_type_ids"][row, :n] = example.token_type_ids
    out["attention_mask"][row, :n] = 1
    out["masked_positions"][row, :len(pos)] = pos
    out["masked_ids"][row, :len(pos)] = example.input_ids[list(pos)]
    out["masked_weights"][row, :len(pos)] = 1.0
    has_video = int(example.token_type_ids.max(initial=0)) == 1  # [>] present
    out["objective"][row] = batch_lib.VIDEO_TEXT if has_video else batch_lib.TEXT
    out["alignment_label"][row] = 1
    out["alignment_weight"][row] = 0.0
  return out
