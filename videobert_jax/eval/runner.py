"""Runs a VideoBERT on evaluation batches: masked-token scores and hidden states.

Evaluation batches are built on the host (``sequences.make_batch``), padded to a
fixed batch size (one compilation) that divides the mesh's data axis, sharded
over ``data`` like training batches, and run with the parameters where they
were restored.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from tqdm import tqdm

from videobert_jax.eval import sequences


def _forward(module, batch, candidate_ids):
  """Logits at masked positions restricted to ``candidate_ids``, and hidden states."""
  hidden = module.encode(batch["input_ids"], batch["token_type_ids"],
                         batch["attention_mask"], deterministic=True)
  logits = module.mlm_logits_at(hidden, batch["masked_positions"])
  return logits[..., candidate_ids], hidden


class MaskedModel:
  """A model with parameters, scoring candidates at masked positions in batches."""

  def __init__(self, model, params, mesh, seq_len: int, batch_size: int = 32):
    import jax  # pylint: disable=g-import-not-at-top
    from videobert_jax.models import partitioning  # pylint: disable=g-import-not-at-top
    self.model = model
    self.params = params
    self.mesh = mesh
    self.seq_len = seq_len
    data = mesh.shape[partitioning.DATA_AXIS]
    self.batch_size = -(-batch_size // data) * data  # a multiple of the data axis
    self._partitioning = partitioning
    self._batch_sharding = jax.sharding.NamedSharding(
        mesh, jax.sharding.PartitionSpec(partitioning.DATA_AXIS))
    self._forward = jax.jit(
        lambda params, batch, candidates: model.apply(
            {"params": params}, batch, candidates, method=_forward))

  def run(self, examples: Sequence[sequences.Example],
          positions: Sequence[Sequence[int]], candidate_ids: np.ndarray, *,
          reduce_hidden: Callable[[Sequence[sequences.Example], np.ndarray],
                                  np.ndarray] | None = None,
          desc: str | None = None) -> dict[str, Any]:
    """Scores every example; returns ``{"logits": [N, P, C]}`` (+ ``"hidden"``).

    Args:
      examples: assembled inputs.
      positions: per example, positions to score (padded to the longest P).
      candidate_ids: token ids to score at each position, int32 [C].
      reduce_hidden: ``f(batch_examples, hidden [n, T, H]) -> [n, ...]`` applied
        to each batch's last hidden states (float32); the results, concatenated,
        are returned as ``"hidden"``. Reducing per batch keeps memory at one batch.
      desc: tqdm description; None hides the bar.
    """
    import jax  # pylint: disable=g-import-not-at-top
    num_predictions = max(1, max((len(p) for p in positions), default=1))
    candidates = np.asarray(candidate_ids, np.int32)
    logits, hidden = [], []
    starts = range(0, len(examples), self.batch_size)
    for start in tqdm(starts, desc=desc, unit="batch", disable=desc is None,
                      leave=False):
      chunk = list(examples[start:start + self.batch_size])
      chunk_positions = [list(p) for p in positions[start:start + self.batch_size]]
      batch = sequences.make_batch(chunk, self.seq_len, chunk_positions,
                                   self.batch_size)
      # Pad P to the global maximum so every batch has one shape.
      if batch["masked_positions"].shape[1] < num_predictions:
        extra = num_predictions - batch["masked_positions"].shape[1]
        for key in ("masked_positions", "masked_ids", "masked_weights"):
          batch[key] = np.pad(batch[key], ((0, 0), (0, extra)))
      with self._partitioning.activate(self.mesh):
        device_batch = {k: jax.device_put(v, self._batch_sharding)
                        for k, v in batch.items()}
        out_logits, out_hidden = self._forward(self.params, device_batch, candidates)
      n = len(chunk)
      logits.append(np.asarray(jax.device_get(out_logits), np.float32)[:n])
      if reduce_hidden is not None:
        hidden.append(np.asarray(reduce_hidden(
            chunk, np.asarray(jax.device_get(out_hidden), np.float32)[:n])))
    out = {"logits": np.concatenate(logits) if logits else
           np.zeros((0, num_predictions, len(candidates)), np.float32)}
    if reduce_hidden is not None:
      out["hidden"] = np.concatenate(hidden) if hidden else np.zeros((0,), np.float32)
    return out
