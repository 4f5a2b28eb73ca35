"""Converts a canonical BERT checkpoint into VideoBERT's parameter tree.

The tree is the one in the models' contract (``embeddings``, ``encoder/layer_N``,
``mlm_head``, ``alignment_head``): attention kernels become ``[H, N, Dh]`` (query,
key, value) and ``[N, Dh, H]`` (out); the word-embedding table grows from BERT's
30,522 WordPieces to the ``TokenLayout``: ``[>]`` starts as BERT's ``[SEP]`` row,
visual words start from the codebook's leaf centroids (``models.visual_init``),
padding rows are zero. Heads the checkpoint lacks (MiniLM has no ``cls/...``) are
initialised as BERT initialises them, and the report says so.

BERT's next-sentence classifier has column 0 = "IsNext"; ours has column 1 =
"aligned" (label 1), so the two columns are swapped.
"""

from __future__ import annotations

import re

import numpy as np

from videobert_jax.pretrained import readers
from videobert_jax.pretrained.readers import CheckpointError

INIT_STDDEV = 0.02  # BERT's initializer_range
_LAYER_NAME = re.compile(r"^bert/encoder/layer_(\d+)/")

# Optional groups of canonical variables: all present or all absent.
POOLER = ("bert/pooler/dense/kernel", "bert/pooler/dense/bias")
MLM_HEAD = ("cls/predictions/transform/dense/kernel", "cls/predictions/transform/dense/bias",
            "cls/predictions/transform/LayerNorm/gamma",
            "cls/predictions/transform/LayerNorm/beta", "cls/predictions/output_bias")
NSP_HEAD = ("cls/seq_relationship/output_weights", "cls/seq_relationship/output_bias")


def model_sizes(config) -> dict:
  """The sizes a checkpoint must match, from ``config.model``."""
  model = config.model
  sizes = {"num_layers": int(model.num_layers), "hidden_size": int(model.hidden_size),
           "num_heads": int(model.num_heads), "mlp_dim": int(model.mlp_dim),
           "max_len": int(model.max_len)}
  if sizes["hidden_size"] % sizes["num_heads"]:
    raise ValueError(f"config.model.hidden_size={sizes['hidden_size']} is not divisible by "
                     f"config.model.num_heads={sizes['num_heads']}")
  return sizes


def expected_shapes(sizes: dict, text_vocab_size: int) -> dict:
  """Canonical name -> TF-layout shape for a BERT of ``sizes`` (position rows excluded)."""
  h, f = sizes["hidden_size"], sizes["mlp_dim"]
  shapes = {
      "bert/embeddings/word_embeddings": (text_vocab_size, h),
      "bert/embeddings/token_type_embeddings": (2, h),
      "bert/embeddings/LayerNorm/gamma": (h,),
      "bert/embeddings/LayerNorm/beta": (h,),
      "bert/pooler/dense/kernel": (h, h),
      "bert/pooler/dense/bias": (h,),
      "cls/predictions/transform/dense/kernel": (h, h),
      "cls/predictions/transform/dense/bias": (h,),
      "cls/predictions/transform/LayerNorm/gamma": (h,),
      "cls/predictions/transform/LayerNorm/beta": (h,),
      "cls/predictions/output_bias": (text_vocab_size,),
      "cls/seq_relationship/output_weights": (2, h),
      "cls/seq_relationship/output_bias": (2,),
  }
  for i in range(sizes["num_layers"]):
    p = f"bert/encoder/layer_{i}/"
    for part in ("attention/self/query", "attention/self/key", "attention/self/value",
                 "attention/output/dense"):
      shapes[p + part + "/kernel"] = (h, h)
      shapes[p + part + "/bias"] = (h,)
    shapes[p + "intermediate/dense/kernel"] = (h, f)
    shapes[p + "intermediate/dense/bias"] = (f,)
    shapes[p + "output/dense/kernel"] = (f, h)
    shapes[p + "output/dense/bias"] = (h,)
    for norm in ("attention/output/LayerNorm", "output/LayerNorm"):
      shapes[p + norm + "/gamma"] = (h,)
      shapes[p + norm + "/beta"] = (h,)
  return shapes


