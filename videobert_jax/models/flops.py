"""Training FLOPs per token and the measured matmul peak, for MFU.

FLOPs per token follow issue 5's definition: 6 x non-embedding parameters (forward
+ backward of every dense layer) + 12 x layers x hidden x sequence length
(attention scores and values, forward + backward) + 6 x hidden x vocabulary for
each position whose logits are computed (the tied output projection). Our head
computes logits at P of T positions, so it adds 6*H*V*P/T per token; a
full-sequence head adds 6*H*V.
"""

from __future__ import annotations

import time


def non_embedding_params(num_layers: int, hidden: int, mlp: int) -> int:
  """Parameters of the encoder layers and of the heads' dense layers.

  Excludes the embedding tables and the tied output projection (counted per
  computed logit instead) and the output bias.
  """
  attention = 4 * hidden * hidden + 4 * hidden  # q, k, v, out with biases
  feed_forward = 2 * hidden * mlp + mlp + hidden
  norms = 2 * 2 * hidden
  layer = attention + feed_forward + norms
  mlm_transform = hidden * hidden + hidden + 2 * hidden  # dense + LayerNorm
  alignment = hidden * hidden + hidden + 2 * hidden + 2  # pooler + classifier
  return num_layers * layer + mlm_transform + alignment


def train_flops_per_token(num_layers: int, hidden: int, mlp: int, seq_len: int,
                          vocab_size: int, logit_positions: int) -> float:
  """Training FLOPs per input token (issue 5's definition).

  Args:
    num_layers, hidden, mlp: the encoder's shape.
    seq_len: T.
    vocab_size: V, rows of the output projection.
    logit_positions: positions per sequence whose logits are computed (P for a
      masked-position head, T for a full-sequence head).
  """
  dense = 6 * non_embedding_params(num_layers, hidden, mlp)
  attention = 12 * num_layers * hidden * seq_len
  logits = 6 * hidden * vocab_size * logit_positions / seq_len
  return float(dense + attention + logits)


def measure_matmul_peak(dtype: str = "float32", size: int | None = None,
                        min_seconds: float = 0.3, device=None) -> float:
  """Measured FLOP/s of a square matmul on one device (the practical peak).

  Runs a jitted ``size x size`` matmul chain until ``min_seconds`` have passed
  after a warm-up and returns the best rate seen. Use the compute dtype of the
  model, as that is what its matmuls run in.
  """
  import jax  # pylint: disable=g-import-not-at-top

  device = device or jax.local_devices()[0]
  if size is None:
    # Big enough to saturate an accelerator's matrix units, small enough to
    # take well under a second on a CPU.
    size = 1024 if device.platform == "cpu" else 8192
  repeats = 8
  key_a, key_b = jax.random.split(jax.random.key(0))
  a = jax.device_put(jax.random.normal(key_a, (size, size), dtype), device)
  b = jax.device_put(jax.random.normal(key_b, (size, size), dtype), device)

  @jax.jit
  def chain(x, y):
    # Dependent matmuls so the compiler can neither fuse nor drop them; the
    # rescale keeps values finite in low precision.
    for _ in range(repeats):
      x = (x @ y) * (1.0 / size)
    return x

  chain(a, b).block_until_ready()
  best = 0.0
  spent = 0.0
  while spent < min_seconds:
    start = time.perf_counter()
    chain(a, b).block_until_ready()
    elapsed = time.perf_counter() - start
    spent += elapsed
    best = max(best, 2.0 * size**3 * repeats / elapsed)
  return best
