"""Seeding flat k-means: k-means|| on the init sample, then greedy k-means++ on its candidates.

Greedy k-means++ (scikit-learn's: ``2 + ln k`` candidates per step, the one that
lowers the potential most is kept) picks k centres one after the other, and every
step rereads the whole sample to update each row's distance to its nearest
centre: a ``[m, D] x [D, 2 + ln k]`` product per step, memory-bound. At k = 256
on the 30,720-row sample of ``benchmarks/kmeans.py`` that was 255 sequential
reads of 126 MB, 1.6 s on the 2-core CPU (the largest part of a 6.7 s fit).

k-means|| (Bahmani et al. 2012, "Scalable k-means++") draws ``per_round``
candidates at once in each of a few rounds, each with probability proportional
to its squared distance to the candidates so far; a round's distance update is
one ``[m, D] x [D, per_round]`` matmul, which runs near the matmul peak. Each
candidate is then weighted by the number of sample rows nearest to it, and
greedy k-means++ on these ``1 + rounds * per_round`` weighted candidates (a few
MB, cache-resident) picks the k centres. With 5 rounds of k candidates, at
k = 256 on the benchmark's data (same sample and seed, a busy 2-core machine),
seeding took 0.72-0.89 s against greedy k-means++'s 3.1-4.5 s, and the final
inertia after Lloyd was within 0.51% of greedy's for each of three seeds (two
lower, one higher).

Everything runs unsharded on one device, jitted as one program: the draws
compare cumulative sums, which a sharded cumsum would round differently, so the
seeds (and the codebook) would depend on the number of devices.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from videobert_jax.quantize import argbest

INIT_ROUNDS = 5  # k-means|| rounds (Bahmani et al.: about 5 suffice); 0 = greedy k-means++
# Below this k the seeding is greedy k-means++: its k sequential passes cost little
# there, and k-means|| codebooks of the 2 x 12 demo tree, at equal inertia (within
# 0.2%), gave lower co-occurrence zero-shot ceilings in all 12 top-1/top-5 columns of
# three synthetic worlds (e.g. noun top-5 96.8 -> 93.5, 82.5 -> 76.2, 92.5 -> 80.6;
# docs/quantize.md). The paper's tree (k = 12 per node) therefore seeds greedily.
PARALLEL_MIN_K = 64
# The largest [rows, candidates] distance block one k-means|| step holds (floats).
MAX_BLOCK_FLOATS = 1 << 24


def draw(key, weights, count: int, fallback):
  """``count`` row indices drawn with replacement, with probability proportional to
  ``weights`` (which may be unnormalised); all ``fallback`` when every weight is 0.
  Pure jnp."""
  import jax
  import jax.numpy as jnp
  cum = jnp.cumsum(weights)
  total = cum[-1]
  targets = jax.random.uniform(key, (count,), weights.dtype) * total
  picked = jnp.clip(jnp.searchsorted(cum, targets, side="right"), 0, weights.shape[0] - 1)
  return jnp.where(total > 0, picked, fallback)


def squared_distances(x, x_sq, centres):
  """``[m, c]`` squared distances of rows ``x`` (norms ``x_sq``) to ``centres``. Pure jnp."""
  import jax
  import jax.numpy as jnp
  dots = jnp.dot(x, centres.T, precision=jax.lax.Precision.HIGHEST)
  return jnp.maximum(x_sq[:, None] - 2.0 * dots
                     + jnp.sum(centres * centres, axis=1)[None, :], 0.0)


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
  x_sq = jnp.sum(x * x, axis=1)
  valid = weights > 0
  first_valid = jnp.argmax(valid)
  key, sub = jax.random.split(key)
  logits = jnp.where(valid, jnp.log(jnp.where(valid, weights, 1.0)), -jnp.inf)
  first = jnp.where(jnp.any(valid), jax.random.categorical(sub, logits), 0)
  centers = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])
  closest = weights * squared_distances(x, x_sq, x[first][None])[:, 0]

  def step(i, state):
    centers, closest, key = state
    key, sub = jax.random.split(key)
    cand = draw(sub, closest, num_trials, first_valid)
    cand_x = x[cand]
    # [m, trials] with the sample as the matmul's left operand: measured 1.5x
    # faster on XLA:CPU than [trials, m] (the step reads the whole sample).
    dist = squared_distances(x, x_sq, cand_x)
    trial_closest = jnp.minimum(closest[:, None], weights[:, None] * dist)
    best = jnp.argmin(jnp.sum(trial_closest, axis=0))
    return centers.at[i].set(cand_x[best]), trial_closest[:, best], key

  centers, _, _ = jax.lax.fori_loop(1, k, step, (centers, closest, key))
  return centers


def kmeans_parallel(x, weights, k: int, key, rounds: int = INIT_ROUNDS,
                    per_round: int | None = None, num_trials: int | None = None):
  """k-means|| seeding of ``x`` [m, D] (row weights ``weights``); returns [k, D].

  One candidate drawn by weight, then ``rounds`` rounds of ``per_round``
  (default k) candidates drawn with replacement by weighted squared distance to
  the nearest candidate so far; each candidate is weighted by the rows nearest
  to it (a row drawn twice weighs once) and greedy ``kmeans_plus_plus`` on the
  candidates picks the k centres. Pure jnp; rows with weight 0 are never drawn.
  """
  import jax
  import jax.numpy as jnp
  per_round = per_round or k
  m, dim = x.shape
  # Rows go through each round's matmul in blocks of at most MAX_BLOCK_FLOATS
  # distances (one block at the usual sizes); the padding rows weigh 0.
  block = max(1, min(m, MAX_BLOCK_FLOATS // per_round))
  pad = -m % block
  xb = jnp.pad(x, ((0, pad), (0, 0))).reshape(-1, block, dim)
  w = jnp.pad(weights, (0, pad))
  x_sq = jnp.sum(xb * xb, axis=2)
  key, sub = jax.random.split(key)
  first = draw(sub, w, 1, jnp.argmax(w > 0))
  cands = jnp.zeros((1 + rounds * per_round, dim), x.dtype).at[0].set(x[first[0]])
  closest = w * jax.lax.map(lambda a: squared_distances(a[0], a[1], x[first])[:, 0],
                            (xb, x_sq)).reshape(-1)
  owner = jnp.zeros(m + pad, jnp.int32)

  def round_(r, state):
    cands, closest, owner, key = state
    key, sub = jax.random.split(key)
    new = x[draw(sub, closest, per_round, first[0])]
    j, best = jax.lax.map(lambda a: argbest.first_argmin(squared_distances(*a, new)),
                          (xb, x_sq))
    best = w * best.reshape(-1)
    nearer = best < closest  # ties stay with the earlier candidate
    owner = jnp.where(nearer, 1 + r * per_round + j.reshape(-1), owner)
    cands = jax.lax.dynamic_update_slice(cands, new, (1 + r * per_round, 0))
    return cands, jnp.where(nearer, best, closest), owner, key

  cands, _, owner, key = jax.lax.fori_loop(0, rounds, round_, (cands, closest, owner, key))
  cand_weights = jax.ops.segment_sum(w, owner, num_segments=cands.shape[0])
  return kmeans_plus_plus(cands, cand_weights, k, key, num_trials)


@functools.lru_cache(maxsize=None)
def _jitted(rounds: int):
  """jitted ``kmeans_plus_plus`` (rounds 0) or ``kmeans_parallel`` (k, trials static)."""
  import jax
  if rounds == 0:
    return jax.jit(kmeans_plus_plus, static_argnums=(2, 4))
  return jax.jit(lambda x, w, k, key, trials: kmeans_parallel(x, w, k, key, rounds,
                                                              None, trials),
                 static_argnums=(2, 4))


def seed_centroids(sample: np.ndarray, k: int, seed: int, num_trials: int | None = None,
                   rounds: int | None = None) -> np.ndarray:
  """``[k, D]`` starting centroids for ``sample`` on one device (float32).

  k-means|| with ``rounds`` rounds of k candidates, then greedy k-means++ on
  them; ``rounds=0``, or a sample no larger than the candidate set, runs greedy
  k-means++ on the sample itself (the seeding before k-means||). ``None``:
  ``INIT_ROUNDS`` from ``PARALLEL_MIN_K`` clusters up, greedy below.
  """
  import jax
  if rounds is None:
    rounds = INIT_ROUNDS if k >= PARALLEL_MIN_K else 0
  if sample.shape[0] <= 1 + rounds * k:
    rounds = 0
  x = jax.device_put(np.asarray(sample, np.float32), jax.local_devices()[0])
  w = np.ones(sample.shape[0], np.float32)
  return np.asarray(_jitted(rounds)(x, w, k, jax.random.key(seed), num_trials))
