"""``python -m videobert_jax.synthetic --out DIR``: writes the bundled cooking world.

The same world ``make demo`` trains on: ``DIR/corpus`` (a pretraining corpus) and
``DIR/youcook`` (a YouCook II-format evaluation set: annotations and features).
Another ``--seed`` gives another world (the tuning and testing worlds of
``docs/training.md``).
"""

from __future__ import annotations

import argparse
import json
import sys

from videobert_jax.synthetic import synthesize


def main(argv=None) -> int:
  """Writes the world and prints where its two folders are."""
  parser = argparse.ArgumentParser(prog="python -m videobert_jax.synthetic",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", required=True, help="output folder")
  parser.add_argument("--videos", type=int, default=200, help="pretraining videos")
  parser.add_argument("--eval-videos", type=int, default=40, help="evaluation videos")
  parser.add_argument("--dim", type=int, default=1024, help="clip feature dimension")
  parser.add_argument("--seed", type=int, default=0, help="the world's seed")
  args = parser.parse_args(argv)
  try:
    summary = synthesize.synthesize(args.out, num_videos=args.videos,
                                    num_eval_videos=args.eval_videos,
                                    feature_dim=args.dim, seed=args.seed)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(json.dumps({k: summary[k] for k in ("corpus_dir", "youcook_dir")}, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
