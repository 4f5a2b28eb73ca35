"""What the trainer calls: numpy model batches from the VideoBERT pretraining mixture.

``pretrain_batches(config, batch_size=...)`` builds the three TFDS datasets under
``config.data.tfds_data_dir`` from ``config.data.corpus_dir`` and
``config.data.codebook`` when they are missing (reusing them otherwise), registers
the seqio tasks and mixture (``videobert_jax.tasks.registry``), and yields batches with
exactly the fields of ``videobert_jax.batch``.

A dataset already built from other inputs (another corpus, codebook, vocabulary
or evaluation list) is an error rather than silently reused or deleted: pick
another ``tfds_data_dir`` or delete the old one. On a pod, build the datasets once
beforehand (``tfds build``, or Beam on Dataflow/Flink: docs/datasets.md); every
host then only reads them.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterator

import numpy as np

from videobert_jax import batch as batch_lib
from videobert_jax import quiet
from videobert_jax import tokens
from videobert_jax.corpus.reader import CorpusError

SPLITS = ("train", "validation")


class DatasetMismatchError(CorpusError):
  """A prepared TFDS dataset was built from other inputs than the config names."""


def _get(section: Any, key: str, default=None):
  """``section.key`` for ConfigDicts, dicts and plain objects; ``default`` if absent."""
  if hasattr(section, "get"):
    value = section.get(key, default)
  else:
    value = getattr(section, key, default)
  return default if value is None else value


def _eval_ids_spec(data_config):
  spec = _get(data_config, "eval_video_ids")
  return list(spec) if isinstance(spec, (list, tuple)) else spec


def _builder_kwargs(data_config, kind: str) -> dict:
  kwargs = {"corpus_dir": _get(data_config, "corpus_dir"),
            "vocab_path": _get(data_config, "vocab_path"),
            "eval_ids": _eval_ids_spec(data_config),
            "validation_percent": _validation_percent(data_config)}
  if kind != "text":
    kwargs["codebook"] = _get(data_config, "codebook")
  return kwargs


def _validation_percent(data_config) -> float:
  from videobert_jax.datasets import corpus_builder  # pylint: disable=import-outside-toplevel
  return float(_get(data_config, "validation_percent",
                    corpus_builder.DEFAULT_VALIDATION_PERCENT))


def _expected_fingerprint(data_config, kind: str) -> str:
  from videobert_jax.datasets import corpus_builder  # pylint: disable=import-outside-toplevel
  from videobert_jax.datasets import eval_ids  # pylint: disable=import-outside-toplevel
  from videobert_jax.datasets import segments  # pylint: disable=import-outside-toplevel
  return corpus_builder.source_fingerprint(
      kind, os.path.abspath(data_config.corpus_dir),
      os.path.abspath(data_config.codebook) if _get(data_config, "codebook") else None,
      os.path.abspath(data_config.vocab_path) if _get(data_config, "vocab_path") else None,
      eval_ids.fingerprint(eval_ids.load(_eval_ids_spec(data_config))),
      _validation_percent(data_config), segments.CHUNK_TOKENS)


def ensure_datasets(data_config, kinds=("text", "video", "video_text")) -> dict:
  """Builds the missing pretraining datasets; returns ``{kind: metadata dict}``.

  Raises:
    CorpusError: no corpus or codebook configured, or a bad corpus file.
    DatasetMismatchError: a prepared dataset came from other inputs.
  """
  from videobert_jax import datasets  # pylint: disable=import-outside-toplevel
  corpus_dir = _get(data_config, "corpus_dir")
  out = {}
  for kind in kinds:
    name = datasets.PRETRAINING_BUILDERS[kind]
    with quiet.tfds_build_messages_to_log():
      dataset_builder = builder(data_config, kind)
      if not dataset_builder.is_prepared():
        if not corpus_dir:
          raise CorpusError("config.data.corpus_dir",
                            f"not set, and {dataset_builder.data_path} is not built yet")
        if kind != "text" and not _get(data_config, "codebook"):
          raise CorpusError("config.data.codebook",
                            f"not set, and {dataset_builder.data_path} is not built yet")
        # The first step waits on this, so say what it is (a bar follows on a terminal).
        print(f"building dataset {name} from {corpus_dir} into {dataset_builder.data_path} "
              "(once; later runs reuse it)", file=sys.stderr, flush=True)
        started = time.perf_counter()
        dataset_builder.download_and_prepare()
        sizes = {split: int(info.num_examples)
                 for split, info in dataset_builder.info.splits.items()}
        print(f"built {name}: " + ", ".join(f"{n:,} {split}" for split, n in sizes.items())
              + f" examples in {time.perf_counter() - started:.1f} s", file=sys.stderr,
              flush=True)
    meta = dict(dataset_builder.info.metadata)
    if corpus_dir and meta.get("source_fingerprint") != _expected_fingerprint(
        data_config, kind):
      raise DatasetMismatchError(
          os.fspath(dataset_builder.data_path),
          f"built from corpus {meta.get('corpus_dir')}, codebook "
          f"{meta.get('codebook')}, vocab {meta.get('vocab_path')} (or another "
          "evaluation id list), not the config's inputs; delete it or set another "
          "config.data.tfds_data_dir")
    out[kind] = meta
  return out


def dataset_sizes(data_config, kinds=("text", "video", "video_text")) -> dict:
  """``{kind: {split: examples}}`` of the built pretraining datasets."""
  return {kind: {split: int(info.num_examples)
                 for split, info in builder(data_config, kind).info.splits.items()}
          for kind in kinds}


def builder(data_config, kind: str):
  """The TFDS builder of one pretraining dataset under ``data_config.tfds_data_dir``."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  from videobert_jax import datasets  # pylint: disable=import-outside-toplevel
  return tfds.builder(datasets.PRETRAINING_BUILDERS[kind],
                      data_dir=_get(data_config, "tfds_data_dir"),
                      **_builder_kwargs(data_config, kind))


