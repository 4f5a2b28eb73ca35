"""Makes tests/golden/s3d_golden.npz: reference S3D outputs on random weights, with torch.

Run once, in a throwaway environment with torch (never in the project's venv):

  python3 -m venv /tmp/torchvid
  /tmp/torchvid/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy
  /tmp/torchvid/bin/python tests/golden/make_s3d_golden.py \
      [--howto100m-source /path/to/S3D_HowTo100M/s3dg.py]

What it commits, and why so little: S3D has 8.3M parameters (32 MB in float32),
too big for the repository. The weights are instead generated from a seed and
each tensor's name by ``videobert_jax.testing.videos`` (numpy only); the golden
file keeps the names and shapes of the reference state dicts, the seeds and the
reference outputs (about 30 kB). The test regenerates the same weights and
inputs without torch, converts them with ``videobert_jax.video.convert`` and
compares the Flax outputs.

* torchvision ``models.video.s3d`` (Kinetics-400 layout): pooled ``features`` of a
  ``[2, 3, 16, 64, 64]`` input (the network is fully convolutional up to a global
  average pool, so small frames exercise every layer), and the 400 logits of a
  ``[1, 3, 16, 224, 224]`` input (its head pools (2, 7, 7) windows, so it needs
  the full frame size).
* The MIL-NCE HowTo100M S3D-G, when ``--howto100m-source`` points at its
  ``s3dg.py`` (github.com/antoine77340/S3D_HowTo100M; it is imported from there,
  not copied): ``mixed_5c`` and ``video_embedding`` of a ``[2, 3, 16, 64, 64]``
  input in [0, 1]. Its text module is not part of the comparison.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from videobert_jax.testing import videos as synthetic  # pylint: disable=wrong-import-position

WEIGHT_SEED = 20190  # any fixed number; the test reads it from the golden file
INPUT_SEED = 7
SMALL_INPUT = (2, 3, 16, 64, 64)  # [B, C, T, H, W], torch layout
FULL_INPUT = (1, 3, 16, 224, 224)


def _load(model, shapes: dict, strict: bool = True):
  """Loads the synthetic weights for ``shapes`` into a torch model."""
  import torch  # pylint: disable=import-outside-toplevel
  state = {k: torch.from_numpy(v)
           for k, v in synthetic.synthetic_state_dict(shapes, WEIGHT_SEED).items()}
  result = model.load_state_dict(state, strict=strict)
  model.eval()
  return result


def torchvision_golden() -> dict[str, np.ndarray]:
  """Reference outputs of torchvision's S3D on the synthetic weights."""
  import torch  # pylint: disable=import-outside-toplevel
  import torchvision  # pylint: disable=import-outside-toplevel
  model = torchvision.models.video.s3d(num_classes=400)
  shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
  _load(model, shapes)
  small = torch.from_numpy(synthetic.synthetic_input(SMALL_INPUT, INPUT_SEED, -2, 2))
  full = torch.from_numpy(synthetic.synthetic_input(FULL_INPUT, INPUT_SEED + 1, -2, 2))
  with torch.no_grad():
    features = model.features(small).mean(dim=(2, 3, 4))
    full_features = model.features(full).mean(dim=(2, 3, 4))
    logits = model(full)
  return {
      "torchvision_shapes_json": np.array(json.dumps(shapes)),
      "torchvision_features": features.numpy(),
      "torchvision_full_features": full_features.numpy(),
      "torchvision_logits": logits.numpy(),
  }


def howto100m_golden(source: str) -> dict[str, np.ndarray]:
  """Reference outputs of the MIL-NCE S3D-G (its own code) on the synthetic weights."""
  import torch  # pylint: disable=import-outside-toplevel
  spec = importlib.util.spec_from_file_location("s3dg", source)
  s3dg = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(s3dg)
  with tempfile.TemporaryDirectory() as tmp:
    # The text module reads a word list at construction; a two-word one will do.
    words = os.path.join(tmp, "dict.npy")
    np.save(words, np.array(["open", "door"]))
    model = s3dg.S3D(words, 512)
  shapes = {k: list(v.shape) for k, v in model.state_dict().items()
            if not k.startswith("text_module.")}
  result = _load(model, shapes, strict=False)
  leftover = [k for k in result.missing_keys if not k.startswith("text_module.")]
  assert not leftover and not result.unexpected_keys, (leftover, result.unexpected_keys)
  video = torch.from_numpy(synthetic.synthetic_input(SMALL_INPUT, INPUT_SEED + 2))
  with torch.no_grad():
    out = model(video)
  return {
      "howto100m_shapes_json": np.array(json.dumps(shapes)),
      "howto100m_features": out["mixed_5c"].numpy(),
      "howto100m_embedding": out["video_embedding"].numpy(),
  }


def main() -> None:
  """Writes the golden file."""
  import torch  # pylint: disable=import-outside-toplevel
  import torchvision  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--howto100m-source", default=None,
                      help="path of s3dg.py from the S3D_HowTo100M repository")
  parser.add_argument("--out", default=os.path.join(os.path.dirname(
      os.path.abspath(__file__)), "s3d_golden.npz"), help="golden file to write")
  args = parser.parse_args()
  torch.manual_seed(0)
  torch.set_num_threads(max(1, torch.get_num_threads()))
  arrays = torchvision_golden()
  if args.howto100m_source:
    arrays.update(howto100m_golden(args.howto100m_source))
  meta = {"weight_seed": WEIGHT_SEED, "input_seed": INPUT_SEED,
          "small_input": SMALL_INPUT, "full_input": FULL_INPUT,
          "torch": torch.__version__, "torchvision": torchvision.__version__,
          "layout": "inputs are torch [B, C, T, H, W]; the test transposes to NDHWC"}
  arrays["meta_json"] = np.array(json.dumps(meta))
  np.savez_compressed(args.out, **arrays)
  for name, value in arrays.items():
    print(f"{name:28s} {value.shape} {value.dtype}")
  print(f"wrote {args.out} ({os.path.getsize(args.out) / 1024:.1f} kB)")


if __name__ == "__main__":
  main()
