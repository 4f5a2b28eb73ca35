"""Text-pretrained BERT checkpoints -> VideoBERT's parameter tree.

VideoBERT starts from BERT. ``load_pretrained`` reads Google's original TF BERT
checkpoint or Hugging Face safetensors (or a tree this package converted before),
checks it against the config, and returns our parameters with the vocabulary
extended for ``[>]`` and the visual words::

  params, report = pretrained.load_pretrained(
      "bert_model.ckpt", config, layout, leaf_centroids=codebook_leaves)

See docs/checkpoints.md.
"""

from __future__ import annotations

import os

from videobert_jax.pretrained import convert as _convert
from videobert_jax.pretrained import params_io
from videobert_jax.pretrained import readers
from videobert_jax.pretrained.readers import CheckpointError
from videobert_jax.pretrained.readers import detect_format
from videobert_jax.pretrained.readers import read_hf_bert
from videobert_jax.pretrained.readers import read_tf_bert

__all__ = ["CheckpointError", "detect_format", "load_pretrained", "read_hf_bert",
           "read_tf_bert"]


def load_pretrained(path: str, config, layout, leaf_centroids=None, seed: int = 0,
                    checkpoint_format: str | None = None) -> tuple[dict, dict]:
  """Loads a pretrained BERT (TF, HF or converted ``.npz``) as VideoBERT parameters.

  Args:
    path: a TF checkpoint prefix (``.../bert_model.ckpt``) or its folder, a
      ``.safetensors`` file (or sharded index, or their folder), or a ``params.npz``
      written by ``python -m videobert_jax.pretrained convert``.
    config: the full ml_collections config; ``config.model`` gives the sizes and
      ``config.init.format`` the format when ``checkpoint_format`` is None.
    layout: the ``tokens.TokenLayout`` of the embedding table.
    leaf_centroids: ``[K, D]`` codebook leaf centroids for the visual rows (None:
      random rows, said in the report). Ignored for a converted ``.npz``.
    seed: seed for everything initialised fresh.
    checkpoint_format: ``"auto"``, ``"tf"``, ``"hf"`` (alias ``"safetensors"``) or
      ``"npz"``.

  Returns:
    ``(params, report)``: the nested dict of float32 numpy arrays in the models'
    parameter tree, and a JSON-able dict saying what was loaded, what was
    initialised fresh (e.g. ``"mlm_head"`` for MiniLM, which has no ``cls/`` heads)
    and how the vocabulary was extended.

  Raises:
    CheckpointError: a missing or unreadable file, or weights whose hidden size,
      layer count, head count or vocabulary do not match (naming the variable).
  """
  if checkpoint_format is None:
    init = config.get("init", None)
    checkpoint_format = (init.get("format", None) if init is not None else None) or "auto"
  path = os.fspath(path)
  fmt = readers.FORMAT_ALIASES.get(checkpoint_format, checkpoint_format)
  fmt = detect_format(path) if fmt == "auto" else fmt
  if fmt not in readers.FORMATS:
    raise CheckpointError(path, f"unknown checkpoint format {fmt!r}; expected 'auto' or "
                          f"one of {', '.join(readers.FORMATS)}")
  if fmt == readers.NPZ_FORMAT:
    sizes = _convert.model_sizes(config)
    params = params_io.load_params(path, _convert.tree_shapes(sizes, layout))
    return params, {"checkpoint": path, "format": fmt, **sizes, "initialised_fresh": [],
                    "notes": ["parameters converted earlier; loaded as they are"]}
  weights = read_tf_bert(path) if fmt == readers.TF_FORMAT else read_hf_bert(path)
  return _convert.convert(weights, config, layout, leaf_centroids=leaf_centroids, seed=seed)

