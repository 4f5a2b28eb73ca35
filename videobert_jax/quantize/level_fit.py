"""One level of hierarchical k-means: k children for every node at once, in JAX.

All points of a level are fit together in one jitted program instead of one
padded k-means per node. Layout (``pack_level``): the points are sorted by node
and cut into tiles of ``T`` rows that each belong to one node (a node's last
tile is zero-padded and masked), and the tiles are split into ``C`` chunks of
whole nodes, ``[C, S, T, D]``, with ``C`` a multiple of the device count and
the chunk axis sharded over the mesh. Padding is at most ``T - 1`` rows per
node (``T`` is chosen from the node sizes), instead of a power of two per node.

Per Lloyd iteration every tile computes its distances to the k children of its
own node (a batched ``[T, D] x [D, k]`` matmul against the gathered children),
its per-child sums by a one-hot matmul, and the tile results are added per node
with a ``segment_sum`` in tile order. k-means++ (greedy, ``2 + ln k`` trials per
step, as scikit-learn) draws its candidates with the Gumbel-max trick: a
candidate is the row with the largest ``log(d^2) + Gumbel noise`` in its node,
a ``segment_max``, with noise hashed from (node seed, step, row rank in the
node) only.

Nothing depends on which chunk or device a node lands on: every sum over a
node's rows runs in the same order, and every random draw is keyed by the
node. So the fit is bitwise the same on 1, 2 or 4 devices, and there is no
communication except the global "any node still active" of the loop.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from videobert_jax.quantize import argbest
from videobert_jax.quantize.feed import DATA_AXIS

TILE_SIZES = (128, 64, 32, 16, 8)  # candidate rows per tile, largest first
TILE_OVERHEAD_ROWS = 32  # per-tile cost of the batched matmul, in rows (see choose_tile)
DUPLICATE_GAP = 1e-10  # squared gap (relative to |x|^2) below which a point is a centre


@dataclasses.dataclass
class LevelLayout:
  """Where each point of a level sits in the ``[C, S, T, D]`` tile layout (host arrays)."""

  tile: int  # T
  row_index: np.ndarray  # [C, S, T] sample row of each slot, -1 for padding
  tile_node: np.ndarray  # [C, S] local node id of each tile; M (a dummy) for padding
  tile_rank: np.ndarray  # [C, S] position of the tile among its node's tiles
  node_global: np.ndarray  # [C, M + 1] global node id of each local node, -1 for none

  @property
  def shape(self) -> tuple:
    """``(C, S, T)``."""
    return self.row_index.shape


def choose_tile(sizes: np.ndarray) -> int:
  """The tile size with the lowest estimated cost for nodes of these sizes.

  Cost ~ padded rows x (1 + TILE_OVERHEAD_ROWS / T): small tiles pad less but
  run a less efficient batched matmul. Measured on XLA:CPU at the third level
  of a 200,000-point tree (median node 64 rows): T = 16, 32, 64, 128 took
  16.7, 11.6, 6.5 and 9.5 s.
  """
  sizes = sizes[sizes > 0]
  costs = [(-(-sizes // t) * t).sum() * (1.0 + TILE_OVERHEAD_ROWS / t) for t in TILE_SIZES]
  return TILE_SIZES[int(np.argmin(costs))]


def pack_level(nodes: np.ndarray, num_nodes: int, num_chunks: int,
               tile: int | None = None) -> LevelLayout:
  """Sorts the rows by node into tiles and splits whole nodes over ``num_chunks`` chunks.

  Chunks hold contiguous node ranges with about equal tile counts; every chunk
  is padded to the largest one's tile count with masked tiles of a dummy node.
  """
  sizes = np.bincount(nodes, minlength=num_nodes)
  tile = tile or choose_tile(sizes)
  used = np.flatnonzero(sizes > 0)
  tiles = -(-sizes[used] // tile)
  before = np.concatenate([[0], np.cumsum(tiles)])
  # Chunk j starts at the first node with at least j/C of the tiles before it.
  starts = np.searchsorted(before[:-1], before[-1] * np.arange(num_chunks) / num_chunks,
                           side="left")
  starts[0] = 0
  bounds = np.concatenate([starts, [used.size]])
  per_chunk_tiles = before[bounds[1:]] - before[bounds[:-1]]
  per_chunk_nodes = bounds[1:] - bounds[:-1]
  s = max(int(per_chunk_tiles.max()), 1)
  m = max(int(per_chunk_nodes.max()), 1)
  order = np.argsort(nodes, kind="stable")
  offsets = np.concatenate([[0], np.cumsum(sizes)])
  row_index = np.full((num_chunks, s, tile), -1, np.int64)
  tile_node = np.full((num_chunks, s), m, np.int32)
  tile_rank = np.zeros((num_chunks, s), np.int32)
  node_global = np.full((num_chunks, m + 1), -1, np.int64)
  for c in range(num_chunks):
    members = used[bounds[c]:bounds[c + 1]]
    node_global[c, :members.size] = members
    t = 0
    for local, node in enumerate(members):
      rows = order[offsets[node]:offsets[node + 1]]
      count = -(-rows.size // tile)
      flat = np.full(count * tile, -1, np.int64)
      flat[:rows.size] = rows
      row_index[c, t:t + count] = flat.reshape(count, tile)
      tile_node[c, t:t + count] = local
      tile_rank[c, t:t + count] = np.arange(count)
      t += count
  return LevelLayout(tile=tile, row_index=row_index, tile_node=tile_node,
                     tile_rank=tile_rank, node_global=node_global)


def gather_rows(sample_on_devices, layout: LevelLayout, mesh):
  """The layout's points ``[C, S, T, D]`` (zeros in padding) and mask ``[C, S, T]``.

  ``sample_on_devices`` is the whole sample, replicated on the mesh, put there
  once per tree: each level's layout is a gather on the devices, sharded by
  chunk, instead of a host copy and transfer of the sample per level.
  """
  import jax
  from jax.sharding import NamedSharding, PartitionSpec as P
  n = sample_on_devices.shape[0]
  valid = layout.row_index >= 0
  # Padding slots index one past the end: ``mode="fill"`` makes them zeros.
  index = np.where(valid, layout.row_index, n).astype(np.int32)
  chunked = lambda a: NamedSharding(mesh, P(DATA_AXIS, *([None] * (a.ndim - 1))))
  index = jax.device_put(index, chunked(index))
  x = _gather_function(chunked(np.zeros((1,) * 4)))(sample_on_devices, index)
  return x, jax.device_put(valid.astype(np.float32), chunked(valid))


@functools.lru_cache(maxsize=None)
def _gather_function(out_sharding):
  import jax
  import jax.numpy as jnp
  return jax.jit(lambda sample, index: jnp.take(sample, index, axis=0, mode="fill",
                                                fill_value=0.0),
                 out_shardings=out_sharding)


def _segment_first_max(values, positions, segments, num_segments):
  """Per segment: the max of ``values`` and the smallest position holding it."""
  import jax
  import jax.numpy as jnp
  best = jax.ops.segment_max(values, segments, num_segments=num_segments)
  hit = values >= best[segments]
  big = jnp.iinfo(jnp.int32).max
  pos = jax.ops.segment_min(jnp.where(hit, positions, big), segments,
                            num_segments=num_segments)
  return best, pos


def _tile_distances(x, x_sq, centres):
  """Squared distances ``[S, T, J]`` of each tile's rows to its own ``centres`` [S, J, D]."""
  import jax
  import jax.numpy as jnp
  dots = jnp.einsum("std,sjd->stj", x, centres, precision=jax.lax.Precision.HIGHEST)
  c_sq = jnp.sum(centres * centres, axis=2)
  return jnp.maximum(x_sq[:, :, None] - 2.0 * dots + c_sq[:, None, :], 0.0)


