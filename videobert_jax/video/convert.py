"""Converters from the two public S3D checkpoints to this package's parameters.

* torchvision's Kinetics-400 S3D (``torchvision.models.video.s3d``, the state dict
  ``s3d-d76dad2f.pth``): names such as ``features.5.branch1.1.0.0.weight``.
* The HowTo100M MIL-NCE S3D-G (``s3d_howto100m.pth``, Miech et al.): names such
  as ``mixed_5b.conv_b1_b.conv2.weight``; its text module is not converted.

The mapping works on a plain ``{name: numpy array}`` dict, so it is tested without
torch; only reading a ``.pth`` file (``load_torch_state_dict``) needs torch, the
optional extra used once per checkpoint (this module imports flax only inside
the converters, so ``load_torch_state_dict`` also runs where only torch is). BatchNorm is folded into each
convolution (see ``s3d``). Every tensor of the checkpoint must be used, and every
parameter found, else ConversionError lists what is missing or left over.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator, Mapping

import numpy as np

TORCHVISION_BN_EPS = 1e-3  # torchvision's S3D: BatchNorm3d(eps=0.001)
HOWTO100M_BN_EPS = 1e-5  # MIL-NCE: BatchNorm3d's default


class ConversionError(ValueError):
  """A checkpoint that does not match the expected layout; one readable line."""


# torchvision's `features` Sequential: index -> our block name (pools skipped).
_TV_BLOCKS = {0: "conv1a", 2: "conv2b", 3: "conv2c", 5: "mixed3b", 6: "mixed3c",
              8: "mixed4b", 9: "mixed4c", 10: "mixed4d", 11: "mixed4e", 12: "mixed4f",
              14: "mixed5b", 15: "mixed5c"}
# Inside a torchvision SepInceptionBlock3D: our unit -> source prefix.
_TV_BRANCHES = {"branch0": "branch0", "branch1a": "branch1.0", "branch1b": "branch1.1",
                "branch2a": "branch2.0", "branch2b": "branch2.1", "branch3b": "branch3.1"}
# Inside a MIL-NCE InceptionBlock.
_MIL_BRANCHES = {"branch0": "conv_b0", "branch1a": "conv_b1_a", "branch1b": "conv_b1_b",
                 "branch2a": "conv_b2_a", "branch2b": "conv_b2_b", "branch3b": "conv_b3_b"}
_SEPARABLE = ("branch1b", "branch2b")


def _fold(weight: np.ndarray, bn: Mapping[str, np.ndarray], eps: float) -> dict:
  """A torch Conv3d weight ``[O, I, t, h, w]`` + BatchNorm -> flax ``kernel``/``bias``."""
  scale = bn["weight"] / np.sqrt(bn["running_var"] + eps)
  kernel = np.transpose(weight, (2, 3, 4, 1, 0)) * scale  # [t, h, w, I, O]
  bias = bn["bias"] - bn["running_mean"] * scale
  return {"conv": {"kernel": kernel.astype(np.float32), "bias": bias.astype(np.float32)}}


class _Source:
  """A state dict being consumed: each tensor may be taken once."""

  def __init__(self, state: Mapping[str, np.ndarray], ignore: Callable[[str], bool]):
    self.state = {k: np.asarray(v, np.float32) for k, v in state.items()
                  if not k.endswith("num_batches_tracked") and not ignore(k)}
    self.used: set[str] = set()
    self.missing: list[str] = []

  def take(self, name: str) -> np.ndarray | None:
    """The tensor ``name`` (recorded as used), or None (recorded as missing)."""
    if name not in self.state:
      self.missing.append(name)
      return None
    self.used.add(name)
    return self.state[name]

  def conv_bn(self, conv: str, bn: str, eps: float) -> dict | None:
    """A folded conv unit from ``conv.weight`` and ``bn.{weight,bias,running_*}``."""
    weight = self.take(f"{conv}.weight")
    stats = {k: self.take(f"{bn}.{k}")
             for k in ("weight", "bias", "running_mean", "running_var")}
    if weight is None or any(v is None for v in stats.values()):
      return None
    return _fold(weight, stats, eps)

  def dense(self, name: str, conv_kernel: bool = False) -> dict | None:
    """A Linear (``[O, I]``) or 1x1x1 Conv3d weight + bias -> flax Dense."""
    weight, bias = self.take(f"{name}.weight"), self.take(f"{name}.bias")
    if weight is None or bias is None:
      return None
    if conv_kernel:
      weight = weight.reshape(weight.shape[0], weight.shape[1])
    return {"kernel": weight.T.copy(), "bias": bias}

  def finish(self, what: str) -> None:
    """Raises ConversionError on missing or unused tensors."""
    unused = sorted(set(self.state) - self.used)
    problems = []
    if self.missing:
      problems.append(f"{len(self.missing)} missing (first: {', '.join(self.missing[:3])})")
    if unused:
      problems.append(f"{len(unused)} unexpected (first: {', '.join(unused[:3])})")
    if problems:
      raise ConversionError(f"not a {what} state dict: " + "; ".join(problems))


def _strip_prefix(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Drops a ``module.`` prefix (checkpoints saved from DataParallel)."""
  if state and all(k.startswith("module.") for k in state):
    return {k[len("module."):]: v for k, v in state.items()}
  return dict(state)


