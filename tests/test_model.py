"""The VideoBERT model: heads, attention masking, losses, visual init, sharding rules."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from videobert_jax.configs import pretrain
from videobert_jax import batch as batch_lib
from videobert_jax import tokens
from videobert_jax.models import VideoBert
from videobert_jax.models import losses
from videobert_jax.models import partitioning
from videobert_jax.models import visual_init

T, P, B = 32, 5, 4
WEIGHTS = {"text": 1.0, "video": 0.5, "video_text": 2.0, "alignment": 0.3}


def tiny_model_config(**overrides):
  config = pretrain.get_config("tiny").model
  config.num_visual_words = 16
  config.update(overrides)
  return config


def init(model, batch, seed=0):
  """Jitted init (eager op-by-op dispatch is slow), boxes removed."""
  return nn.meta.unbox(jax.jit(lambda r: model.init(r, batch, deterministic=True))(
      jax.random.key(seed)))


def apply(model, variables, *args, **kwargs):
  """Jitted apply with static keyword arguments."""
  return jax.jit(lambda v, *a: model.apply(v, *a, **kwargs))(variables, *args)


def make_batch(seed=0):
  """A batch of all three objectives with padding and padded prediction slots."""
  rng = np.random.default_rng(seed)
  layout = tokens.TokenLayout(num_visual_words=16)
  b = batch_lib.zeros(B, T, P)
  for i in range(B):
    length = T - 6 * i
    b["input_ids"][i, :length] = rng.integers(1000, layout.num_used_ids, length)
    b["input_ids"][i, 0] = tokens.CLS_ID
    b["attention_mask"][i, :length] = 1
    b["token_type_ids"][i, length // 2:length] = 1
    b["masked_positions"][i] = rng.choice(np.arange(1, length), P, replace=False)
    b["masked_ids"][i] = rng.integers(1000, layout.num_used_ids, P)
    b["masked_weights"][i, :P - i % 2] = 1.0
    b["objective"][i] = i % batch_lib.NUM_OBJECTIVES
    b["alignment_weight"][i] = float(b["objective"][i] == batch_lib.VIDEO_TEXT)
    b["alignment_label"][i] = i % 2
  return b


@pytest.fixture(scope="module")
def model_and_params():
  model = VideoBert(tiny_model_config())
  return model, init(model, make_batch())


def test_parameter_tree_matches_the_contract(model_and_params):
  _, variables = model_and_params
  params = variables["params"]
  h, v = 128, tokens.TokenLayout(num_visual_words=16).vocab_size
  assert params["embeddings"]["word"]["embedding"].shape == (v, h)
  assert params["embeddings"]["position"]["embedding"].shape == (512, h)
  layer = params["encoder"]["layer_1"]
  assert layer["attention"]["query"]["kernel"].shape == (h, 2, 64)
  assert layer["attention"]["out"]["kernel"].shape == (2, 64, h)
  assert layer["mlp"]["wi"]["kernel"].shape == (h, 512)
  assert set(layer) == {"attention", "attention_layer_norm", "mlp", "mlp_layer_norm"}
  assert params["mlm_head"]["bias"].shape == (v,)
  assert params["alignment_head"]["classifier"]["kernel"].shape == (h, 2)


def test_every_parameter_has_logical_axis_names():
  model = VideoBert(tiny_model_config())
  boxed = jax.eval_shape(lambda r: model.init(r, make_batch(), deterministic=True),
                         jax.random.key(0))["params"]
  leaves = jax.tree.leaves(boxed, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
  assert leaves and all(isinstance(x, nn.LogicallyPartitioned) for x in leaves)
  specs = nn.get_partition_spec(boxed)
  assert specs["embeddings"]["word"]["embedding"] == jax.sharding.PartitionSpec(
      "vocab", "embed")
  assert specs["encoder"]["layer_0"]["mlp"]["wi"]["kernel"] == jax.sharding.PartitionSpec(
      "embed", "mlp")


def test_masked_position_head_equals_full_sequence_head(model_and_params):
  model, variables = model_and_params
  batch = make_batch()
  outputs = apply(model, variables, batch, deterministic=True)
  hidden = outputs["hidden"]
  every_position = jnp.broadcast_to(jnp.arange(T), (B, T))
  full = apply(model, variables, hidden, every_position, method=VideoBert.mlm_logits_at)
  gathered = jnp.take_along_axis(full, batch["masked_positions"][..., None], axis=1)
  np.testing.assert_allclose(outputs["mlm_logits"], gathered, rtol=1e-5, atol=1e-5)
  loss, metrics = losses.pretraining_loss(outputs, batch, WEIGHTS)
  full_loss, _ = losses.pretraining_loss({**outputs, "mlm_logits": gathered}, batch,
                                         WEIGHTS)
  np.testing.assert_allclose(loss, full_loss, rtol=1e-6)
  assert np.isfinite(loss) and metrics["text/predictions"] > 0


def test_corpus_vocabulary_ranks_only_its_ids_and_scores_them_as_the_full_head(
    model_and_params):
  model, variables = model_and_params
  batch = make_batch()
  used = np.unique(np.concatenate([np.asarray(batch["input_ids"]).ravel(),
                                   np.asarray(batch["masked_ids"]).ravel()]))
  ids = sorted(set(used.tolist()) | set(range(2000, 2040)))
  ranked = VideoBert(tiny_model_config(mlm_vocab="corpus", mlm_vocab_ids=ids))
  outputs = apply(ranked, variables, batch, deterministic=True)
  reference = apply(model, variables, batch, deterministic=True)
  # Same parameters, same logits on the ranked ids, nothing else computed.
  assert outputs["mlm_logits"].shape == (B, P, len(ids))
  np.testing.assert_allclose(outputs["mlm_logits"],
                             np.asarray(reference["mlm_logits"])[..., ids], rtol=1e-5,
                             atol=1e-5)
  # Targets become indices among the ranked ids; the loss is the softmax over them.
  np.testing.assert_array_equal(np.asarray(ids)[np.asarray(outputs["mlm_targets"])],
                                batch["masked_ids"])
  _, metrics = losses.pretraining_loss(outputs, batch, WEIGHTS)
  logp = jax.nn.log_softmax(np.asarray(reference["mlm_logits"])[..., ids])
  expected = -np.take_along_axis(logp, np.asarray(outputs["mlm_targets"])[..., None], -1)
  in_text = np.asarray(batch["masked_weights"]) * (
      np.asarray(batch["objective"])[:, None] == batch_lib.TEXT)
  np.testing.assert_allclose(metrics["text/mlm_loss_sum"],
                             (expected[..., 0] * in_text).sum(), rtol=1e-5)
  # Inference logits stay indexed by token id, the unranked ids far below the rest.
  full = apply(ranked, variables, outputs["hidden"], batch["masked_positions"],
               method=VideoBert.mlm_logits_at)
  np.testing.assert_allclose(np.asarray(full)[..., ids], outputs["mlm_logits"], rtol=1e-6)
  assert np.asarray(full)[..., 1999].max() < -1e8


def test_unsorted_vocabulary_ids_are_refused(model_and_params):
  _, variables = model_and_params
  ranked = VideoBert(tiny_model_config(mlm_vocab_ids=[5, 3]))
  with pytest.raises(ValueError, match="sorted, distinct"):
    apply(ranked, variables, make_batch(), deterministic=True)


def test_padding_does_not_change_real_tokens(model_and_params):
  model, variables = model_and_params
  batch = make_batch()
  noisy = {k: v.copy() for k, v in batch.items()}
  pad = noisy["attention_mask"] == 0
  noisy["input_ids"][pad] = 2000  # junk behind the mask
  a = apply(model, variables, batch, deterministic=True)["hidden"]
  b = apply(model, variables, noisy, deterministic=True)["hidden"]
  real = batch["attention_mask"].astype(bool)
  np.testing.assert_allclose(np.asarray(a)[real], np.asarray(b)[real], atol=1e-5)


def test_explicit_attention_path_matches_fused_path():
  batch = make_batch()
  fused = VideoBert(tiny_model_config(dropout_rate=0.0))
  variables = init(fused, batch, seed=1)
  explicit = VideoBert(tiny_model_config(dropout_rate=0.0, attention_dropout_rate=1e-9))
  rngs = {"dropout": jax.random.key(2)}
  a = apply(fused, variables, batch, deterministic=False, rngs=rngs)
  b = apply(explicit, variables, batch, deterministic=False, rngs=rngs)
  real = batch["attention_mask"].astype(bool)
  np.testing.assert_allclose(np.asarray(a["hidden"])[real], np.asarray(b["hidden"])[real],
                             atol=2e-5)


def test_bfloat16_compute_keeps_float32_params_and_logits():
  batch = make_batch()
  model = VideoBert(tiny_model_config(dtype="bfloat16", remat=True))
  variables = init(model, batch)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables))
  out = apply(model, variables, batch, deterministic=True)
  assert out["hidden"].dtype == jnp.bfloat16
  assert out["mlm_logits"].dtype == jnp.float32
  assert out["alignment_logits"].dtype == jnp.float32


def test_losses_are_per_objective_and_weighted():
  rng = np.random.default_rng(0)
  batch = make_batch()
  outputs = {"mlm_logits": jnp.asarray(rng.normal(size=(B, P, 64)), jnp.float32),
             "alignment_logits": jnp.asarray(rng.normal(size=(B, 2)), jnp.float32)}
  batch["masked_ids"] = rng.integers(0, 64, (B, P)).astype(np.int32)
  loss, sums = losses.pretraining_loss(outputs, batch, WEIGHTS)
  metrics = losses.summarize(jax.device_get(sums))
  logp = jax.nn.log_softmax(outputs["mlm_logits"])
  nll = -np.take_along_axis(np.asarray(logp), batch["masked_ids"][..., None], -1)[..., 0]
  expected = 0.0
  for objective_id, name in enumerate(batch_lib.OBJECTIVE_NAMES):
    w = batch["masked_weights"] * (batch["objective"] == objective_id)[:, None]
    mean = (nll * w).sum() / w.sum()
    np.testing.assert_allclose(metrics[f"{name}/mlm_loss"], mean, rtol=1e-5)
    expected += WEIGHTS[name] * mean
  align_nll = -np.asarray(jax.nn.log_softmax(outputs["alignment_logits"]))[
      np.arange(B), batch["alignment_label"]]
  align = (align_nll * batch["alignment_weight"]).sum() / batch["alignment_weight"].sum()
  np.testing.assert_allclose(metrics["alignment/loss"], align, rtol=1e-5)
  np.testing.assert_allclose(loss, expected + WEIGHTS["alignment"] * align, rtol=1e-5)


def test_visual_embeddings_pca_and_identity():
  rng = np.random.default_rng(0)
  centroids = rng.normal(size=(20, 32)).astype(np.float32)
  np.testing.assert_array_equal(visual_init.visual_embeddings(centroids, 32), centroids)
  projected = visual_init.visual_embeddings(centroids, 16)
  assert projected.shape == (20, 16) and projected.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(projected, axis=1).mean(),
                             visual_init.bert_row_norm(16), rtol=1e-5)
  # More hidden units than principal directions: the rest is filled, not dead.
  wide = visual_init.visual_embeddings(centroids, 64)
  assert wide.shape == (20, 64) and np.all(np.abs(wide[:, 20:]).sum(axis=0) > 0)
  with pytest.raises(ValueError, match="NaN"):
    visual_init.visual_embeddings(np.full((3, 4), np.nan), 8)


def test_mesh_rules_shard_vocab_and_mlp_over_model():
  mesh = partitioning.make_mesh(_mesh_config(2), jax.devices()[:4])
  assert dict(mesh.shape) == {"data": 2, "model": 2}
  model = VideoBert(tiny_model_config())
  boxed = jax.eval_shape(lambda r: model.init(r, make_batch(), deterministic=True),
                         jax.random.key(0))["params"]
  shardings = partitioning.logical_shardings(boxed, mesh)
  spec = jax.sharding.PartitionSpec
  assert shardings["embeddings"]["word"]["embedding"].spec == spec("model", None)
  assert shardings["encoder"]["layer_0"]["attention"]["query"]["kernel"].spec == spec(
      None, "model", None)
  assert shardings["encoder"]["layer_0"]["attention_layer_norm"]["scale"].spec == spec(None)
  with pytest.raises(ValueError, match="does not divide"):
    partitioning.make_mesh(_mesh_config(3), jax.devices()[:4])


def _mesh_config(model):
  import ml_collections  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict({"data": -1, "model": model})
