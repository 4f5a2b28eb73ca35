"""Pretraining losses: masked-token loss per objective, alignment loss, weighted sum.

VideoBERT mixes three regimes in one batch (``videobert_jax.objectives``): text-only
masked language modelling, video-only masked visual-word modelling and video-text
(masked modelling on both plus alignment). Each regime's masked-token loss is a mean
over its own real predictions (``masked_weights``), so the weights in
``config.train.objective_weights`` mean the same thing whatever the mixture rates;
the alignment loss is a mean over examples with ``alignment_weight`` 1.
"""

from __future__ import annotations

from typing import Mapping

import jax.numpy as jnp
import optax

from videobert_jax import objectives

ALIGNMENT = "alignment"
LOSS_NAMES = objectives.NAMES + (ALIGNMENT,)


def _weighted_mean(values, weights):
  """sum(values * weights) / sum(weights), 0 where there is no weight."""
  total = jnp.sum(weights)
  return jnp.sum(values * weights) / jnp.maximum(total, 1e-8), total


def pretraining_loss(outputs: Mapping[str, jnp.ndarray], batch: Mapping[str, jnp.ndarray],
                     objective_weights: Mapping[str, float]):
  """Returns ``(loss, metrics)`` for one batch.

  Args:
    outputs: the model's outputs, ``mlm_logits`` [B, P, V] and
      ``alignment_logits`` [B, 2], both float32.
    batch: the model batch (``videobert_jax.batch``).
    objective_weights: weight of each loss, keys ``text``, ``video``,
      ``video_text`` and ``alignment``.

  Returns:
    The weighted sum of the four losses (a scalar) and a flat dict of scalar
    metrics: ``loss``, ``<objective>/mlm_loss``, ``<objective>/mlm_accuracy``,
    ``<objective>/predictions`` (how many real predictions it averaged over),
    ``alignment/loss``, ``alignment/accuracy`` and ``alignment/examples``.
  """
  missing = [name for name in LOSS_NAMES if name not in objective_weights]
  if missing:
    raise ValueError(f"objective_weights lacks {missing}; it needs {list(LOSS_NAMES)}")
  logits = outputs["mlm_logits"].astype(jnp.float32)
  targets = batch["masked_ids"]
  token_loss = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  token_correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  weights = batch["masked_weights"].astype(jnp.float32)

  metrics = {}
  loss = jnp.zeros((), jnp.float32)
  for objective_id, name in enumerate(objectives.NAMES):
    in_objective = (batch["objective"] == objective_id).astype(jnp.float32)[:, None]
    objective_weight = weights * in_objective
    mlm_loss, count = _weighted_mean(token_loss, objective_weight)
    accuracy, _ = _weighted_mean(token_correct, objective_weight)
    metrics[f"{name}/mlm_loss"] = mlm_loss
    metrics[f"{name}/mlm_accuracy"] = accuracy
    metrics[f"{name}/predictions"] = count
    loss = loss + objective_weights[name] * mlm_loss

  align_logits = outputs["alignment_logits"].astype(jnp.float32)
  labels = batch["alignment_label"]
  align_weight = batch["alignment_weight"].astype(jnp.float32)
  align_loss, examples = _weighted_mean(
      optax.softmax_cross_entropy_with_integer_labels(align_logits, labels), align_weight)
  align_accuracy, _ = _weighted_mean(
      (jnp.argmax(align_logits, axis=-1) == labels).astype(jnp.float32), align_weight)
  metrics[f"{ALIGNMENT}/loss"] = align_loss
  metrics[f"{ALIGNMENT}/accuracy"] = align_accuracy
  metrics[f"{ALIGNMENT}/examples"] = examples
  loss = loss + objective_weights[ALIGNMENT] * align_loss
  metrics["loss"] = loss
  return loss, metrics