def token_layout(config, metadata: dict) -> tuple[tokens.TokenLayout, int]:
  """The token layout and first ordinary WordPiece id, checked against ``config.model``."""
  from videobert_jax.tasks import registry as tasks  # pylint: disable=import-outside-toplevel
  from videobert_jax.text import wordpiece  # pylint: disable=import-outside-toplevel
  vocab_path = _get(config.data, "vocab_path")
  text_vocab_size = wordpiece.vocab_size(vocab_path)
  visual = {m["num_visual_words"] for m in metadata.values() if "num_visual_words" in m}
  if len(visual) > 1:
    raise CorpusError(os.fspath(_get(config.data, "tfds_data_dir", "")),
                      f"the datasets were built with codebooks of different sizes {visual}")
  model = _get(config, "model", {})
  num_visual_words = visual.pop() if visual else _get(model, "num_visual_words")
  if num_visual_words is None:
    raise ValueError("no visual dataset built and config.model.num_visual_words unset")
  for key, value in (("text_vocab_size", text_vocab_size),
                     ("num_visual_words", num_visual_words)):
    configured = _get(model, key)
    if configured is not None and int(configured) != int(value):
      raise ValueError(f"config.model.{key}={configured} but the data has {value}")
  layout = tokens.TokenLayout(text_vocab_size=text_vocab_size,
                              num_visual_words=int(num_visual_words))
  return layout, tasks.first_ordinary_word_id(vocab_path)


def host_sharding(data_config, kinds, split: str, num_shards: int) -> dict[str, str]:
  """How ``num_shards`` hosts divide each dataset's ``split``: ``files`` or ``examples``.

  seqio (``Task.get_dataset`` with a ``ShardInfo``) hands each host its own TFDS
  files when a split has at least as many files as hosts. With fewer files TFDS
  itself would refuse ("Cannot shard the pipeline with given input_context"), so
  seqio reads the whole split on every host, in the same order (one seed for all
  hosts), and keeps every N-th example: disjoint shares, even to one example, at N
  times the reading. ``tests/test_tasks.py`` holds seqio to that.

  Raises:
    ValueError: a training split with fewer examples than hosts: some host would
      read nothing of it (its stream would end at once). A validation share may be
      empty: ``train.loop.evaluate`` pads the hosts to one step count.
  """
  modes = {}
  for kind in kinds:
    info = builder(data_config, kind).info.splits[split]
    if split == "train" and num_shards > 1 and int(info.num_examples) < num_shards:
      raise ValueError(f"{split} split of {kind} has {info.num_examples} examples, fewer "
                       f"than the {num_shards} hosts: use fewer hosts, a bigger corpus or "
                       "--host_input=slice")
    modes[kind] = "files" if int(info.num_shards) >= num_shards else "examples"
  return modes


_SAID: set = set()  # (split, num_shards) whose sharding this process has reported


def _report_sharding(data_config, kinds, split: str, num_shards: int) -> None:
  """Checks the hosts' shares; says once per split which datasets every host reads whole."""
  if num_shards == 1:
    return
  modes = host_sharding(data_config, kinds, split, num_shards)
  whole = sorted(kind for kind, mode in modes.items() if mode == "examples")
  if whole and (split, num_shards) not in _SAID:
    _SAID.add((split, num_shards))
    # Worth knowing on a pod: these are read N times over (fine for small splits).
    print(f"{split}: {', '.join(whole)} have fewer TFDS files than the {num_shards} "
          f"hosts; each host reads them whole and keeps 1 example in {num_shards}",
          file=sys.stderr, flush=True)


