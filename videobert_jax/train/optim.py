"""The optimizer of pretraining: Adam with linear warm-up and decay, and frozen tables.

Freezing is defined here once (``is_frozen``): the step stops gradients into the
frozen tables, so autodiff never computes them, and the optimizer gives them no
Adam moments and an exactly-zero update.
"""

from __future__ import annotations

import jax
import optax

# Input tables frozen by config.model.freeze_embeddings (the paper freezes the
# input embeddings). The word table is tied to the masked-token output
# projection; the embedding LayerNorm and the head's output bias keep training.
FROZEN_PARAMS = (("embeddings", "word", "embedding"),
                 ("embeddings", "position", "embedding"),
                 ("embeddings", "token_type", "embedding"))


def learning_rate_schedule(train_config) -> optax.Schedule:
  """Linear warm-up to ``learning_rate``, then linear decay to 0 at ``num_steps``."""
  peak = train_config.learning_rate
  warmup = int(train_config.warmup_steps)
  decay = optax.linear_schedule(peak, 0.0, max(1, train_config.num_steps - warmup))
  if warmup <= 0:
    return decay
  return optax.join_schedules(
      [optax.linear_schedule(0.0, peak, warmup), decay], [warmup])



def is_frozen(path) -> bool:
  """True for a parameter path (``tree_map_with_path`` style) named in FROZEN_PARAMS."""
  keys = tuple(getattr(entry, "key", None) for entry in path)
  return keys in FROZEN_PARAMS


def stop_frozen_gradients(params, frozen: bool):
  """``params`` with gradients stopped into the frozen tables (identity if not frozen)."""
  if not frozen:
    return params
  return jax.tree_util.tree_map_with_path(
      lambda path, p: jax.lax.stop_gradient(p) if is_frozen(path) else p, params)


def make_optimizer(config) -> optax.GradientTransformation:
  """Adam with the schedule and optional clipping; frozen tables get no update at all.

  Frozen parameters go through ``optax.set_to_zero`` inside
  ``optax.multi_transform``: they keep no Adam moments and their update is exactly
  zero, and they do not count towards the clipping norm.
  """
  train = config.train
  adam = optax.adam(learning_rate_schedule(train), b1=train.adam_b1, b2=train.adam_b2,
                    eps=train.adam_eps)
  if train.grad_clip_norm and train.grad_clip_norm > 0:
    adam = optax.chain(optax.clip_by_global_norm(train.grad_clip_norm), adam)
  if not config.model.freeze_embeddings:
    return adam

  def labels(params):
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "frozen" if is_frozen(path) else "trained", params)

  return optax.multi_transform({"trained": adam, "frozen": optax.set_to_zero()}, labels)

