"""Building blocks shared by the encoder and the heads: BERT's initialisers and norms.

Each initializer is wrapped with logical axis names so every parameter can be
placed on a mesh by ``models.partitioning``.
"""

from __future__ import annotations

import flax.linen as nn
import jax

LAYER_NORM_EPSILON = 1e-12  # as original BERT; converted checkpoints expect it
INIT_STDDEV = 0.02  # BERT's truncated-normal initializer range


def bert_init(names):
  """BERT's truncated-normal(0.02) initializer, annotated with logical axis names."""
  return nn.with_logical_partitioning(
      nn.initializers.truncated_normal(INIT_STDDEV), names)


def zeros_init(names):
  """Zeros, annotated with logical axis names (biases)."""
  return nn.with_logical_partitioning(nn.initializers.zeros_init(), names)


def ones_init(names):
  """Ones, annotated with logical axis names (LayerNorm scales)."""
  return nn.with_logical_partitioning(nn.initializers.ones_init(), names)


def layer_norm(dtype, param_dtype, name):
  """BERT's LayerNorm over ``embed``; statistics are computed in float32."""
  return nn.LayerNorm(epsilon=LAYER_NORM_EPSILON, dtype=dtype, param_dtype=param_dtype,
                      scale_init=ones_init(("embed",)), bias_init=zeros_init(("embed",)),
                      name=name)


def gelu(x):
  """BERT's exact (erf) GELU."""
  return jax.nn.gelu(x, approximate=False)
