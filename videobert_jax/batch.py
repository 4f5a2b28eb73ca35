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


def field_shapes(batch_size: int, seq_len: int, max_predictions: int) -> dict:
  """Returns ``{name: (shape, dtype)}`` for a batch of the given sizes."""
  sizes = {"batch": batch_size, "length": seq_len, "predictions": max_predictions}
  return {name: (tuple(sizes[a] for a in axes), dtype)
          for name, (axes, dtype) in FIELDS.items()}


def zeros(batch_size: int, seq_len: int, max_predictions: int) -> dict:
  """An all-padding batch (numpy), e.g. for ``jax.eval_shape`` and initialisation."""
  return {name: np.zeros(shape, dtype)
          for name, (shape, dtype) in field_shapes(
              batch_size, seq_len, max_predictions).items()}


def check(batch: Mapping[str, np.ndarray]) -> None:
  """Raises ValueError naming the field when ``batch`` breaks the contract."""
  missing = sorted(set(FIELDS) - set(batch))
  if missing:
    raise ValueError(f"batch is missing fields {missing}")
  b = t = p = None
  for name, (axes, dtype) in FIELDS.items():
    arr = batch[name]
    if len(arr.shape) != len(axes):
      raise ValueError(f"batch field {name!r} has shape {arr.shape}, expected axes {axes}")
    if np.dtype(arr.dtype) != np.dtype(dtype):
      raise ValueError(f"batch field {name!r} has dtype {arr.dtype}, expected {np.dtype(dtype)}")
    for axis, size in zip(axes, arr.shape):
      if axis == "batch":
        b = size if b is None else b
        if size != b:
          raise ValueError(f"batch field {name!r} has batch size {size}, others {b}")
      elif axis == "length":
        t = size if t is None else t
        if size != t:
          raise ValueError(f"batch field {name!r} has length {size}, others {t}")
      else:
        p = size if p is None else p
        if size != p:
          raise ValueError(f"batch field {name!r} has {size} predictions, others {p}")
