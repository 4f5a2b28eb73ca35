"""Readers of text-pretrained BERT checkpoints into one canonical flat dict.

The canonical form is Google's original TF BERT checkpoint: variable names such as
``bert/encoder/layer_0/attention/self/query/kernel`` and TF layouts (dense kernels
``[in, out]``, ``cls/seq_relationship/output_weights`` ``[2, H]``), values float32
numpy arrays. Both readers return it, so one converter (``convert.py``) serves both
formats:

* ``read_tf_bert``: a TF checkpoint (``bert_model.ckpt`` prefix or its folder), read
  with ``tf.train.load_checkpoint``; optimizer slots are dropped.
* ``read_hf_bert``: Hugging Face safetensors (``model.safetensors``, a sharded
  ``model.safetensors.index.json`` or their folder), names with or without the
  ``bert.`` prefix; torch ``Linear`` weights ``[out, in]`` are transposed.

Each reader also picks up the model's JSON config next to the weights
(``bert_config.json`` or ``config.json``) when there is one, since the head count
cannot be read off the weights.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re

import numpy as np

from videobert_jax.train.checkpointing import CheckpointError  # noqa: F401 (re-exported)

TF_FORMAT = "tf"
HF_FORMAT = "hf"
NPZ_FORMAT = "npz"
FORMATS = (TF_FORMAT, HF_FORMAT, NPZ_FORMAT)
# Other names users (and config.init.format) give the formats.
FORMAT_ALIASES = {"safetensors": HF_FORMAT, "huggingface": HF_FORMAT,
                  "tensorflow": TF_FORMAT}

HF_INDEX_NAME = "model.safetensors.index.json"
HF_WEIGHTS_NAME = "model.safetensors"
TF_DEFAULT_PREFIX = "bert_model.ckpt"
CONFIG_NAMES = ("bert_config.json", "config.json")

# TF variables that are training state, not weights.
_TF_SKIP_SUFFIXES = ("/adam_m", "/adam_v", "/Adam", "/Adam_1")
_TF_SKIP_NAMES = ("global_step", "beta1_power", "beta2_power")


@dataclasses.dataclass
class BertWeights:
  """A checkpoint in canonical form.

  Attributes:
    path: the file or prefix the weights were read from.
    checkpoint_format: ``"tf"`` or ``"hf"``.
    variables: canonical TF name -> float32 array in TF layout.
    ignored: source names that are not BERT weights (optimizer slots, buffers).
    model_config: the JSON config found next to the weights ({} if none).
    model_config_path: where it was found (None if none).
  """

  path: str
  checkpoint_format: str
  variables: dict
  ignored: list = dataclasses.field(default_factory=list)
  model_config: dict = dataclasses.field(default_factory=dict)
  model_config_path: str | None = None


def detect_format(path: str) -> str:
  """Tells a TF checkpoint, HF safetensors and our converted ``.npz`` apart.

  Raises:
    CheckpointError: when ``path`` exists in none of the known forms.
  """
  path = os.fspath(path)
  if path.endswith(".safetensors") or path.endswith(HF_INDEX_NAME):
    return HF_FORMAT
  if path.endswith(".npz"):
    return NPZ_FORMAT
  if _isdir(path):
    if _exists(os.path.join(path, HF_WEIGHTS_NAME)) or _exists(
        os.path.join(path, HF_INDEX_NAME)):
      return HF_FORMAT
    if _tf_prefix_in_dir(path) is not None:
      return TF_FORMAT
    raise CheckpointError(
        path, f"folder holds neither {HF_WEIGHTS_NAME}, {HF_INDEX_NAME} nor a TF "
        f"checkpoint (*.index)")
  # A missing "bert_model.ckpt" is still meant as TF: let read_tf_bert say what is missing.
  if (path.endswith(".index") or _exists(path + ".index")
      or ".ckpt" in os.path.basename(path)):
    return TF_FORMAT
  raise CheckpointError(
      path, "no such checkpoint: expected a .safetensors file, a TF checkpoint "
      "prefix (with PREFIX.index next to it), a folder of either, or a converted .npz")


# ----------------------------------------------------------------------------- TF


def read_tf_bert(path: str) -> BertWeights:
  """Reads Google's original TF BERT checkpoint.

  Args:
    path: the checkpoint prefix (``.../bert_model.ckpt``), the ``.index`` file, or
      the folder holding it (``gs://`` works, through ``tf.io.gfile``).

  Returns:
    The weights under their original names (``bert/...``, ``cls/...``).
  """
  path = os.fspath(path)
  prefix = path[:-len(".index")] if path.endswith(".index") else path
  if _isdir(prefix):
    found = _tf_prefix_in_dir(prefix)
    if found is None:
      raise CheckpointError(path, "folder holds no TF checkpoint (no *.index file)")
    prefix = found
  if not _exists(prefix + ".index"):
    raise CheckpointError(prefix, f"no TF checkpoint here: {prefix}.index does not exist")
  tf = _tensorflow()
  try:
    reader = tf.train.load_checkpoint(prefix)
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointError(prefix, f"cannot read TF checkpoint: {_first_line(e)}") from e
  variables, ignored = {}, []
  for name in sorted(reader.get_variable_to_shape_map()):
    if name.endswith(_TF_SKIP_SUFFIXES) or name in _TF_SKIP_NAMES or not name.startswith(
        ("bert/", "cls/")):
      ignored.append(name)
      continue
    variables[name] = _as_float32(reader.get_tensor(name), prefix, name)
  if not variables:
    raise CheckpointError(prefix, "TF checkpoint holds no bert/... or cls/... variables; "
                          "is it an object-based (TF2 Keras) checkpoint?")
  config, config_path = _read_model_config(os.path.dirname(prefix))
  return BertWeights(prefix, TF_FORMAT, variables, ignored, config, config_path)


def _tf_prefix_in_dir(folder: str) -> str | None:
  """The checkpoint prefix in ``folder``: bert_model.ckpt, else the latest, else the only."""
  if _exists(os.path.join(folder, TF_DEFAULT_PREFIX + ".index")):
    return os.path.join(folder, TF_DEFAULT_PREFIX)
  indexes = sorted(n for n in _listdir(folder) if n.endswith(".index"))
  if _exists(os.path.join(folder, "checkpoint")):
    tf = _tensorflow()
    latest = tf.train.latest_checkpoint(folder)
    if latest:
      return latest
  if len(indexes) == 1:
    return os.path.join(folder, indexes[0][:-len(".index")])
  return None


# ----------------------------------------------------------------------------- HF

# Hugging Face module path (after the optional "bert." prefix) -> canonical prefix.
_HF_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
_HF_LAYER_PARTS = {
    "attention.self.query": "attention/self/query",
    "attention.self.key": "attention/self/key",
    "attention.self.value": "attention/self/value",
    "attention.output.dense": "attention/output/dense",
    "attention.output.LayerNorm": "attention/output/LayerNorm",
    "intermediate.dense": "intermediate/dense",
    "output.dense": "output/dense",
    "output.LayerNorm": "output/LayerNorm",
}
_HF_EMBEDDINGS = {
    "embeddings.word_embeddings.weight": "bert/embeddings/word_embeddings",
    "embeddings.position_embeddings.weight": "bert/embeddings/position_embeddings",
    "embeddings.token_type_embeddings.weight": "bert/embeddings/token_type_embeddings",
}
_HF_MODULES = {
    "embeddings.LayerNorm": "bert/embeddings/LayerNorm",
    "pooler.dense": "bert/pooler/dense",
    "cls.predictions.transform.dense": "cls/predictions/transform/dense",
    "cls.predictions.transform.LayerNorm": "cls/predictions/transform/LayerNorm",
}
_HF_HEAD_VECTORS = {
    "cls.predictions.bias": "cls/predictions/output_bias",
    # torch Linear weight is [out=2, in=H], the same layout as TF's output_weights.
    "cls.seq_relationship.weight": "cls/seq_relationship/output_weights",
    "cls.seq_relationship.bias": "cls/seq_relationship/output_bias",
}
# Duplicates of other weights (the decoder is tied to the word embeddings) or buffers.
_HF_REDUNDANT = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias",
                 "embeddings.position_ids")


def hf_to_canonical_name(name: str) -> tuple[str | None, bool]:
  """Maps one Hugging Face tensor name to ``(canonical name, transpose?)``.

  Returns ``(None, False)`` for names that are not BERT weights.
  """
  short = name[len("bert."):] if name.startswith("bert.") else name
  if short in _HF_EMBEDDINGS:
    return _HF_EMBEDDINGS[short], False
  if short in _HF_HEAD_VECTORS:
    return _HF_HEAD_VECTORS[short], False
  module, _, leaf = short.rpartition(".")
  match = _HF_LAYER.match(module)
  if match:
    layer, part = match.group(1), match.group(2)
    if part not in _HF_LAYER_PARTS:
      return None, False
    target = f"bert/encoder/layer_{layer}/{_HF_LAYER_PARTS[part]}"
  elif module in _HF_MODULES:
    target = _HF_MODULES[module]
  else:
    return None, False
  if target.endswith("LayerNorm"):
    suffix = {"weight": "gamma", "gamma": "gamma", "bias": "beta", "beta": "beta"}.get(leaf)
    return (f"{target}/{suffix}", False) if suffix else (None, False)
  if leaf == "weight":
    return f"{target}/kernel", True
  if leaf == "bias":
    return f"{target}/bias", False
  return None, False


def read_hf_bert(path: str) -> BertWeights:
  """Reads Hugging Face BERT safetensors (no torch needed).

  Args:
    path: ``model.safetensors``, ``model.safetensors.index.json`` (sharded) or the
      folder holding either.

  Returns:
    The weights under Google's original names, dense kernels transposed to
    ``[in, out]``.
  """
  path = os.fspath(path)
  files = _hf_weight_files(path)
  variables, ignored = {}, []
  for file in files:
    for name, array in _read_safetensors(file).items():
      target, transpose = hf_to_canonical_name(name)
      if target is None:
        ignored.append(name)
        continue
      if target in variables:
        raise CheckpointError(file, f"tensor {name!r} maps to {target}, which another "
                              f"tensor already filled (mixed 'bert.' prefixes?)")
      if transpose:
        if array.ndim != 2:
          raise CheckpointError(file, f"tensor {name!r} has shape {array.shape}; a "
                                f"Linear weight must be 2-D")
        array = array.T
      variables[target] = np.ascontiguousarray(_as_float32(array, file, name))
  if not variables:
    raise CheckpointError(path, "safetensors holds no BERT tensors (names like "
                          "'bert.encoder.layer.0.attention.self.query.weight')")
  config, config_path = _read_model_config(os.path.dirname(files[0]))
  return BertWeights(files[0] if len(files) == 1 else path, HF_FORMAT, variables,
                     sorted(ignored), config, config_path)


def _hf_weight_files(path: str) -> list[str]:
  """The safetensors files behind ``path`` (one file, or the shards of an index)."""
  if _isdir(path):
    for name in (HF_WEIGHTS_NAME, HF_INDEX_NAME):
      if _exists(os.path.join(path, name)):
        return _hf_weight_files(os.path.join(path, name))
    raise CheckpointError(path, f"folder holds neither {HF_WEIGHTS_NAME} nor {HF_INDEX_NAME}")
  if not _exists(path):
    raise CheckpointError(path, "no such safetensors file")
  if path.endswith(".json"):
    try:
      with open(path, encoding="utf-8") as f:
        weight_map = json.load(f)["weight_map"]
    except (ValueError, KeyError, TypeError) as e:
      raise CheckpointError(path, f"not a safetensors index (needs 'weight_map'): "
                            f"{_first_line(e)}") from e
    folder = os.path.dirname(path)
    shards = [os.path.join(folder, s) for s in sorted(set(weight_map.values()))]
    for shard in shards:
      if not _exists(shard):
        raise CheckpointError(path, f"shard {shard} named in the index does not exist")
    return shards
  return [path]


def _read_safetensors(path: str) -> dict:
  """All tensors of one safetensors file as numpy (bfloat16 through ml_dtypes)."""
  from safetensors import safe_open  # pylint: disable=g-import-not-at-top
  try:
    with safe_open(path, framework="numpy") as f:
      return {name: f.get_tensor(name) for name in f.keys()}
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointError(path, f"cannot read safetensors: {_first_line(e)}") from e


# ----------------------------------------------------------------------------- shared


def _read_model_config(folder: str) -> tuple[dict, str | None]:
  """The BERT JSON config next to the weights, if any."""
  for name in CONFIG_NAMES:
    candidate = os.path.join(folder, name)
    if _exists(candidate):
      try:
        with _open(candidate) as f:
          config = json.load(f)
      except ValueError as e:
        raise CheckpointError(candidate, f"invalid JSON: {_first_line(e)}") from e
      if not isinstance(config, dict):
        raise CheckpointError(candidate, "model config must be a JSON object")
      return config, candidate
  return {}, None


def _as_float32(array, path: str, name: str) -> np.ndarray:
  array = np.asarray(array)
  if not np.issubdtype(array.dtype, np.floating) and array.dtype.name != "bfloat16":
    raise CheckpointError(path, f"tensor {name!r} has dtype {array.dtype}, expected floats")
  array = array.astype(np.float32)
  if not np.all(np.isfinite(array)):
    raise CheckpointError(path, f"tensor {name!r} contains NaN or infinity")
  return array


def _first_line(error: BaseException) -> str:
  text = str(error).strip() or type(error).__name__
  return text.splitlines()[0]


def _tensorflow():
  """TensorFlow, imported on first use without its start-up lines (quiet.py)."""
  from videobert_jax import quiet  # pylint: disable=g-import-not-at-top
  return quiet.import_tensorflow()


def _is_remote(path: str) -> bool:
  return "://" in path


def _exists(path: str) -> bool:
  if _is_remote(path):
    tf = _tensorflow()
    return tf.io.gfile.exists(path)
  return os.path.exists(path)


def _isdir(path: str) -> bool:
  if _is_remote(path):
    tf = _tensorflow()
    return tf.io.gfile.isdir(path)
  return os.path.isdir(path)


def _listdir(path: str) -> list[str]:
  if _is_remote(path):
    tf = _tensorflow()
    return tf.io.gfile.listdir(path)
  return os.listdir(path)


def _open(path: str):
  if _is_remote(path):
    tf = _tensorflow()
    return tf.io.gfile.GFile(path, "r")
  return open(path, encoding="utf-8")
