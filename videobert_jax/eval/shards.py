"""Evaluation's model runs split across the processes of a multi-process JAX run.

Under ``launch/local.sh --processes N --module videobert_jax.eval`` (or the same
command with ``--distributed=on`` on every host of a pod) every process restores
the parameters onto its own devices (``restore.load_run``: a process-local mesh,
so no model call waits for another process) and runs the model on its share of
the segments: whole evaluation batches, batch b to process b mod N. Each batch
then holds the rows, the padding and the positions it holds in a one-process
run, so its outputs are the same bits (given the same devices per process).

Each process writes its outputs (arrays with a row per segment) as a part file,
atomically, into the run's eval folder; after a barrier process 0 reads the
parts back in segment order and goes on alone (the baselines, the captioner, the
result files), while the others wait at a last barrier (``finish``), so that no
process leaves the JAX run while another still works in it. That folder must be
one folder every process sees (a shared file system across hosts).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Mapping, Sequence

import numpy as np

from videobert_jax import fileio

# Process 0 may train a captioner (hours at the paper's budget) while the others
# wait at the last barrier; a process that dies is caught by the launcher sooner.
BARRIER_TIMEOUT_S = 24 * 3600


@dataclasses.dataclass(frozen=True)
class Processes:
  """This process's place in the run and how the processes meet (one by default)."""

  index: int = 0
  count: int = 1
  barrier: Callable[[str], None] | None = None  # waits for all; names must be unique

  @property
  def is_main(self) -> bool:
    """True on process 0, which merges the shares and writes the results."""
    return self.index == 0


def current() -> Processes:
  """The processes of this JAX run: one, unless ``jax.distributed`` was initialised."""
  import jax  # pylint: disable=g-import-not-at-top
  if jax.process_count() == 1:
    return Processes()
  return Processes(jax.process_index(), jax.process_count(), _coordinator_barrier)


def _coordinator_barrier(name: str) -> None:
  # The coordination service's barrier rather than a device collective: it takes a
  # timeout, and waiting needs no device (gloo's collectives time out on their own).
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  ocp.multihost.get_barrier_sync_fn()(key=name, timeout_ms=BARRIER_TIMEOUT_S * 1000)


def share(num_items: int, batch_size: int, index: int, count: int) -> np.ndarray:
  """Indices of the items process ``index`` of ``count`` runs, ascending.

  Whole batches of ``batch_size``, batch b to process b mod ``count``: a share
  cut into batches from its start gives the one-process run's batches.
  """
  if batch_size < 1 or not 0 <= index < count:
    raise ValueError(f"bad share: batch_size={batch_size}, process {index} of {count}")
  return np.flatnonzero((np.arange(num_items) // batch_size) % count == index)


def merge(parts: Sequence[Mapping[str, np.ndarray]], num_items: int,
          batch_size: int) -> dict[str, np.ndarray]:
  """The arrays of every process's ``share`` (``parts[i]``: process i's) in item order."""
  count = len(parts)
  indices = [share(num_items, batch_size, i, count) for i in range(count)]
  out = {}
  for key in parts[0]:
    pieces = [(index, np.asarray(part[key])) for index, part in zip(indices, parts)]
    for i, (index, values) in enumerate(pieces):
      if len(values) != len(index):
        raise ValueError(f"part {i} of {count} has {len(values)} rows of {key!r}, "
                         f"its share is {len(index)}")
    # An empty share's array may lack the trailing axes (np.array([]) is [0]).
    filled = [(index, values) for index, values in pieces if len(index)]
    if not filled:
      out[key] = pieces[0][1]
      continue
    merged = np.empty((num_items, *filled[0][1].shape[1:]),
                      np.result_type(*(values for _, values in filled)))
    for index, values in filled:
      merged[index] = values
    out[key] = merged
  return out


def _part_path(folder: str, name: str, index: int, count: int) -> str:
  """Where process ``index`` of ``count`` leaves its share of ``name`` for process 0."""
  return os.path.join(folder, f".{name}-part-{index:05d}-of-{count:05d}.npz")


def gather(folder: str, name: str, values: Mapping[str, np.ndarray], procs: Processes,
           num_items: int, batch_size: int) -> dict[str, np.ndarray] | None:
  """Every process's ``values`` (its ``share``'s rows) in item order, on process 0.

  Returns ``values`` itself with one process, None on processes other than 0.
  ``name`` (a file-name word) must differ between the gathers of one run.
  """
  if procs.count == 1:
    return dict(values)
  if procs.barrier is None:
    raise ValueError("several processes need a barrier to meet at")
  fileio.save_npz(_part_path(folder, name, procs.index, procs.count), **values)
  procs.barrier(f"videobert_jax.eval {name}")  # every part is written
  if not procs.is_main:
    return None
  parts = []
  for i in range(procs.count):
    path = _part_path(folder, name, i, procs.count)
    with np.load(path, allow_pickle=False) as part:
      parts.append({key: part[key] for key in part.files})
    os.remove(path)
  return merge(parts, num_items, batch_size)


def map_shared(fn: Callable[[list], Mapping[str, np.ndarray]], items: Sequence,
               batch_size: int, procs: Processes, folder: str,
               name: str) -> dict[str, np.ndarray] | None:
  """``fn(items)`` computed share by share: each process calls ``fn`` on its share.

  ``fn`` returns arrays with a row per item it was given; the rows of all
  processes come back in item order on process 0 (None on the others).
  """
  mine = share(len(items), batch_size, procs.index, procs.count)
  return gather(folder, name, fn([items[i] for i in mine]), procs, len(items), batch_size)


def finish(procs: Processes) -> None:
  """Waits until every process is done (process 0 last, with its results written)."""
  if procs.count > 1:
    procs.barrier("videobert_jax.eval done")
