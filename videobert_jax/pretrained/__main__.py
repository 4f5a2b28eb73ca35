"""Converts a text-pretrained BERT into a VideoBERT parameter file training starts from.

  python -m videobert_jax.pretrained convert \\
      --checkpoint PATH/bert_model.ckpt --config pretrain:large \\
      --codebook codebook.npz --out DIR

writes ``DIR/params.npz`` (our parameter tree, vocabulary extended for ``[>]`` and
the visual words) and ``DIR/conversion.json`` (what was loaded, what was
initialised fresh). Train from it with ``--config.init.checkpoint=DIR/params.npz``.
"""

from __future__ import annotations

import argparse
import os
import sys

PARAMS_NAME = "params.npz"
REPORT_NAME = "conversion.json"


def load_leaf_centroids(path: str):
  """The ``[K, D]`` leaf centroids of a codebook (``quantize`` ``.npz``, or a bare ``.npy``)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from videobert_jax.quantize import codebook  # pylint: disable=g-import-not-at-top
  if not path.endswith(".npy"):
    return codebook.load_codebook(path).leaves
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: leaf centroid file does not exist")
  leaves = np.load(path, allow_pickle=False)
  if leaves.ndim != 2:
    raise ValueError(f"{path}: leaf centroids have shape {leaves.shape}, expected [K, D]")
  return leaves


def convert_command(args) -> int:
  """Runs ``convert``; returns the exit status."""
  from videobert_jax import fileio  # pylint: disable=g-import-not-at-top
  from videobert_jax import tokens  # pylint: disable=g-import-not-at-top
  from videobert_jax.pretrained import load_pretrained  # pylint: disable=g-import-not-at-top
  from videobert_jax.pretrained import params_io  # pylint: disable=g-import-not-at-top

  from videobert_jax import configs  # pylint: disable=g-import-not-at-top
  config = configs.load(args.config)
  leaves = load_leaf_centroids(args.codebook) if args.codebook else None
  if leaves is not None:
    num_visual = leaves.shape[0]
  elif config.model.get("num_visual_words", None) is not None:
    num_visual = int(config.model.num_visual_words)
  else:
    num_visual = tokens.PAPER_NUM_VISUAL_WORDS
  with config.unlocked():
    config.model.num_visual_words = num_visual
  layout = tokens.TokenLayout(text_vocab_size=int(config.model.text_vocab_size),
                              num_visual_words=num_visual)
  print(f"reading {args.checkpoint} ...", file=sys.stderr)
  params, report = load_pretrained(args.checkpoint, config, layout, leaf_centroids=leaves,
                                   seed=args.seed, checkpoint_format=args.format)
  report["codebook"] = args.codebook
  report["layout"] = layout.to_dict()
  params_path = os.path.join(args.out, PARAMS_NAME)
  params_io.save_params(params_path, params)
  report["params"] = params_path
  fileio.write_json(os.path.join(args.out, REPORT_NAME), report)
  count = sum(a.size for a in params_io.flatten(params).values())
  print(f"wrote {params_path}: {count:,} parameters, {report['num_layers']} layers x "
        f"{report['hidden_size']} hidden, vocabulary {layout.vocab_size:,} rows "
        f"(visual: {report.get('vocabulary', {}).get('visual_init', 'as converted')})")
  fresh = report.get("initialised_fresh") or []
  print("initialised fresh (not in the checkpoint): " + (", ".join(fresh) or "nothing"))
  for note in report.get("notes", []):
    print(f"note: {note}")
  print(f"report: {os.path.join(args.out, REPORT_NAME)}")
  return 0


def build_parser() -> argparse.ArgumentParser:
  """The command-line interface."""
  parser = argparse.ArgumentParser(
      prog="python -m videobert_jax.pretrained",
      description="Convert text-pretrained BERT checkpoints for VideoBERT.")
  commands = parser.add_subparsers(dest="command", required=True)
  convert = commands.add_parser(
      "convert", help="TF bert_model.ckpt or HF safetensors -> DIR/params.npz",
      description=__doc__.split("\n\n")[0])
  convert.add_argument("--checkpoint", required=True,
                       help="TF checkpoint prefix (.../bert_model.ckpt) or its folder, or "
                            "a Hugging Face .safetensors file or folder")
  convert.add_argument("--config", required=True,
                       help="config name and size (pretrain:small) or FILE.py:ARG")
  convert.add_argument("--codebook", default=None,
                       help="codebook .npz from `python -m videobert_jax.quantize fit` "
                            "(or a bare [K, D] .npy); its leaf centroids start the "
                            "visual-word rows (default: "
                            "random rows, K from config.model.num_visual_words or 20,736)")
  convert.add_argument("--out", required=True,
                       help="output folder for params.npz and conversion.json")
  convert.add_argument("--format", default="auto", choices=("auto", "tf", "hf"),
                       help="checkpoint format (default: detected from the path)")
  convert.add_argument("--seed", type=int, default=0,
                       help="seed for heads and rows initialised fresh (default 0)")
  return parser


def main(argv=None) -> int:
  """Entry point; exits 1 with one line on bad input."""
  args = build_parser().parse_args(argv)
  try:
    return convert_command(args)
  except (ValueError, FileNotFoundError) as e:  # CheckpointError is a ValueError
    print(f"error: {e}", file=sys.stderr)
    return 1


if __name__ == "__main__":
  sys.exit(main())
