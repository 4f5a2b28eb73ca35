"""seqio Tasks and the weighted pretraining Mixture of VideoBERT.

* ``videobert_text_mlm``: text-only masked language modelling (``videobert_text``).
* ``videobert_video_mlm``: video-only masked visual-word modelling (``videobert_video``).
* ``videobert_video_text``: masked modelling on both plus text-video alignment
  (``videobert_video_text``).
* ``videobert_pretrain``: the three mixed with ``config.data.mixture_rates``.
* ``videobert_video_text_alignment_pairs`` (validation): each video-text sentence
  once aligned and once with another video, alignment loss only.

Nothing is registered at import time: ``register(data_config, layout)`` adds (or
replaces, so calling it again is harmless) the tasks and the mixture for a data
config, reading the TFDS datasets from ``data_config.tfds_data_dir``. Build them
first (``videobert_jax.tasks.pipeline.ensure_datasets`` or ``tfds build``).
"""

from __future__ import annotations

import functools
from typing import Any

import seqio
import tensorflow as tf

from videobert_jax import batch as batch_lib
from videobert_jax.tasks import negatives
from videobert_jax.tasks import preprocessors
from videobert_jax import tokens
from videobert_jax.datasets import corpus_builder

TEXT_TASK = "videobert_text_mlm"
VIDEO_TASK = "videobert_video_mlm"
VIDEO_TEXT_TASK = "videobert_video_text"
MIXTURE = "videobert_pretrain"
# Validation only: every video-text sentence as an aligned and a negative pair.
ALIGNMENT_EVAL_TASK = "videobert_video_text_alignment_pairs"
# objective name (config.data.mixture_rates keys) -> (task, TFDS dataset, objective id)
TASKS = {
    "text": (TEXT_TASK, "videobert_text", batch_lib.TEXT),
    "video": (VIDEO_TASK, "videobert_video", batch_lib.VIDEO),
    "video_text": (VIDEO_TEXT_TASK, "videobert_video_text", batch_lib.VIDEO_TEXT),
}
# Examples shuffled after preprocessing (TFDS already stores examples in a hashed
# order and shuffles files). The buffer fills before the first batch, so a larger
# one costs start-up time; config.data.shuffle_buffer_size overrides it.
SHUFFLE_BUFFER = 1_000


def _get(section: Any, key: str, default=None):
  """``section.key`` for ConfigDicts, dicts and objects; ``default`` if absent or None."""
  value = section.get(key, default) if hasattr(section, "get") else getattr(
      section, key, default)
  return default if value is None else value


def first_ordinary_word_id(vocab_path: str | None = None) -> int:
  """The first id after ``[MASK]`` that is a real WordPiece, not ``[unusedN]``.

  bert-base-uncased keeps ``[unused99]``..``[unused993]`` at ids 104..998, so
  random text replacements start at 999 there.
  """
  from videobert_jax.text import wordpiece  # pylint: disable=import-outside-toplevel
  words = wordpiece.vocab_words(vocab_path)
  for i in range(tokens.MASK_ID + 1, len(words)):
    if not (words[i].startswith("[") and words[i].endswith("]")):
      return i
  raise ValueError(f"vocabulary {vocab_path or 'bert-base-uncased'} has no ordinary "
                   "WordPieces after [MASK]")


# config.data fields passed to SequenceSpec when set; absent or None keeps the
# SequenceSpec default (a hand-made data config need not list them).
_OPTIONAL_SPEC_FIELDS = {
    "video_text_mask_rate": float, "action_mask_rate": float, "video_mask_rate": float,
    "concat_rate": float,
    "max_subsample": int, "min_video_tokens": int, "negative_rate": float, "alignment_rate": float,
    "mlm_on_negatives": bool, "paired_negatives": bool, "alignment_pairs_mlm": bool,
    "mask_alignment_pairs": bool,
}


def sequence_spec(data_config: Any, layout: tokens.TokenLayout,
                  first_word_id: int | None = None) -> preprocessors.SequenceSpec:
  """The preprocessors' lengths and rates from ``config.data``."""
  optional = {}
  for key, kind in _OPTIONAL_SPEC_FIELDS.items():
    value = _get(data_config, key)
    if value is not None:
      optional[key] = kind(value)
  return preprocessors.SequenceSpec(
      layout=layout,
      max_seq_len=int(data_config.max_seq_len),
      max_text_tokens=int(data_config.max_text_tokens),
      max_video_tokens=int(data_config.max_video_tokens),
      max_predictions=int(data_config.max_predictions),
      mask_rate=float(data_config.mask_rate),
      first_word_id=first_word_id or tokens.MASK_ID + 1,
      **optional)


