"""configs/pretrain.py: the named sizes, the paper's defaults, the large parameter count."""

import jax
import numpy as np
import pytest

from videobert_jax.configs import pretrain
from videobert_jax import batch as batch_lib
from videobert_jax import tokens
from videobert_jax.models import VideoBert
from videobert_jax.models import flops

# BertModel (embeddings + 24 layers + pooler) of BERT-large uncased, as published.
BERT_LARGE_PARAMS = 335_141_888


def abstract_param_count(config) -> int:
  """Parameters of the model, by jax.eval_shape: nothing is allocated."""
  model = VideoBert(config.model)
  shapes = jax.eval_shape(
      lambda r: model.init(r, batch_lib.zeros(1, 8, 2), deterministic=True),
      jax.random.key(0))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))


def test_large_has_the_expected_parameter_count():
  config = pretrain.get_config("large")
  config.model.num_visual_words = tokens.PAPER_NUM_VISUAL_WORDS
  h, f, layers = 1024, 4096, 24
  v = tokens.TokenLayout(num_visual_words=tokens.PAPER_NUM_VISUAL_WORDS).vocab_size
  assert v == 51328  # 30522 WordPieces + [>] + 20736 visual words, padded to 128
  embeddings = v * h + 512 * h + 2 * h + 2 * h
  layer = 4 * (h * h + h) + 2 * h + (h * f + f) + (f * h + h) + 2 * h
  pooler = h * h + h
  mlm_head = (h * h + h) + 2 * h + v  # transform, LayerNorm, output bias (tied weights)
  classifier = 2 * h + 2
  expected = embeddings + layers * layer + pooler + mlm_head + classifier
  # The encoder + pooler part is BERT-large plus the [>] / visual / padding rows.
  bert_part = embeddings + layers * layer + pooler - (v - tokens.BERT_UNCASED_VOCAB_SIZE) * h
  assert bert_part == BERT_LARGE_PARAMS
  assert abstract_param_count(config) == expected


def test_large_holds_the_paper_hyper_parameters():
  config = pretrain.get_config("large")
  assert (config.model.num_layers, config.model.hidden_size, config.model.num_heads,
          config.model.mlp_dim) == (24, 1024, 16, 4096)
  assert config.train.learning_rate == 1e-5
  assert config.train.batch_size == 128
  assert config.train.num_steps == 500_000
  assert config.model.freeze_embeddings


def test_large_defaults_to_the_paper_recipe_and_tiny_to_the_projects():
  paper = pretrain.get_config("large")
  assert paper.recipe == "paper"
  # BERT's random masking everywhere, every pair trains alignment, rates 1..5 drawn.
  assert (paper.data.action_mask_rate, paper.data.alignment_rate,
          paper.data.min_video_tokens, paper.data.max_subsample) == (0.0, 1.0, 1, 5)
  # One video per pair, masked-token loss on every aligned pair, no text-to-video
  # masking, equal mixture rates.
  assert (paper.data.paired_negatives, paper.data.alignment_pairs_mlm,
          paper.data.mask_alignment_pairs, paper.data.video_mask_rate) == (
              False, True, True, 0.0)
  assert paper.data.mixture_rates.to_dict() == {"text": 1.0, "video": 1.0, "video_text": 1.0}
  assert not paper.init.from_scratch
  actions = pretrain.get_config("large,actions")
  assert actions.recipe == "actions" and actions.data.action_mask_rate == 1.0
  assert actions.model.to_dict() == paper.model.to_dict()  # a recipe is not a size
  tiny = pretrain.get_config("tiny")
  assert tiny.recipe == "actions" and tiny.data.min_video_tokens == 4
  # Alignment pairs train alignment alone; they are still masked (whole pairs: a lever).
  assert (tiny.data.paired_negatives, tiny.data.alignment_pairs_mlm,
          tiny.data.mask_alignment_pairs, tiny.data.video_mask_rate,
          tiny.data.mixture_rates.video_text) == (True, False, True, 0.25, 3.0)
  assert pretrain.get_config("tiny,paper").data.to_dict() == {
      **tiny.data.to_dict(), "action_mask_rate": 0.0, "alignment_rate": 1.0,
      "min_video_tokens": 1, "paired_negatives": False, "alignment_pairs_mlm": True,
      "video_mask_rate": 0.0,
      "mixture_rates": {"text": 1.0, "video": 1.0, "video_text": 1.0}}
  with pytest.raises(ValueError, match="unknown recipe 'bert'"):
    pretrain.get_config("large,bert")


@pytest.mark.parametrize("size", sorted(pretrain.SIZES))
def test_every_size_has_the_contract_fields(size):
  config = pretrain.get_config(size)
  for name in ("num_layers", "hidden_size", "num_heads", "mlp_dim", "max_len",
               "dropout_rate", "attention_dropout_rate", "dtype", "param_dtype", "remat",
               "freeze_embeddings", "text_vocab_size", "num_visual_words"):
    assert name in config.model, name
  for name in ("corpus_dir", "codebook", "tfds_data_dir", "vocab_path", "eval_video_ids",
               "max_seq_len", "max_text_tokens", "max_video_tokens", "max_predictions",
               "mask_rate", "mixture_rates", "seed"):
    assert name in config.data, name
  for name in ("batch_size", "learning_rate", "num_steps", "warmup_steps",
               "grad_clip_norm", "objective_weights", "log_every", "checkpoint_every",
               "keep_checkpoints", "eval_every", "eval_steps", "seed"):
    assert name in config.train, name
  assert set(config.train.objective_weights) == {"text", "video", "video_text",
                                                 "alignment"}
  assert config.model.hidden_size % config.model.num_heads == 0
  assert {"data", "model"} <= set(config.mesh) and "checkpoint" in config.init


def test_small_matches_the_minilm_checkpoint_shape():
  model = pretrain.get_config("small").model
  assert (model.num_layers, model.hidden_size, model.num_heads, model.mlp_dim) == (
      6, 384, 12, 1536)


def test_unknown_size_is_a_clear_error():
  with pytest.raises(ValueError, match="unknown size 'huge'"):
    pretrain.get_config("huge")


def test_flops_per_token_counts_logits_only_where_computed():
  full = flops.train_flops_per_token(2, 128, 512, 32, 1000, logit_positions=32)
  masked = flops.train_flops_per_token(2, 128, 512, 32, 1000, logit_positions=4)
  assert full - masked == pytest.approx(6 * 128 * 1000 * (1 - 4 / 32))


def test_the_captioner_has_the_papers_budget_as_a_named_variant():
  from videobert_jax import configs
  default, paper = configs.load("captioner"), configs.load("captioner:paper")
  assert (paper.num_steps, paper.batch_size, paper.learning_rate) == (40_000, 128, 1e-3)
  assert default.num_steps < paper.num_steps  # the CPU default stays small
  assert paper.to_dict().keys() == default.to_dict().keys()
  with pytest.raises(ValueError, match="unknown captioner variant 'big'"):
    configs.load("captioner:big")
