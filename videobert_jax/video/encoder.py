"""ClipEncoder: S3D features for batches of uint8 clips, sharded over local devices.

The clip batch is split over a 1-D mesh of every local device (axis ``data``)
with ``jax.jit`` and NamedSharding; the parameters are replicated. Clips travel
to the devices as uint8 and are normalised there. Every call uses one batch
shape (a short batch is padded), so the network compiles once.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from videobert_jax.video import s3d
from videobert_jax.video import weights as weights_lib

class ClipEncoder:
  """S3D on every local device; ``encode(clips)`` -> ``[n, 1024]`` float32.

  Args:
    params: S3D parameters (``weights.load`` or ``s3d.init_params``).
    config: the S3D variant the parameters belong to.
    batch_size: clips per device step; rounded up to a multiple of the device count.
    dtype: computation dtype name (``float32``, or ``bfloat16`` on accelerators).
    devices: devices to use (default ``jax.local_devices()``).
  """

  def __init__(self, params: dict, config: s3d.S3DConfig, batch_size: int = 32,
               dtype: str = "float32", devices: list | None = None):
    import jax  # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    from jax.sharding import Mesh, NamedSharding, PartitionSpec  # pylint: disable=g-import-not-at-top
    if batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    self.devices = list(devices) if devices is not None else jax.local_devices()
    n = len(self.devices)
    self.batch_size = -(-batch_size // n) * n
    self.config = config
    self.mesh = Mesh(np.array(self.devices), ("data",))
    self._data = NamedSharding(self.mesh, PartitionSpec("data"))
    replicated = NamedSharding(self.mesh, PartitionSpec())
    self.params = jax.device_put(params, replicated)
    model = s3d.S3D(config, dtype=jnp.dtype(dtype))

    def forward(p, clips):
      return model.apply({"params": p}, s3d.normalize(clips, config, model.dtype))

    self._forward = jax.jit(forward, in_shardings=(replicated, self._data),
                            out_shardings=self._data)

  @property
  def num_devices(self) -> int:
    """Devices the batch is split over."""
    return len(self.devices)

  def submit(self, clips: np.ndarray) -> tuple[Any, int]:
    """Starts the network on up to ``batch_size`` clips; returns a handle for ``fetch``.

    JAX dispatches asynchronously, so the host can prepare the next batch while
    this one runs.
    """
    import jax  # pylint: disable=g-import-not-at-top
    n = clips.shape[0]
    if not 0 < n <= self.batch_size:
      raise ValueError(f"expected 1..{self.batch_size} clips, got {n}")
    if n < self.batch_size:
      pad = np.zeros((self.batch_size - n,) + clips.shape[1:], clips.dtype)
      clips = np.concatenate([clips, pad])
    return self._forward(self.params, jax.device_put(clips, self._data)), n

  def flops_per_batch(self, clip_shape: tuple[int, ...]) -> float | None:
    """XLA's FLOP estimate of one step on clips of ``clip_shape`` (best effort)."""
    import jax  # pylint: disable=g-import-not-at-top
    spec = jax.ShapeDtypeStruct((self.batch_size, *clip_shape), np.uint8,
                                sharding=self._data)
    try:
      cost = self._forward.lower(self.params, spec).cost_analysis()
    except Exception:  # pylint: disable=broad-except
      return None  # not every backend reports costs
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", 0.0)) or None if cost else None

  @staticmethod
  def fetch(handle: tuple[Any, int]) -> np.ndarray:
    """Waits for a ``submit`` and returns its ``[n, 1024]`` float32 features."""
    out, n = handle
    return np.asarray(out, np.float32)[:n]

  def encode(self, clips: np.ndarray) -> np.ndarray:
    """Features of any number of uint8 clips ``[n, T, H, W, 3]`` (in batches)."""
    outs = [self.fetch(self.submit(clips[i:i + self.batch_size]))
            for i in range(0, clips.shape[0], self.batch_size)]
    if not outs:
      return np.zeros((0, s3d.FEATURE_DIM), np.float32)
    return np.concatenate(outs)


def load_encoder(weights_path: str | None, random_init: bool = False,
                 batch_size: int = 32, dtype: str = "float32",
                 seed: int = 0) -> tuple[ClipEncoder, dict]:
  """A ClipEncoder from a converted weights file, or random weights if allowed.

  Returns ``(encoder, info)``, where info says where the weights came from.

  Raises:
    weights_lib.WeightsError: no weights and no ``random_init`` (the message says
      why that is refused), or an unreadable weights file.
  """
  if weights_path:
    params, config, meta = weights_lib.load(weights_path)
    info = {"weights": os.path.abspath(weights_path), "source": meta.get("source"),
            "random_init": False}
  elif random_init:
    config = s3d.TORCHVISION_KINETICS400
    params = s3d.init_params(config, seed=seed)
    info = {"weights": None, "source": f"random init (seed {seed})", "random_init": True}
  else:
    raise weights_lib.WeightsError(weights_lib.RANDOM_INIT_REFUSAL)
  return ClipEncoder(params, config, batch_size=batch_size, dtype=dtype), info


@functools.lru_cache(maxsize=4)
def cached_encoder(weights_path: str | None, random_init: bool = False,
                   batch_size: int = 32, dtype: str = "float32",
                   seed: int = 0) -> ClipEncoder:
  """``load_encoder``, built once per process and arguments.

  Beam runs several DoFn instances in one worker process; they share one encoder
  (its jitted function is thread-safe) instead of each loading and compiling S3D.
  """
  return load_encoder(weights_path, random_init, batch_size, dtype, seed)[0]