def validate(weights: readers.BertWeights, config, layout) -> dict:
  """Checks the checkpoint against ``config.model`` and ``layout``; returns the sizes.

  Raises:
    CheckpointError: naming the checkpoint, the variable and both shapes (or the
      config field and both values) for the first mismatch.
  """
  sizes = model_sizes(config)
  _check_layout_matches_config(config, layout)
  path, v = weights.path, weights.variables
  word = "bert/embeddings/word_embeddings"
  if word not in v:
    raise CheckpointError(path, f"missing {word}")
  rows, hidden = v[word].shape
  if hidden != sizes["hidden_size"]:
    raise CheckpointError(
        path, f"hidden size mismatch: {word} has shape {v[word].shape} but "
        f"config.model.hidden_size={sizes['hidden_size']} needs "
        f"{(rows, sizes['hidden_size'])}")
  if rows != layout.text_vocab_size:
    raise CheckpointError(
        path, f"vocabulary mismatch: {word} has {rows} rows (shape {v[word].shape}) but "
        f"the token layout expects the {layout.text_vocab_size:,}-entry BERT uncased "
        f"WordPiece vocabulary, shape {(layout.text_vocab_size, hidden)}")
  layers = sorted({int(m.group(1)) for m in map(_LAYER_NAME.match, v) if m})
  if layers != list(range(sizes["num_layers"])):
    raise CheckpointError(
        path, f"layer count mismatch: checkpoint has {len(layers)} encoder layers "
        f"(bert/encoder/layer_{layers[0] if layers else '?'}.."
        f"layer_{layers[-1] if layers else '?'}) but config.model.num_layers="
        f"{sizes['num_layers']}")
  _check_model_config(weights, sizes)
  shapes = expected_shapes(sizes, layout.text_vocab_size)
  optional = set(POOLER + MLM_HEAD + NSP_HEAD)
  for name, shape in shapes.items():
    if name not in v:
      if name in optional:
        continue
      raise CheckpointError(path, f"missing variable {name} (expected shape {shape})")
    if tuple(v[name].shape) != shape:
      raise CheckpointError(
          path, f"shape mismatch: {name} has shape {tuple(v[name].shape)} but the config "
          f"(hidden {sizes['hidden_size']}, mlp {sizes['mlp_dim']}) needs {shape}")
  for group in (POOLER, MLM_HEAD, NSP_HEAD):
    present = [n for n in group if n in v]
    if present and len(present) != len(group):
      missing = sorted(set(group) - set(present))
      raise CheckpointError(path, f"incomplete head: has {present[0]} but not {missing[0]}")
  pos = "bert/embeddings/position_embeddings"
  if pos not in v:
    raise CheckpointError(path, f"missing variable {pos}")
  if v[pos].ndim != 2 or v[pos].shape[1] != sizes["hidden_size"] or (
      v[pos].shape[0] < sizes["max_len"]):
    raise CheckpointError(
        path, f"shape mismatch: {pos} has shape {tuple(v[pos].shape)} but "
        f"config.model.max_len={sizes['max_len']} needs at least "
        f"{(sizes['max_len'], sizes['hidden_size'])}")
  return sizes


def _check_layout_matches_config(config, layout) -> None:
  model = config.model
  text = model.get("text_vocab_size", None)
  if text is not None and int(text) != layout.text_vocab_size:
    raise ValueError(f"config.model.text_vocab_size={text} but the token layout has "
                     f"text_vocab_size={layout.text_vocab_size}")
  visual = model.get("num_visual_words", None)
  if visual is not None and int(visual) != layout.num_visual_words:
    raise ValueError(f"config.model.num_visual_words={visual} but the token layout has "
                     f"num_visual_words={layout.num_visual_words}")


def _check_model_config(weights: readers.BertWeights, sizes: dict) -> None:
  """Compares the JSON config next to the weights (the only source of the head count)."""
  config, where = weights.model_config, weights.model_config_path
  pairs = (("num_attention_heads", "num_heads"), ("num_hidden_layers", "num_layers"),
           ("hidden_size", "hidden_size"), ("intermediate_size", "mlp_dim"))
  for theirs, ours in pairs:
    if theirs in config and int(config[theirs]) != sizes[ours]:
      raise CheckpointError(where, f"{theirs}={config[theirs]} but config.model.{ours}="
                            f"{sizes[ours]}")


