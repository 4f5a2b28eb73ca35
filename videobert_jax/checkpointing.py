"""Orbax checkpoints of a training run: the train state plus where the input stood.

Each checkpoint holds two items: ``state`` (step, parameters, optimizer state;
saved asynchronously, sharded arrays written by every host) and ``meta`` (JSON:
the step, the data seed and how many batches the input has consumed, so a resumed
run restarts its input stream deterministically). The newest ``keep`` are kept.
"""

from __future__ import annotations

import os
from typing import Any

import jax


class Checkpointer:
  """Saves and restores train states under ``WORKDIR/checkpoints``."""

  def __init__(self, workdir: str, keep: int):
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    self._ocp = ocp
    self.directory = os.path.join(workdir, "checkpoints")
    if "://" not in self.directory:
      self.directory = os.path.abspath(self.directory)
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=True))

  def latest_step(self) -> int | None:
    """Step of the newest complete checkpoint, or None."""
    return self.manager.latest_step()

  def save(self, step: int, state: Any, meta: dict) -> None:
    """Starts saving ``state`` and ``meta`` at ``step`` (returns before it is on disk)."""
    args = self._ocp.args
    self.manager.save(step, args=args.Composite(
        state=args.StandardSave(state), meta=args.JsonSave(meta)))

  def restore(self, abstract_state: Any, shardings: Any):
    """Restores the newest checkpoint into ``shardings``; None when there is none.

    Returns ``(state, meta)``.
    """
    step = self.latest_step()
    if step is None:
      return None
    target = jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
        abstract_state, shardings)
    args = self._ocp.args
    restored = self.manager.restore(step, args=args.Composite(
        state=args.StandardRestore(target), meta=args.JsonRestore()))
    return restored["state"], dict(restored["meta"])

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are on disk."""
    self.manager.wait_until_finished()

  def close(self) -> None:
    """Waits for pending saves and releases the manager."""
    self.manager.wait_until_finished()
    self.manager.close()
