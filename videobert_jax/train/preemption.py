"""Preemption: SIGTERM (a Spot TPU's or a scheduler's notice) ends training at a checkpoint.

The handler only sets a flag; the training loop looks at it after each step, saves
the current step, waits for the save to commit and raises ``Preempted``. The command
then exits with ``EXIT_CODE``, which the launchers read as "restart me": a rerun of
the same command resumes at that step, at the same data position.

With several processes, each receives its own notice at its own moment, so they
agree on the step through JAX's coordination service
(``multihost_utils.reached_preemption_sync_point``) instead of a local flag.
"""

from __future__ import annotations

import signal
import threading

# EX_TEMPFAIL from sysexits.h: "try again later"; launch/*.sh restart on it.
EXIT_CODE = 75


class Preempted(Exception):
  """Training stopped at ``step`` on a preemption notice, its checkpoint committed."""

  def __init__(self, step: int):
    super().__init__(f"preempted at step {step}: checkpoint saved; rerun the same "
                     "command to resume")
    self.step = step


class PreemptionNotice:
  """Context manager: while active, SIGTERM asks the loop to stop at the next step."""

  def __init__(self):
    self._requested = threading.Event()
    self._previous = None

  def __enter__(self) -> "PreemptionNotice":
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._on_signal)
    return self

  def __exit__(self, *exc) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None

  def _on_signal(self, signum, frame) -> None:
    del signum, frame
    self._requested.set()

  def request(self) -> None:
    """Asks for a stop as SIGTERM would (for tests and embedding code)."""
    self._requested.set()

  def reached(self, step: int) -> bool:
    """Whether every process should save ``step`` and stop."""
    import jax  # pylint: disable=import-outside-toplevel
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
      try:
        return bool(multihost_utils.reached_preemption_sync_point(step))
      except RuntimeError:  # no preemption service (not started by jax.distributed)
        return self._requested.is_set()
    return self._requested.is_set()
