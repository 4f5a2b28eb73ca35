"""The VideoBERT encoder: BERT over one table of WordPieces, ``[>]`` and visual words.

Original BERT numerics (post-LayerNorm, exact erf GELU, LayerNorm epsilon 1e-12) so
text-pretrained checkpoints load unchanged. Every parameter carries logical axis
names (``vocab``, ``embed``, ``heads``, ``kv``, ``mlp``) that
``models.partitioning.LOGICAL_AXIS_RULES`` maps onto a ``(data, model)`` mesh;
activations carry ``batch``/``length`` names so the compiler keeps them sharded the
same way. Parameters are stored in ``config.param_dtype`` (float32) and the matmuls
run in ``config.dtype`` (bfloat16 on accelerators).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from videobert_jax import tokens
from videobert_jax.models import heads
from videobert_jax.models import layers

# The logit of an id the masked-token softmax does not rank (``model.mlm_vocab_ids``):
# far below any real logit, so it gets no probability, yet finite (no inf - inf).
NOT_RANKED = -1e9


class Embeddings(nn.Module):
  """Word + position + token-type embeddings, LayerNorm, dropout."""

  config: Any
  vocab_size: int

  def setup(self):
    cfg = self.config
    dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    self.word = nn.Embed(self.vocab_size, cfg.hidden_size, dtype=dtype,
                         param_dtype=param_dtype,
                         embedding_init=layers.bert_init(("vocab", "embed")))
    self.position = nn.Embed(cfg.max_len, cfg.hidden_size, dtype=dtype,
                             param_dtype=param_dtype,
                             embedding_init=layers.bert_init((None, "embed")))
    self.token_type = nn.Embed(2, cfg.hidden_size, dtype=dtype, param_dtype=param_dtype,
                               embedding_init=layers.bert_init((None, "embed")))
    self.layer_norm = layers.layer_norm(dtype, param_dtype, "layer_norm")
    self.dropout = nn.Dropout(cfg.dropout_rate)

  def __call__(self, input_ids, token_type_ids, positions=None, *, deterministic: bool):
    length = input_ids.shape[-1]
    if length > self.config.max_len:
      raise ValueError(f"sequence length {length} exceeds model.max_len "
                       f"{self.config.max_len}")
    # Packed rows give each example's own positions (restarting at 0), so an
    # example sees the same position embeddings wherever it sits in the row.
    position = (self.position(jnp.arange(length))[None] if positions is None
                else self.position(positions))
    x = self.word(input_ids) + self.token_type(token_type_ids) + position
    x = self.layer_norm(x)
    x = self.dropout(x, deterministic=deterministic)
    return nn.with_logical_constraint(x, ("batch", "length", "embed"))


class HeadsProjection(nn.Module):
  """[B, T, H] -> [B, T, N, Dh] with kernel [H, N, Dh] and bias [N, Dh].

  A 3-D kernel (rather than nn.DenseGeneral's flattened initialisation) so the
  logical names ("embed", "heads", "kv") hold from the moment it is created.
  """

  num_heads: int
  head_dim: int
  dtype: Any
  param_dtype: Any

  @nn.compact
  def __call__(self, x):
    hidden = x.shape[-1]
    kernel = self.param("kernel", layers.bert_init(("embed", "heads", "kv")),
                        (hidden, self.num_heads, self.head_dim), self.param_dtype)
    bias = self.param("bias", layers.zeros_init(("heads", "kv")),
                      (self.num_heads, self.head_dim), self.param_dtype)
    y = jnp.einsum("bth,hnd->btnd", x.astype(self.dtype), kernel.astype(self.dtype))
    return y + bias.astype(self.dtype)


class HeadsOutput(nn.Module):
  """[B, T, N, Dh] -> [B, T, H] with kernel [N, Dh, H] and bias [H]."""

  features: int
  dtype: Any
  param_dtype: Any

  @nn.compact
  def __call__(self, x):
    num_heads, head_dim = x.shape[-2:]
    kernel = self.param("kernel", layers.bert_init(("heads", "kv", "embed")),
                        (num_heads, head_dim, self.features), self.param_dtype)
    bias = self.param("bias", layers.zeros_init(("embed",)), (self.features,),
                      self.param_dtype)
    y = jnp.einsum("btnd,ndh->bth", x.astype(self.dtype), kernel.astype(self.dtype))
    return y + bias.astype(self.dtype)


def attention_mask_of(attention_mask, segment_ids=None):
  """The boolean keys-to-attend mask of ``jax.nn.dot_product_attention``.

  Unpacked: [B, 1, 1, S], the real keys. Packed (``segment_ids`` given): [B, 1, T, S],
  a block-diagonal mask where each token attends only its own example (padding,
  segment 0, attends padding, whose outputs nothing reads).
  """
  if segment_ids is None:
    return (attention_mask > 0)[:, None, None, :]
  mask = segment_ids[:, None, :, None] == segment_ids[:, None, None, :]
  return nn.with_logical_constraint(mask, ("batch", None, "length", None))


class SelfAttention(nn.Module):
  """Multi-head self-attention under a boolean mask, via ``jax.nn.dot_product_attention``."""

  config: Any

  @nn.compact
  def __call__(self, x, mask, *, deterministic: bool):
    """``mask``: ``attention_mask_of``'s [B, 1, 1 or T, S] booleans."""
    cfg = self.config
    dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    head_dim = cfg.hidden_size // cfg.num_heads
    projection = functools.partial(HeadsProjection, num_heads=cfg.num_heads,
                                   head_dim=head_dim, dtype=dtype, param_dtype=param_dtype)
    names = ("batch", "length", "heads", "kv")
    query = nn.with_logical_constraint(projection(name="query")(x), names)
    key = nn.with_logical_constraint(projection(name="key")(x), names)
    value = nn.with_logical_constraint(projection(name="value")(x), names)

    use_dropout = cfg.attention_dropout_rate > 0 and not deterministic
    if use_dropout:
      # jax.nn.dot_product_attention has no dropout on the probabilities, so
      # attention dropout takes the explicit (slower, unfused) path.
      logits = jnp.einsum("bqnd,bknd->bnqk", query, key) / jnp.sqrt(head_dim).astype(dtype)
      logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
      probs = jax.nn.softmax(logits.astype(jnp.float32)).astype(dtype)
      probs = nn.Dropout(cfg.attention_dropout_rate)(probs, deterministic=False)
      context = jnp.einsum("bnqk,bknd->bqnd", probs, value)
    elif cfg.get("attention_implementation") == "cudnn" and mask.shape[2] == 1:
      # cuDNN's flash attention takes padding as lengths; the batch contract pads
      # on the right, so the number of real tokens is the key length.
      lengths = jnp.sum(mask[:, 0, 0, :], axis=-1).astype(jnp.int32)
      context = jax.nn.dot_product_attention(
          query, key, value, key_value_seq_lengths=lengths, query_seq_lengths=lengths,
          implementation="cudnn")
    else:
      # Packed rows on cuDNN pass their block-diagonal mask too (turned into a bias).
      context = jax.nn.dot_product_attention(
          query, key, value, mask=mask, implementation=cfg.get("attention_implementation"))
    context = nn.with_logical_constraint(context, names)
    out = HeadsOutput(cfg.hidden_size, dtype=dtype, param_dtype=param_dtype,
                      name="out")(context)
    return nn.with_logical_constraint(out, ("batch", "length", "embed"))


class Mlp(nn.Module):
  """The feed-forward block: dense to ``mlp_dim``, GELU, dense back to hidden."""

  config: Any

  @nn.compact
  def __call__(self, x):
    cfg = self.config
    dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    h = nn.Dense(cfg.mlp_dim, dtype=dtype, param_dtype=param_dtype,
                 kernel_init=layers.bert_init(("embed", "mlp")),
                 bias_init=layers.zeros_init(("mlp",)),
                 name="wi")(x)
    h = nn.with_logical_constraint(layers.gelu(h), ("batch", "length", "mlp"))
    out = nn.Dense(cfg.hidden_size, dtype=dtype, param_dtype=param_dtype,
                   kernel_init=layers.bert_init(("mlp", "embed")),
                   bias_init=layers.zeros_init(("embed",)),
                   name="wo")(h)
    return nn.with_logical_constraint(out, ("batch", "length", "embed"))


class EncoderLayer(nn.Module):
  """One post-LayerNorm transformer layer, as in BERT."""

  config: Any

  @nn.compact
  def __call__(self, x, mask, deterministic: bool):
    cfg = self.config
    dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    dropout = nn.Dropout(cfg.dropout_rate)
    h = SelfAttention(cfg, name="attention")(x, mask, deterministic=deterministic)
    x = layers.layer_norm(dtype, param_dtype, "attention_layer_norm")(
        x + dropout(h, deterministic=deterministic))
    h = Mlp(cfg, name="mlp")(x)
    x = layers.layer_norm(dtype, param_dtype, "mlp_layer_norm")(
        x + dropout(h, deterministic=deterministic))
    return nn.with_logical_constraint(x, ("batch", "length", "embed"))


class Encoder(nn.Module):
  """``num_layers`` encoder layers named ``layer_0`` … (no scan: names match BERT's)."""

  config: Any

  @nn.compact
  def __call__(self, x, mask, *, deterministic: bool):
    """``mask``: ``attention_mask_of``'s booleans, built once for all layers."""
    layer_cls = EncoderLayer
    if self.config.get("remat", False):
      # Recompute each layer's activations in the backward pass: memory for
      # compute, the usual trade for large batches on accelerators.
      layer_cls = nn.remat(EncoderLayer, static_argnums=(3,))
    for i in range(self.config.num_layers):
      x = layer_cls(self.config, name=f"layer_{i}")(x, mask, deterministic)
    return x


class VideoBert(nn.Module):
  """BERT encoder + masked-token head + alignment head (the pretraining model).

  ``config`` is the ``model`` section of ``configs/pretrain.py`` with
  ``num_visual_words`` resolved (the trainer reads it from the codebook); the
  table has ``layout.vocab_size`` rows (``videobert_jax.tokens``).
  """

  config: Any

  def __post_init__(self):
    # Modules are hashed by Flax's lifted transforms (remat); a frozen config is.
    import ml_collections  # pylint: disable=g-import-not-at-top
    if isinstance(self.config, ml_collections.ConfigDict):
      object.__setattr__(self, "config", ml_collections.FrozenConfigDict(self.config))
    super().__post_init__()

  @property
  def layout(self) -> tokens.TokenLayout:
    """The token layout of the embedding table."""
    if self.config.num_visual_words is None:
      raise ValueError("model.num_visual_words is None: resolve it from the codebook "
                       "before building the model")
    return tokens.TokenLayout(text_vocab_size=self.config.text_vocab_size,
                              num_visual_words=self.config.num_visual_words)

  def setup(self):
    cfg = self.config
    vocab_size = self.layout.vocab_size
    if cfg.hidden_size % cfg.num_heads:
      raise ValueError(f"hidden_size {cfg.hidden_size} is not a multiple of "
                       f"num_heads {cfg.num_heads}")
    self.embeddings = Embeddings(cfg, vocab_size=vocab_size)
    self.encoder = Encoder(cfg)
    self.mlm_head = heads.MlmHead(cfg, vocab_size=vocab_size, vocab_ids=self.mlm_vocab_ids)
    self.alignment_head = heads.AlignmentHead(cfg)

  def encode(self, input_ids, token_type_ids, attention_mask, *, deterministic: bool,
             segment_ids=None, positions=None):
    """Returns the last hidden states [B, T, H] (in the compute dtype).

    ``segment_ids`` and ``positions`` [B, T] (packed rows) keep each example's
    attention and positions its own; None is one example per row.
    """
    x = self.embeddings(input_ids, token_type_ids, positions, deterministic=deterministic)
    mask = attention_mask_of(attention_mask, segment_ids)
    return self.encoder(x, mask, deterministic=deterministic)

  @property
  def mlm_vocab_ids(self) -> tuple[int, ...] | None:
    """The token ids the masked-token softmax ranks (None: every row of the table).

    The trainer fills ``model.mlm_vocab_ids`` as ``model.mlm_vocab`` asks
    (``tasks.mlm_vocabulary``); a model built before that ranks every row.
    """
    ids = self.config.get("mlm_vocab_ids")
    if ids is None:
      return None
    ids = tuple(int(i) for i in ids)
    if list(ids) != sorted(set(ids)) or ids[0] < 0 or ids[-1] >= self.layout.vocab_size:
      raise ValueError(f"model.mlm_vocab_ids must be sorted, distinct ids in "
                       f"[0, {self.layout.vocab_size})")
    return ids

  def mlm_logits_at(self, hidden, positions):
    """Masked-token logits [B, P, V] (float32) at ``positions`` [B, P] only.

    Always over the whole table (ids outside ``mlm_vocab_ids`` get ``NOT_RANKED``),
    so evaluation indexes logits by token id whatever the softmax ranked.
    """
    logits = self.mlm_head(hidden, positions, self.embeddings.word.embedding)
    ids = self.mlm_vocab_ids
    if ids is None:
      return logits
    full = jnp.full(logits.shape[:-1] + (self.layout.vocab_size,), NOT_RANKED, logits.dtype)
    return full.at[..., jnp.asarray(ids, jnp.int32)].set(logits)

  def alignment_logits(self, hidden, cls_positions=None):
    """Alignment logits (float32) from ``[CLS]``: [B, 2] at position 0, or
    [B, S, 2] at ``cls_positions`` [B, S] (each packed example's own)."""
    return self.alignment_head(hidden, cls_positions)

  def __call__(self, batch, *, deterministic: bool):
    """Runs the model on a model batch (``videobert_jax.batch``, packed or not)."""
    hidden = self.encode(batch["input_ids"], batch["token_type_ids"],
                         batch["attention_mask"], deterministic=deterministic,
                         segment_ids=batch.get("segment_ids"),
                         positions=batch.get("positions"))
    out = {"alignment_logits": self.alignment_logits(hidden, batch.get("cls_positions")),
           "hidden": hidden}
    ids = self.mlm_vocab_ids
    # Training and eval steps: logits over the ranked ids only, with the targets as
    # indices among them (an id outside them, never one of the run's data, maps to 0).
    out["mlm_logits"] = self.mlm_head(hidden, batch["masked_positions"],
                                      self.embeddings.word.embedding)
    if ids is not None:
      index = np.zeros(self.layout.vocab_size, np.int32)
      index[list(ids)] = np.arange(len(ids), dtype=np.int32)
      out["mlm_targets"] = jnp.asarray(index)[batch["masked_ids"]]
    return out
