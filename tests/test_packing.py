"""Sequence packing: the packer, the packed batch contract, and the model on packed rows.

The central check: 4 examples unpacked (4 rows) and packed (2 rows) give the same
per-objective losses and alignment logits with dropout off, which holds only if
attention is blocked per example, positions restart per example, each example's
own [CLS] is classified and each prediction keeps its example's objective.
"""

import flax.linen as nn
import jax
import numpy as np
import pytest
import tensorflow as tf

from videobert_jax import batch as batch_lib
from videobert_jax import tokens
from videobert_jax.configs import pretrain
from videobert_jax.models import VideoBert
from videobert_jax.models import losses
from videobert_jax.tasks import packing
from videobert_jax.tasks import preprocessors

WEIGHTS = {"text": 1.0, "video": 0.5, "video_text": 2.0, "alignment": 0.3}
LAYOUT = tokens.TokenLayout(text_vocab_size=2048, num_visual_words=16)
T_UNPACKED, P_EXAMPLE = 16, 4
T_PACKED, P_PACKED, S = 32, 10, 4
LENGTHS = (11, 7, 15, 6)  # first-fit: rows [0, 1, 3] and [2]


def make_examples(lengths=LENGTHS, seed=0):
  """Task examples (unpadded) of every objective, with masked positions and scalars."""
  rng = np.random.default_rng(seed)
  examples = []
  for i, length in enumerate(lengths):
    ids = rng.integers(1000, LAYOUT.num_used_ids, length).astype(np.int32)
    ids[0], ids[-1] = tokens.CLS_ID, tokens.SEP_ID
    num_masked = 1 + i % 3
    positions = np.sort(rng.choice(np.arange(1, length - 1), num_masked, replace=False))
    objective = i % batch_lib.NUM_OBJECTIVES
    examples.append({
        "input_ids": ids, "token_type_ids": (np.arange(length) >= length // 2).astype(np.int32),
        "masked_positions": positions.astype(np.int32),
        "masked_ids": rng.integers(1000, LAYOUT.num_used_ids, num_masked).astype(np.int32),
        "objective": np.int32(objective),
        "alignment_label": np.int32(i % 2),
        "alignment_weight": np.float32(objective == batch_lib.VIDEO_TEXT or i == 0),
        "mlm_weight": np.float32(1.0 if i != 3 else 0.0)})
  return examples


def unpacked_batch(examples, seq_len=T_UNPACKED, predictions=P_EXAMPLE):
  """What VideoBertFeatureConverter makes of ``examples``: one per row."""
  b = batch_lib.zeros(len(examples), seq_len, predictions)
  for i, ex in enumerate(examples):
    n, m = len(ex["input_ids"]), len(ex["masked_positions"])
    b["input_ids"][i, :n] = ex["input_ids"]
    b["token_type_ids"][i, :n] = ex["token_type_ids"]
    b["attention_mask"][i, :n] = 1
    b["masked_positions"][i, :m] = ex["masked_positions"]
    b["masked_ids"][i, :m] = ex["masked_ids"]
    b["masked_weights"][i, :m] = ex["mlm_weight"]
    for key in batch_lib.PER_EXAMPLE:
      b[key][i] = ex[key]
  return b


def window(examples):
  """``examples`` as the padded window ``pack_examples`` reads."""
  out = {k: np.stack([np.pad(ex[k], (0, T_UNPACKED - len(ex[k]))) for ex in examples])
         for k in ("input_ids", "token_type_ids", "masked_positions", "masked_ids")}
  for key in ("objective", "alignment_label", "alignment_weight", "mlm_weight"):
    out[key] = np.array([ex[key] for ex in examples])
  out["num_tokens"] = np.array([len(ex["input_ids"]) for ex in examples])
  out["num_masked"] = np.array([len(ex["masked_positions"]) for ex in examples])
  return out


def packed_batch(examples):
  return packing.pack_examples(window(examples), seq_len=T_PACKED,
                               max_predictions=P_PACKED, max_segments=S)


@pytest.fixture(scope="module")
def model_and_params():
  config = pretrain.get_config("tiny").model
  config.update(num_visual_words=16, text_vocab_size=2048, dropout_rate=0.0)
  model = VideoBert(config)
  variables = jax.jit(lambda r: model.init(r, batch_lib.zeros(1, T_UNPACKED, P_EXAMPLE),
                                           deterministic=True))(jax.random.key(0))
  return model, nn.meta.unbox(variables)


def run(model, variables, batch):
  return jax.jit(lambda v, b: model.apply(v, b, deterministic=True))(variables, batch)


def test_first_fit_respects_every_budget_and_is_deterministic():
  rng = np.random.default_rng(0)
  tokens_, masked = rng.integers(3, 40, 300), rng.integers(1, 6, 300)
  rows, num_rows = packing.first_fit(tokens_, masked, seq_len=64, max_predictions=16,
                                     max_segments=5)
  again = packing.first_fit(tokens_, masked, seq_len=64, max_predictions=16, max_segments=5)
  np.testing.assert_array_equal(rows, again[0])
  assert num_rows == again[1] and set(rows) == set(range(num_rows))
  assert max(np.bincount(rows, weights=tokens_)) <= 64
  assert max(np.bincount(rows, weights=masked)) <= 16
  assert max(np.bincount(rows)) <= 5
  # Greedy first-fit leaves little room: the rows hold about all the tokens.
  assert tokens_.sum() / (num_rows * 64) > 0.85
  with pytest.raises(ValueError, match="fits no row"):
    packing.first_fit([65], [1], seq_len=64, max_predictions=16, max_segments=5)


def test_packed_rows_keep_each_example_whole_and_apart():
  examples = make_examples()
  packed = packed_batch(examples)
  batch_lib.check(packed)
  assert packed["input_ids"].shape == (2, T_PACKED)
  # Row 0 holds examples 0, 1 and 3 in order, row 1 example 2.
  np.testing.assert_array_equal(packed["cls_positions"], [[0, 11, 18, 0], [0, 0, 0, 0]])
  row = packed["input_ids"][0]
  assert (row[packed["cls_positions"][0, :3]] == tokens.CLS_ID).all()
  np.testing.assert_array_equal(packed["segment_ids"][0, :24],
                                [1] * 11 + [2] * 7 + [3] * 6)
  np.testing.assert_array_equal(packed["positions"][0, 11:18], np.arange(7))
  assert packed["attention_mask"][0].sum() == 24 and packed["segment_ids"][0, 24:].max() == 0
  # Masked positions point at the same ids as in the example itself.
  shifted = examples[1]["masked_positions"] + 11
  np.testing.assert_array_equal(packed["masked_positions"][0, 1:3], shifted)
  np.testing.assert_array_equal(row[shifted], examples[1]["input_ids"][shifted - 11])
  np.testing.assert_array_equal(packed["masked_objective"][0, :6], [0, 1, 1, 0, 0, 0])
  np.testing.assert_array_equal(packed["objective"][0, :3], [0, 1, 0])
  np.testing.assert_array_equal(packed["alignment_weight"][:, :3], [[1, 0, 0], [1, 0, 0]])


def test_packed_and_unpacked_losses_per_objective_are_equal(model_and_params):
  model, variables = model_and_params
  examples = make_examples()
  unpacked, packed = unpacked_batch(examples), packed_batch(examples)
  _, sums_u = losses.pretraining_loss(run(model, variables, unpacked), unpacked, WEIGHTS)
  _, sums_p = losses.pretraining_loss(run(model, variables, packed), packed, WEIGHTS)
  sums_u, sums_p = jax.device_get((sums_u, sums_p))
  assert sums_u["real_tokens"] == sums_p["real_tokens"] == sum(LENGTHS)
  assert sums_u["real_examples"] == sums_p["real_examples"] == 4
  for name in losses.LOSS_NAMES[:3]:
    assert sums_u[f"{name}/predictions"] > 0
  mean_u, mean_p = losses.summarize(sums_u), losses.summarize(sums_p)
  assert set(mean_u) == set(mean_p)
  for key, value in mean_u.items():
    np.testing.assert_allclose(mean_p[key], value, rtol=1e-5, atol=1e-5, err_msg=key)


def test_each_example_has_its_unpacked_hidden_states(model_and_params):
  # Stricter than the losses (which a random tiny model barely moves): a shared
  # attention or shifted positions change the hidden states by ~1e-2.
  model, variables = model_and_params
  examples = make_examples()
  packed = packed_batch(examples)
  hidden_u = np.asarray(run(model, variables, unpacked_batch(examples))["hidden"])
  hidden_p = np.asarray(run(model, variables, packed)["hidden"])
  spans = {0: (0, 0), 1: (0, 11), 2: (1, 0), 3: (0, 18)}  # example -> (row, start)
  for i, (row, start) in spans.items():
    n = LENGTHS[i]
    np.testing.assert_allclose(hidden_p[row, start:start + n], hidden_u[i, :n], atol=2e-5,
                               err_msg=f"example {i}")


def test_alignment_logits_come_from_each_examples_own_cls(model_and_params):
  model, variables = model_and_params
  examples = make_examples()
  logits_u = np.asarray(run(model, variables, unpacked_batch(examples))["alignment_logits"])
  logits_p = np.asarray(run(model, variables, packed_batch(examples))["alignment_logits"])
  assert logits_p.shape == (2, S, 2)
  np.testing.assert_allclose(logits_p[0, :3], logits_u[[0, 1, 3]], atol=1e-5)
  np.testing.assert_allclose(logits_p[1, 0], logits_u[2], atol=1e-5)


def test_examples_in_one_row_do_not_attend_to_each_other(model_and_params):
  model, variables = model_and_params
  examples = make_examples()
  packed = packed_batch(examples)
  changed = dict(packed, input_ids=packed["input_ids"].copy())
  changed["input_ids"][0, 12:17] = 1234  # inside example 1 (positions 11..17)
  hidden = np.asarray(run(model, variables, packed)["hidden"])
  hidden_changed = np.asarray(run(model, variables, changed)["hidden"])
  np.testing.assert_allclose(hidden_changed[0, :11], hidden[0, :11], atol=1e-6)
  np.testing.assert_allclose(hidden_changed[0, 18:24], hidden[0, 18:24], atol=1e-6)
  assert np.abs(hidden_changed[0, 11:18] - hidden[0, 11:18]).max() > 1e-3


def test_unpacked_batch_in_packed_layout_gives_the_same_losses(model_and_params):
  model, variables = model_and_params
  unpacked = unpacked_batch(make_examples())
  as_packed = batch_lib.to_packed(unpacked, P_PACKED, S)
  batch_lib.check(as_packed)
  _, sums_u = losses.pretraining_loss(run(model, variables, unpacked), unpacked, WEIGHTS)
  _, sums_p = losses.pretraining_loss(run(model, variables, as_packed), as_packed, WEIGHTS)
  for key, value in jax.device_get(sums_u).items():
    np.testing.assert_allclose(float(sums_p[key]), float(value), rtol=1e-5, err_msg=key)


def _task_dataset(examples):
  return tf.data.Dataset.from_generator(
      lambda: iter(examples), output_signature={
          k: tf.TensorSpec([None] if np.ndim(v) else [], tf.as_dtype(np.asarray(v).dtype))
          for k, v in examples[0].items()})


def test_the_tf_data_converter_packs_like_pack_examples_and_deterministically():
  examples = make_examples(lengths=(11, 7, 14, 6, 9, 15, 5, 12, 8, 10), seed=3)
  lengths = {**preprocessors.task_feature_lengths(preprocessors.SequenceSpec(
      layout=LAYOUT, max_seq_len=T_PACKED, max_predictions=P_EXAMPLE))}
  converter = packing.PackedFeatureConverter(max_predictions=P_PACKED, max_segments=S,
                                             window=4)
  rows = list(converter(_task_dataset(examples), lengths).as_numpy_iterator())
  again = list(converter(_task_dataset(examples), lengths).as_numpy_iterator())
  expected = []
  for start in range(0, len(examples), 4):  # one packing window after the other
    part = packing.pack_examples(window(examples[start:start + 4]), seq_len=T_PACKED,
                                 max_predictions=P_PACKED, max_segments=S)
    expected += [{k: v[r] for k, v in part.items()} for r in range(len(part["input_ids"]))]
  assert len(rows) == len(expected) == len(again)
  for row, want, repeat in zip(rows, expected, again):
    assert set(row) == set(want)
    for key in want:
      np.testing.assert_array_equal(row[key], want[key], err_msg=key)
      np.testing.assert_array_equal(repeat[key], want[key], err_msg=key)
  assert sum(int(r["segment_ids"].max()) for r in rows) == len(examples)