def convert(weights: readers.BertWeights, config, layout, leaf_centroids=None,
            seed: int = 0) -> tuple[dict, dict]:
  """Builds our parameter tree from canonical BERT weights.

  Args:
    weights: from ``readers.read_tf_bert`` / ``read_hf_bert``.
    config: the full config (``config.model.*`` is read).
    layout: the ``tokens.TokenLayout`` of the embedding table.
    leaf_centroids: ``[K, D]`` codebook leaf centroids for the visual rows, or None
      to initialise them randomly (said in the report).
    seed: for everything initialised fresh (heads, visual rows, PCA).

  Returns:
    ``(params, report)``: the nested dict of float32 numpy arrays and a JSON-able
    description of what was loaded, what was initialised fresh and why.
  """
  sizes = validate(weights, config, layout)
  v = weights.variables
  h, n = sizes["hidden_size"], sizes["num_heads"]
  rng = np.random.default_rng(seed)
  report = {
      "checkpoint": weights.path, "format": weights.checkpoint_format,
      "model_config": weights.model_config_path, **sizes,
      "loaded_variables": len(v), "ignored": list(weights.ignored),
      "initialised_fresh": [], "notes": _numerics_notes(weights),
  }
  if weights.model_config_path is None:
    report["notes"].append("no bert_config.json/config.json next to the weights: the head "
                           "count could not be checked against the checkpoint")

  word, vocab_report = _extend_vocabulary(v["bert/embeddings/word_embeddings"], layout,
                                          leaf_centroids, seed, rng)
  report["vocabulary"] = vocab_report
  positions = v["bert/embeddings/position_embeddings"]
  report["position_rows"] = {"checkpoint": int(positions.shape[0]),
                             "kept": sizes["max_len"]}
  params = {"embeddings": {
      "word": {"embedding": word},
      "position": {"embedding": positions[:sizes["max_len"]].copy()},
      "token_type": {"embedding": v["bert/embeddings/token_type_embeddings"]},
      "layer_norm": _layer_norm(v, "bert/embeddings/LayerNorm"),
  }}

  params["encoder"] = {f"layer_{i}": _encoder_layer(v, i, h, n)
                       for i in range(sizes["num_layers"])}
  # The fresh heads draw from ``rng`` in this order (mlm, pooler, classifier), after
  # the visual rows: keep it so a seed gives the same parameters.
  params["mlm_head"] = _mlm_head(v, layout, rng, h, report)
  params["alignment_head"] = _alignment_head(v, rng, h, report)
  return params, report


def _encoder_layer(v: dict, i: int, h: int, n: int) -> dict:
  """Transformer layer ``i``, attention kernels split into heads."""
  dh = h // n
  p = f"bert/encoder/layer_{i}/"
  attention = {name: {"kernel": v[p + f"attention/self/{name}/kernel"].reshape(h, n, dh),
                      "bias": v[p + f"attention/self/{name}/bias"].reshape(n, dh)}
               for name in ("query", "key", "value")}
  attention["out"] = {"kernel": v[p + "attention/output/dense/kernel"].reshape(n, dh, h),
                      "bias": v[p + "attention/output/dense/bias"]}
  return {
      "attention": attention,
      "attention_layer_norm": _layer_norm(v, p + "attention/output/LayerNorm"),
      "mlp": {"wi": _dense(v, p + "intermediate/dense"),
              "wo": _dense(v, p + "output/dense")},
      "mlp_layer_norm": _layer_norm(v, p + "output/LayerNorm"),
  }


def _mlm_head(v: dict, layout, rng: np.random.Generator, h: int, report: dict) -> dict:
  """The masked-token head: the checkpoint's, its bias padded to the layout, or fresh."""
  if MLM_HEAD[0] in v:
    bias = np.zeros((layout.vocab_size,), np.float32)
    bias[:layout.text_vocab_size] = v["cls/predictions/output_bias"]
    return {"transform": _dense(v, "cls/predictions/transform/dense"),
            "layer_norm": _layer_norm(v, "cls/predictions/transform/LayerNorm"),
            "bias": bias}
  report["initialised_fresh"].append("mlm_head")
  return {"transform": _fresh_dense(rng, h, h),
          "layer_norm": {"scale": np.ones((h,), np.float32),
                         "bias": np.zeros((h,), np.float32)},
          "bias": np.zeros((layout.vocab_size,), np.float32)}


def _alignment_head(v: dict, rng: np.random.Generator, h: int, report: dict) -> dict:
  """Pooler and aligned/not-aligned classifier, from the checkpoint where it has them."""
  alignment = {}
  if POOLER[0] in v:
    alignment["pooler"] = _dense(v, "bert/pooler/dense")
  else:
    alignment["pooler"] = _fresh_dense(rng, h, h)
    report["initialised_fresh"].append("alignment_head/pooler")
  if NSP_HEAD[0] in v:
    # [2, H] with row 0 = IsNext -> [H, 2] with column 1 = aligned.
    alignment["classifier"] = {
        "kernel": np.ascontiguousarray(v["cls/seq_relationship/output_weights"].T[:, ::-1]),
        "bias": np.ascontiguousarray(v["cls/seq_relationship/output_bias"][::-1])}
  else:
    alignment["classifier"] = _fresh_dense(rng, h, 2)
    report["initialised_fresh"].append("alignment_head/classifier")
  return alignment


