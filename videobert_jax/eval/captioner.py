"""A transformer encoder-decoder captioner over a per-segment feature vector (Flax).

The encoder turns the feature vector into ``memory_tokens`` tokens (one linear
projection, reshaped) and runs ``num_layers`` pre-LayerNorm transformer layers
on them; the decoder is a causal transformer with cross-attention to that
memory, over a word vocabulary built from the training captions. Trained with
teacher forcing and Adam (linear decay); decoded greedily or with beam search.
Sizes come from ``configs/captioner.py``.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import re
from typing import Sequence

import numpy as np
from tqdm import tqdm

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
_STEPS_PER_CALL = 100  # optimizer steps per jitted call (one lax.scan)
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def caption_tokens(text: str) -> list[str]:
  """Lower-cased word tokens of a caption (punctuation dropped)."""
  return _TOKEN.findall(text.lower())


@dataclasses.dataclass(frozen=True)
class WordVocabulary:
  """Words of the training captions that occur at least ``min_count`` times."""

  words: tuple[str, ...]  # SPECIALS first

  @classmethod
  def build(cls, captions: Sequence[str], min_count: int) -> "WordVocabulary":
    """The vocabulary of ``captions`` (most frequent first, ties alphabetical)."""
    counts = collections.Counter(w for c in captions for w in caption_tokens(c))
    kept = sorted((w for w, n in counts.items() if n >= min_count),
                  key=lambda w: (-counts[w], w))
    return cls(SPECIALS + tuple(kept))

  @property
  def index(self) -> dict[str, int]:
    """Word -> id."""
    return {w: i for i, w in enumerate(self.words)}

  def encode(self, text: str, max_words: int) -> list[int]:
    """``<s> w1 .. wn </s>`` ids, at most ``max_words`` words."""
    index = self.index
    ids = [index.get(w, UNK) for w in caption_tokens(text)[:max_words]]
    return [BOS, *ids, EOS]

  def decode(self, ids: Sequence[int]) -> str:
    """Words up to the first ``</s>``, specials dropped."""
    out = []
    for i in ids:
      i = int(i)
      if i == EOS:
        break
      if i >= len(SPECIALS):
        out.append(self.words[i])
    return " ".join(out)


def _modules():
  """Flax modules, defined on first use so importing this file needs no jax."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  class Block(nn.Module):
    """Pre-LN transformer layer: self-attention, optional cross-attention, MLP."""

    config: object
    cross: bool  # decoder layers attend to the encoder's memory

    @nn.compact
    def __call__(self, x, memory, self_mask, deterministic):
      cfg = self.config
      drop = lambda h: nn.Dropout(cfg.dropout_rate)(h, deterministic=deterministic)
      attention = lambda: nn.MultiHeadDotProductAttention(
          num_heads=cfg.num_heads, qkv_features=cfg.hidden_size,
          deterministic=deterministic)
      h = nn.LayerNorm()(x)
      x = x + drop(attention()(h, h, mask=self_mask))
      if self.cross:
        h = nn.LayerNorm()(x)
        x = x + drop(attention()(h, memory))
      h = nn.LayerNorm()(x)
      h = nn.Dense(cfg.mlp_dim)(h)
      h = nn.gelu(h)
      return x + drop(nn.Dense(cfg.hidden_size)(drop(h)))

  class Captioner(nn.Module):
    """Feature vector [B, D] + caption prefix [B, L] -> next-word logits [B, L, V]."""

    config: object
    vocab_size: int

    def setup(self):
      cfg = self.config
      self.to_memory = nn.Dense(cfg.memory_tokens * cfg.hidden_size)
      self.memory_position = self.param(
          "memory_position", nn.initializers.normal(0.02),
          (cfg.memory_tokens, cfg.hidden_size))
      self.embed = nn.Embed(self.vocab_size, cfg.hidden_size)
      self.position = nn.Embed(cfg.max_caption_words + 2, cfg.hidden_size)
      self.encoder = [Block(cfg, cross=False) for _ in range(cfg.num_layers)]
      self.decoder = [Block(cfg, cross=True) for _ in range(cfg.num_layers)]
      self.encoder_norm = nn.LayerNorm()
      self.decoder_norm = nn.LayerNorm()
      self.dropout = nn.Dropout(cfg.dropout_rate)
      self.output = nn.Dense(self.vocab_size)

    def encode(self, features, deterministic: bool):
      """Memory tokens [B, M, H] of the feature vectors [B, D]."""
      cfg = self.config
      memory = self.to_memory(features).reshape(
          features.shape[0], cfg.memory_tokens, cfg.hidden_size) + self.memory_position
      memory = self.dropout(memory, deterministic=deterministic)
      for block in self.encoder:
        memory = block(memory, None, None, deterministic)
      return self.encoder_norm(memory)

    def decode(self, memory, prefix, deterministic: bool):
      """Next-word logits [B, L, V] for every prefix position."""
      length = prefix.shape[1]
      x = self.embed(prefix) + self.position(jnp.arange(length))[None]
      x = self.dropout(x, deterministic=deterministic)
      mask = nn.make_causal_mask(prefix) * nn.make_attention_mask(prefix != PAD,
                                                                  prefix != PAD)
      for block in self.decoder:
        x = block(x, memory, mask, deterministic)
      return self.output(self.decoder_norm(x))

    def __call__(self, features, prefix, deterministic: bool):
      return self.decode(self.encode(features, deterministic), prefix, deterministic)

  return Captioner


