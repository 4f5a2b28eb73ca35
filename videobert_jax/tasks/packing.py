"""Sequence packing: several pretraining examples per model row (greedy first-fit).

A VideoBERT example is short (a sentence is about 17 WordPieces plus a handful of
visual words) while a row holds ``max_seq_len`` tokens, so an unpacked row is
mostly padding that the model computes anyway. Packing puts consecutive
examples of the (already shuffled) mixture into one row, first-fit within a
window of ``PACK_WINDOW`` examples, as long as the row's tokens (T), masked
predictions (the packed P) and examples (S, ``max_segments``) all fit. Nothing
is truncated or dropped: a packed row is exactly its examples side by side.

Each example keeps what makes it one example (``videobert_jax.batch``, packed
fields): ``segment_ids`` (1, 2, ... per example, 0 padding) block attention
between examples, ``positions`` restart at 0 with each example, its ``[CLS]`` is
at ``cls_positions`` (alignment is predicted per example), its masked positions
are shifted to where it sits in the row, and each prediction carries its
example's ``objective`` (``masked_objective``), so per-objective losses are the
same sums as unpacked.

seqio's ``trim_and_pack_dataset`` packs each sequence feature on its own and
drops scalar features, and it cannot shift ``masked_positions`` by the row
offset; hence this packer. The packing itself is numpy (``pack_examples``),
run inside tf.data with ``tf.numpy_function``: deterministic for a given input
order, so resuming by skipping batches replays the same rows.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import seqio
import tensorflow as tf

from videobert_jax import batch as batch_lib
from videobert_jax.tasks import preprocessors

PACK_WINDOW = 256  # examples packed together; rows left part-full only at window ends

_SCALARS = ("alignment_label", "alignment_weight", "objective", "mlm_weight")
_ROW_FIELDS = ("input_ids", "token_type_ids", "attention_mask", "segment_ids",
               "positions", "masked_positions", "masked_ids", "masked_weights",
               "masked_objective", "cls_positions", "alignment_label",
               "alignment_weight", "objective")


def first_fit(num_tokens: Sequence[int], num_masked: Sequence[int], *, seq_len: int,
              max_predictions: int, max_segments: int) -> tuple[np.ndarray, int]:
  """Row of each example (first row with room for it, in order) and the row count.

  Raises ValueError for an example that fits no row at all (longer than
  ``seq_len`` or with more than ``max_predictions`` predictions).
  """
  num_tokens = np.asarray(num_tokens, np.int64)
  num_masked = np.asarray(num_masked, np.int64)
  n = len(num_tokens)
  free_tokens = np.zeros(n, np.int64)
  free_masked = np.zeros(n, np.int64)
  free_segments = np.zeros(n, np.int64)
  rows = np.zeros(n, np.int64)
  num_rows = 0
  for i in range(n):
    if num_tokens[i] > seq_len or num_masked[i] > max_predictions:
      raise ValueError(f"an example of {num_tokens[i]} tokens and {num_masked[i]} "
                       f"predictions fits no row of {seq_len} tokens and "
                       f"{max_predictions} predictions")
    fits = ((free_tokens[:num_rows] >= num_tokens[i])
            & (free_masked[:num_rows] >= num_masked[i]) & (free_segments[:num_rows] > 0))
    row = int(np.argmax(fits)) if fits.any() else num_rows
    if row == num_rows:
      free_tokens[row], free_masked[row] = seq_len, max_predictions
      free_segments[row] = max_segments
      num_rows += 1
    free_tokens[row] -= num_tokens[i]
    free_masked[row] -= num_masked[i]
    free_segments[row] -= 1
    rows[i] = row
  return rows, num_rows


def empty_rows(num_rows: int, seq_len: int, max_predictions: int,
               max_segments: int) -> dict[str, np.ndarray]:
  """All-padding packed rows, with the dtypes of the packed batch contract."""
  return batch_lib.zeros(num_rows, seq_len, max_predictions, max_segments=max_segments)


def pack_examples(examples: Mapping[str, np.ndarray], *, seq_len: int,
                  max_predictions: int, max_segments: int) -> dict[str, np.ndarray]:
  """Packs a window of padded examples into rows of the packed batch contract.

  Args:
    examples: ``input_ids``/``token_type_ids`` [N, >=L], ``masked_positions``/
      ``masked_ids`` [N, >=M] (right-padded), ``num_tokens``/``num_masked`` [N]
      (L and M of each example) and the scalars ``alignment_label``,
      ``alignment_weight``, ``objective`` and ``mlm_weight`` [N].
    seq_len: T of a row.
    max_predictions: P of a row (masked predictions of all its examples).
    max_segments: S, examples per row at most.

  Returns:
    ``{field: [R, ...]}`` with the fields of ``batch.fields(packed=True)``.
  """
  n_tok = np.asarray(examples["num_tokens"]).astype(np.int64)
  n_msk = np.asarray(examples["num_masked"]).astype(np.int64)
  rows, num_rows = first_fit(n_tok, n_msk, seq_len=seq_len,
                             max_predictions=max_predictions, max_segments=max_segments)
  out = empty_rows(num_rows, seq_len, max_predictions, max_segments)
  used_tokens = np.zeros(num_rows, np.int64)
  used_masked = np.zeros(num_rows, np.int64)
  used_segments = np.zeros(num_rows, np.int64)
  for i, row in enumerate(rows):
    start, length = used_tokens[row], n_tok[i]
    q, m = used_masked[row], n_msk[i]
    segment = used_segments[row]
    span = slice(start, start + length)
    out["input_ids"][row, span] = examples["input_ids"][i, :length]
    out["token_type_ids"][row, span] = examples["token_type_ids"][i, :length]
    out["attention_mask"][row, span] = 1
    out["segment_ids"][row, span] = segment + 1
    out["positions"][row, span] = np.arange(length)
    preds = slice(q, q + m)
    out["masked_positions"][row, preds] = examples["masked_positions"][i, :m] + start
    out["masked_ids"][row, preds] = examples["masked_ids"][i, :m]
    out["masked_weights"][row, preds] = examples["mlm_weight"][i]
    out["masked_objective"][row, preds] = examples["objective"][i]
    out["cls_positions"][row, segment] = start
    for key in ("alignment_label", "alignment_weight", "objective"):
      out[key][row, segment] = examples[key][i]
    used_tokens[row] += length
    used_masked[row] += m
    used_segments[row] += 1
  return out


def pack_dataset(ds: tf.data.Dataset, *, seq_len: int, example_predictions: int,
                 max_predictions: int, max_segments: int,
                 window: int = PACK_WINDOW) -> tf.data.Dataset:
  """Packed model rows from a dataset of unpadded task examples (the converter's input).

  ``example_predictions`` is the P of one example (what masking keeps at most),
  ``max_predictions`` the P of a packed row (at least that).
  """
  if max_predictions < example_predictions:
    raise ValueError(f"a packed row's max_predictions {max_predictions} is below one "
                     f"example's {example_predictions}")
  spec = batch_lib.fields(packed=True)

  def lengths(ex):
    out = {k: ex[k] for k in ("input_ids", "token_type_ids", "masked_positions",
                              "masked_ids") + _SCALARS}
    out["num_tokens"] = tf.size(ex["input_ids"])
    out["num_masked"] = tf.size(ex["masked_positions"])
    return out

  def pack(*arrays):
    packed = pack_examples(dict(zip(keys, arrays)), seq_len=seq_len,
                           max_predictions=max_predictions, max_segments=max_segments)
    return [packed[k] for k in _ROW_FIELDS]

  ds = ds.map(lengths, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.padded_batch(window, padded_shapes={
      **{k: [seq_len] for k in ("input_ids", "token_type_ids")},
      **{k: [example_predictions] for k in ("masked_positions", "masked_ids")},
      **{k: [] for k in _SCALARS + ("num_tokens", "num_masked")}})
  keys = sorted(ds.element_spec)
  sizes = {"length": seq_len, "predictions": max_predictions, "segments": max_segments}

  def pack_window(batch):
    outputs = tf.numpy_function(pack, [batch[k] for k in keys],
                                [tf.as_dtype(spec[k][1]) for k in _ROW_FIELDS],
                                stateful=False)
    return {k: tf.ensure_shape(v, [None] + [sizes[a] for a in spec[k][0][1:]])
            for k, v in zip(_ROW_FIELDS, outputs)}

  return ds.map(pack_window, num_parallel_calls=tf.data.AUTOTUNE).unbatch()


class PackedFeatureConverter(preprocessors.VideoBertFeatureConverter):
  """Packs task examples into rows of the packed model batch (``batch.fields(packed=True)``).

  ``max_predictions`` and ``max_segments`` are a row's P and S; the task's own
  ``masked_positions`` length is one example's P.
  """

  MODEL_FEATURES = {
      name: seqio.FeatureConverter.FeatureSpec(dtype=tf.as_dtype(dtype), rank=len(axes) - 1)
      for name, (axes, dtype) in batch_lib.fields(packed=True).items()}

  def __init__(self, *, max_predictions: int, max_segments: int,
               window: int = PACK_WINDOW, **kwargs):
    """Creates the converter for rows of ``max_predictions`` and ``max_segments``."""
    super().__init__(**kwargs)
    self.max_predictions, self.max_segments, self.window = (
        max_predictions, max_segments, window)

  def _convert_features(self, ds, task_feature_lengths):
    return pack_dataset(ds, seq_len=task_feature_lengths["input_ids"],
                        example_predictions=task_feature_lengths["masked_positions"],
                        max_predictions=self.max_predictions,
                        max_segments=self.max_segments, window=self.window)

  def get_model_feature_lengths(self, task_feature_lengths):
    sizes = {"length": task_feature_lengths["input_ids"],
             "predictions": self.max_predictions, "segments": self.max_segments}
    return {name: sizes[axes[1]] for name, (axes, _) in
            batch_lib.fields(packed=True).items()}


def real_token_share(batch: Mapping[str, np.ndarray]) -> float:
  """Real (non-padding) tokens over all positions of ``batch``."""
  mask = np.asarray(batch["attention_mask"])
  return float(mask.sum()) / max(mask.size, 1)
