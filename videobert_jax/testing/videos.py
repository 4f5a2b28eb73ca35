"""Deterministic random checkpoints in a source layout, made with numpy alone.

The S3D golden test regenerates, from the committed names and shapes, the exact
weights the golden script (``tests/golden/make_s3d_golden.py``, run with torch)
loaded into the reference networks, so no 32 MB checkpoint is committed and the
test needs no torch. This module imports nothing but numpy for that reason.
"""

from __future__ import annotations

import zlib
from typing import Mapping, Sequence

import numpy as np


def synthetic_state_dict(shapes: Mapping[str, Sequence[int]], seed: int = 0
                         ) -> dict[str, np.ndarray]:
  """Random tensors for ``{name: shape}``; each depends only on ``seed`` and its name.

  Conv weights (5-D) are He-normal, Linear weights LeCun-normal, BatchNorm scales
  and running variances uniform in [0.5, 1.5], shifts, biases and running means
  normal(0, 0.1), ``num_batches_tracked`` zero: activations keep a sane scale
  through the whole network, so relative comparisons are meaningful.
  """
  out = {}
  for name, shape in shapes.items():
    shape = tuple(int(s) for s in shape)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
      out[name] = np.zeros(shape, np.int64)
      continue
    if leaf == "running_var" or (leaf == "weight" and len(shape) == 1):
      value = rng.uniform(0.5, 1.5, shape)
    elif leaf in ("running_mean", "bias"):
      value = rng.normal(0.0, 0.1, shape)
    else:
      fan_in = int(np.prod(shape[1:]))
      gain = 2.0 if len(shape) == 5 else 1.0  # a ReLU follows every conv
      value = rng.normal(0.0, np.sqrt(gain / fan_in), shape)
    out[name] = value.astype(np.float32)
  return out


def synthetic_input(shape: Sequence[int], seed: int, low: float = 0.0,
                    high: float = 1.0) -> np.ndarray:
  """A deterministic float32 input tensor, uniform in ``[low, high)``."""
  return np.random.default_rng(seed).uniform(low, high, tuple(shape)).astype(np.float32)


STRIPES = 8  # bits of the frame index drawn in each synthetic frame


def striped_frame(index: int, width: int, height: int) -> np.ndarray:
  """An RGB frame showing ``index`` in binary as 8 black/white vertical stripes.

  The most significant bit is on the left. Stripes survive lossy codecs and
  resizing, so a test reads back which source frame a decoder picked.
  """
  frame = np.zeros((height, width, 3), np.uint8)
  edges = np.linspace(0, width, STRIPES + 1).astype(int)
  for bit in range(STRIPES):
    if (index >> (STRIPES - 1 - bit)) & 1:
      frame[:, edges[bit]:edges[bit + 1]] = 255
  return frame


def stripe_index(frame: np.ndarray) -> int:
  """Reads back the index drawn by ``striped_frame`` (from the stripes' centres)."""
  width = frame.shape[1]
  edges = np.linspace(0, width, STRIPES + 1)
  index = 0
  for bit in range(STRIPES):
    lo, hi = edges[bit], edges[bit + 1]
    centre = frame[:, int(lo + (hi - lo) / 4):int(hi - (hi - lo) / 4)]
    index = index * 2 + int(centre.mean() > 127)
  return index


def write_striped_video(path: str, fps: int, num_frames: int, width: int = 64,
                        height: int = 48, codec: str = "libx264") -> str:
  """Writes a video of ``num_frames`` striped frames at constant ``fps`` with PyAV.

  The container follows the suffix of ``path`` (.mkv stores times in
  milliseconds, so 30 and 60 fps timestamps are rounded, as in real files).
  """
  import av  # pylint: disable=g-import-not-at-top
  with av.open(path, "w") as container:
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv420p"
    if codec == "libx264":
      stream.options = {"crf": "10", "preset": "ultrafast"}
    for index in range(num_frames):
      frame = av.VideoFrame.from_ndarray(striped_frame(index % 2 ** STRIPES, width,
                                                       height), format="rgb24")
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  return path