@dataclasses.dataclass
class TrainedCaptioner:
  """A trained captioner: module, parameters, vocabulary and input normalisation."""

  module: object
  params: object
  vocabulary: WordVocabulary
  mean: np.ndarray  # feature standardisation fitted on the training split
  std: np.ndarray
  config: object
  final_loss: float


def train_captioner(features: np.ndarray, captions: Sequence[str], config,
                    progress: bool = True) -> TrainedCaptioner:
  """Trains on ``features`` [N, D] and their ``captions``; see the module docstring."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  if len(features) != len(captions) or not len(captions):
    raise ValueError(f"need as many captions as feature rows (got {len(captions)} "
                     f"and {len(features)}), at least one")
  vocabulary = WordVocabulary.build(captions, config.min_word_count)
  length = config.max_caption_words + 2
  targets = np.zeros((len(captions), length), np.int32)
  for i, caption in enumerate(captions):
    ids = vocabulary.encode(caption, config.max_caption_words)
    targets[i, :len(ids)] = ids
  mean = features.mean(0)
  std = features.std(0) + 1e-6
  x = ((features - mean) / std).astype(np.float32)
  module = _modules()(config, len(vocabulary.words))
  rng = jax.random.key(config.seed)
  params = module.init(rng, x[:1], targets[:1, :-1], deterministic=True)["params"]
  schedule = optax.linear_schedule(config.learning_rate, 0.0, config.num_steps)
  tx = optax.adam(schedule)
  opt_state = tx.init(params)

  x_dev, targets_dev = jnp.asarray(x), jnp.asarray(targets)
  batch = min(config.batch_size, len(x))

  def step(carry, step_index):
    params, opt_state = carry
    batch_key, dropout_key = jax.random.split(jax.random.fold_in(rng, step_index))
    take = jax.random.choice(batch_key, len(x), (batch,), replace=False)
    xb, yb = x_dev[take], targets_dev[take]

    def loss_fn(p):
      logits = module.apply({"params": p}, xb, yb[:, :-1], deterministic=False,
                            rngs={"dropout": dropout_key})
      labels = yb[:, 1:]
      weights = (labels != PAD).astype(jnp.float32)
      losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
      return (losses * weights).sum() / jnp.maximum(weights.sum(), 1.0)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss

  # Many small steps per call: on a CPU the per-call dispatch of a model this small
  # costs more than its arithmetic, so a chunk of steps runs as one lax.scan.
  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def train_chunk(params, opt_state, step_indices):
    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), step_indices)
    return params, opt_state, losses[-1]

  loss = float("nan")
  bar = tqdm(total=config.num_steps, desc="captioner", unit="step",
             disable=not progress, leave=False)
  done = 0
  while done < config.num_steps:
    size = min(_STEPS_PER_CALL, config.num_steps - done)
    params, opt_state, loss_value = train_chunk(
        params, opt_state, jnp.arange(done, done + size, dtype=jnp.int32))
    done += size
    loss = float(loss_value)
    bar.update(size)
    bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
  bar.close()
  return TrainedCaptioner(module, params, vocabulary, mean, std, config, loss)


def generate(captioner: TrainedCaptioner, features: np.ndarray,
             batch_size: int = 256) -> list[str]:
  """Captions for ``features`` [N, D]: greedy (beam_size 1) or beam search."""
  import jax  # pylint: disable=g-import-not-at-top
  cfg = captioner.config
  x = ((features - captioner.mean) / captioner.std).astype(np.float32)
  module, params = captioner.module, captioner.params
  length = cfg.max_caption_words + 1

  @jax.jit
  def next_log_probs(xb, prefix, position):
    logits = module.apply({"params": params}, xb, prefix, deterministic=True)
    return jax.nn.log_softmax(logits[:, position].astype(np.float32))

  out = []
  for start in range(0, len(x), batch_size):
    xb = x[start:start + batch_size]
    if cfg.beam_size <= 1:
      out.extend(_greedy(next_log_probs, xb, length, captioner.vocabulary))
    else:
      out.extend(_beam(next_log_probs, xb, length, captioner.vocabulary,
                       cfg.beam_size, cfg.length_penalty))
  return out


def _greedy(next_log_probs, xb, length, vocabulary) -> list[str]:
  """Greedy decoding of a batch (fixed-size prefix, one jitted call per step)."""
  prefix = np.zeros((len(xb), length), np.int32)
  prefix[:, 0] = BOS
  done = np.zeros(len(xb), bool)
  for t in range(length - 1):
    word = np.asarray(next_log_probs(xb, prefix, t)).argmax(-1)
    word = np.where(done, PAD, word)
    prefix[:, t + 1] = word
    done |= word == EOS
    if done.all():
      break
  return [vocabulary.decode(row[1:]) for row in prefix]


def _beam(next_log_probs, xb, length, vocabulary, beam: int, alpha: float) -> list[str]:
  """Beam search per batch: keeps ``beam`` prefixes per item, length-normalised."""
  n = len(xb)
  x_rep = np.repeat(xb, beam, axis=0)
  prefix = np.zeros((n * beam, length), np.int32)
  prefix[:, 0] = BOS
  scores = np.full((n, beam), -np.inf)
  scores[:, 0] = 0.0
  finished = [[] for _ in range(n)]  # (normalised score, ids)
  for t in range(length - 1):
    logp = np.array(next_log_probs(x_rep, prefix, t)).reshape(n, beam, -1)
    logp[:, :, PAD] = -np.inf
    total = (scores[:, :, None] + logp).reshape(n, -1)
    best = np.argsort(-total, axis=1)[:, :2 * beam]
    new_prefix = np.zeros_like(prefix).reshape(n, beam, length)
    new_scores = np.full((n, beam), -np.inf)
    old = prefix.reshape(n, beam, length)
    vocab = logp.shape[-1]
    for i in range(n):
      slot = 0
      for flat in best[i]:
        b, w = divmod(int(flat), vocab)
        score = total[i, flat]
        if not np.isfinite(score):
          continue
        if w == EOS or t == length - 2:
          words = list(old[i, b, 1:t + 1]) + ([] if w == EOS else [w])
          finished[i].append((score / ((5 + t + 1) / 6) ** alpha, words))
          continue
        if slot < beam:
          new_prefix[i, slot] = old[i, b]
          new_prefix[i, slot, t + 1] = w
          new_scores[i, slot] = score
          slot += 1
    prefix, scores = new_prefix.reshape(n * beam, length), new_scores
    if all(len(f) >= beam for f in finished):
      break
  out = []
  for i in range(n):
    if not finished[i]:
      finished[i].append((scores[i, 0], list(prefix.reshape(n, beam, length)[i, 0, 1:])))
    out.append(vocabulary.decode(max(finished[i], key=lambda sw: sw[0])[1]))
  return out
