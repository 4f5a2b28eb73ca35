"""How much each experiment run costs: the ``--budget`` presets."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Budget:
  """Sizes of every run ``experiments paper`` makes."""

  name: str
  size: str  # pretraining config (``configs/pretrain.py:SIZE``)
  levels: int  # codebook levels (the paper: 4)
  clusters: int  # clusters per level (the paper: 12)
  steps: int | None  # full-corpus pretraining steps (None: the config's)
  min_steps: int  # a subset run trains at least this many steps
  captioner: str  # captioner config spec
  caption_steps: int | None  # captioner steps (None: the config's)


BUDGETS = {
    # The bundled world on a 2-core CPU in well under 45 minutes: the demo's sizes.
    "demo": Budget(name="demo", size="tiny", levels=2, clusters=12, steps=None,
                   min_steps=100, captioner="captioner", caption_steps=300),
    # The paper: BERT-large for 500K steps at batch 128 on 12^4 visual words, the
    # captioner for 40K iterations at batch 128.
    "paper": Budget(name="paper", size="large", levels=4, clusters=12, steps=None,
                    min_steps=1_000, captioner="captioner:paper", caption_steps=None),
}


def get(name: str) -> Budget:
  """The budget called ``name``; a ValueError naming the choices otherwise."""
  if name not in BUDGETS:
    raise ValueError(f"unknown budget {name!r}; choose from {sorted(BUDGETS)}")
  return BUDGETS[name]


def subset_steps(full_steps: int, num_videos: int, total_videos: int,
                 min_steps: int) -> int:
  """Steps for a subset at the full run's number of epochs (at least ``min_steps``)."""
  return max(min_steps, round(full_steps * num_videos / max(total_videos, 1)))
