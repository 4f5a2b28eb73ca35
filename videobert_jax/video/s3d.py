"""S3D and S3D-G (Xie et al., 2018) in Flax: the clip encoder of VideoBERT.

An Inception backbone whose 3-D convolutions are separable (a ``1 x k x k`` spatial
convolution, then a ``k x 1 x 1`` temporal one, each followed by BatchNorm and
ReLU). S3D-G adds feature gating: each Inception branch (and the output of
``conv2c``) is multiplied by ``sigmoid(W mean(x) + b)``, one weight per channel.

The layout follows torchvision's ``models.video.s3d`` (the block sizes, the order
of layers); the names are readable (``conv1a``, ``mixed4b/branch1b``) and the
converters in ``convert.py`` map both public checkpoints onto them:

* ``TORCHVISION_KINETICS400``: torchvision's Kinetics-400 S3D (no gating,
  PyTorch-style max pooling, logits = 1x1x1 conv after a (2, 7, 7) average pool).
* ``HOWTO100M_MILNCE``: the MIL-NCE S3D-G trained on HowTo100M (gating, a
  "space to depth" stem, TensorFlow "SAME" max pooling, a linear 512-d video
  embedding on the pooled feature).

Tensors are NDHWC: clips ``[batch, frames, height, width, 3]``. BatchNorm is used
in inference mode only and is folded into each convolution at conversion
(``kernel * gamma / sqrt(var + eps)``, ``beta - mean * gamma / sqrt(var + eps)``),
so every convolution here has a bias and there is no batch statistic.

The network is fully convolutional up to a global average pool, so any clip size
works (the pretrained weights expect 224 x 224); tests use small frames. The
feature is the 1024-d global average of ``mixed5c``, as in the paper.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

FEATURE_DIM = 1024

# Inception block widths: (b0, b1 mid, b1 out, b2 mid, b2 out, b3), as in the paper.
MIXED_BLOCKS = (
    ("mixed3b", (64, 96, 128, 16, 32, 32)),
    ("mixed3c", (128, 128, 192, 32, 96, 64)),
    ("mixed4b", (192, 96, 208, 16, 48, 64)),
    ("mixed4c", (160, 112, 224, 24, 64, 64)),
    ("mixed4d", (128, 128, 256, 24, 64, 64)),
    ("mixed4e", (112, 144, 288, 32, 64, 64)),
    ("mixed4f", (256, 160, 320, 32, 128, 128)),
    ("mixed5b", (256, 160, 320, 32, 128, 128)),
    ("mixed5c", (384, 192, 384, 48, 128, 128)),
)

# ImageNet-style statistics torchvision's video models are trained with.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


@dataclasses.dataclass(frozen=True)
class S3DConfig:
  """Which S3D variant; stored with the converted weights."""

  gating: bool = False  # S3D-G feature gating on conv2c and every Inception branch
  space_to_depth: bool = False  # MIL-NCE's stem: 2x2x2 blocks to channels, one conv
  pool_style: str = "torch"  # "torch" (-inf padding, floor) or "tf_same" (MIL-NCE)
  head: str = "conv_avgpool"  # "conv_avgpool" (torchvision), "linear" (MIL-NCE), "none"
  num_classes: int = 400  # logits (torchvision) or embedding size (MIL-NCE: 512)
  input_mean: tuple[float, ...] = KINETICS_MEAN  # on [0, 1] RGB
  input_std: tuple[float, ...] = KINETICS_STD

  def __post_init__(self):
    if self.pool_style not in ("torch", "tf_same"):
      raise ValueError(f"pool_style must be 'torch' or 'tf_same', got {self.pool_style!r}")
    if self.head not in ("conv_avgpool", "linear", "none"):
      raise ValueError(f"head must be 'conv_avgpool', 'linear' or 'none', got {self.head!r}")

  def to_dict(self) -> dict[str, Any]:
    """JSON-serialisable form."""
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "S3DConfig":
    """Inverse of ``to_dict`` (lists become tuples)."""
    d = dict(d)
    for key in ("input_mean", "input_std"):
      if key in d:
        d[key] = tuple(float(v) for v in d[key])
    return cls(**d)


TORCHVISION_KINETICS400 = S3DConfig()
# MIL-NCE expects RGB in [0, 1] without mean/std normalisation (its README).
HOWTO100M_MILNCE = S3DConfig(gating=True, space_to_depth=True, pool_style="tf_same",
                             head="linear", num_classes=512, input_mean=(0.0, 0.0, 0.0),
                             input_std=(1.0, 1.0, 1.0))


def normalize(clips: jax.Array, config: S3DConfig, dtype=jnp.float32) -> jax.Array:
  """uint8 RGB clips -> the network's input: ``(x / 255 - mean) / std``."""
  x = clips.astype(jnp.float32) / 255.0
  mean = jnp.asarray(config.input_mean, jnp.float32)
  std = jnp.asarray(config.input_std, jnp.float32)
  return ((x - mean) / std).astype(dtype)