def _mix32(h):
  """A 32-bit integer hash (murmur3's finaliser): cheap to compile, well mixed."""
  import jax.numpy as jnp
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def _gumbel_pick(log_w, node_seeds, step, tile_node, tile_rank, num_trials: int,
                 num_nodes: int):
  """Row positions ``[M, J]``: J independent draws per node with prob. ~ exp(log_w).

  ``log_w`` [S, T] (-inf for rows that must not be drawn). The Gumbel noise of
  a row is a hash of (node seed, step, row rank within the node, trial), so the
  draws do not depend on where the node sits in the layout (a counter-based
  hash rather than jax.random: the same statistics, and it compiles in a
  fraction of the time inside the k-means++ loop). A node whose rows all have
  weight 0 gets position -1.
  """
  import jax.numpy as jnp
  s, t = log_w.shape
  rank = (tile_rank.astype(jnp.uint32)[:, None] * jnp.uint32(t)
          + jnp.arange(t, dtype=jnp.uint32)[None, :])  # row rank within its node
  seed = _mix32(node_seeds[tile_node] ^ _mix32(jnp.asarray(step, jnp.uint32)
                                               + jnp.uint32(0x9E3779B9)))
  h = _mix32(seed[:, None, None] ^ _mix32(rank[:, :, None] * jnp.uint32(num_trials)
                                          + jnp.arange(num_trials, dtype=jnp.uint32)))
  # 24 random bits -> uniform in (0, 1), never 0 or 1.
  u = ((h >> 8).astype(jnp.float32) + 0.5) * (1.0 / (1 << 24))
  score = log_w[:, :, None] - jnp.log(-jnp.log(u))  # [S, T, J]
  tile_best = jnp.max(score, axis=1)  # [S, J]
  tile_arg = jnp.argmax(score, axis=1).astype(jnp.int32)
  positions = jnp.arange(s, dtype=jnp.int32)[:, None] * t + tile_arg
  best, pos = _segment_first_max(tile_best, positions, tile_node, num_nodes)
  return jnp.where(jnp.isfinite(best), pos, -1)


