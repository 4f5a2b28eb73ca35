"""The model batch: the one definition of the contract between seqio tasks and the model.

| field | shape, dtype | meaning |
| --- | --- | --- |
| input_ids | [B, T] int32 | ids in the ``tokens`` layout, 0-padded |
| token_type_ids | [B, T] int32 | 0 for text and specials before ``[>]``; 1 for ``[>]``, video, final ``[SEP]`` |
| attention_mask | [B, T] int32 | 1 for real tokens |
| masked_positions | [B, P] int32 | positions chosen for masked-token prediction |
| masked_ids | [B, P] int32 | the original ids at those positions |
| masked_weights | [B, P] float32 | 1 for a real prediction, 0 for padding |
| alignment_label | [B] int32 | 1 when text and video are aligned, 0 for a negative |
| alignment_weight | [B] float32 | 1 for video-text examples, 0 otherwise |
| objective | [B] int32 | ``TEXT``, ``VIDEO`` or ``VIDEO_TEXT`` (below) |

A *packed* batch (``tasks.packing``, ``config.data.pack``) holds up to S examples
per row side by side. It has ``segment_ids``, and with it:

| field | shape, dtype | meaning |
| --- | --- | --- |
| segment_ids | [B, T] int32 | 1, 2, ... for the row's 1st, 2nd, ... example; 0 for padding |
| positions | [B, T] int32 | position within its own example (restarts at 0) |
| masked_objective | [B, P] int32 | the objective of the example each prediction belongs to |
| cls_positions | [B, S] int32 | where each example's ``[CLS]`` is (0 for an empty slot) |
| alignment_label, alignment_weight, objective | [B, S] | per example (weight 0 for an empty slot) |

``masked_positions`` index the row; attention never crosses ``segment_ids``. A
batch without ``segment_ids`` is one example per row (what evaluation uses).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

# The three pretraining regimes of VideoBERT and their ids in ``objective``.
TEXT = 0  # text-only masked language modelling
VIDEO = 1  # video-only masked visual-word modelling
VIDEO_TEXT = 2  # video-text: masked modelling on both plus alignment
OBJECTIVE_NAMES = ("text", "video", "video_text")  # indexed by objective id
NUM_OBJECTIVES = len(OBJECTIVE_NAMES)

# name -> (axes, dtype); axes use "batch", "length" (T) and "predictions" (P).
FIELDS = {
    "input_ids": (("batch", "length"), np.int32),
    "token_type_ids": (("batch", "length"), np.int32),
    "attention_mask": (("batch", "length"), np.int32),
    "masked_positions": (("batch", "predictions"), np.int32),
    "masked_ids": (("batch", "predictions"), np.int32),
    "masked_weights": (("batch", "predictions"), np.float32),
    "alignment_label": (("batch",), np.int32),
    "alignment_weight": (("batch",), np.float32),
    "objective": (("batch",), np.int32),
}
PER_EXAMPLE = ("alignment_label", "alignment_weight", "objective")  # [B] or [B, S]
# Fields only a packed batch has; "segments" is S, examples per row at most.
PACKED_ONLY = {
    "segment_ids": (("batch", "length"), np.int32),
    "positions": (("batch", "length"), np.int32),
    "masked_objective": (("batch", "predictions"), np.int32),
    "cls_positions": (("batch", "segments"), np.int32),
}


def fields(packed: bool = False) -> dict:
  """``{name: (axes, dtype)}`` of an unpacked (default) or a packed batch."""
  if not packed:
    return dict(FIELDS)
  out = {name: ((axes + ("segments",)) if name in PER_EXAMPLE else axes, dtype)
         for name, (axes, dtype) in FIELDS.items()}
  out.update(PACKED_ONLY)
  return out


def is_packed(batch: Mapping) -> bool:
  """True for a packed batch (several examples per row)."""
  return "segment_ids" in batch


def sizes(data_config) -> dict:
  """``{seq_len, max_predictions, max_segments}`` of the model batch of ``config.data``.

  ``max_segments`` is None for unpacked batches; packed rows use
  ``data.packed_max_predictions`` as P.
  """
  def get(key, default=None):  # ConfigDicts, dicts and plain objects alike
    if isinstance(data_config, Mapping) or hasattr(data_config, "get"):
      return data_config.get(key, default)
    return getattr(data_config, key, default)

  packed = bool(get("pack", False))
  return {"seq_len": int(get("max_seq_len")),
          "max_predictions": int(get("packed_max_predictions") if packed
                                 else get("max_predictions")),
          "max_segments": int(get("max_segments")) if packed else None}


def field_shapes(batch_size: int, seq_len: int, max_predictions: int,
                 max_segments: int | None = None) -> dict:
  """Returns ``{name: (shape, dtype)}``; a packed batch when ``max_segments`` is given."""
  lengths = {"batch": batch_size, "length": seq_len, "predictions": max_predictions,
             "segments": max_segments}
  return {name: (tuple(lengths[a] for a in axes), dtype)
          for name, (axes, dtype) in fields(max_segments is not None).items()}


def zeros(batch_size: int, seq_len: int, max_predictions: int,
          max_segments: int | None = None) -> dict:
  """An all-padding batch (numpy), e.g. for ``jax.eval_shape`` and initialisation."""
  return {name: np.zeros(shape, dtype)
          for name, (shape, dtype) in field_shapes(
              batch_size, seq_len, max_predictions, max_segments).items()}


def check(batch: Mapping[str, np.ndarray]) -> None:
  """Raises ValueError naming the field when ``batch`` breaks the contract."""
  expected = fields(is_packed(batch))
  missing = sorted(set(expected) - set(batch))
  if missing:
    raise ValueError(f"batch is missing fields {missing}")
  seen = {}
  for name, (axes, dtype) in expected.items():
    arr = batch[name]
    if len(arr.shape) != len(axes):
      raise ValueError(f"batch field {name!r} has shape {arr.shape}, expected axes {axes}")
    if np.dtype(arr.dtype) != np.dtype(dtype):
      raise ValueError(f"batch field {name!r} has dtype {arr.dtype}, expected {np.dtype(dtype)}")
    for axis, size in zip(axes, arr.shape):
      if seen.setdefault(axis, size) != size:
        raise ValueError(f"batch field {name!r} has {size} along {axis!r}, "
                         f"others {seen[axis]}")


def to_packed(batch: Mapping[str, np.ndarray], max_predictions: int,
              max_segments: int) -> dict:
  """An unpacked batch in the packed layout: each row one example (segment 1).

  Lets a source of unpacked batches (tests, hand-made data) feed a model set up
  for packed rows; the losses come out the same, only without packing's gain.
  """
  b, t = batch["input_ids"].shape
  p = batch["masked_positions"].shape[1]
  if p > max_predictions:
    raise ValueError(f"batch has {p} predictions per row, packed rows hold {max_predictions}")
  out = zeros(b, t, max_predictions, max_segments)
  for name in ("input_ids", "token_type_ids", "attention_mask"):
    out[name][:] = batch[name]
  for name in ("masked_positions", "masked_ids", "masked_weights"):
    out[name][:, :p] = batch[name]
  out["masked_objective"][:, :p] = np.asarray(batch["objective"])[:, None]
  real = np.asarray(batch["attention_mask"]) > 0
  out["segment_ids"][:] = real
  out["positions"][:] = np.where(real, np.arange(t)[None], 0)
  for name in PER_EXAMPLE:
    out[name][:, 0] = batch[name]
  return out
