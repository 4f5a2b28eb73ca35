"""Feeding rows to a device mesh: fixed-size sharded batches, reservoir samples.

``DataFeed`` turns an array or a stream of row blocks into batches of one shape
(the last one zero-padded and masked, so nothing recompiles), sharded over the
``data`` axis of a 1-D mesh. On several hosts each host feeds its own rows
through ``jax.make_array_from_process_local_data`` and hosts agree on the number
of batches per pass.
"""

from __future__ import annotations

import functools
import math
from typing import Iterable, Iterator

import numpy as np

DEFAULT_BATCH_SIZE = 1024  # rows per jitted step: x stays in cache from the matmul to the sums
DEFAULT_MAX_RESIDENT_BYTES = 4 << 30  # arrays up to this size are put on device once
DATA_AXIS = "data"
SUM_CHUNKS = 4  # partial sums per batch (see kmeans._lloyd_functions): 1, 2, 4 devices agree
ROW_MULTIPLE = 64  # rows per device per batch are a multiple of this


def _rows(data, batch_size: int) -> Iterator[np.ndarray]:
  """Yields float32 row blocks of an array or of a callable's iterator of batches."""
  if callable(data):
    for block in data():
      yield np.asarray(block, dtype=np.float32)
  else:
    for start in range(0, data.shape[0], batch_size):
      yield np.asarray(data[start:start + batch_size], dtype=np.float32)


def rebatch(blocks: Iterable[np.ndarray], batch_size: int,
            dim: int) -> Iterator[tuple[np.ndarray, int]]:
  """Regroups row blocks of any size into ``[batch_size, dim]`` batches.

  Yields ``(batch, num_valid)``; the last batch is zero-padded.
  """
  buf = np.zeros((batch_size, dim), np.float32)
  fill = 0
  for block in blocks:
    block = np.asarray(block, np.float32).reshape(-1, dim)
    pos = 0
    while pos < block.shape[0]:
      take = min(batch_size - fill, block.shape[0] - pos)
      buf[fill:fill + take] = block[pos:pos + take]
      fill += take
      pos += take
      if fill == batch_size:
        yield buf.copy(), batch_size
        fill = 0
  if fill:
    buf[fill:] = 0.0
    yield buf.copy(), fill


def _agree_on_max(value: int) -> int:
  """The maximum of ``value`` over all hosts (itself on one host)."""
  import jax
  if jax.process_count() == 1:
    return value
  from jax.experimental import multihost_utils
  return int(np.max(multihost_utils.process_allgather(np.array(value))))


def _agree_on_sum(value: int) -> int:
  """The sum of ``value`` over all hosts (itself on one host)."""
  import jax
  if jax.process_count() == 1:
    return value
  from jax.experimental import multihost_utils
  return int(np.sum(multihost_utils.process_allgather(np.array(value, np.int64))))


