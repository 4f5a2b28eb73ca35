"""Orbax checkpoints of a training run: the train state plus where the input stood.

Each checkpoint holds two items: ``state`` (step, parameters, optimizer state;
saved asynchronously, sharded arrays written by every host) and ``meta`` (JSON:
the step, the data seed and how many batches the input has consumed, so a resumed
run restarts its input stream deterministically). The newest ``keep`` are kept.

Training restores the whole state (``Checkpointer.restore``); evaluation and
export restore the parameters alone (``restore_params``), straight into their
shardings, never reading the Adam moments (about twice the parameters' size).
"""

from __future__ import annotations

import os
from typing import Any

CHECKPOINTS = "checkpoints"  # the folder under a workdir


class CheckpointError(ValueError):
  """A checkpoint, workdir or text-pretrained BERT that cannot be used.

  ``str()`` is one readable line that names the path: ``CheckpointError(path,
  message)`` reads ``"path: message"``; ``CheckpointError(line)`` is ``line``.
  """

  def __init__(self, path: str, message: str | None = None):
    self.path = path if message is not None else None
    self.message = message if message is not None else path
    super().__init__(f"{path}: {message}" if message is not None else path)


def checkpoint_dir(workdir: str) -> str:
  """``WORKDIR/checkpoints``, absolute for local paths."""
  directory = os.path.join(workdir, CHECKPOINTS)
  return directory if "://" in directory else os.path.abspath(directory)


def _with_shardings(abstract: Any, shardings: Any):
  import jax  # pylint: disable=g-import-not-at-top
  return jax.tree.map(
      lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)


class Checkpointer:
  """Saves and restores train states under ``WORKDIR/checkpoints``."""

  def __init__(self, workdir: str, keep: int | None = None, *, create: bool = True,
               asynchronous: bool = True):
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    self._ocp = ocp
    self.directory = checkpoint_dir(workdir)
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=create, enable_async_checkpointing=asynchronous))

  def latest_step(self) -> int | None:
    """Step of the newest complete checkpoint, or None."""
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    """Steps of every complete checkpoint, ascending."""
    return sorted(self.manager.all_steps())

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
    args = self._ocp.args
    restored = self.manager.restore(step, args=args.Composite(
        state=args.StandardRestore(_with_shardings(abstract_state, shardings)),
        meta=args.JsonRestore()))
    return restored["state"], dict(restored["meta"])

  def restore_params(self, step: int, abstract_params: Any, shardings: Any):
    """The parameters alone of the checkpoint at ``step``, in ``shardings``.

    An Orbax partial restore: the optimizer state on disk is never read.
    """
    ocp = self._ocp
    target = {"params": _with_shardings(abstract_params, shardings)}
    restore_args = ocp.checkpoint_utils.construct_restore_args(target)
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.PyTreeRestore(item=target, restore_args=restore_args,
                                     partial_restore=True)))
    return restored["state"]["params"]

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are on disk."""
    self.manager.wait_until_finished()

  def close(self) -> None:
    """Waits for pending saves and releases the manager."""
    self.manager.wait_until_finished()
    self.manager.close()