def from_torchvision(state: Mapping[str, np.ndarray]) -> tuple[dict, "s3d.S3DConfig"]:
  """torchvision S3D state dict -> (params, config); logits kept (``head``)."""
  from videobert_jax.video import s3d  # pylint: disable=g-import-not-at-top
  src = _Source(_strip_prefix(state), ignore=lambda k: False)
  eps = TORCHVISION_BN_EPS
  params: dict = {}

  def sep(prefix):
    return {"spatial": src.conv_bn(f"{prefix}.0.0", f"{prefix}.0.1", eps),
            "temporal": src.conv_bn(f"{prefix}.1.0", f"{prefix}.1.1", eps)}

  for index, name in _TV_BLOCKS.items():
    prefix = f"features.{index}"
    if name in ("conv1a", "conv2c"):
      params[name] = sep(prefix)
    elif name == "conv2b":
      params[name] = src.conv_bn(f"{prefix}.0", f"{prefix}.1", eps)
    else:
      block = {}
      for ours, theirs in _TV_BRANCHES.items():
        p = f"{prefix}.{theirs}"
        block[ours] = sep(p) if ours in _SEPARABLE else src.conv_bn(f"{p}.0", f"{p}.1", eps)
      params[name] = block
  head = src.dense("classifier.1", conv_kernel=True)
  src.finish("torchvision S3D")
  params["head"] = head
  config = s3d.TORCHVISION_KINETICS400
  config = s3d.S3DConfig(**{**config.to_dict(), "num_classes": head["bias"].shape[0]})
  return params, config


def from_howto100m(state: Mapping[str, np.ndarray]) -> tuple[dict, "s3d.S3DConfig"]:
  """MIL-NCE HowTo100M S3D-G state dict -> (params, config); the 512-d ``fc`` kept."""
  from videobert_jax.video import s3d  # pylint: disable=g-import-not-at-top
  src = _Source(_strip_prefix(state), ignore=lambda k: k.startswith("text_module."))
  eps = HOWTO100M_BN_EPS
  params: dict = {}

  def unit(prefix):
    return src.conv_bn(f"{prefix}.conv1", f"{prefix}.bn1", eps)

  def sep(prefix):
    return {"spatial": unit(prefix),
            "temporal": src.conv_bn(f"{prefix}.conv2", f"{prefix}.bn2", eps)}

  params["conv1a"] = unit("conv1")
  params["conv2b"] = unit("conv_2b")
  params["conv2c"] = sep("conv_2c")
  params["gating2c"] = {"fc": src.dense("gating.fc")}
  for name, _ in s3d.MIXED_BLOCKS:
    prefix = f"mixed_{name[len('mixed'):]}"
    block = {}
    for ours, theirs in _MIL_BRANCHES.items():
      p = f"{prefix}.{theirs}"
      block[ours] = sep(p) if ours in _SEPARABLE else unit(p)
    for i in range(4):
      block[f"gating{i}"] = {"fc": src.dense(f"{prefix}.gating_b{i}.fc")}
    params[name] = block
  head = src.dense("fc")
  src.finish("HowTo100M MIL-NCE S3D")
  params["head"] = head
  return params, s3d.HOWTO100M_MILNCE


CONVERTERS = {"torchvision": from_torchvision, "howto100m": from_howto100m}


def load_torch_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads a ``.pth`` state dict with torch (the optional extra) as numpy arrays."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ConversionError("reading a .pth checkpoint needs torch (pip install torch, "
                          "CPU build is enough; only the conversion needs it)") from None
  try:
    state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
  except Exception as e:  # torch raises many types for a bad file
    first = " ".join(str(e).split())[:200]  # torch's messages span many lines
    raise ConversionError(f"{path}: cannot read as a torch checkpoint ({first})") from None
  if isinstance(state, dict) and "state_dict" in state:
    state = state["state_dict"]
  if not isinstance(state, dict):
    raise ConversionError(f"{path}: expected a state dict, got {type(state).__name__}")
  return {k: v.detach().float().numpy() if v.is_floating_point() else v.numpy()
          for k, v in state.items()}


def iter_params(params: dict, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
  """Flattens a nested params dict to ``("a/b/kernel", array)`` pairs."""
  for key, value in params.items():
    path = f"{prefix}/{key}" if prefix else key
    if isinstance(value, Mapping):
      yield from iter_params(value, path)
    else:
      yield path, np.asarray(value)