def max_pool(x: jax.Array, window: Sequence[int], strides: Sequence[int],
             style: str, padding: Sequence[int] = (0, 0, 0)) -> jax.Array:
  """3-D max pooling over NDHWC, bit-compatible with the two reference pools.

  ``style="torch"``: ``nn.MaxPool3d(window, strides, padding)`` (implicit -inf
  padding of ``padding`` on both sides, floor mode). ``style="tf_same"``: MIL-NCE's
  ``MaxPool3dTFPadding``: zero padding of ``window - stride`` split low-first, then
  ``MaxPool3d(ceil_mode=True)``. Zero and -inf padding differ only on negative
  inputs; every pool here follows a ReLU or a gate, but the rule is kept exact.
  """
  pads_lo, pads_hi, extra = [], [], []
  for size, k, s, p in zip(x.shape[1:4], window, strides, padding):
    if style == "torch":
      lo = hi = p
      out = (size + 2 * p - k) // s + 1
    else:
      along = max(k - s, 0)
      lo, hi = along // 2, along - along // 2
      padded = size + lo + hi
      out = -(-(padded - k) // s) + 1  # ceil mode
      if (out - 1) * s >= padded:  # torch drops a window starting past the input
        out -= 1
    pads_lo.append(lo)
    pads_hi.append(hi)
    # Ceil mode: windows hanging off the end see only real (or padded) values.
    extra.append(max(0, (out - 1) * s + k - (size + lo + hi)))
  if style == "tf_same":
    x = jnp.pad(x, [(0, 0)] + list(zip(pads_lo, pads_hi)) + [(0, 0)])
    pads_lo, pads_hi = [0, 0, 0], [0, 0, 0]
  pad_cfg = [(0, 0)] + [(lo, hi + e) for lo, hi, e in zip(pads_lo, pads_hi, extra)]
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, *window, 1),
                               (1, *strides, 1), pad_cfg + [(0, 0)])


class ConvUnit(nn.Module):
  """Conv3d + (folded) BatchNorm + ReLU."""

  features: int
  kernel: tuple[int, int, int] = (1, 1, 1)
  strides: tuple[int, int, int] = (1, 1, 1)
  padding: tuple[int, int, int] = (0, 0, 0)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.features, self.kernel, self.strides,
                padding=[(p, p) for p in self.padding], dtype=self.dtype,
                kernel_init=nn.initializers.he_normal(), name="conv")(x)
    return nn.relu(x)


class SepConv(nn.Module):
  """Separable 3-D convolution: ``1 x k x k`` spatial, then ``k x 1 x 1`` temporal."""

  features: int
  kernel: int
  stride: int = 1
  padding: int = 0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    k, s, p = self.kernel, self.stride, self.padding
    x = ConvUnit(self.features, (1, k, k), (1, s, s), (0, p, p), self.dtype,
                 name="spatial")(x)
    return ConvUnit(self.features, (k, 1, 1), (s, 1, 1), (p, 0, 0), self.dtype,
                    name="temporal")(x)


class SelfGating(nn.Module):
  """S3D-G feature gating: ``x * sigmoid(Dense(mean over time and space of x))``."""

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    pooled = jnp.mean(x.astype(jnp.float32), axis=(1, 2, 3))
    gate = nn.sigmoid(nn.Dense(x.shape[-1], dtype=jnp.float32, name="fc")(pooled))
    return x * gate[:, None, None, None, :].astype(x.dtype)


class InceptionBlock(nn.Module):
  """Four branches (1x1; 1x1 then separable 3x3x3, twice; max pool then 1x1)."""

  widths: tuple[int, int, int, int, int, int]
  gating: bool = False
  pool_style: str = "torch"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    b0_out, b1_mid, b1_out, b2_mid, b2_out, b3_out = self.widths
    dt = self.dtype
    b0 = ConvUnit(b0_out, dtype=dt, name="branch0")(x)
    b1 = ConvUnit(b1_mid, dtype=dt, name="branch1a")(x)
    b1 = SepConv(b1_out, 3, 1, 1, dt, name="branch1b")(b1)
    b2 = ConvUnit(b2_mid, dtype=dt, name="branch2a")(x)
    b2 = SepConv(b2_out, 3, 1, 1, dt, name="branch2b")(b2)
    # With stride 1 both pool styles pad one on each side.
    b3 = max_pool(x, (3, 3, 3), (1, 1, 1), "torch", (1, 1, 1))
    b3 = ConvUnit(b3_out, dtype=dt, name="branch3b")(b3)
    branches = [b0, b1, b2, b3]
    if self.gating:
      branches = [SelfGating(dt, name=f"gating{i}")(b) for i, b in enumerate(branches)]
    return jnp.concatenate(branches, axis=-1)


