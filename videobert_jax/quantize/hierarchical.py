"""Hierarchical k-means: k clusters at the root, then k within each cluster, to depth d.

The fit runs on a uniform sample of the features (reservoir-sampled in one pass
when they are streamed). Level 1 is one flat, data-parallel ``fit_kmeans``. Each
deeper level fits all of its nodes together: nodes are grouped into buckets of
similar size, each bucket is padded to ``[nodes, points, D]`` (powers of two, at
most two shapes per level, so little compiles) and fit by one jitted, vmapped
k-means++ + Lloyd's loop with the node axis sharded over the device mesh:
node-parallel, no communication, and the same result on any number of devices.

Exactly k**d leaves, always. A node gets fewer than k non-empty children only
when its points have fewer than k distinct values (empty clusters are first
re-seeded with the farthest points, as in flat k-means). Then:

* each empty child becomes a copy of a non-empty sibling, taking siblings in
  order of decreasing size (the largest is re-split first, round-robin), plus a
  tiny deterministic perturbation ``eps * u`` (``u`` a unit vector drawn from
  (seed, level, node, child), ``eps`` = 1e-3 x the sample's RMS spread);
* a node with no points at all gets k perturbed copies of its own centroid.

Siblings are therefore pairwise distinct, so each child owns a non-empty
Voronoi cell next to its source centroid and every leaf is reachable by tree
descent; the points that reach a perturbed copy are split by the next level in
the same way.

Multi-host: every host passes the same features (e.g. the same seeded sample);
level 1 feeds each host's share of the rows, deeper levels shard the same
global arrays over all devices.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Sequence

import numpy as np

from videobert_jax.quantize import kmeans
from videobert_jax.quantize.codebook import Codebook, descend_one_level

DEFAULT_SAMPLE_SIZE = 500_000  # rows the tree is fit on (2 GB at D=1024)
MIN_BUCKET_POINTS = 64  # smallest padded node size
MAX_BUCKET_BYTES = 1 << 30  # memory of one padded [nodes, points, D] group
PERTURB_SCALE = 1e-3  # eps relative to the sample's RMS spread


def fit_hierarchical(features, levels: int, clusters: int, seed: int = 0,
                     sample_size: int = DEFAULT_SAMPLE_SIZE, *, max_iter: int = 50,
                     tol: float = 1e-4, batch_size: int = kmeans.DEFAULT_BATCH_SIZE,
                     devices: Sequence | None = None, progress: bool = False,
                     stats: dict | None = None) -> Codebook:
  """Fits a ``levels``-deep, ``clusters``-way k-means tree (module docstring).

  Args:
    features: ``[n, D]`` array, a zero-argument callable returning an iterator
      of row blocks, or an iterable of row blocks (read once).
    levels: depth d.
    clusters: k per node.
    seed: seeds the sample, every k-means++ and the perturbations.
    sample_size: rows to fit on (all rows when there are fewer).
    max_iter: Lloyd iterations per node.
    tol: relative inertia change that counts as converged.
    batch_size: rows per jitted step of the root fit and of assignment.
    devices: devices of the data mesh (default all).
    progress: tqdm bars.
    stats: optional dict that receives timings and counts of the fit.

  Returns:
    A Codebook with exactly ``clusters**levels`` leaves.
  """
  if levels < 1 or clusters < 1:
    raise ValueError(f"levels and clusters must be >= 1, got {levels}, {clusters}")
  t0 = time.perf_counter()
  sample = _sample(features, sample_size, seed)
  n, dim = sample.shape
  spread = float(np.sqrt(np.mean(np.sum((sample - sample.mean(0)) ** 2, axis=1))))
  eps = PERTURB_SCALE * (spread if spread > 0 else 1.0)
  stats = {} if stats is None else stats
  stats.update(sample_rows=n, level_seconds=[], filled_children=0, empty_nodes=0)
  mesh = kmeans.make_data_mesh(devices)
  k = clusters

  import jax
  t = time.perf_counter()
  share = sample[jax.process_index()::jax.process_count()]
  root = kmeans.fit_kmeans(share, k, seed=seed, max_iter=max_iter, tol=tol,
                           batch_size=batch_size, devices=devices)
  centroids = _fill_children(root.centroids[None], root.counts[None],
                             sample.mean(0, keepdims=True), seed, 0, eps, stats)[0]
  level_centroids = [centroids.astype(np.float32)]
  nodes = _descend(sample, np.zeros(n, np.int32), level_centroids[0], k, batch_size)
  stats["level_seconds"].append(time.perf_counter() - t)

  bar = kmeans._progress(levels - 1, "levels", progress)
  for level in range(1, levels):
    t = time.perf_counter()
    parents = level_centroids[-1]
    children, counts = _fit_level(sample, nodes, parents.shape[0], k, seed, level,
                                     max_iter, tol, mesh)
    children = _fill_children(children, counts, parents, seed, level, eps, stats)
    level_centroids.append(children.reshape(-1, dim).astype(np.float32))
    nodes = _descend(sample, nodes, level_centroids[-1], k, batch_size)
    stats["level_seconds"].append(time.perf_counter() - t)
    bar.update(1)
  bar.close()
  stats["fit_seconds"] = time.perf_counter() - t0
  return Codebook(levels=levels, clusters=k, feature_dim=dim, seed=seed, sample_size=n,
                  level_centroids=level_centroids)


def _sample(features, size: int, seed: int) -> np.ndarray:
  """The rows to fit on: all of an array up to ``size``, else a reservoir sample."""
  if isinstance(features, np.ndarray) and features.ndim == 2 and features.shape[0] <= size:
    sample = np.asarray(features, np.float32)
  else:
    if isinstance(features, np.ndarray) or hasattr(features, "shape"):
      blocks = (features[i:i + 65536] for i in range(0, features.shape[0], 65536))
    elif callable(features):
      blocks = features()
    else:
      blocks = iter(features)
    blocks = iter(blocks)
    first = next(blocks, None)
    if first is None:
      raise ValueError("no features to fit: the input is empty")
    first = np.asarray(first, np.float32)
    dim = first.reshape(first.shape[0], -1).shape[1]
    sample = kmeans.reservoir_sample(_chain(first, blocks), size, seed, dim)
  if sample.ndim != 2 or sample.shape[0] == 0:
    raise ValueError(f"features must be a non-empty [n, D] array, got {sample.shape}")
  if not np.isfinite(sample).all():
    raise ValueError("features hold NaN or Inf")
  return sample


def _chain(first, rest):
  yield first
  yield from rest


def _descend(sample, nodes, centroids, k: int, batch_size: int) -> np.ndarray:
  """Node ids one level down for every sample row (nearest of its parent's children)."""
  import jax.numpy as jnp
  fn = _descend_function(k)
  table = jnp.asarray(centroids)
  size = min(max(batch_size // 4, 256), sample.shape[0])  # [B, k, D] gathers stay small
  out = np.zeros(sample.shape[0], np.int32)
  for start in range(0, sample.shape[0], size):
    x = sample[start:start + size]
    p = nodes[start:start + size]
    valid = x.shape[0]
    if valid < size:
      x = np.concatenate([x, np.zeros((size - valid, x.shape[1]), np.float32)])
      p = np.concatenate([p, np.zeros(size - valid, np.int32)])
    out[start:start + valid] = np.asarray(fn(x, p, table))[:valid]
  return out


@functools.lru_cache(maxsize=None)
def _descend_function(k: int):
  import jax
  return jax.jit(functools.partial(descend_one_level, k=k))


def _buckets(sizes: np.ndarray, dim: int, num_devices: int):
  """Groups the non-empty nodes into at most two padded shapes.

  Yields ``(padded_points, nodes_per_group, node_ids)``. Nodes up to the median
  size share one point count (a power of two), larger nodes another, so a level
  compiles at most two shapes while padding stays below ~2x for typical trees.
  Groups hold a power-of-two multiple of ``num_devices`` nodes (the node axis is
  sharded); the last group of a shape is padded with empty nodes.
  """
  ids = np.flatnonzero(sizes > 0)
  if ids.size == 0:
    return
  pow2 = lambda v: 2 ** int(math.ceil(math.log2(max(int(v), 1))))
  small = max(MIN_BUCKET_POINTS, pow2(np.median(sizes[ids])))
  large = max(MIN_BUCKET_POINTS, pow2(sizes[ids].max()))
  for points, members in ((small, ids[sizes[ids] <= small]),
                          (large, ids[sizes[ids] > small])):
    if members.size == 0:
      continue
    fit_memory = max(1, MAX_BUCKET_BYTES // (points * dim * 4))
    group = min(pow2(members.size), 2 ** int(math.floor(math.log2(fit_memory))))
    group = max(group, num_devices)
    group = -(-group // num_devices) * num_devices
    for start in range(0, members.size, group):
      yield points, group, members[start:start + group]


def _fit_level(sample, nodes, num_nodes: int, k: int, seed: int, level: int,
               max_iter: int, tol: float, mesh):
  """Fits k children for every node; returns centroids [nodes, k, D] and counts [nodes, k]."""
  import jax
  from jax.sharding import NamedSharding, PartitionSpec as P
  dim = sample.shape[1]
  order = np.argsort(nodes, kind="stable")
  sizes = np.bincount(nodes, minlength=num_nodes)
  offsets = np.concatenate([[0], np.cumsum(sizes)])
  centroids = np.zeros((num_nodes, k, dim), np.float32)
  counts = np.zeros((num_nodes, k), np.int64)
  base = jax.random.fold_in(jax.random.key(seed), level)
  # Node-parallel: each node's fit runs whole on one device, so the result does
  # not depend on the number of devices, and no communication is needed.
  x_sharding = NamedSharding(mesh, P(kmeans.DATA_AXIS, None, None))
  w_sharding = NamedSharding(mesh, P(kmeans.DATA_AXIS, None))
  fit = _fit_nodes_function(k, max_iter, float(tol), kmeans.default_sums_method())
  for points, group, ids in _buckets(sizes, dim, mesh.devices.size):
    x = np.zeros((group, points, dim), np.float32)
    w = np.zeros((group, points), np.float32)
    for slot, node in enumerate(ids):
      rows = order[offsets[node]:offsets[node + 1]]
      x[slot, :rows.size] = sample[rows]
      w[slot, :rows.size] = 1.0
    node_ids = np.zeros(group, np.int32)
    node_ids[:ids.size] = ids
    keys = jax.device_put(jax.vmap(lambda i: jax.random.fold_in(base, i))(node_ids),
                          NamedSharding(mesh, P(kmeans.DATA_AXIS)))
    c, n = fit(jax.device_put(x, x_sharding), jax.device_put(w, w_sharding), keys)
    centroids[ids] = np.asarray(c)[:ids.size]
    counts[ids] = np.rint(np.asarray(n)[:ids.size])
  return centroids, counts


@functools.lru_cache(maxsize=None)
def _fit_nodes_function(k: int, max_iter: int, tol: float, sums_method: str):
  """jitted k-means++ and Lloyd's loop over a padded group of nodes ``[G, P, D]``.

  One while loop for the whole group (nodes that have converged stop changing);
  written batched rather than as a vmapped while loop, which compiles ~4x slower.
  """
  import jax
  import jax.numpy as jnp
  seed_nodes = jax.vmap(lambda x, w, key: kmeans.kmeans_plus_plus(x, w, k, key))
  node_stats = jax.vmap(lambda x, w, c: kmeans.batch_stats(x, w, c, sums_method))

  def lloyd_update(x, c, sums, counts, dist):
    new = jnp.where((counts > 0)[:, None], sums / jnp.maximum(counts, 1.0)[:, None], c)
    # Empty clusters take the farthest points (those with a non-zero distance).
    empty = counts == 0
    far_d, far_i = jax.lax.top_k(dist, k)
    rank = jnp.clip(jnp.cumsum(empty) - 1, 0, k - 1)
    take = empty & (far_d[rank] > 0)
    return jnp.where(take[:, None], x[far_i[rank]], new), jnp.any(take)

  def active(state):
    _, _, prev, inertia, reseeded = state
    return (prev - inertia > tol * jnp.maximum(inertia, 1e-30)) | reseeded

  def fit(x, w, keys):
    def body(state):
      c, it, prev, inertia, reseeded = state
      sums, counts, new_inertia, _, dist = node_stats(x, w, c)
      new, took = jax.vmap(lloyd_update)(x, c, sums, counts, dist)
      on = active(state)
      return (jnp.where(on[:, None, None], new, c), it + 1,
              jnp.where(on, inertia, prev), jnp.where(on, new_inertia, inertia),
              jnp.where(on, took, reseeded))

    g = x.shape[0]
    state = (seed_nodes(x, w, keys), jnp.int32(0), jnp.full(g, jnp.inf, jnp.float32),
             jnp.full(g, jnp.finfo(jnp.float32).max, jnp.float32), jnp.ones(g, bool))
    c = jax.lax.while_loop(lambda s: (s[1] < max_iter) & jnp.any(active(s)), body,
                           state)[0]
    return c, node_stats(x, w, c)[1]

  return jax.jit(fit)


def _fill_children(children: np.ndarray, counts: np.ndarray, parents: np.ndarray,
                   seed: int, level: int, eps: float, stats: dict) -> np.ndarray:
  """Fills empty children with perturbed copies (rule in the module docstring).

  ``children`` [nodes, k, D], ``counts`` [nodes, k] (points per child at the
  final Lloyd assignment), ``parents`` [nodes, D].
  """
  children = children.copy()
  k, dim = children.shape[1:]
  for node in np.flatnonzero((counts == 0).any(axis=1)):
    sources = np.flatnonzero(counts[node] > 0)
    if sources.size == 0:
      stats["empty_nodes"] += 1
      bases = np.repeat(parents[node][None], k, axis=0)
      targets = np.arange(k)
    else:
      # Non-empty siblings by decreasing size; the fit's cluster order breaks ties.
      sources = sources[np.argsort(-counts[node, sources], kind="stable")]
      targets = np.flatnonzero(counts[node] == 0)
      bases = children[node, sources[np.arange(targets.size) % sources.size]]
    for child, base in zip(targets, bases):
      rng = np.random.default_rng([seed, level, int(node), int(child)])
      u = rng.standard_normal(dim)
      children[node, child] = base + eps * u / np.linalg.norm(u)
    stats["filled_children"] += int(targets.size)
  return children
