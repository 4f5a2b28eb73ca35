"""Pretraining losses: masked-token loss per objective, alignment loss, weighted sum.

VideoBERT mixes three regimes in one batch (``videobert_jax.batch``): text-only
masked language modelling, video-only masked visual-word modelling and video-text
(masked modelling on both plus alignment). Each regime's masked-token loss is a mean
over its own real predictions (``masked_weights``), so the weights in
``config.train.objective_weights`` mean the same thing whatever the mixture rates;
the alignment loss is a mean over examples with ``alignment_weight`` 1. Packed
batches give the same sums: each prediction carries its example's objective
(``masked_objective``) and each example its own alignment logits, label and weight.
"""

from __future__ import annotations

from typing import Mapping

import jax.numpy as jnp
import optax

from videobert_jax import batch as batch_lib

ALIGNMENT = "alignment"
LOSS_NAMES = batch_lib.OBJECTIVE_NAMES + (ALIGNMENT,)


def _weighted_sum(values, weights):
  """(sum(values * weights), sum(weights))."""
  return jnp.sum(values * weights), jnp.sum(weights)


def pretraining_loss(outputs: Mapping[str, jnp.ndarray], batch: Mapping[str, jnp.ndarray],
                     objective_weights: Mapping[str, float]):
  """Returns ``(loss, sums)`` for one batch.

  Args:
    outputs: the model's outputs, ``mlm_logits`` [B, P, V] (with ``mlm_targets``
      [B, P] when V is a subset of the vocabulary) and
      ``alignment_logits`` [B, 2] (packed: [B, S, 2]), both float32.
    batch: the model batch (``videobert_jax.batch``), packed or not.
    objective_weights: weight of each loss, keys ``text``, ``video``,
      ``video_text`` and ``alignment``.

  Returns:
    The weighted sum of the four mean losses (a scalar, what the gradient
    follows) and a flat dict of scalar sums and counts, which add up across
    steps and devices (``summarize`` divides them): ``loss_sum`` and ``steps``,
    ``<objective>/mlm_loss_sum``, ``<objective>/mlm_correct`` and
    ``<objective>/predictions``, ``alignment/loss_sum``, ``alignment/correct``
    and ``alignment/examples``; ``real_tokens`` (non-padding positions) and
    ``real_examples`` (examples, however many per row) for the throughput.
  """
  missing = [name for name in LOSS_NAMES if name not in objective_weights]
  if missing:
    raise ValueError(f"objective_weights lacks {missing}; it needs {list(LOSS_NAMES)}")
  logits = outputs["mlm_logits"].astype(jnp.float32)
  # With model.mlm_vocab_ids the logits rank those ids only, and the model gives the
  # targets as indices among them.
  targets = outputs.get("mlm_targets", batch["masked_ids"])
  token_loss = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  token_correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  weights = batch["masked_weights"].astype(jnp.float32)
  # Packed rows mix objectives; unpacked, a prediction has its row's objective.
  prediction_objective = (batch["masked_objective"] if "masked_objective" in batch
                          else batch["objective"][:, None])

  sums = {}
  loss = jnp.zeros((), jnp.float32)
  for objective_id, name in enumerate(batch_lib.OBJECTIVE_NAMES):
    in_objective = (prediction_objective == objective_id).astype(jnp.float32)
    loss_sum, count = _weighted_sum(token_loss, weights * in_objective)
    correct, _ = _weighted_sum(token_correct, weights * in_objective)
    sums[f"{name}/mlm_loss_sum"] = loss_sum
    sums[f"{name}/mlm_correct"] = correct
    sums[f"{name}/predictions"] = count
    loss = loss + objective_weights[name] * loss_sum / jnp.maximum(count, 1e-8)

  # [B, 2] or, packed, [B, S, 2]: one classification per example either way.
  align_logits = outputs["alignment_logits"].astype(jnp.float32).reshape(-1, 2)
  labels = batch["alignment_label"].reshape(-1)
  align_weight = batch["alignment_weight"].astype(jnp.float32).reshape(-1)
  align_sum, examples = _weighted_sum(
      optax.softmax_cross_entropy_with_integer_labels(align_logits, labels), align_weight)
  align_correct, _ = _weighted_sum(
      (jnp.argmax(align_logits, axis=-1) == labels).astype(jnp.float32), align_weight)
  sums[f"{ALIGNMENT}/loss_sum"] = align_sum
  sums[f"{ALIGNMENT}/correct"] = align_correct
  sums[f"{ALIGNMENT}/examples"] = examples
  loss = loss + objective_weights[ALIGNMENT] * align_sum / jnp.maximum(examples, 1e-8)
  sums["loss_sum"] = loss
  sums["steps"] = jnp.ones((), jnp.float32)
  sums.update(_real_counts(batch))
  return loss, sums


def _real_counts(batch) -> dict:
  """Non-padding tokens and examples of ``batch``: the useful work of a step."""
  mask = batch["attention_mask"]
  if "segment_ids" in batch:  # segments are numbered 1..k in each row
    examples = jnp.sum(jnp.max(batch["segment_ids"], axis=-1))
  else:
    examples = jnp.sum(jnp.any(mask > 0, axis=-1))
  return {"real_tokens": jnp.sum(mask).astype(jnp.float32),
          "real_examples": examples.astype(jnp.float32)}


# sum key -> (mean key, count key) for ``summarize``.
_MEANS = {
    **{f"{n}/mlm_loss_sum": (f"{n}/mlm_loss", f"{n}/predictions")
       for n in batch_lib.OBJECTIVE_NAMES},
    **{f"{n}/mlm_correct": (f"{n}/mlm_accuracy", f"{n}/predictions")
       for n in batch_lib.OBJECTIVE_NAMES},
    f"{ALIGNMENT}/loss_sum": (f"{ALIGNMENT}/loss", f"{ALIGNMENT}/examples"),
    f"{ALIGNMENT}/correct": (f"{ALIGNMENT}/accuracy", f"{ALIGNMENT}/examples"),
    "loss_sum": ("loss", "steps"),
}


def add_sums(total: dict | None, sums: Mapping[str, float]) -> dict:
  """``total + sums`` key by key (``total`` None starts a new total)."""
  if total is None:
    return {k: float(v) for k, v in sums.items()}
  return {k: total[k] + float(v) for k, v in sums.items()}


def summarize(sums: Mapping[str, float]) -> dict[str, float]:
  """Means from summed metrics: each loss and accuracy over its own predictions.

  An objective with no predictions in the window gets no mean (rather than a
  misleading 0); the counts themselves are kept, and so is any other key
  (``grad_norm_sum`` becomes ``grad_norm`` over ``steps``).
  """
  result = {}
  for key, value in sums.items():
    if key in _MEANS:
      mean_key, count_key = _MEANS[key]
      if sums[count_key] > 0:
        result[mean_key] = float(value) / float(sums[count_key])
    elif key.endswith("_sum"):
      result[key[:-len("_sum")]] = float(value) / max(float(sums["steps"]), 1.0)
    else:
      result[key] = float(value)
  return result
