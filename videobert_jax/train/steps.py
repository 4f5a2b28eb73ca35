"""The pure steps of pretraining: ``train_step`` and ``eval_step``.

Both return summed metrics and their counts (``models.losses``), which add up
over steps, devices and hosts; the loop divides them when it reports.
"""

from __future__ import annotations

import jax
import optax
from flax.training import train_state

from videobert_jax.models import losses
from videobert_jax.train import optim

TrainState = train_state.TrainState


def train_step(state: TrainState, batch, rng, *, objective_weights, frozen: bool):
  """One optimizer step; returns the new state and the step's summed metrics.

  Pure: dropout randomness comes from ``rng`` folded with the step number.
  """
  dropout_rng = jax.random.fold_in(rng, state.step)

  def loss_fn(params):
    params = optim.stop_frozen_gradients(params, frozen)
    outputs = state.apply_fn({"params": params}, batch, deterministic=False,
                             rngs={"dropout": dropout_rng})
    return losses.pretraining_loss(outputs, batch, objective_weights)

  (_, sums), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  sums["grad_norm_sum"] = optax.global_norm(grads)
  return state.apply_gradients(grads=grads), sums


def eval_step(state: TrainState, batch, *, objective_weights):
  """Summed metrics of the model on one batch, without dropout."""
  outputs = state.apply_fn({"params": state.params}, batch, deterministic=True)
  _, sums = losses.pretraining_loss(outputs, batch, objective_weights)
  return sums
