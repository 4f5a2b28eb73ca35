"""Tests of the seqio tasks, the mixture and pretrain_batches (videobert_jax.tasks)."""

import os

import ml_collections
import numpy as np
import pytest
import seqio
import tensorflow as tf

from videobert_jax import batch as batch_lib
from videobert_jax.tasks import pipeline as input_pipeline
from videobert_jax.tasks import preprocessors
from videobert_jax.tasks import registry as tasks
from videobert_jax import tokens
from videobert_jax.synthetic import synthesize

from test_datasets import make_codebook

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURE_DIM = 32


def load_config(size="tiny"):
  """The installed ``pretrain:SIZE`` config."""
  from videobert_jax import configs  # pylint: disable=import-outside-toplevel
  return configs.load(f"pretrain:{size}")


def fake_source(num=60):
  """A FunctionDataSource of video-text examples from 6 videos (a fake task)."""
  rng = np.random.default_rng(0)
  examples = [{"video_id": f"vid{i % 6}",
               "text_ids": rng.integers(104, 415, 8).astype(np.int32),
               "next_text_ids": rng.integers(104, 415, 4).astype(np.int32),
               "visual_words": rng.integers(0, 9, 12).astype(np.int32),
               "next_visual_words": rng.integers(0, 9, 5).astype(np.int32)}
              for i in range(num)]

  def dataset_fn(split, shuffle_files, seed=None):
    del split, shuffle_files, seed
    sig = {k: (tf.TensorSpec([], tf.string) if k == "video_id"
               else tf.TensorSpec([None], tf.int32)) for k in examples[0]}
    return tf.data.Dataset.from_generator(lambda: iter(examples), output_signature=sig)

  return seqio.FunctionDataSource(dataset_fn, splits=("train", "validation"))


@pytest.fixture
def fake_task():
  layout = tokens.TokenLayout(text_vocab_size=415, num_visual_words=9)
  config = load_config()
  spec = tasks.sequence_spec(config.data, layout, first_word_id=104)
  name = "test_fake_video_text"
  seqio.TaskRegistry.remove(name)
  task = seqio.TaskRegistry.add(
      name, source=fake_source(),
      preprocessors=tasks.task_preprocessors(batch_lib.VIDEO_TEXT, spec),
      output_features=tasks.output_features(layout), shuffle_buffer_size=100)
  yield task, spec
  seqio.TaskRegistry.remove(name)


def test_fake_task_is_deterministic_for_a_seed(fake_task):
  task, spec = fake_task
  lengths = preprocessors.task_feature_lengths(spec)
  get = lambda seed: task.get_dataset(lengths, split="train", shuffle=True, seed=seed)
  seqio.test_utils.assert_datasets_eq(get(5), get(5))
  a = [ex["input_ids"].tolist() for ex in get(5).as_numpy_iterator()]
  b = [ex["input_ids"].tolist() for ex in get(6).as_numpy_iterator()]
  assert a != b


def test_fake_task_examples_follow_the_wire_format(fake_task):
  task, spec = fake_task
  lengths = preprocessors.task_feature_lengths(spec)
  out = list(task.get_dataset(lengths, split="train", shuffle=False, seed=0)
             .as_numpy_iterator())
  lay = spec.layout
  labels = [int(ex["alignment_label"]) for ex in out]
  assert 0 < sum(labels) < len(labels)
  for ex in out:
    ids, types = ex["input_ids"], ex["token_type_ids"]
    assert ids[0] == lay.cls_id and ids[-1] == lay.sep_id
    sep = int(np.where(ids == lay.video_sep_id)[0][0])
    assert (types[:sep] == 0).all() and (types[sep:] == 1).all()
    assert len(ids) <= spec.max_seq_len and sep - 1 <= spec.max_text_tokens
    assert ex["objective"] == batch_lib.VIDEO_TEXT and ex["alignment_weight"] in (0.0, 1.0)
    assert ex["alignment_label"] == int(ex["video_source_id"] == ex["video_id"])
    if ex["alignment_weight"] == 0.0:  # a pair for the masked-token objectives only
      assert ex["alignment_label"] == 1