def _seed_chunk(x, x_sq, w, tile_node, tile_rank, node_seeds, k: int, num_trials: int):
  """Greedy k-means++ for every node of one chunk; returns centres ``[M + 1, k, D]``."""
  import jax
  import jax.numpy as jnp
  s, t, dim = x.shape
  m1 = node_seeds.shape[0]
  flat = x.reshape(s * t, dim)
  log_valid = jnp.where(w > 0, 0.0, -jnp.inf)
  # Every node's first point: the draw for real rows is uniform, as log w = 0.
  first = _gumbel_pick(log_valid, node_seeds, 0, tile_node, tile_rank, 1, m1)[:, 0]
  first = jnp.maximum(first, 0)
  centres = jnp.zeros((m1, k, dim), x.dtype).at[:, 0].set(flat[first])
  closest = _tile_distances(x, x_sq, flat[first][tile_node][:, None, :])[:, :, 0] * w

  def step(i, state):
    centres, closest = state
    log_w = jnp.where(closest > 0, jnp.log(jnp.where(closest > 0, closest, 1.0)), -jnp.inf)
    cand = _gumbel_pick(log_w, node_seeds, i, tile_node, tile_rank, num_trials, m1)
    # All remaining distances 0 (fewer distinct points than k): repeat the first
    # point; Lloyd then sees empty clusters and the tree fills them.
    cand = jnp.where(cand >= 0, cand, first[:, None])
    cand_x = flat[cand]  # [M + 1, J, D]
    trial = jnp.minimum(closest[:, :, None],
                        _tile_distances(x, x_sq, cand_x[tile_node]) * w[:, :, None])
    potential = jax.ops.segment_sum(jnp.sum(trial, axis=1), tile_node, num_segments=m1,
                                    indices_are_sorted=True)
    best = jnp.argmin(potential, axis=1)
    centres = centres.at[:, i].set(cand_x[jnp.arange(m1), best])
    closest = jnp.take_along_axis(trial, best[tile_node][:, None, None], axis=2)[:, :, 0]
    return centres, closest

  return jax.lax.fori_loop(1, k, step, (centres, closest))[0]


