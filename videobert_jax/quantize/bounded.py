"""Lloyd passes that skip the rows whose nearest centroid provably did not change.

Hamerly's bounds (Hamerly 2010, "Making k-means even faster"), kept per row of
device-resident data: ``upper`` is at least the distance to the row's centroid,
``lower`` at most the distance to any other centroid. When the centroids move,
``upper`` grows by its own centroid's shift and ``lower`` shrinks by the largest
shift of any other centroid; a row keeps its label without computing a single
distance while ``upper < max(lower, half_gap[label])`` (``half_gap`` is half the
distance from its centroid to the nearest other one). The other rows -- all of
them on the first pass, fewer and fewer as labels settle -- are gathered into
full batches and go through the usual matmul, which also resets their bounds.
When most rows need it (or k is small, where a gather costs more than the
matmul it saves), every row is computed in place instead.

The labels are exactly those a full Lloyd pass would find up to float rounding:
every bound carries a margin for the rounding of the matmul distance
(``|x|^2 - 2 x.c + |c|^2``) and of the bound arithmetic, so a near-tie is always
recomputed rather than kept. The cluster sums, counts and inertia are then
computed over every row with its label, in the same chunk order as the plain
pass, so the result is the same on 1, 2 or 4 devices: pruning is decided row by
row, and a matmul row does not depend on which batch it lands in.

Memory: three numbers per row (label, two bounds), 12 bytes against the row's
4 D bytes. Streamed data has no resident rows to keep bounds for and uses the
plain pass.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from videobert_jax.quantize import argbest, chunk_stats
from videobert_jax.quantize.feed import DATA_AXIS


def distance_margin(dim: int) -> float:
  """Bound on the float32 rounding of ``|x|^2 - 2 x.c + |c|^2``, per ``|x|^2 + |c|^2``.

  A ``dim``-term dot product rounds to within ``dim * u * |x| |c|`` (``u`` =
  2^-24, summed in any order), and ``|x| |c| <= (|x|^2 + |c|^2) / 2``; the
  three terms and two adds give ``(2 dim + 3) u``. A rigorous bound, not a
  typical error, so a kept label is never a rounding accident.
  """
  return (2 * dim + 4) * 2.0 ** -24


# Relative slack on the bound test itself (the adds and sqrt round).
BOUND_SLACK = 2.0 ** -16


class Motion(NamedTuple):
  """How far the centroids moved and how far apart they now are (all ``[k]``)."""

  shift: object  # distance each centroid moved, rounded up
  other_shift: object  # largest shift among the other centroids
  half_gap: object  # half the distance to the nearest other centroid, rounded down


def centroid_motion(centroids, previous) -> Motion:
  """The per-centroid quantities the bound update and test need. Pure jnp."""
  import jax
  import jax.numpy as jnp
  k = centroids.shape[0]
  shift = jnp.sqrt(jnp.sum((centroids - previous) ** 2, axis=1)) * (1.0 + BOUND_SLACK)
  top, first = jax.lax.top_k(shift, min(2, k))
  second = top[1] if k > 1 else jnp.zeros((), shift.dtype)
  other_shift = jnp.where(jnp.arange(k) == first[0], second, top[0])
  c_sq = jnp.sum(centroids * centroids, axis=1)
  gram = jnp.dot(centroids, centroids.T, precision=jax.lax.Precision.HIGHEST)
  pair_sq = c_sq[:, None] + c_sq[None, :]
  gap_sq = pair_sq - 2.0 * gram - distance_margin(centroids.shape[1]) * pair_sq
  gap_sq = jnp.where(jnp.eye(k, dtype=bool), jnp.inf, gap_sq)
  half_gap = 0.5 * jnp.sqrt(jnp.maximum(jnp.min(gap_sq, axis=1), 0.0))
  return Motion(shift, other_shift, half_gap)


def centroid_scores(x, centroids):
  """``x.c - |c|^2 / 2`` [b, k], larger for nearer centroids, and ``|c|^2`` [k]. Pure jnp.

  One matmul; the argmax is the nearest centroid, and ``|x|^2 - 2 score`` the
  squared distance.
  """
  import jax
  import jax.numpy as jnp
  c_sq = jnp.sum(centroids * centroids, axis=1)
  dots = jnp.dot(x, centroids.T, precision=jax.lax.Precision.HIGHEST)
  return dots - 0.5 * c_sq[None, :], c_sq


def nearest_two(x, x_sq, centroids):
  """Nearest centroid of each row and bounds on the nearest and second distances.

  Returns ``(labels, upper, lower)``: ``upper`` >= the distance to the nearest
  centroid, ``lower`` <= the distance to every other one (``inf`` when k = 1).
  Labels are the same as ``kmeans.nearest`` gives. Pure jnp.
  """
  import jax.numpy as jnp
  scores, c_sq = centroid_scores(x, centroids)
  labels, best = argbest.first_argmax(scores)
  others = jnp.where(jnp.arange(centroids.shape[0])[None, :] == labels[:, None], -jnp.inf,
                     scores)
  second = jnp.max(others, axis=1)
  margin = distance_margin(x.shape[1]) * (x_sq + jnp.max(c_sq))
  upper = jnp.sqrt(jnp.maximum(x_sq - 2.0 * best, 0.0) + margin)
  lower = jnp.sqrt(jnp.maximum(x_sq - 2.0 * second - margin, 0.0))
  return labels, upper, lower


def initial_state(masks):
  """Bounds that force every row through the matmul: ``(labels, upper, lower)``."""
  import jax.numpy as jnp
  # *_like keeps the masks' sharding, so the first pass reshards nothing.
  return (jnp.zeros_like(masks, jnp.int32), jnp.full_like(masks, jnp.inf),
          jnp.zeros_like(masks))


def bounded_local_pass(xs, masks, x_sq, state, centroids, previous, *, num_chunks: int,
                       sums_method: str):
  """One device's bounded Lloyd pass over its resident rows.

  ``xs`` [nb, b, D], ``masks`` and ``x_sq`` [nb, b], ``state`` the
  ``(labels, upper, lower)`` of these rows for the ``previous`` centroids.
  Returns the per-chunk ``(sums, counts, sum |x|^2)`` for ``centroids``, the new
  state, and how many rows went through the matmul (``[1]``).
  """
  import jax
  import jax.numpy as jnp
  nb, b, dim = xs.shape
  n = nb * b
  labels, upper, lower = (a.reshape(n) for a in state)
  motion = centroid_motion(centroids, previous)
  upper = upper + motion.shift[labels]
  lower = lower - motion.other_shift[labels]
  keep_bound = jnp.maximum(lower, motion.half_gap[labels])
  need = (masks.reshape(n) > 0) & (upper * (1.0 + BOUND_SLACK) >= keep_bound)
  num_need = jnp.sum(need, dtype=jnp.int32)
  zero = chunk_stats.zero_chunk_stats(num_chunks, *centroids.shape, centroids.dtype)
  zero = jax.lax.pcast(zero, (DATA_AXIS,), to="varying")  # per-device carries

  def add_batch(acc, xb, mb, lb, sqb):
    # The inertia slot sums |x|^2; ``bounded_pass_function`` turns it into the
    # inertia from the cluster sums (a per-row distance would gather every
    # row's centroid: 0.08 s a pass at k = 256).
    return chunk_stats.add_chunk_stats(acc, xb, lb, sqb * mb, mb, num_chunks, sums_method)

  def dense(_):
    """Every row, batch by batch: x stays in cache from the matmul to the sums."""
    def step(acc, batch):
      xb, mb, sqb = batch
      out = nearest_two(xb, sqb, centroids)
      return add_batch(acc, xb, mb, out[0], sqb), out
    acc, state = jax.lax.scan(step, zero, (xs, masks, x_sq))
    return acc, state, jnp.sum(masks > 0, dtype=jnp.int32)

  def sparse(_):
    """Only the rows that need it, gathered into full batches, then the sums."""
    order = jnp.nonzero(need, size=n, fill_value=n)[0].astype(jnp.int32)
    x_rows = xs.reshape(n, dim)
    sq_rows = x_sq.reshape(n)

    def recompute(carry):
      i, labels, upper, lower = carry
      idx = jax.lax.dynamic_slice(order, (i * b,), (b,))
      xb = jnp.take(x_rows, idx, axis=0, mode="fill", fill_value=0.0)
      sqb = jnp.take(sq_rows, idx, mode="fill", fill_value=0.0)
      new_labels, new_upper, new_lower = nearest_two(xb, sqb, centroids)
      # Fill indices (n) fall outside the arrays and are dropped.
      return (i + 1, labels.at[idx].set(new_labels, mode="drop"),
              upper.at[idx].set(new_upper, mode="drop"),
              lower.at[idx].set(new_lower, mode="drop"))

    trips = (num_need + b - 1) // b
    _, new_labels, new_upper, new_lower = jax.lax.while_loop(
        lambda carry: carry[0] < trips, recompute, (jnp.int32(0), labels, upper, lower))
    state = (new_labels.reshape(nb, b), new_upper.reshape(nb, b), new_lower.reshape(nb, b))
    acc, _ = jax.lax.scan(lambda a, bt: (add_batch(a, *bt), None), zero,
                          (xs, masks, state[0], x_sq))
    return acc, state, num_need

  # Gathering a row costs about the matmul against 16 centroids (on the 2-core
  # CPU at k = 12, every row in place took 0.11 s a pass and gathered 0.13 s; at
  # k = 256 gathered was no slower even with every row): past this share of
  # rows, computing all of them in place is cheaper.
  k = centroids.shape[0]
  dense_share = k / (k + 16.0)
  acc, state, rows = jax.lax.cond(num_need > dense_share * n, dense, sparse, None)
  return acc, state, rows[None]


@functools.lru_cache(maxsize=None)
def bounded_pass_function(mesh, sums_method: str, num_chunks: int):
  """jitted ``(xs, masks, x_sq, state, c, previous) -> (stats, state, rows)``.

  ``stats`` is the summed ``(sums, counts, inertia)``, ``state`` replaces the
  donated one, ``rows`` is the number of rows whose distances were computed.
  """
  import jax
  import jax.numpy as jnp
  from jax.sharding import PartitionSpec as P
  local = functools.partial(bounded_local_pass, num_chunks=num_chunks // mesh.devices.size,
                            sums_method=sums_method)
  batch, row = P(None, DATA_AXIS), P(DATA_AXIS)

  def run(xs, masks, x_sq, state, c, previous):
    acc, state, rows = jax.shard_map(
        local, mesh=mesh, in_specs=(batch, batch, batch, batch, P(), P()),
        out_specs=(row, batch, row))(xs, masks, x_sq, state, c, previous)
    sums, counts, x_sq_total = chunk_stats.sum_chunks(acc)
    # Summed here, so every host can read the (replicated) count.
    return (sums, counts, inertia_from_sums(sums, counts, x_sq_total, c)), state, jnp.sum(rows)

  return jax.jit(run, donate_argnums=3)


def inertia_from_sums(sums, counts, x_sq_total, centroids):
  """``sum_i |x_i - c_(label i)|^2`` from the cluster sums ``S_j`` and counts ``n_j``.

  ``sum |x|^2 - sum_j (2 c_j.S_j - n_j |c_j|^2)``: the same expansion as the
  matmul distances, summed per cluster instead of per row; clamped at 0. Pure jnp.
  """
  import jax.numpy as jnp
  per_cluster = jnp.sum(centroids * (2.0 * sums - counts[:, None] * centroids), axis=1)
  return jnp.maximum(x_sq_total - jnp.sum(per_cluster), 0.0)
