"""Named, timed stages of a long command (the demo, the paper experiments)."""

from __future__ import annotations

import time
from typing import Any, Callable


class Stages:
  """Runs named stages in order, timing each and collecting their results."""

  def __init__(self):
    self.results: dict[str, Any] = {}
    self.seconds: dict[str, float] = {}

  def run(self, name: str, fn: Callable[[], Any]) -> Any:
    """Runs ``fn`` as stage ``name``, printing a header and its duration."""
    print(f"\n== {name} " + "=" * max(0, 60 - len(name)), flush=True)
    start = time.time()
    result = fn()
    self.seconds[name] = round(time.time() - start, 2)
    self.results[name] = result
    print(f"   ({self.seconds[name]:.1f} s)", flush=True)
    return result