def output_features(layout: tokens.TokenLayout) -> dict[str, seqio.Feature]:
  """The task output features: exactly the task features of the feature converter."""
  vocab = seqio.PassThroughVocabulary(size=layout.vocab_size)

  def feature(dtype=tf.int32, rank=1):
    return seqio.Feature(vocab, add_eos=False, dtype=dtype, rank=rank)

  return {
      "input_ids": feature(),
      "token_type_ids": feature(),
      "masked_positions": feature(),
      "masked_ids": feature(),
      "alignment_label": feature(rank=0),
      "alignment_weight": feature(tf.float32, rank=0),
      "objective": feature(rank=0),
      "mlm_weight": feature(tf.float32, rank=0),
  }


def task_preprocessors(objective: int, spec: preprocessors.SequenceSpec,
                       paired: bool = False) -> list:
  """The preprocessing chain of one objective (see ``preprocessors``).

  ``paired``: alignment pairs both ways (the validation task of alignment).
  """
  p = preprocessors
  steps = [functools.partial(p.select_features, spec=spec),
           functools.partial(p.concat_neighbours, spec=spec)]
  if objective != batch_lib.TEXT:
    steps.append(functools.partial(p.subsample_video, spec=spec))
  if objective == batch_lib.VIDEO_TEXT:
    steps.append(functools.partial(negatives.alignment_negatives, spec=spec, paired=paired))
  steps += [functools.partial(p.assemble, spec=spec, objective=objective),
            functools.partial(p.mask_tokens, spec=p.for_objective(spec, objective))]
  return steps


def make_task(name: str, tfds_name: str, objective: int,
              spec: preprocessors.SequenceSpec, tfds_data_dir: str | None,
              version: str = corpus_builder.DATASET_VERSION,
              shuffle_buffer_size: int = SHUFFLE_BUFFER,
              paired: bool = False) -> seqio.Task:
  """Registers (replacing any earlier one) and returns one pretraining task."""
  seqio.TaskRegistry.remove(name)
  return seqio.TaskRegistry.add(
      name,
      source=seqio.TfdsDataSource(tfds_name=f"{tfds_name}:{version}",
                                  tfds_data_dir=tfds_data_dir,
                                  splits=("train", "validation")),
      preprocessors=task_preprocessors(objective, spec, paired=paired),
      output_features=output_features(spec.layout),
      shuffle_buffer_size=shuffle_buffer_size)


def mixture_rates(data_config: Any) -> dict[str, float]:
  """``{objective name: rate}`` of the objectives with a positive rate."""
  rates = dict(data_config.mixture_rates)
  unknown = sorted(set(rates) - set(TASKS))
  if unknown:
    raise ValueError(f"config.data.mixture_rates has unknown objectives {unknown}; "
                     f"expected some of {sorted(TASKS)}")
  positive = {k: float(v) for k, v in rates.items() if float(v) > 0}
  if not positive:
    raise ValueError("config.data.mixture_rates gives no objective a positive rate")
  return positive


def register(data_config: Any, layout: tokens.TokenLayout,
             first_word_id: int | None = None) -> seqio.Mixture:
  """Registers the three tasks and ``videobert_pretrain``; returns the mixture.

  Args:
    data_config: ``config.data`` (lengths, rates, ``tfds_data_dir``).
    layout: the token layout (text vocabulary size, number of visual words).
    first_word_id: first ordinary WordPiece id (see ``first_ordinary_word_id``).
  """
  spec = sequence_spec(data_config, layout, first_word_id)
  buffer = int(_get(data_config, "shuffle_buffer_size", SHUFFLE_BUFFER))
  for name, tfds_name, objective in TASKS.values():
    make_task(name, tfds_name, objective, spec, _get(data_config, "tfds_data_dir"),
              shuffle_buffer_size=buffer)
  _, tfds_name, objective = TASKS["video_text"]
  make_task(ALIGNMENT_EVAL_TASK, tfds_name, objective, spec,
            _get(data_config, "tfds_data_dir"), shuffle_buffer_size=buffer, paired=True)
  seqio.MixtureRegistry.remove(MIXTURE)
  return seqio.MixtureRegistry.add(
      MIXTURE, [(TASKS[k][0], rate) for k, rate in mixture_rates(data_config).items()])