@pytest.fixture(scope="module")
def pipeline_config(tmp_path_factory):
  root = tmp_path_factory.mktemp("tasks")
  summary = synthesize.synthesize(root / "syn", num_videos=10, num_eval_videos=2,
                                  feature_dim=FEATURE_DIM, seed=1, progress=False)
  config = load_config("tiny")
  config.data.corpus_dir = summary["corpus_dir"]
  config.data.codebook = make_codebook(root / "codebook.npz")
  config.data.tfds_data_dir = str(root / "tfds")
  config.model.num_visual_words = 9
  config.data.shuffle_buffer_size = 64  # a small corpus; keeps start-up quick
  config.data.pack = False  # one example per row; packed rows: test_packed_pretrain_batches_*
  return config


@pytest.mark.parametrize("mask_alignment_pairs", [True, False])
def test_pretrain_batches_have_the_documented_fields_and_shapes(pipeline_config,
                                                                 mask_alignment_pairs):
  config = pipeline_config.copy_and_resolve_references()
  config.data.mask_alignment_pairs = mask_alignment_pairs
  batches = input_pipeline.pretrain_batches(config, batch_size=16)
  seen = []
  for _, batch in zip(range(6), batches):
    batch_lib.check(batch)
    shapes = batch_lib.field_shapes(16, config.data.max_seq_len,
                                    config.data.max_predictions)
    assert {k: (v.shape, v.dtype) for k, v in batch.items()} == shapes
    objective = batch["objective"]
    # Only video-text pairs train alignment (config.data.alignment_rate of them);
    # the others are aligned pairs for the masked-token objectives.
    aligning = batch["alignment_weight"] > 0
    assert set(np.unique(batch["alignment_weight"])) <= {0.0, 1.0}
    assert (objective[aligning] == batch_lib.VIDEO_TEXT).all()
    assert (batch["alignment_label"][(objective == batch_lib.VIDEO_TEXT) & ~aligning] == 1).all()
    # Real tokens first, then padding; every real example has a prediction,
    # weighted 0 on negative video-text pairs and, in the tiny recipe
    # (alignment_pairs_mlm False), on every pair that trains alignment; with
    # mask_alignment_pairs False those pairs are whole (no [MASK], no targets).
    mask = batch["attention_mask"]
    assert (np.diff(mask, axis=1) <= 0).all()
    negative = (objective == batch_lib.VIDEO_TEXT) & (batch["alignment_label"] == 0)
    no_mlm = negative | (aligning & (not config.data.alignment_pairs_mlm))
    masked = ~aligning | mask_alignment_pairs
    assert (batch["masked_positions"][masked, 0] > 0).all()
    assert (batch["masked_positions"][~masked] == 0).all()
    assert not (batch["input_ids"][~masked] == tokens.MASK_ID).any()
    assert (batch["masked_weights"][~no_mlm].sum(1) >= 1).all()
    assert (batch["masked_weights"][no_mlm] == 0).all()
    rows = np.arange(16)[:, None]
    assert (mask[rows, batch["masked_positions"]] == 1).all()
    seen.extend(objective.tolist())
  assert set(seen) == {batch_lib.TEXT, batch_lib.VIDEO, batch_lib.VIDEO_TEXT}


def test_pretrain_batches_are_deterministic_and_follow_rates(pipeline_config):
  config = pipeline_config
  first = next(input_pipeline.pretrain_batches(config, batch_size=8, seed=3))
  again = next(input_pipeline.pretrain_batches(config, batch_size=8, seed=3))
  for key in first:
    np.testing.assert_array_equal(first[key], again[key])
  config = config.copy_and_resolve_references()
  config.data.mixture_rates.video = 0.0  # registering again replaces the mixture
  batches = input_pipeline.pretrain_batches(config, batch_size=8)
  objectives_seen = np.concatenate([next(batches)["objective"] for _ in range(4)])
  assert batch_lib.VIDEO not in objectives_seen
  assert seqio.get_mixture_or_task(tasks.MIXTURE).tasks  # registered, no error twice


