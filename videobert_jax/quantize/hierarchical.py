"""Hierarchical k-means: k clusters at the root, then k within each cluster, to depth d.

The fit runs on a uniform sample of the features (reservoir-sampled in one pass
when they are streamed). Level 1 is one flat, data-parallel ``fit_kmeans``. Each
deeper level fits all of its nodes in one jitted k-means++ + Lloyd's program
(``level_fit``): points sorted by node into tiles of one node each, whole nodes
split over chunks sharded over the device mesh; node-parallel, no
communication, and bitwise the same result on any number of devices. The sample
goes to the devices once; each level's layout is a gather there.

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

import math
import time
from typing import Sequence

import numpy as np

from videobert_jax.quantize import feed, kmeans
from videobert_jax.quantize.codebook import Codebook

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
    seed: seeds the sample, the seeding of every node (k-means|| at the root,
      greedy k-means++ below) and the perturbations.
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
  mean = sample.mean(0, dtype=np.float64)
  # RMS distance to the mean, without an [n, D] temporary.
  spread = float(np.sqrt(max(np.einsum("ij,ij->", sample, sample, dtype=np.float64) / n
                             - mean @ mean, 0.0)))
  eps = PERTURB_SCALE * (spread if spread > 0 else 1.0)
  stats = {} if stats is None else stats
  stats.update(sample_rows=n, level_seconds=[], filled_children=0, empty_nodes=0)
  mesh = kmeans.make_data_mesh(devices)
  k = clusters

  import jax
  t = time.perf_counter()
  init = None
  if jax.process_count() > 1:
    # Each process feeds its share of the (identical) sample, laid out and seeded
    # so that the fit is bitwise the one-process fit of the whole sample.
    init = kmeans.initial_centroids(sample, k, seed)
  share = feed.process_share(sample, batch_size, mesh)
  root = kmeans.fit_kmeans(share, k, seed=seed, max_iter=max_iter, tol=tol,
                           batch_size=batch_size, devices=devices, init=init)
  centroids = _fill_children(root.centroids[None], root.counts[None],
                             mean[None].astype(np.float32), seed, 0, eps, stats)[0]
  level_centroids = [centroids.astype(np.float32)]
  # Root descent is the nearest of the k root centroids.
  nodes = kmeans.assign_nearest(sample, level_centroids[0], batch_size)[0]
  stats["level_seconds"].append(time.perf_counter() - t)

  if levels > 1:
    from jax.sharding import NamedSharding, PartitionSpec as P
    # The whole sample on every device, once: deeper levels gather from it.
    sample_on_devices = jax.device_put(sample, NamedSharding(mesh, P()))
  bar = kmeans._progress(levels - 1, "levels", progress)
  for level in range(1, levels):
    t = time.perf_counter()
    parents = level_centroids[-1]
    children, nodes = _fit_level(sample_on_devices, nodes, parents, k, seed, level,
                                 max_iter, tol, mesh, eps, stats)
    level_centroids.append(children.reshape(-1, dim).astype(np.float32))
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


def _fit_level(sample_on_devices, nodes, parents, k: int, seed: int, level: int,
               max_iter: int, tol: float, mesh, eps: float, stats: dict):
  """Fits k children for every node of ``level`` at once (``level_fit``).

  Returns the filled children ``[num_nodes, k, D]`` and every row's node one
  level down (tree descent with those children).
  """
  import jax
  from jax.sharding import NamedSharding, PartitionSpec as P
  from videobert_jax.quantize import level_fit
  dim = sample_on_devices.shape[1]
  num_nodes = parents.shape[0]
  num_chunks = math.lcm(feed.SUM_CHUNKS, mesh.devices.size)
  clock = _Clock()
  layout = level_fit.pack_level(nodes, num_nodes, num_chunks)
  x, w = level_fit.gather_rows(sample_on_devices, layout, mesh)
  jax.block_until_ready(x)
  clock.lap("pack")
  shard = lambda a: jax.device_put(a, NamedSharding(
      mesh, P(kmeans.DATA_AXIS, *([None] * (a.ndim - 1)))))
  # One seed per global node: a node's k-means++ draws do not depend on its chunk.
  seeds = np.random.default_rng([seed, level]).integers(0, 2**32, num_nodes, np.uint32)
  node_seeds = np.where(layout.node_global >= 0, seeds[layout.node_global], 0).astype(
      np.uint32)
  fit, labels_of = level_fit.level_functions(k, max_iter, float(tol))
  tile_node, tile_rank = shard(layout.tile_node), shard(layout.tile_rank)
  centres, counts, iterations = fit(x, w, tile_node, tile_rank, shard(node_seeds))
  centres, counts = _to_host(centres), _to_host(counts)
  clock.lap("fit")
  stats.setdefault("level_iterations", []).append(int(iterations))
  stats.setdefault("level_tiles", []).append(list(layout.shape))
  real = layout.node_global >= 0
  children = np.zeros((num_nodes, k, dim), np.float32)
  child_counts = np.zeros((num_nodes, k), np.int64)
  children[layout.node_global[real]] = centres[real]
  child_counts[layout.node_global[real]] = np.rint(counts[real])
  children = _fill_children(children, child_counts, parents, seed, level, eps, stats)
  # Descend with the final (filled) children: the tree's own assignment rule.
  table = np.zeros(layout.node_global.shape + (k, dim), np.float32)
  table[real] = children[layout.node_global[real]]
  labels = _to_host(labels_of(x, w, tile_node, shard(table))).reshape(-1)
  first_child = np.take_along_axis(layout.node_global, layout.tile_node, axis=1) * k
  rows = layout.row_index.reshape(-1)
  valid = rows >= 0
  new_nodes = np.zeros_like(nodes)
  new_nodes[rows[valid]] = (np.repeat(first_child.reshape(-1), layout.tile)[valid]
                            + labels[valid]).astype(nodes.dtype)
  clock.lap("descend")
  stats.setdefault("level_phase_seconds", []).append(clock.laps)
  return children, new_nodes


def _to_host(array) -> np.ndarray:
  """A sharded device array as one host array (gathered from every host if several)."""
  import jax
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(array, tiled=True))
  return np.asarray(array)


class _Clock:
  """Wall time of consecutive phases, for ``stats``."""

  def __init__(self):
    self.laps = {}
    self._t = time.perf_counter()

  def lap(self, name: str):
    now = time.perf_counter()
    self.laps[name] = round(now - self._t, 3)
    self._t = now


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
