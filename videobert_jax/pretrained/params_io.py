"""Saves and loads a converted parameter tree as one ``.npz`` (flat ``a/b/c`` keys).

``python -m videobert_jax.pretrained convert`` writes it once (with the codebook's
centroids already in the embedding table); training then starts from it with
``--config.init.checkpoint=DIR/params.npz`` without re-reading TF or torch formats.
"""

from __future__ import annotations

import os

import numpy as np

from videobert_jax import fileio
from videobert_jax.pretrained.readers import CheckpointError

SEPARATOR = "/"


def flatten(tree: dict, prefix: str = "") -> dict:
  """``{"a": {"b": x}}`` -> ``{"a/b": x}``."""
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{SEPARATOR}{key}" if prefix else str(key)
    if isinstance(value, dict):
      flat.update(flatten(value, name))
    else:
      flat[name] = value
  return flat


def unflatten(flat: dict) -> dict:
  """``{"a/b": x}`` -> ``{"a": {"b": x}}``."""
  tree = {}
  for name, value in flat.items():
    node = tree
    *parents, leaf = name.split(SEPARATOR)
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = value
  return tree


def save_params(path: str, params: dict) -> None:
  """Writes ``params`` (nested dict of arrays) to ``path`` atomically."""
  fileio.save_npz(path, **{k: np.asarray(v) for k, v in flatten(params).items()})


def load_params(path: str, expected_shapes: dict | None = None) -> dict:
  """Reads a tree written by ``save_params``; checks it against ``expected_shapes``.

  Raises:
    CheckpointError: missing file, or a parameter missing, extra or of the wrong
      shape (named, with both shapes).
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise CheckpointError(path, "no such converted parameter file")
  try:
    with np.load(path, allow_pickle=False) as data:
      flat = {name: data[name] for name in data.files}
  except (OSError, ValueError) as e:
    raise CheckpointError(path, f"cannot read .npz: {e}") from e
  if expected_shapes is not None:
    want = flatten(expected_shapes)
    for name, shape in want.items():
      if name not in flat:
        raise CheckpointError(path, f"missing parameter {name} (expected shape {shape})")
      if tuple(flat[name].shape) != tuple(shape):
        raise CheckpointError(path, f"shape mismatch: {name} has shape "
                              f"{tuple(flat[name].shape)} but the config needs {tuple(shape)}")
    extra = sorted(set(flat) - set(want))
    if extra:
      raise CheckpointError(path, f"unexpected parameter {extra[0]} (and {len(extra) - 1} "
                            f"more): converted for another config?")
  return unflatten(flat)
