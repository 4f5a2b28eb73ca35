"""The hierarchical k-means codebook: its file, validation and token assignment.

File format (``.npz``, written atomically, no pickles):

| key | value |
| --- | --- |
| ``format`` | the string ``videobert_jax.codebook`` |
| ``format_version`` | int, currently 1 |
| ``levels``, ``clusters``, ``feature_dim``, ``seed``, ``sample_size`` | ints (d, k, D, ...) |
| ``level_0`` ... ``level_{d-1}`` | float32 ``[k**(l+1), D]``: centroids of level l |
| ``leaves`` | float32 ``[k**d, D]``: the leaf centroids (= ``level_{d-1}``) |

Node ``i`` of level ``l`` has its children at rows ``i*k .. i*k+k-1`` of level
``l+1``, so the leaf index reached by tree descent is the visual word id.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import zipfile

import numpy as np

from videobert_jax import fileio
from videobert_jax.quantize import argbest

FORMAT_NAME = "videobert_jax.codebook"
FORMAT_VERSION = 1
DEFAULT_ASSIGN_BATCH = 2048  # rows per jitted step; a descent step holds [B, k, D]
_INT_KEYS = ("format_version", "levels", "clusters", "feature_dim", "seed", "sample_size")


class CodebookError(ValueError):
  """A codebook file that cannot be used; ``str()`` names the file and the problem."""


@dataclasses.dataclass
class Codebook:
  """Centroids of every level of a d-level, k-way hierarchical k-means tree."""

  levels: int  # d
  clusters: int  # k
  feature_dim: int  # D
  seed: int  # seed of the fit
  sample_size: int  # rows the fit ran on
  level_centroids: list  # level l: float32 [k**(l+1), D]
  leaves: np.ndarray = None  # float32 [k**d, D]; defaults to level_centroids[-1]

  def __post_init__(self):
    self.level_centroids = [np.asarray(c, np.float32) for c in self.level_centroids]
    if self.leaves is None:
      self.leaves = self.level_centroids[-1]
    self.leaves = np.asarray(self.leaves, np.float32)

  @property
  def num_words(self) -> int:
    """Number of visual words (leaves): k**d."""
    return self.clusters ** self.levels

  def assign(self, features: np.ndarray, exact: bool = False,
             batch_size: int = DEFAULT_ASSIGN_BATCH) -> np.ndarray:
    """Visual word id (int32 ``[n]``) of each row of ``features`` ``[n, D]``.

    By default descends the tree: at each level the nearest of the current node's
    k children, d*k distances per vector. ``exact=True`` takes the nearest of all
    k**d leaves instead (the two differ where a point lies near a boundary).
    """
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[1] != self.feature_dim:
      raise ValueError(f"features must be [n, {self.feature_dim}], got {features.shape}")
    n = features.shape[0]
    out = np.zeros(n, np.int32)
    if n == 0:
      return out
    import jax.numpy as jnp
    if exact:
      fn = _exact_function()
      tables = (jnp.asarray(self.leaves),)
    else:
      fn = _descent_function(self.clusters)
      tables = tuple(jnp.asarray(c) for c in self.level_centroids)
    # Short inputs pad to a power of two: few shapes, so few compilations.
    size = batch_size if n >= batch_size else min(batch_size, max(64, 1 << (n - 1).bit_length()))
    for start in range(0, n, size):
      block = np.asarray(features[start:start + size], np.float32)
      valid = block.shape[0]
      if valid < size:  # pad so every batch has one shape (one compilation)
        block = np.concatenate([block, np.zeros((size - valid, block.shape[1]), np.float32)])
      out[start:start + valid] = np.asarray(fn(block, *tables))[:valid]
    return out

  def save(self, path: str | os.PathLike) -> None:
    """Writes the codebook to ``path`` (``.npz``) atomically."""
    arrays = {"format": np.array(FORMAT_NAME), "format_version": np.array(FORMAT_VERSION),
              "levels": np.array(self.levels), "clusters": np.array(self.clusters),
              "feature_dim": np.array(self.feature_dim), "seed": np.array(self.seed),
              "sample_size": np.array(self.sample_size),
              "leaves": self.leaves}
    for i, c in enumerate(self.level_centroids):
      arrays[f"level_{i}"] = c
    fileio.save_npz(path, **arrays)


def descend_one_level(x, parents, centroids, k: int):
  """Child index (in the next level) of each row: the nearest of its parent's k children.

  ``x`` [B, D], ``parents`` [B] node ids, ``centroids`` [k*num_parents, D]. Pure jnp.
  """
  import jax
  import jax.numpy as jnp
  rows = parents[:, None] * k + jnp.arange(k)[None, :]
  children = centroids[rows]  # [B, k, D]
  scores = jnp.sum(children * children, axis=2) - 2.0 * jnp.einsum(
      "bd,bkd->bk", x, children, precision=jax.lax.Precision.HIGHEST)
  return rows[jnp.arange(x.shape[0]), argbest.first_argmin(scores)[0]]


@functools.lru_cache(maxsize=None)
def _descent_function(k: int):
  """jitted tree descent over every level given."""
  import jax
  import jax.numpy as jnp

  def descend(x, *levels):
    node = jnp.zeros(x.shape[0], jnp.int32)
    for centroids in levels:
      node = descend_one_level(x, node, centroids, k)
    return node

  return jax.jit(descend)


@functools.lru_cache(maxsize=None)
def _exact_function():
  """jitted nearest leaf (matmul distances, ||x||^2 dropped)."""
  import jax
  import jax.numpy as jnp

  def nearest(x, leaves):
    scores = jnp.sum(leaves * leaves, axis=1)[None, :] - 2.0 * jnp.dot(
        x, leaves.T, precision=jax.lax.Precision.HIGHEST)
    return argbest.first_argmin(scores)[0]

  return jax.jit(nearest)


def load_codebook(path: str | os.PathLike, feature_dim: int | None = None) -> Codebook:
  """Loads and validates a codebook file.

  Raises CodebookError naming the file when it is missing, not a codebook,
  corrupt, of another format version, inconsistent, or (with ``feature_dim``)
  made for features of another dimension.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise CodebookError(f"{path}: codebook file does not exist")
  try:
    with np.load(path, allow_pickle=False) as z:
      data = {key: z[key] for key in z.files}
  except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
    raise CodebookError(f"{path}: not a readable codebook .npz ({e})") from None
  if str(data.get("format", "")) != FORMAT_NAME:
    raise CodebookError(f"{path}: not a videobert_jax codebook (no '{FORMAT_NAME}' marker)")
  missing = [key for key in _INT_KEYS + ("leaves",) if key not in data]
  if missing:
    raise CodebookError(f"{path}: codebook is missing {', '.join(missing)}")
  meta = {}
  for key in _INT_KEYS:
    if data[key].shape != () or not np.issubdtype(data[key].dtype, np.integer):
      raise CodebookError(f"{path}: '{key}' must be an integer, got {data[key]!r}")
    meta[key] = int(data[key])
  if meta["format_version"] != FORMAT_VERSION:
    raise CodebookError(f"{path}: codebook format version {meta['format_version']} is not "
                        f"supported (this code reads version {FORMAT_VERSION})")
  d, k, dim = meta["levels"], meta["clusters"], meta["feature_dim"]
  if d < 1 or k < 1 or dim < 1:
    raise CodebookError(f"{path}: levels, clusters and feature_dim must be >= 1, got "
                        f"{d}, {k}, {dim}")
  levels = []
  for i in range(d):
    key = f"level_{i}"
    if key not in data:
      raise CodebookError(f"{path}: codebook is missing {key}")
    levels.append(_check_centroids(path, key, data[key], (k ** (i + 1), dim)))
  leaves = _check_centroids(path, "leaves", data["leaves"], (k ** d, dim))
  if not np.array_equal(leaves, levels[-1]):
    raise CodebookError(f"{path}: 'leaves' differ from level_{d - 1}")
  if feature_dim is not None and feature_dim != dim:
    raise CodebookError(f"{path}: codebook was fit on {dim}-d features, the corpus has "
                        f"{feature_dim}-d features")
  return Codebook(levels=d, clusters=k, feature_dim=dim, seed=meta["seed"],
                  sample_size=meta["sample_size"], level_centroids=levels, leaves=leaves)


def _check_centroids(path: str, key: str, arr: np.ndarray, shape: tuple) -> np.ndarray:
  """Checks one centroid array's shape, dtype and finiteness."""
  if arr.shape != shape:
    raise CodebookError(f"{path}: '{key}' has shape {arr.shape}, expected {shape}")
  if not np.issubdtype(arr.dtype, np.floating):
    raise CodebookError(f"{path}: '{key}' must be floating point, got {arr.dtype}")
  if not np.isfinite(arr).all():
    raise CodebookError(f"{path}: '{key}' holds NaN or Inf")
  return arr.astype(np.float32)
