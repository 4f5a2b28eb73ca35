"""The ids the masked-token softmax ranks: the whole table, or what the corpus holds.

``model.mlm_vocab = "corpus"`` ranks only the WordPieces that occur in the run's
text and video-text datasets (both splits, every sentence and its neighbour), the
BERT specials, ``[>]`` and every visual word. A model trained from scratch on one
corpus can predict nothing else: the other ~30K rows of the table are never a
target, and on the bundled world (156 WordPieces in use) ranking them was most of a
tiny training step. ``"full"`` (the default) ranks every row: what a model started
from a text checkpoint needs (its other words carry meaning), and what the tiny
model learned alignment faster with at equal steps (docs/training.md).

The resolved ids are stored in ``model.mlm_vocab_ids`` and so in the run's
``config.json``: evaluation, resumption and exported bundles rebuild the same head.
"""

from __future__ import annotations

import sys

import numpy as np

from videobert_jax import tokens

MODES = ("full", "corpus")
TEXT_KINDS = ("text", "video_text")  # the datasets that hold WordPieces
_TEXT_FIELDS = ("text_ids", "next_text_ids")


def corpus_ids(data_config, layout: tokens.TokenLayout) -> tuple[int, ...]:
  """The sorted ids ``"corpus"`` ranks for the datasets of ``data_config``."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from videobert_jax.tasks import pipeline  # pylint: disable=g-import-not-at-top
  pipeline.ensure_datasets(data_config, kinds=TEXT_KINDS)
  seen = set(tokens.TEXT_SPECIAL_IDS)
  for kind in TEXT_KINDS:
    builder = pipeline.builder(data_config, kind)
    for split in builder.info.splits:
      for ex in tfds.as_numpy(builder.as_dataset(split=split)):
        for field in _TEXT_FIELDS:
          seen.update(np.asarray(ex[field]).tolist())
  outside = [i for i in seen if not 0 <= i < layout.text_vocab_size]
  if outside:
    raise ValueError(f"{data_config.tfds_data_dir}: WordPiece ids {sorted(outside)[:5]} "
                     f"outside the vocabulary of {layout.text_vocab_size}")
  visual = range(layout.video_sep_id, layout.num_used_ids)  # [>] and the visual words
  return tuple(sorted(seen)) + tuple(visual)


def resolve(config, layout: tokens.TokenLayout, *, can_read_datasets: bool = True):
  """``config`` with ``model.mlm_vocab_ids`` filled as ``model.mlm_vocab`` asks.

  ``can_read_datasets``: False when the run's batches come from elsewhere (a
  custom batch source without the corpus); ``"corpus"`` then falls back to the full
  table, with a note on stderr. Ids already set are kept (a resumed run's).
  """
  mode = config.model.get("mlm_vocab", "full")
  if mode not in MODES:
    raise ValueError(f"model.mlm_vocab is {mode!r}; choose one of {list(MODES)}")
  if mode == "full" or config.model.get("mlm_vocab_ids") is not None:
    return config
  config = config.copy_and_resolve_references()
  if not (can_read_datasets and config.data.get("corpus_dir")):
    print("note: model.mlm_vocab='corpus' needs the run's datasets "
          "(config.data.corpus_dir); ranking the whole vocabulary instead",
          file=sys.stderr)
    config.model.mlm_vocab = "full"
    return config
  config.model.mlm_vocab_ids = list(corpus_ids(config.data, layout))
  return config
