"""Flat Lloyd's k-means in JAX: k-means++ init, jitted matmul distances, data-parallel.

The inner loop is one jitted function per batch of points. Distances use the
matmul expansion ``||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2``; the ``||x||^2`` term
does not change the argmin and is only added back for the inertia. Cluster sums
are a ``segment_sum`` on CPU (measured 2x faster than ``one_hot(a).T @ x`` at
k=12 and k=256 with D=1024 on XLA:CPU) and the one-hot matmul on accelerators,
where scatters are slow and matmuls are cheap.

Scale:

* Data is fed in fixed-size batches (the last one padded and masked, so nothing
  recompiles). An array that fits ``max_resident_bytes`` is copied to the
  devices once; larger arrays and callables that return an iterator of batches
  are streamed from the host on every pass, so the data never has to fit in
  device memory.
* Each batch is sharded over a 1-D ``Mesh`` of all devices (axis ``data``) with
  ``NamedSharding``; the centroids are replicated. Per-device partial sums and
  counts are combined by the all-reduce that jit's sharding propagation inserts
  for the reduction over the batch axis (no pmap, no Python loop over devices).
* Multi-host (after ``jax.distributed.initialize()``): the mesh spans every
  device of every host; each host feeds its own rows through
  ``jax.make_array_from_process_local_data`` and the collective spans all hosts.
  Hosts agree on the number of batches per pass (the shorter ones are padded
  with fully masked batches), so hosts may hold different amounts of data.
* The result does not depend on the number of devices (bitwise, for 1, 2 and 4
  devices; see ``batch_stats``); k-means++ runs unsharded on one device for the
  same reason. A different batch size changes float rounding slightly.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Sequence

import numpy as np

from videobert_jax.quantize.feed import (  # noqa: F401 (re-exported names)
    DATA_AXIS, DEFAULT_BATCH_SIZE, DEFAULT_MAX_RESIDENT_BYTES, DataFeed, rebatch,
    reservoir_sample)


@dataclasses.dataclass
class KMeansResult:
  """The outcome of ``fit_kmeans``."""

  centroids: np.ndarray  # [k, D] float32
  counts: np.ndarray  # [k] points per cluster at the last assignment step
  inertia: float  # sum of squared distances at the last assignment step
  iterations: int  # Lloyd iterations run
  converged: bool  # relative inertia change fell below tol before max_iter
  init_seconds: float  # k-means++ on the init sample
  iteration_seconds: list  # wall time of each Lloyd iteration
  reseeded: int = 0  # empty clusters re-seeded from far points
  staging_seconds: float = 0.0  # putting device-resident data on the devices, once

  @property
  def fit_seconds(self) -> float:
    """Initialisation, data staging and every Lloyd iteration."""
    return self.init_seconds + self.staging_seconds + float(sum(self.iteration_seconds))


def make_data_mesh(devices: Sequence | None = None):
  """A 1-D mesh (axis ``data``) over ``devices`` (default: every device, all hosts)."""
  import jax
  from jax.sharding import Mesh
  devices = list(jax.devices() if devices is None else devices)
  return Mesh(np.array(devices), (DATA_AXIS,))


def default_sums_method() -> str:
  """``segment`` on CPU (scatter-add is cheap there), ``onehot`` matmul elsewhere."""
  import jax
  return "segment" if jax.default_backend() == "cpu" else "onehot"


def kmeans_plus_plus(x, weights, k: int, key, num_trials: int | None = None):
  """Greedy k-means++ seeding (as scikit-learn) of ``x`` [m, D]; returns [k, D].

  Each step draws ``num_trials`` candidates (default ``2 + ln k``) with
  probability proportional to the weighted squared distance to the nearest chosen
  centre and keeps the one that lowers the potential most. Pure jnp, so it can be
  jitted and vmapped; rows with weight 0 (padding) are never picked. When every
  remaining distance is 0 (fewer distinct points than k) the first real point is
  repeated; Lloyd then sees empty clusters and the caller decides what to do.
  """
  import jax
  import jax.numpy as jnp
  if num_trials is None:
    num_trials = 2 + int(math.log(k))
  m = x.shape[0]
  hi = jax.lax.Precision.HIGHEST
  x_sq = jnp.sum(x * x, axis=1)
  valid = weights > 0
  first_valid = jnp.argmax(valid)
  key, sub = jax.random.split(key)
  logits = jnp.where(valid, jnp.log(jnp.where(valid, weights, 1.0)), -jnp.inf)
  first = jnp.where(jnp.any(valid), jax.random.categorical(sub, logits), 0)
  centers = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])
  closest = weights * jnp.maximum(
      x_sq - 2.0 * jnp.dot(x, x[first], precision=hi) + x_sq[first], 0.0)

  def step(i, state):
    centers, closest, key = state
    key, sub = jax.random.split(key)
    cum = jnp.cumsum(closest)
    total = cum[-1]
    targets = jax.random.uniform(sub, (num_trials,), x.dtype) * total
    cand = jnp.clip(jnp.searchsorted(cum, targets, side="right"), 0, m - 1)
    cand = jnp.where(total > 0, cand, first_valid)
    cand_x = x[cand]
    dist = jnp.maximum(x_sq[None, :] - 2.0 * jnp.dot(cand_x, x.T, precision=hi)
                       + x_sq[cand][:, None], 0.0)
    trial_closest = jnp.minimum(closest[None, :], weights[None, :] * dist)
    best = jnp.argmin(jnp.sum(trial_closest, axis=1))
    return centers.at[i].set(cand_x[best]), trial_closest[best], key

  centers, _, _ = jax.lax.fori_loop(1, k, step, (centers, closest, key))
  return centers


def batch_stats(x, mask, centroids, sums_method: str = "segment", num_chunks: int = 1):
  """Assignment statistics of one batch: (sums [k, D], counts [k], inertia, labels, dist).

  ``mask`` [B] is 1 for real rows and 0 for padding. With ``num_chunks`` > 1 the
  sums are first taken per chunk of ``B / num_chunks`` consecutive rows and
  then added in chunk order. DataFeed uses lcm(4, devices) chunks, none
  straddling two devices, so every float is added in the same order on 1, 2 or
  4 devices (and on 8 vs 16 ...), and the fit is bitwise the same: a plain
  sharded sum rounds differently and k-means amplifies such differences.
  Matmul rows do not depend on the batch split (checked on XLA:CPU). Pure jnp
  (jit/vmap-able).
  """
  import jax
  import jax.numpy as jnp
  k = centroids.shape[0]
  hi = jax.lax.Precision.HIGHEST
  c_sq = jnp.sum(centroids * centroids, axis=1)
  # ||x||^2 is constant per row: left out of the argmin, added back for inertia.
  scores = c_sq[None, :] - 2.0 * jnp.dot(x, centroids.T, precision=hi)
  labels = jnp.argmin(scores, axis=1)
  dist = jnp.maximum(jnp.min(scores, axis=1) + jnp.sum(x * x, axis=1), 0.0) * mask
  rows = x.shape[0] // num_chunks
  chunk = jnp.arange(x.shape[0]) // rows
  if sums_method == "onehot":
    onehot = jax.nn.one_hot(labels, k, dtype=x.dtype) * mask[:, None]
    onehot = onehot.reshape(num_chunks, rows, k)
    sums = jnp.einsum("crk,crd->ckd", onehot, x.reshape(num_chunks, rows, -1),
                      precision=hi)
    counts = jnp.sum(onehot, axis=1)
  else:
    # Padding rows get an out-of-range segment id, which segment_sum drops: no
    # masked copy of x is made.
    segments = jnp.where(mask > 0, labels + chunk * k, num_chunks * k)
    sums = jax.ops.segment_sum(x, segments, num_segments=num_chunks * k)
    counts = jax.ops.segment_sum(mask, segments, num_segments=num_chunks * k)
    sums = sums.reshape(num_chunks, k, -1)
    counts = counts.reshape(num_chunks, k)
  inertia = jax.ops.segment_sum(dist, chunk, num_segments=num_chunks)
  return (jnp.sum(sums, axis=0), jnp.sum(counts, axis=0), jnp.sum(inertia), labels, dist)


def fit_kmeans(data, k: int, *, seed: int = 0, max_iter: int = 100, tol: float = 1e-4,
               batch_size: int = DEFAULT_BATCH_SIZE, init_sample_size: int | None = None,
               num_init_trials: int | None = None, devices: Sequence | None = None,
               init: np.ndarray | None = None, sums_method: str | None = None,
               max_resident_bytes: int = DEFAULT_MAX_RESIDENT_BYTES,
               n_init: int = 1, progress: bool = False) -> KMeansResult:
  """Fits k centroids with k-means++ seeding and Lloyd's iterations.

  Args:
    data: ``[n, D]`` array (numpy or memmap), or a zero-argument callable that
      returns a fresh iterator of ``[b, D]`` row blocks per call (one pass).
    k: number of clusters.
    seed: seeds the init sample and k-means++.
    max_iter: maximum Lloyd iterations.
    tol: stop when the relative inertia decrease between two iterations is at
      most ``tol``.
    batch_size: rows per jitted step (rounded up to a multiple of the devices).
    init_sample_size: rows k-means++ runs on (default ``max(40 k, 10000)``;
      the whole data when smaller), drawn uniformly at random.
    num_init_trials: k-means++ candidates per step (default ``2 + ln k``).
    devices: devices of the data mesh (default all).
    init: optional ``[k, D]`` starting centroids instead of k-means++.
    sums_method: ``segment`` or ``onehot`` (default: by backend).
    max_resident_bytes: arrays up to this size are copied to the devices once.
    n_init: runs with seeds ``seed .. seed+n_init-1``; the lowest inertia wins
      (its result carries the summed times of all runs).
    progress: show a tqdm bar over iterations.

  Empty clusters are re-seeded with the points farthest from their centroid
  (one extra pass over the data in that iteration); when the data has fewer
  than k distinct points some clusters stay empty and keep their centroid.
  """
  if k < 1:
    raise ValueError(f"k must be >= 1, got {k}")
  mesh = make_data_mesh(devices)
  feed = DataFeed(data, mesh, batch_size, max_resident_bytes)
  if n_init > 1:
    runs = [_fit(feed, k, seed + i, max_iter, tol, init_sample_size, num_init_trials,
                 init, sums_method, progress) for i in range(n_init)]
    best = min(runs, key=lambda r: r.inertia)
    best.init_seconds = sum(r.init_seconds for r in runs)
    best.staging_seconds = sum(r.staging_seconds for r in runs)
    best.iteration_seconds = [t for r in runs for t in r.iteration_seconds]
    return best
  return _fit(feed, k, seed, max_iter, tol, init_sample_size, num_init_trials, init,
              sums_method, progress)


def _fit(feed: DataFeed, k, seed, max_iter, tol, init_sample_size, num_init_trials, init,
         sums_method, progress) -> KMeansResult:
  """One k-means++ + Lloyd run of ``fit_kmeans`` on a prepared feed."""
  import jax
  import jax.numpy as jnp
  from jax.sharding import NamedSharding, PartitionSpec as P
  mesh = feed.mesh
  sums_method = sums_method or default_sums_method()
  replicated = NamedSharding(mesh, P())

  t0 = time.perf_counter()
  if init is None:
    sample_size = init_sample_size or max(40 * k, 10000)
    sample = feed.sample(-(-sample_size // jax.process_count()), seed)
    if jax.process_count() > 1:  # every host seeds from the same global sample
      from jax.experimental import multihost_utils
      sample = np.concatenate(list(multihost_utils.process_allgather(sample)))
    centroids = _init_centroids(sample, k, seed, num_init_trials)
  else:
    centroids = np.asarray(init, np.float32)
    if centroids.shape != (k, feed.dim):
      raise ValueError(f"init must have shape {(k, feed.dim)}, got {centroids.shape}")
  centroids = jax.device_put(jnp.asarray(centroids), replicated)
  jax.block_until_ready(centroids)
  init_seconds = time.perf_counter() - t0

  step_fn, resident_fn = _lloyd_functions(sums_method, feed.num_chunks)
  # Resident data goes to the devices once, before the first pass: a copy of the
  # whole array, timed apart so iteration times measure Lloyd's passes alone.
  t0 = time.perf_counter()
  if feed.resident:
    jax.block_until_ready(feed.stacked())
  staging_seconds = time.perf_counter() - t0

  def one_pass(c):
    if feed.resident:
      xs, masks = feed.stacked()
      return resident_fn(xs, masks, c)
    acc = jax.device_put((jnp.zeros_like(c), jnp.zeros(k, c.dtype), jnp.zeros((), c.dtype)),
                         replicated)
    for x, mask in feed.batches():
      acc = step_fn(acc, x, mask, c)
    return acc

  iteration_seconds = []
  prev_inertia = math.inf
  converged = False
  reseeded = 0
  inertia = math.inf
  counts = np.zeros(k)
  bar = _progress(max_iter, "k-means", progress)
  for _ in range(max_iter):
    t = time.perf_counter()
    sums, counts_dev, inertia_dev = one_pass(centroids)
    counts = np.asarray(counts_dev)
    inertia = float(inertia_dev)
    safe = jnp.maximum(counts_dev, 1.0)[:, None]
    new = jnp.where((counts_dev > 0)[:, None], sums / safe, centroids)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
      far = _farthest_points(feed, centroids, empty.size, sums_method)
      if far.shape[0]:
        reseeded += far.shape[0]
        new = new.at[empty[:far.shape[0]]].set(jnp.asarray(far))
    centroids = jax.device_put(new, replicated)
    jax.block_until_ready(centroids)
    iteration_seconds.append(time.perf_counter() - t)
    bar.update(1)
    bar.set_postfix(inertia=f"{inertia:.4g}")
    if not empty.size and prev_inertia - inertia <= tol * max(inertia, 1e-30):
      converged = True
      break
    prev_inertia = inertia
  bar.close()
  return KMeansResult(centroids=np.asarray(centroids), counts=counts, inertia=inertia,
                      iterations=len(iteration_seconds), converged=converged,
                      init_seconds=init_seconds, iteration_seconds=iteration_seconds,
                      reseeded=reseeded, staging_seconds=staging_seconds)


@functools.lru_cache(maxsize=None)
def _lloyd_functions(sums_method: str, num_chunks: int):
  """The jitted per-batch step and whole-pass scan (cached: compiled once per shape)."""
  import jax
  import jax.numpy as jnp

  def step(acc, x, mask, c):
    sums, counts, inertia, _, _ = batch_stats(x, mask, c, sums_method, num_chunks)
    return acc[0] + sums, acc[1] + counts, acc[2] + inertia

  def resident_pass(xs, masks, c):
    zero = (jnp.zeros_like(c), jnp.zeros(c.shape[0], c.dtype), jnp.zeros((), c.dtype))
    acc, _ = jax.lax.scan(lambda a, xm: (step(a, xm[0], xm[1], c), None), zero,
                          (xs, masks))
    return acc

  return jax.jit(step, donate_argnums=0), jax.jit(resident_pass)


@functools.lru_cache(maxsize=None)
def _kmeans_pp_function():
  """jitted ``kmeans_plus_plus`` (k and num_trials static)."""
  import jax
  return jax.jit(kmeans_plus_plus, static_argnums=(2, 4))


def _init_centroids(sample: np.ndarray, k: int, seed: int, num_trials) -> np.ndarray:
  """k-means++ on ``sample`` on one device.

  Not sharded on purpose: the sampling thresholds compare cumulative sums, and a
  sharded cumsum rounds differently, which would make the seeding (and so the
  codebook) depend on the number of devices.
  """
  import jax
  x = jax.device_put(sample, jax.local_devices()[0])
  w = np.ones(sample.shape[0], np.float32)
  return np.asarray(_kmeans_pp_function()(x, w, k, jax.random.key(seed), num_trials))


def _farthest_points(feed: DataFeed, centroids, count: int, sums_method: str) -> np.ndarray:
  """Up to ``count`` distinct rows farthest from their nearest centroid (distance > 0)."""
  import jax
  import jax.numpy as jnp
  best_d = np.zeros(0, np.float32)
  best_x = np.zeros((0, feed.dim), np.float32)
  top = jax.jit(lambda x, m, c: jax.lax.top_k(batch_stats(x, m, c, sums_method)[4],
                                              min(count, x.shape[0])))
  for x, mask in feed.batches():
    d, idx = top(x, mask, centroids)
    rows = np.asarray(jnp.take(x, idx, axis=0))
    best_d = np.concatenate([best_d, np.asarray(d)])
    best_x = np.concatenate([best_x, rows])
    order = np.argsort(-best_d, kind="stable")[:count]
    best_d, best_x = best_d[order], best_x[order]
  keep = best_d > 0
  best_x = best_x[keep]
  _, first = np.unique(best_x, axis=0, return_index=True)
  return best_x[np.sort(first)]


def _progress(total: int, desc: str, enabled: bool):
  """A tqdm bar, or a no-op stand-in when progress is off."""
  from tqdm.auto import tqdm
  return tqdm(total=total, desc=desc, unit="it", disable=not enabled, leave=False)


def assign_nearest(x: np.ndarray, centroids: np.ndarray,
                   batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[np.ndarray, float]:
  """Nearest centroid of every row of ``x`` and the total inertia (single device)."""
  import jax
  import jax.numpy as jnp
  fn = jax.jit(lambda xb, m, c: batch_stats(xb, m, c)[2:4])
  c = jnp.asarray(centroids, jnp.float32)
  labels = np.zeros(x.shape[0], np.int32)
  total = 0.0
  for start in range(0, x.shape[0], batch_size):
    block = np.asarray(x[start:start + batch_size], np.float32)
    valid = block.shape[0]
    if valid < batch_size and x.shape[0] > batch_size:
      block = np.concatenate([block, np.zeros((batch_size - valid, x.shape[1]), np.float32)])
    mask = np.zeros(block.shape[0], np.float32)
    mask[:valid] = 1.0
    inertia, lab = fn(block, mask, c)
    labels[start:start + valid] = np.asarray(lab)[:valid]
    total += float(inertia)
  return labels, total