def _chunk_stats(x, x_sq, w, tile_node, centres):
  """Lloyd statistics of one chunk under ``centres`` [M + 1, k, D].

  Returns per node: sums [M + 1, k, D], counts [M + 1, k], inertia [M + 1], the
  farthest point's distance [M + 1] and flat position [M + 1]; and labels [S, T].
  """
  import jax
  import jax.numpy as jnp
  s, t, _ = x.shape
  m1, k, _ = centres.shape
  dist = _tile_distances(x, x_sq, centres[tile_node])  # [S, T, k]
  labels, best = argbest.first_argmin(dist)
  best = best * w
  onehot = jax.nn.one_hot(labels, k, dtype=x.dtype) * w[:, :, None]
  tile_sums = jnp.einsum("stk,std->skd", onehot, x, precision=jax.lax.Precision.HIGHEST)
  segment = functools.partial(jax.ops.segment_sum, segment_ids=tile_node, num_segments=m1,
                              indices_are_sorted=True)
  sums = segment(tile_sums)
  counts = segment(jnp.sum(onehot, axis=1))
  inertia = segment(jnp.sum(best, axis=1))
  positions = jnp.arange(s, dtype=jnp.int32) * t + jnp.argmax(best, axis=1).astype(jnp.int32)
  far_d, far_pos = _segment_first_max(jnp.max(best, axis=1), positions, tile_node, m1)
  return sums, counts, inertia, far_d, far_pos, labels


def _lloyd_update(flat, centres, sums, counts, far_d, far_pos):
  """New centres of one node; its first empty cluster takes the farthest point."""
  import jax.numpy as jnp
  new = jnp.where((counts > 0)[:, None], sums / jnp.maximum(counts, 1.0)[:, None], centres)
  empty = counts == 0
  slot = jnp.argmax(empty)
  far = flat[jnp.maximum(far_pos, 0)]
  # Distances by the matmul expansion are not exactly 0 for a point that is a
  # centre; the direct difference is, so a point that is already a centre (fewer
  # distinct points than k) is never taken again and the node converges.
  gap = jnp.min(jnp.sum((centres - far[None, :]) ** 2, axis=1))
  take = jnp.any(empty) & (far_d > 0) & (gap > DUPLICATE_GAP * jnp.sum(far * far))
  new = new.at[slot].set(jnp.where(take, far, new[slot]))
  return new, take


@functools.lru_cache(maxsize=None)
def level_functions(k: int, max_iter: int, tol: float, num_trials: int | None = None):
  """jitted ``(fit, labels)`` for the ``[C, S, T, D]`` layout (cached per k, settings).

  ``fit(x, w, tile_node, tile_rank, node_seeds)`` (uint32 [C, M + 1]) -> centres [C, M + 1, k, D], counts
  [C, M + 1, k], iterations; ``labels(x, w, tile_node, centres)`` -> [C, S, T].
  """
  import jax
  import jax.numpy as jnp
  trials = num_trials or 2 + int(math.log(k))
  seed_all = jax.vmap(functools.partial(_seed_chunk, k=k, num_trials=trials))
  stats_all = jax.vmap(_chunk_stats)
  update_all = jax.vmap(jax.vmap(_lloyd_update, in_axes=(None, 0, 0, 0, 0, 0)))

  def fit(x, w, tile_node, tile_rank, node_seeds):
    x_sq = jnp.sum(x * x, axis=3)
    flat = x.reshape(x.shape[0], -1, x.shape[3])
    centres = seed_all(x, x_sq, w, tile_node, tile_rank, node_seeds)
    nodes_shape = node_seeds.shape

    def active(state):
      _, _, prev, inertia, reseeded = state
      return (prev - inertia > tol * jnp.maximum(inertia, 1e-30)) | reseeded

    def body(state):
      c, it, prev, inertia, reseeded = state
      sums, counts, new_inertia, far_d, far_pos, _ = stats_all(x, x_sq, w, tile_node, c)
      new, took = update_all(flat, c, sums, counts, far_d, far_pos)
      on = active(state)
      return (jnp.where(on[..., None, None], new, c), it + 1,
              jnp.where(on, inertia, prev), jnp.where(on, new_inertia, inertia),
              jnp.where(on, took, reseeded))

    state = (centres, jnp.int32(0), jnp.full(nodes_shape, jnp.inf, jnp.float32),
             jnp.full(nodes_shape, jnp.finfo(jnp.float32).max, jnp.float32),
             jnp.ones(nodes_shape, bool))
    centres, iterations = jax.lax.while_loop(
        lambda s: (s[1] < max_iter) & jnp.any(active(s)), body, state)[:2]
    counts = stats_all(x, x_sq, w, tile_node, centres)[1]
    return centres, counts, iterations

  def labels(x, w, tile_node, centres):
    return stats_all(x, jnp.sum(x * x, axis=3), w, tile_node, centres)[5]

  return jax.jit(fit), jax.jit(labels)