def space_to_depth(x: jax.Array) -> jax.Array:
  """``[B, T, H, W, C] -> [B, T/2, H/2, W/2, 8C]``, channels ordered (dt, dh, dw, c)."""
  b, t, h, w, c = x.shape
  if t % 2 or h % 2 or w % 2:
    raise ValueError(f"space_to_depth needs even frames, height and width, got "
                     f"{(t, h, w)}")
  x = x.reshape(b, t // 2, 2, h // 2, 2, w // 2, 2, c)
  x = x.transpose(0, 1, 3, 5, 2, 4, 6, 7)
  return x.reshape(b, t // 2, h // 2, w // 2, 8 * c)


class S3D(nn.Module):
  """S3D / S3D-G; ``__call__`` maps normalised clips to 1024-d features.

  Attributes:
    config: the variant (``TORCHVISION_KINETICS400``, ``HOWTO100M_MILNCE``, ...).
    dtype: computation dtype (bfloat16 on accelerators is faster; float32 exact).
  """

  config: S3DConfig = TORCHVISION_KINETICS400
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, return_logits: bool = False):
    """Features ``[B, 1024]`` of clips ``[B, T, H, W, 3]`` (already normalised).

    With ``return_logits`` returns ``(features, logits)``: torchvision's class
    logits (its (2, 7, 7) average pool, clipped to the map when the input is
    smaller than 224 x 224) or MIL-NCE's 512-d video embedding.
    """
    cfg, dt = self.config, self.dtype
    style = cfg.pool_style
    x = x.astype(dt)
    if cfg.space_to_depth:
      x = space_to_depth(x)
      x = ConvUnit(64, (2, 4, 4), (1, 1, 1), (1, 2, 2), dt, name="conv1a")(x)
      x = x[:, 1:, 1:, 1:, :]  # with the padding above: TensorFlow's "SAME"
    else:
      x = SepConv(64, 7, 2, 3, dt, name="conv1a")(x)
    x = max_pool(x, (1, 3, 3), (1, 2, 2), style, (0, 1, 1))
    x = ConvUnit(64, dtype=dt, name="conv2b")(x)
    x = SepConv(192, 3, 1, 1, dt, name="conv2c")(x)
    if cfg.gating:
      x = SelfGating(dt, name="gating2c")(x)
    x = max_pool(x, (1, 3, 3), (1, 2, 2), style, (0, 1, 1))
    for name, widths in MIXED_BLOCKS:
      if name == "mixed4b":
        x = max_pool(x, (3, 3, 3), (2, 2, 2), style, (1, 1, 1))
      elif name == "mixed5b":
        x = max_pool(x, (2, 2, 2), (2, 2, 2), style, (0, 0, 0))
      x = InceptionBlock(widths, cfg.gating, style, dt, name=name)(x)
    x = x.astype(jnp.float32)
    features = jnp.mean(x, axis=(1, 2, 3))
    if not return_logits:
      return features
    if cfg.head == "none":
      raise ValueError("this S3D has no head (config.head='none')")
    if cfg.head == "linear":
      return features, nn.Dense(cfg.num_classes, name="head")(features)
    window = tuple(min(w, s) for w, s in zip((2, 7, 7), x.shape[1:4]))
    pooled = nn.avg_pool(x, window, strides=(1, 1, 1), padding="VALID")
    logits = nn.Dense(cfg.num_classes, name="head")(pooled)
    return features, jnp.mean(logits, axis=(1, 2, 3))


def init_params(config: S3DConfig = TORCHVISION_KINETICS400, seed: int = 0) -> dict:
  """Random parameters, for smoke tests and benchmarks only.

  Shapes come from ``jax.eval_shape`` (nothing is compiled, which would cost a
  full forward compilation) and values from numpy: convolution kernels He-normal
  (a ReLU follows each), Dense kernels LeCun-normal, biases zero.
  """
  model = S3D(config)
  dummy = jax.ShapeDtypeStruct((1, 16, 32, 32, 3), jnp.float32)
  with_head = config.head != "none"
  shapes = jax.eval_shape(
      lambda x: model.init(jax.random.PRNGKey(0), x, return_logits=with_head), dummy)
  rng = np.random.default_rng(seed)

  def sample(path, leaf):
    names = [getattr(k, "key", str(k)) for k in path]
    if names[-1] == "bias":
      return np.zeros(leaf.shape, np.float32)
    fan_in = int(np.prod(leaf.shape[:-1]))
    gain = 2.0 if names[-2] == "conv" else 1.0
    return rng.normal(0.0, np.sqrt(gain / fan_in), leaf.shape).astype(np.float32)

  return jax.tree_util.tree_map_with_path(sample, shapes["params"])