def _pad_batch(partial: dict, batch_size: int) -> dict:
  """Fills a short final batch with copies that carry no weight (fixed shapes for jit)."""
  n = len(partial["input_ids"])
  take = np.arange(batch_size) % n
  out = {k: v[take] for k, v in partial.items()}
  out["masked_weights"][n:] = 0.0
  out["alignment_weight"][n:] = 0.0
  return out


def pretrain_dataset(config, *, split: str = "train", seed: int | None = None,
                     shard_index: int = 0, num_shards: int = 1):
  """The unbatched tf.data mixture of model examples (padded to T and P)."""
  import seqio  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from videobert_jax.tasks import preprocessors  # pylint: disable=import-outside-toplevel
  from videobert_jax.tasks import registry as tasks  # pylint: disable=import-outside-toplevel
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
  data = config.data
  rates = tasks.mixture_rates(data)
  metadata = ensure_datasets(data, kinds=tuple(rates))
  layout, first_word_id = token_layout(config, metadata)
  mixture = tasks.register(data, layout, first_word_id)
  _report_sharding(data, tuple(rates), split, num_shards)
  seed = int(_get(data, "seed", 0)) if seed is None else int(seed)
  lengths = preprocessors.task_feature_lengths(
      tasks.sequence_spec(data, layout, first_word_id))
  shard = seqio.ShardInfo(index=shard_index, num_shards=num_shards)
  if split == "train":
    ds = mixture.get_dataset(lengths, split="train", shuffle=True, seed=seed,
                             shard_info=shard, num_epochs=None)
  else:
    # Every validation example once, the objectives taking turns: a capped
    # evaluation (train.eval_steps) then sees all of them, not just the first.
    names = [tasks.TASKS[k][0] for k in rates]
    if "video_text" in rates:  # alignment scored on every sentence, both ways
      names.append(tasks.ALIGNMENT_EVAL_TASK)
    parts = [seqio.get_mixture_or_task(name).get_dataset(
        lengths, split=split, shuffle=False, seed=seed, shard_info=shard)
             for name in names]
    parts = [p.map(lambda ex: {k: ex[k] for k in lengths}) for p in parts]
    if "video_text" in rates:
      # Alignment is measured on the pairs alone (the masked-token objectives on
      # the ordinary examples), so its accuracy has exactly half negatives.
      index = list(rates).index("video_text")
      parts[index] = parts[index].map(
          lambda ex: {**ex, "alignment_weight": tf.zeros_like(ex["alignment_weight"])})
    turns = tf.data.Dataset.range(len(parts)).repeat()
    ds = tf.data.Dataset.choose_from_datasets(parts, turns, stop_on_empty_dataset=False)
  return _feature_converter(data)(ds, lengths).prefetch(tf.data.AUTOTUNE)


def _feature_converter(data_config):
  """Pads one example per row, or packs several per row when ``data.pack`` is set."""
  from videobert_jax.tasks import packing  # pylint: disable=import-outside-toplevel
  from videobert_jax.tasks import preprocessors  # pylint: disable=import-outside-toplevel
  if not _get(data_config, "pack", False):
    return preprocessors.VideoBertFeatureConverter()
  sizes = batch_lib.sizes(data_config)
  return packing.PackedFeatureConverter(max_predictions=sizes["max_predictions"],
                                        max_segments=sizes["max_segments"])


def pretrain_batches(config, *, batch_size: int, split: str = "train",
                     seed: int | None = None, shard_index: int = 0,
                     num_shards: int = 1) -> Iterator[dict[str, np.ndarray]]:
  """Yields this host's numpy batches of the pretraining mixture.

  Args:
    config: the pretraining config (``configs/pretrain.py``); reads ``config.data``
      and checks the vocabulary sizes against ``config.model``.
    batch_size: examples per batch on this host.
    split: "train" (shuffled, repeats forever) or "validation" (each example
      once; a short last batch is filled with zero-weight copies).
    seed: shuffling/masking seed; None = ``config.data.seed``.
    shard_index: this host's shard (``jax.process_index()``).
    num_shards: number of shards (``jax.process_count()``).

  Yields:
    dicts with the fields, shapes and dtypes of ``videobert_jax.batch`` (T =
    ``config.data.max_seq_len``, P = ``config.data.max_predictions``); packed
    rows when ``config.data.pack`` (P = ``data.packed_max_predictions``, S =
    ``data.max_segments``, several examples per row: ``tasks.packing``).
  """
  ds = pretrain_dataset(config, split=split, seed=seed, shard_index=shard_index,
                        num_shards=num_shards)
  train = split == "train"
  ds = ds.batch(batch_size, drop_remainder=train)
  spec = batch_lib.fields(packed=bool(_get(config.data, "pack", False)))
  for batch in ds.as_numpy_iterator():
    batch = {k: np.asarray(v, dtype=spec[k][1]) for k, v in batch.items()}
    if len(batch["input_ids"]) < batch_size:
      batch = _pad_batch(batch, batch_size)
    yield batch