def equal_batch_size(rows: int, batch_size: int, num_devices: int) -> int:
  """The global batch a feed of ``rows`` uses: equal batches that just cover the rows.

  Partial-sum chunks must not straddle devices: their count is a multiple of both
  SUM_CHUNKS and the device count, and each is a multiple of ROW_MULTIPLE.
  """
  unit = math.lcm(SUM_CHUNKS, num_devices) * ROW_MULTIPLE
  if rows > 0:
    batches = -(-rows // max(batch_size, 1))
    batch_size = -(-rows // batches)
  return max(unit, -(-batch_size // unit) * unit)


def process_share(data: np.ndarray, batch_size: int, mesh) -> np.ndarray:
  """This process's rows of ``data`` (the same array on every process) for a DataFeed.

  Process i of N takes rows ``[j*B + i*B/N, j*B + (i+1)*B/N)`` of every global
  batch j (B from ``equal_batch_size``), so the global batches that the processes
  assemble are exactly those of one process feeding all of ``data``: same rows,
  same devices, same padding, hence bitwise the same sums.
  """
  import jax
  count = jax.process_count()
  if count == 1:
    return data
  size = equal_batch_size(int(data.shape[0]), batch_size, mesh.devices.size)
  rows = np.arange(data.shape[0])
  return data[(rows % size) // (size // count) == jax.process_index()]


class DataFeed:
  """Feeds the rows of ``data`` to the mesh in fixed, sharded, masked batches.

  ``data`` is an array ``[n, D]`` (numpy, memmap) or a zero-argument callable
  that returns a fresh iterator of row blocks on every call (one pass each).
  """

  def __init__(self, data, mesh, batch_size: int = DEFAULT_BATCH_SIZE,
               max_resident_bytes: int = DEFAULT_MAX_RESIDENT_BYTES):
    import jax
    from jax.sharding import NamedSharding, PartitionSpec as P
    self.data = data
    self.mesh = mesh
    n_dev = mesh.devices.size
    self.num_chunks = math.lcm(SUM_CHUNKS, n_dev)
    if not callable(data) and data.ndim == 2:
      # Equal batches that just cover the data (every host's rows: the batch is
      # global): little padding, one shape.
      self.batch_size = equal_batch_size(_agree_on_sum(int(data.shape[0])), batch_size,
                                         n_dev)
    else:
      self.batch_size = equal_batch_size(0, batch_size, n_dev)
    self.local_batch = self.batch_size // jax.process_count()
    self.row_sharding = NamedSharding(mesh, P(DATA_AXIS))
    self.batch_sharding = NamedSharding(mesh, P(DATA_AXIS, None))
    self.stack_sharding = NamedSharding(mesh, P(None, DATA_AXIS, None))
    self.stack_mask_sharding = NamedSharding(mesh, P(None, DATA_AXIS))
    self.replicated = NamedSharding(mesh, P())
    if callable(data):
      first = next(iter(data()), None)
      if first is None:
        raise ValueError("k-means data is empty: the batch iterator yielded nothing")
      self.dim = int(np.asarray(first).reshape(len(first), -1).shape[1])
      self.local_rows = None  # counted on the first pass
      self.resident = False
    else:
      if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError(f"k-means data must be a non-empty [n, D] array, got {data.shape}")
      self.dim = int(data.shape[1])
      self.local_rows = int(data.shape[0])
      self.resident = data.shape[0] * data.shape[1] * 4 <= max_resident_bytes
    self.num_batches = None
    self._stack = None

  def _global(self, local: np.ndarray, sharding, row_axis: int = 0):
    """The global array whose ``row_axis`` concatenates every host's ``local`` rows."""
    import jax
    shape = list(local.shape)
    shape[row_axis] *= jax.process_count()
    return jax.make_array_from_process_local_data(sharding, local, tuple(shape))

  def _local_batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    count = 0
    rows = 0
    for batch, valid in rebatch(_rows(self.data, self.local_batch), self.local_batch,
                                self.dim):
      mask = np.zeros(self.local_batch, np.float32)
      mask[:valid] = 1.0
      rows += valid
      count += 1
      yield batch, mask
    if self.local_rows is None:
      self.local_rows = rows
    if self.num_batches is None:
      self.num_batches = _agree_on_max(count)
    # Hosts with fewer rows pad with masked batches so every host runs the same steps.
    for _ in range(self.num_batches - count):
      yield (np.zeros((self.local_batch, self.dim), np.float32),
             np.zeros(self.local_batch, np.float32))

  def stacked(self):
    """All batches on the devices: ``x`` [nb, B, D], ``mask`` [nb, B], ``|x|^2`` [nb, B].

    Built once: the array is padded to whole batches with one host copy (none
    when it already fills them) and reshaped, not regrouped batch by batch, and
    ``|x|^2`` is computed once on the devices (it does not change between
    passes).
    """
    if self._stack is None:
      import jax
      import jax.numpy as jnp
      b = self.local_batch
      local_batches = -(-self.local_rows // b)
      self.num_batches = _agree_on_max(local_batches)
      rows = self.num_batches * b
      x = np.asarray(self.data)
      shape = (self.num_batches, b, self.dim)
      if (jax.process_count() == 1 and jax.default_backend() == "cpu"
          and x.dtype == np.float32 and x.flags.c_contiguous and x.shape[0] < rows):
        # On CPU, padding on the device costs one copy of the data: 0.75 s for
        # 800 MB here, against 1.3 s for a padded host copy (into fresh pages)
        # that device_put then copies again.
        xs = _pad_and_stack(shape, self.stack_sharding)(x)
      else:
        if x.dtype != np.float32 or x.shape[0] != rows or not x.flags.c_contiguous:
          padded = np.zeros((rows, self.dim), np.float32)
          padded[:self.local_rows] = x
          x = padded
        xs = self._global(x.reshape(shape), self.stack_sharding, 1)
      mask = np.zeros(rows, np.float32)
      mask[:self.local_rows] = 1.0
      masks = self._global(mask.reshape(self.num_batches, b), self.stack_mask_sharding, 1)
      x_sq = jax.jit(lambda a: jnp.sum(a * a, axis=2),
                     out_shardings=self.stack_mask_sharding)(xs)
      self._stack = (xs, masks, x_sq)
    return self._stack

  def batches(self):
    """One pass: device arrays ``(x [B, D], mask [B])`` sharded over ``data``."""
    for x, mask in self._local_batches():
      yield self._global(x, self.batch_sharding), self._global(mask, self.row_sharding)

  def sample(self, size: int, seed: int) -> np.ndarray:
    """A uniform random sample of ``size`` local rows (arrays: indexed; streams: reservoir)."""
    if not callable(self.data):
      if self.local_rows <= size:
        return np.asarray(self.data, np.float32)
      # An array can be indexed: read only the sampled rows (in storage order).
      rows = np.sort(np.random.default_rng(seed).choice(self.local_rows, size, replace=False))
      return np.asarray(self.data[rows], np.float32)
    return reservoir_sample(_rows(self.data, self.local_batch), size, seed, self.dim)


def reservoir_sample(blocks: Iterable[np.ndarray], size: int, seed: int,
                     dim: int) -> np.ndarray:
  """Uniformly samples ``size`` rows from a stream of row blocks in one pass.

  Algorithm R, vectorised per block; holds only the reservoir in memory. Returns
  every row when the stream is shorter than ``size``.
  """
  rng = np.random.default_rng(seed)
  reservoir = np.zeros((size, dim), np.float32)
  seen = 0
  for block in blocks:
    block = np.asarray(block, np.float32).reshape(-1, dim)
    n = block.shape[0]
    fill = min(max(size - seen, 0), n)
    if fill:
      reservoir[seen:seen + fill] = block[:fill]
    if fill < n:
      # Row t (0-based over the stream) replaces a random slot with prob size/(t+1).
      t = seen + np.arange(fill, n)
      slots = (rng.random(n - fill) * (t + 1)).astype(np.int64)
      keep = slots < size
      # Later rows win when two rows draw the same slot, as in sequential order.
      reservoir[slots[keep]] = block[fill:][keep]
    seen += n
  return reservoir[:min(seen, size)].copy()


@functools.lru_cache(maxsize=None)
def _pad_and_stack(shape: tuple[int, int, int], sharding):
  """jitted: rows [n, D] -> zero-padded batches ``shape``, laid out by ``sharding``."""
  import jax
  import jax.numpy as jnp
  rows = shape[0] * shape[1]
  return jax.jit(lambda x: jnp.pad(x, ((0, rows - x.shape[0]), (0, 0))).reshape(shape),
                 out_shardings=sharding)