def _extend_vocabulary(text_rows: np.ndarray, layout, leaf_centroids, seed: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, dict]:
  """BERT's [30522, H] table -> the layout's [V, H] table (see the module docstring)."""
  h = text_rows.shape[1]
  table = np.zeros((layout.vocab_size, h), np.float32)
  table[:layout.text_vocab_size] = text_rows
  # [>] separates text from video as [SEP] separates segments: start from [SEP].
  table[layout.video_sep_id] = text_rows[layout.sep_id]
  k = layout.num_visual_words
  visual = slice(layout.visual_offset, layout.visual_offset + k)
  if leaf_centroids is None:
    table[visual] = _truncated_normal(rng, (k, h))
    how = "random (no codebook given): truncated normal, stddev 0.02"
  else:
    centroids = np.asarray(leaf_centroids, np.float32)
    if centroids.ndim != 2 or centroids.shape[0] != k:
      raise ValueError(f"leaf_centroids has shape {centroids.shape} but the token layout "
                       f"has {k} visual words: expected [{k}, feature_dim]")
    from videobert_jax.models import visual_init  # pylint: disable=g-import-not-at-top
    rows = np.asarray(visual_init.visual_embeddings(centroids, h, seed), np.float32)
    if rows.shape != (k, h):
      raise ValueError(f"visual_embeddings returned shape {rows.shape}, expected {(k, h)}")
    table[visual] = rows
    how = ("codebook leaf centroids" if centroids.shape[1] == h else
           f"codebook leaf centroids projected by PCA from {centroids.shape[1]} to {h} "
           f"dimensions")
  return table, {"rows": layout.vocab_size, "text_rows": layout.text_vocab_size,
                 "video_sep_id": layout.video_sep_id, "video_sep_init": "[SEP] row",
                 "visual_rows": k, "visual_offset": layout.visual_offset,
                 "visual_init": how,
                 "padding_rows": layout.vocab_size - layout.num_used_ids}


def _numerics_notes(weights: readers.BertWeights) -> list:
  """Where the checkpoint's own numerics differ from our BERT (exact GELU, eps 1e-12)."""
  notes = []
  config = weights.model_config
  act = config.get("hidden_act")
  if act is not None and act != "gelu":
    notes.append(f"checkpoint uses hidden_act={act!r}; our model uses exact (erf) GELU")
  elif weights.checkpoint_format == readers.TF_FORMAT:
    notes.append("Google's TF BERT code computed GELU with the tanh approximation; our "
                 "model uses exact (erf) GELU (differences ~1e-3 in activations)")
  eps = config.get("layer_norm_eps")
  if eps is not None and abs(float(eps) - 1e-12) > 1e-15:
    notes.append(f"checkpoint uses layer_norm_eps={eps}; our model uses 1e-12")
  return notes


def _dense(v: dict, prefix: str) -> dict:
  return {"kernel": v[prefix + "/kernel"], "bias": v[prefix + "/bias"]}


def _layer_norm(v: dict, prefix: str) -> dict:
  return {"scale": v[prefix + "/gamma"], "bias": v[prefix + "/beta"]}


def _fresh_dense(rng: np.random.Generator, fan_in: int, fan_out: int) -> dict:
  return {"kernel": _truncated_normal(rng, (fan_in, fan_out)),
          "bias": np.zeros((fan_out,), np.float32)}


def _truncated_normal(rng: np.random.Generator, shape) -> np.ndarray:
  """BERT's initializer: normal(0, 0.02) redrawn beyond two standard deviations."""
  values = rng.standard_normal(shape)
  outside = np.abs(values) > 2
  while outside.any():
    values[outside] = rng.standard_normal(int(outside.sum()))
    outside = np.abs(values) > 2
  return (values * INIT_STDDEV).astype(np.float32)


def tree_shapes(sizes: dict, layout) -> dict:
  """The shapes of the parameter tree ``convert`` builds (the models' contract)."""
  h, n, f = sizes["hidden_size"], sizes["num_heads"], sizes["mlp_dim"]
  dh, v = h // n, layout.vocab_size
  dense = lambda i, o: {"kernel": (i, o), "bias": (o,)}
  norm = {"scale": (h,), "bias": (h,)}
  layer = {
      "attention": {"query": {"kernel": (h, n, dh), "bias": (n, dh)},
                    "key": {"kernel": (h, n, dh), "bias": (n, dh)},
                    "value": {"kernel": (h, n, dh), "bias": (n, dh)},
                    "out": {"kernel": (n, dh, h), "bias": (h,)}},
      "attention_layer_norm": dict(norm),
      "mlp": {"wi": dense(h, f), "wo": dense(f, h)},
      "mlp_layer_norm": dict(norm),
  }
  return {
      "embeddings": {"word": {"embedding": (v, h)},
                     "position": {"embedding": (sizes["max_len"], h)},
                     "token_type": {"embedding": (2, h)},
                     "layer_norm": dict(norm)},
      "encoder": {f"layer_{i}": layer for i in range(sizes["num_layers"])},
      "mlm_head": {"transform": dense(h, h), "layer_norm": dict(norm), "bias": (v,)},
      "alignment_head": {"pooler": dense(h, h), "classifier": dense(h, 2)},
  }
