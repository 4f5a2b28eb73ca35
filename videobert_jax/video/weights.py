"""The converted-weights file the extractor loads: one ``.npz``, no torch needed.

Layout: one array per parameter, named by its path (``params/mixed4b/branch1b/
spatial/conv/kernel``), plus ``__meta__``, a JSON string with the format version,
the ``S3DConfig`` (variant, input normalisation) and where the weights came from.
Written once by ``python -m videobert_jax.video convert``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from videobert_jax import fileio

FORMAT = "videobert_jax.s3d/1"
_META_KEY = "__meta__"
_PREFIX = "params/"


RANDOM_INIT_REFUSAL = (
    "no --weights given: a randomly initialised S3D gives features that carry no "
    "visual meaning, and visual words clustered from them would be noise. Convert "
    "a checkpoint once with `python -m videobert_jax.video convert` and pass "
    "--weights FILE, or pass --random-init for smoke tests and benchmarks only.")


class WeightsError(ValueError):
  """A weights file that cannot be used; ``str()`` is one line naming the file."""


def save(path: str | os.PathLike, params: dict, config, source: str) -> None:
  """Writes ``params`` and ``config`` (an ``s3d.S3DConfig``) to ``path`` atomically."""
  from videobert_jax.video import convert  # pylint: disable=g-import-not-at-top
  meta = {"format": FORMAT, "config": config.to_dict(), "source": source}
  arrays = {_PREFIX + name: value.astype(np.float32)
            for name, value in convert.iter_params(params)}
  arrays[_META_KEY] = np.array(json.dumps(meta))
  fileio.save_npz(path, **arrays)


def load(path: str | os.PathLike) -> tuple[dict, Any, dict[str, Any]]:
  """Reads a weights file; returns ``(params, config, meta)``, config an S3DConfig.

  Raises:
    WeightsError: missing file, not an npz, or not written by ``save``.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise WeightsError(f"{path}: weights file not found")
  try:
    with np.load(path, allow_pickle=False) as data:
      if _META_KEY not in data.files:
        raise WeightsError(f"{path}: not an S3D weights file of this package (no "
                           f"{_META_KEY}); convert a checkpoint with `python -m "
                           "videobert_jax.video convert`")
      meta = json.loads(str(data[_META_KEY]))
      arrays = {k[len(_PREFIX):]: data[k] for k in data.files if k.startswith(_PREFIX)}
  except WeightsError:
    raise
  except Exception as e:  # a corrupt zip or array raises several types
    raise WeightsError(f"{path}: cannot read weights ({e})") from None
  if meta.get("format") != FORMAT:
    raise WeightsError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
  from videobert_jax.video import s3d  # pylint: disable=g-import-not-at-top
  params: dict = {}
  for name, value in arrays.items():
    node = params
    *parents, leaf = name.split("/")
    for key in parents:
      node = node.setdefault(key, {})
    node[leaf] = value
  return params, s3d.S3DConfig.from_dict(meta["config"]), meta
