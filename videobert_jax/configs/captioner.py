"""The captioner trained on VideoBERT features (the paper's Section 4.4).

A transformer encoder-decoder: 2 layers, hidden 128, dropout 0.4, Adam with
learning rate 1e-3 decayed linearly to 0. Use as ``get_config()`` or override on
the command line of ``python -m videobert_jax.eval --task=captioning`` with
``--captioner.num_steps=...``.

``get_config()`` is the small CPU default (1,500 steps at batch 64, minutes on a
laptop); ``get_config("paper")`` (``--captioner=captioner:paper``) is the paper's
budget: 40K iterations at batch 128, learning rate 1e-3 decayed linearly.
"""

import ml_collections


VARIANTS = ("", "paper")


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """Returns the captioner config: the CPU default, or ``"paper"``'s budget."""
  if variant not in VARIANTS:
    raise ValueError(f"unknown captioner variant {variant!r}; choose from "
                     f"{[v for v in VARIANTS if v]} or none")
  paper = variant == "paper"
  config = ml_collections.ConfigDict()
  config.num_layers = 2  # encoder and decoder layers each
  config.hidden_size = 128  # model width
  config.num_heads = 4  # attention heads
  config.mlp_dim = 512  # feed-forward width
  config.dropout_rate = 0.4  # dropout on embeddings, attention outputs and MLPs
  config.memory_tokens = 4  # the feature vector is projected to this many encoder tokens
  config.learning_rate = 1e-3  # Adam peak learning rate, linear decay to 0
  config.num_steps = 40_000 if paper else 1500  # optimizer steps (the paper: 40K)
  config.batch_size = 128 if paper else 64  # segments per step (the paper: 128)
  config.max_caption_words = 20  # longer captions are cut (decoding stops there too)
  config.min_word_count = 2  # rarer training words become <unk>
  config.beam_size = 1  # 1 = greedy decoding; >1 = beam search
  config.length_penalty = 0.6  # beam search: scores divided by ((5+len)/6)**alpha
  config.seed = 0  # parameter init, dropout and batch order
  return config
