"""Index and value of the best entry along the last axis, fast on XLA:CPU.

``jnp.argmax`` lowers to one variadic (value, index) reduction, which XLA:CPU does
not vectorise: at k = 256 it took 0.1 s of a 0.74 s Lloyd pass over 200,000 x 1024
points, longer than the ``segment_sum`` of the centroid update. The same answer
from two plain reductions -- the maximum, then the smallest index that reaches
it -- took 0.02 s. Ties go to the first index, as ``jnp.argmax``; a row holding
NaN gets its last index rather than the NaN's.
"""

from __future__ import annotations


def first_argmax(values):
  """``(jnp.argmax(values, -1), jnp.max(values, -1))`` as two plain reductions (int32)."""
  import jax.numpy as jnp
  best = jnp.max(values, axis=-1)
  return _first_index(values >= best[..., None]), best


def first_argmin(values):
  """``(jnp.argmin(values, -1), jnp.min(values, -1))`` as two plain reductions (int32)."""
  import jax.numpy as jnp
  best = jnp.min(values, axis=-1)
  return _first_index(values <= best[..., None]), best


def _first_index(hit):
  import jax.numpy as jnp
  k = hit.shape[-1]
  index = jnp.min(jnp.where(hit, jnp.arange(k, dtype=jnp.int32), k), axis=-1)
  return jnp.minimum(index, k - 1)  # a NaN row has no hit