def test_packed_pretrain_batches_hold_the_same_examples_in_fewer_rows(pipeline_config):
  config = pipeline_config.copy_and_resolve_references()
  config.data.pack = True
  sizes = batch_lib.sizes(config.data)
  t, p, s = sizes["seq_len"], sizes["max_predictions"], sizes["max_segments"]
  batch = next(input_pipeline.pretrain_batches(config, batch_size=8))
  batch_lib.check(batch)
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == batch_lib.field_shapes(
      8, t, p, s)
  for r in range(8):  # each example opens with its own [CLS] at position 0
    cls = batch["cls_positions"][r, :batch["segment_ids"][r].max()]
    assert (batch["input_ids"][r, cls] == tokens.CLS_ID).all()
    assert (batch["positions"][r, cls] == 0).all()
  # Validation (fixed order): the same examples, tokens, predictions and
  # alignment pairs as unpacked, in fewer rows.
  packed = list(input_pipeline.pretrain_dataset(config, split="validation")
                .as_numpy_iterator())
  config.data.pack = False
  unpacked = list(input_pipeline.pretrain_dataset(config, split="validation")
                  .as_numpy_iterator())
  count = lambda rows, f: sum(float(f(r)) for r in rows)
  assert count(packed, lambda r: r["segment_ids"].max()) == len(unpacked) > len(packed)
  for key in ("attention_mask", "masked_weights", "alignment_weight", "alignment_label"):
    assert count(packed, lambda r: r[key].sum()) == count(unpacked, lambda r: r[key].sum())
  assert sum(packing_share(r) for r in packed) / len(packed) > 2 * (
      sum(packing_share(r) for r in unpacked) / len(unpacked))


def packing_share(row):
  """Real tokens over the row's positions."""
  return row["attention_mask"].mean()


def test_validation_split_is_finite_and_padded(pipeline_config):
  batches = list(input_pipeline.pretrain_batches(pipeline_config, batch_size=16,
                                                 split="validation"))
  assert batches
  # Padding copies carry no weight at all; negative pairs keep their alignment weight.
  real = sum(int(((b["masked_weights"].sum(1) > 0) | (b["alignment_weight"] > 0)).sum())
             for b in batches)
  expected = sum(
      tf.data.experimental.cardinality(
          seqio.get_mixture_or_task(tasks.TASKS[k][0]).source.get_dataset(
              "validation")).numpy() for k in tasks.TASKS)
  assert real == expected
  for b in batches:
    batch_lib.check(b)


def test_dataset_built_from_other_inputs_is_an_error(pipeline_config, tmp_path):
  config = pipeline_config.copy_and_resolve_references()
  config.data.codebook = make_codebook(tmp_path / "other.npz", seed=7)
  with pytest.raises(input_pipeline.DatasetMismatchError, match="tfds_data_dir"):
    next(input_pipeline.pretrain_batches(config, batch_size=4))


def test_sequence_spec_takes_config_fields_and_defaults_for_absent_ones():
  layout = tokens.TokenLayout(text_vocab_size=415, num_visual_words=9)
  config = load_config()
  config.data.min_video_tokens = 2
  config.data.video_text_mask_rate = 0.4
  config.data.mlm_on_negatives = True
  config.data.mask_alignment_pairs = True  # a loss on negatives needs them masked
  spec = tasks.sequence_spec(config.data, layout, first_word_id=104)
  assert (spec.min_video_tokens, spec.video_text_mask_rate, spec.mlm_on_negatives,
          spec.mask_alignment_pairs) == (2, 0.4, True, True)
  bare = {k: config.data[k] for k in ("max_seq_len", "max_text_tokens",
                                      "max_video_tokens", "max_predictions", "mask_rate")}
  default = tasks.sequence_spec(ml_collections.ConfigDict(bare), layout, first_word_id=104)
  assert (default.negative_rate, default.max_subsample, default.video_text_mask_rate) == (
      preprocessors.SequenceSpec.negative_rate, 5, None)


