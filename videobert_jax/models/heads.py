"""Pretraining heads: masked-token prediction and linguistic-visual alignment.

The masked-token head is BERT's ``cls/predictions`` computed only where it is
needed: the hidden states at the ``P`` masked positions are gathered first, so the
transform and the ``[H, V]`` output projection (tied to the word embeddings, with
its own bias) cost ``P/T`` of the full-sequence head (20/128 at the paper's sizes).
The alignment head is BERT's pooler plus ``cls/seq_relationship`` on ``[CLS]``,
with column 1 meaning "aligned".
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from videobert_jax.models import layers


def gather_positions(hidden, positions):
  """Hidden states [B, P, H] at ``positions`` [B, P] of ``hidden`` [B, T, H]."""
  return jnp.take_along_axis(hidden, positions[..., None].astype(jnp.int32), axis=1)


class MlmHead(nn.Module):
  """Dense + GELU + LayerNorm, then logits through the tied embedding table.

  ``vocab_ids`` (sorted token ids, or None for all ``vocab_size`` rows): the
  candidates the softmax ranks. A model trained from scratch on one corpus can only
  ever predict the WordPieces that corpus holds, so ranking the rest (30K of them
  against a few hundred in use on a small corpus) is work without effect; the
  parameters keep their full shapes either way.
  """

  config: Any
  vocab_size: int
  vocab_ids: tuple[int, ...] | None = None

  @nn.compact
  def __call__(self, hidden, positions, embedding_table):
    """Returns float32 logits [B, P, V] at ``positions`` (V: ``vocab_ids`` or all rows)."""
    cfg = self.config
    dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    x = gather_positions(hidden, positions)
    x = nn.with_logical_constraint(x, ("batch", "predictions", "embed"))
    # [H, H]: small, kept whole on every device (None on the output side).
    x = nn.Dense(cfg.hidden_size, dtype=dtype, param_dtype=param_dtype,
                 kernel_init=layers.bert_init(("embed", None)),
                 bias_init=layers.zeros_init(("embed",)), name="transform")(x)
    x = layers.layer_norm(dtype, param_dtype, "layer_norm")(layers.gelu(x))
    bias = self.param("bias", layers.zeros_init(("vocab",)), (self.vocab_size,),
                      param_dtype)
    # Inputs in the compute dtype, accumulation and result in float32: the loss
    # needs float32 logits and this avoids a separate [B, P, V] cast.
    if self.vocab_ids is not None:
      ids = jnp.asarray(self.vocab_ids, jnp.int32)
      embedding_table, bias = jnp.take(embedding_table, ids, axis=0), bias[ids]
    logits = jnp.einsum("bph,vh->bpv", x, embedding_table.astype(dtype),
                        preferred_element_type=jnp.float32)
    logits = logits + bias.astype(jnp.float32)
    return nn.with_logical_constraint(logits, ("batch", "predictions", "vocab"))


class AlignmentHead(nn.Module):
  """Pooler (dense + tanh on ``[CLS]``) and a 2-way aligned / not-aligned classifier."""

  config: Any

  @nn.compact
  def __call__(self, hidden, cls_positions=None):
    """Float32 logits from ``[CLS]``; column 1 = aligned.

    [B, 2] from ``hidden[:, 0]``, or [B, S, 2] from the ``cls_positions`` [B, S]
    of packed rows (every example of a row classified on its own ``[CLS]``).
    """
    cfg = self.config
    dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    if cls_positions is None:
      cls = hidden[:, 0]
    else:
      cls = nn.with_logical_constraint(gather_positions(hidden, cls_positions),
                                       ("batch", "segments", "embed"))
    pooled = nn.Dense(cfg.hidden_size, dtype=dtype, param_dtype=param_dtype,
                      kernel_init=layers.bert_init(("embed", None)),
                      bias_init=layers.zeros_init(("embed",)), name="pooler")(cls)
    pooled = jnp.tanh(pooled)
    logits = nn.Dense(2, dtype=jnp.float32, param_dtype=param_dtype,
                      kernel_init=layers.bert_init(("embed", None)),
                      bias_init=layers.zeros_init((None,)), name="classifier")(pooled)
    return logits.astype(jnp.float32)