def test_recipe_statistics_show_what_each_recipe_does(pipeline_config):
  from videobert_jax.tasks import recipe_stats
  paper = pipeline_config.copy_and_resolve_references()
  from videobert_jax.configs import pretrain  # the paper recipe's data fields
  recipe_fields = ("action_mask_rate", "alignment_rate", "min_video_tokens",
                   "paired_negatives", "alignment_pairs_mlm", "mask_alignment_pairs",
                   "video_mask_rate")
  paper_data = pretrain.get_config("tiny,paper").data
  paper.data.update({k: paper_data[k] for k in recipe_fields})
  paper.data.mixture_rates = paper_data.mixture_rates
  ours = recipe_stats.recipe_statistics(pipeline_config, num_examples=96)
  theirs = recipe_stats.recipe_statistics(paper, num_examples=96)
  whole = pipeline_config.copy_and_resolve_references()
  whole.data.mask_alignment_pairs = False
  whole = recipe_stats.recipe_statistics(whole, num_examples=96)
  assert set(ours) == {"text", "video", "video_text"}
  # BERT's 15% of the maskable tokens (rounded per example, at least one).
  assert 0.1 < theirs["text"]["masked_share"] < 0.3
  assert theirs["video_text"]["action_masked_share"] == 0.0
  # actions: half the texts train alignment, each both ways (2/3 of the pairs);
  # of the rest a quarter mask their video, the others their verb-object pairs.
  assert ours["video_text"]["action_masked_share"] > 0.1
  assert ours["video_text"]["video_masked_share"] > 0.02
  assert theirs["video_text"]["video_masked_share"] == 0.0
  assert theirs["video_text"]["alignment_share"] == 1.0
  assert 0.5 < ours["video_text"]["alignment_share"] < 0.8
  assert 0.3 < theirs["video_text"]["negative_share_of_alignment"] < 0.7
  # Alignment pairs are masked (BERT's next-sentence pairs are) unless left whole.
  assert ours["video_text"]["whole_share_of_alignment"] == 0.0
  assert theirs["video_text"]["whole_share_of_alignment"] == 0.0
  assert whole["video_text"]["whole_share_of_alignment"] == 1.0
  assert whole["video_text"]["masked_share"] < ours["video_text"]["masked_share"]
  assert "left unmasked" in recipe_stats.describe(whole)
  assert "left unmasked" not in recipe_stats.describe(ours)
  # The paper's rates are really drawn from 1..5; the cap keeps short spans at 1.
  drawn = [theirs["video"][f"subsample_rate_{r}_share"] for r in range(1, 6)]
  assert sum(drawn) == pytest.approx(1.0) and sum(v > 0 for v in drawn) >= 4
  assert theirs["video"]["subsample_rate_mean"] > ours["video"]["subsample_rate_mean"]
  assert "text" not in {k.split("/")[1] for k in recipe_stats.as_scalars(ours)
                        if "subsample" in k}
  assert "train alignment" in recipe_stats.describe(theirs)


def _raw_examples(source, split, shard=None):
  """The TFDS examples a host reads of ``source`` through seqio (no preprocessing)."""
  name = "test_raw_shard"
  seqio.TaskRegistry.remove(name)
  task = seqio.Task(name, source=source, preprocessors=[], output_features={})
  shuffle = split == "train"  # one seed on every host, as host_batches gives
  ds = task.get_dataset(None, split=split, shuffle=shuffle, seed=3, shard_info=shard,
                        num_epochs=1)
  return [(ex["video_id"], ex["text_ids"].tobytes(), ex["visual_words"].tobytes())
          for ex in ds.as_numpy_iterator()]


@pytest.mark.parametrize("split", ["train", "validation"])
def test_hosts_split_a_one_file_split_into_disjoint_complete_even_shares(
    pipeline_config, split):
  next(input_pipeline.pretrain_batches(pipeline_config, batch_size=2))  # registers tasks
  source = seqio.get_mixture_or_task(tasks.TASKS["video_text"][0]).source
  assert len(source.list_shards(split)) == 1
  with pytest.raises(ValueError, match="Cannot shard"):  # what TFDS alone does here
    source.get_dataset(split, shuffle=False, shard_info=seqio.ShardInfo(0, 2))
  assert input_pipeline.host_sharding(pipeline_config.data, ("video_text",), split,
                                      2) == {"video_text": "examples"}
  whole = _raw_examples(source, split)
  shares = [_raw_examples(source, split, seqio.ShardInfo(index=i, num_shards=2))
            for i in range(2)]
  assert sorted(shares[0] + shares[1]) == sorted(whole)  # complete, and disjoint
  assert abs(len(shares[0]) - len(shares[1])) <= 1 and len(whole) > 10


def test_more_hosts_than_training_examples_is_an_error(pipeline_config):
  sizes = input_pipeline.dataset_sizes(pipeline_config.data, kinds=("text",))
  hosts = sizes["text"]["train"] + 1
  with pytest.raises(ValueError, match="fewer than the"):
    input_pipeline.host_sharding(pipeline_config.data, ("text",), "train", hosts)
  assert input_pipeline.host_sharding(pipeline_config.data, ("text",), "train", 1) == {
      "text": "files"}
