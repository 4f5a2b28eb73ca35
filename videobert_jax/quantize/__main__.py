"""Command line: ``fit`` a codebook, ``assign`` visual words, ``show`` what they mean.

    python -m videobert_jax.quantize fit --corpus DIR --levels 4 --clusters 12 \
        --out codebook.npz
    python -m videobert_jax.quantize assign --corpus DIR --codebook codebook.npz --out DIR
    python -m videobert_jax.quantize show --codebook codebook.npz --corpus DIR --out DIR

Each command prints a short summary and writes its JSON (``fit``: next to the
codebook as ``<name>.json``). Bad input exits 1 with one line naming the file.
``fit`` and ``assign`` run on several processes as well (``--distributed``; here
``launch/local.sh --processes N --module videobert_jax.quantize -- assign ...``):
``fit`` shares the k-means work, ``assign`` the videos; process 0 reports.
"""

from __future__ import annotations

import argparse
import sys


from videobert_jax.corpus import reader
from videobert_jax.quantize import fit_corpus


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="python -m videobert_jax.quantize",
                              description="Visual words by hierarchical k-means.")
  sub = p.add_subparsers(dest="command", required=True)

  fit = sub.add_parser("fit", help="fit a hierarchical k-means codebook on a corpus")
  fit.add_argument("--corpus", required=True, help="corpus folder (videos.jsonl + features)")
  fit.add_argument("--levels", type=int, default=4, help="tree depth d (default 4)")
  fit.add_argument("--clusters", type=int, default=12, help="clusters per node k (default 12)")
  fit.add_argument("--sample", type=int, default=500_000,
                   help="clips to fit on, reservoir-sampled from the corpus (default 500000)")
  fit.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
  fit.add_argument("--max-iter", type=int, default=50, help="Lloyd iterations per node")
  fit.add_argument("--tol", type=float, default=1e-4,
                   help="stop a node when its inertia improves by less than this fraction")
  fit.add_argument("--skip-bad", action="store_true",
                   help="skip (and list) bad corpus lines and feature files")
  fit.add_argument("--out", required=True, help="codebook file to write (.npz)")
  fit.add_argument("--summary", help="JSON summary path (default: OUT with .json)")
  _distributed_flag(fit)

  assign = sub.add_parser("assign", help="write a visual-token sequence per video")
  assign.add_argument("--corpus", required=True, help="corpus folder")
  assign.add_argument("--codebook", required=True, help="codebook file from `fit`")
  assign.add_argument("--out", required=True, help="output folder (tokens/, tokens.jsonl)")
  assign.add_argument("--exact", action="store_true",
                      help="nearest of all k^d leaves instead of tree descent")
  assign.add_argument("--skip-bad", action="store_true",
                      help="skip (and list) bad corpus lines and feature files")
  _distributed_flag(assign)

  show = sub.add_parser("show", help="the clips nearest to chosen visual words")
  show.add_argument("--codebook", required=True, help="codebook file from `fit`")
  show.add_argument("--corpus", required=True, help="corpus folder")
  show.add_argument("--out", required=True, help="output folder (index.html, show.json)")
  show.add_argument("--tokens", help="comma-separated visual word ids (default: the most "
                    "frequent --top words)")
  show.add_argument("--top", type=int, default=8, help="how many frequent words (default 8)")
  show.add_argument("--per-token", type=int, default=8, help="clips per word (default 8)")
  return p


def _distributed_flag(parser) -> None:
  parser.add_argument(
      "--distributed", choices=("auto", "on", "off"), default="auto",
      help="call jax.distributed.initialize() first (several processes, as the "
      "trainer's flag): auto when JAX_COORDINATOR_ADDRESS or several TPU/SLURM workers "
      "are in the environment (default auto)")


def run_fit(args) -> dict:
  """``fit``: sample the corpus, fit the tree, save the codebook and a summary."""
  return fit_corpus.fit_corpus_codebook(
      args.corpus, args.out, args.levels, args.clusters, sample=args.sample,
      seed=args.seed, max_iter=args.max_iter, tol=args.tol, skip_bad=args.skip_bad,
      summary_path=args.summary)


def run_assign(args) -> dict | None:
  """``assign``: write a token sequence per video (the videos split across processes)."""
  import jax  # pylint: disable=g-import-not-at-top
  from videobert_jax.quantize.assign import assign_corpus
  from videobert_jax.quantize.codebook import load_codebook
  codebook = load_codebook(args.codebook)
  index, count = jax.process_index(), jax.process_count()
  summary = assign_corpus(args.corpus, codebook, args.out, exact=args.exact,
                          skip_bad=args.skip_bad, progress=index == 0,
                          process_index=index, process_count=count,
                          barrier=_barrier("videobert_jax.quantize assign") if count > 1
                          else None)
  if summary is not None:  # process 0 reports for all
    print(f"assigned {summary['clips']} clips of {summary['videos']} videos "
          f"({summary['method']}); {summary['words_used']} of {summary['num_words']} "
          f"words used; {len(summary['skipped'])} skipped -> {args.out}/tokens.jsonl "
          f"(summary {args.out}/summary.json)")
  return summary


def _barrier(name: str):
  """A function that waits for every process of this JAX run."""
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return lambda: multihost_utils.sync_global_devices(name)


def run_show(args) -> dict:
  """``show``: HTML (and PNG) of the clips nearest to chosen words."""
  from videobert_jax.quantize.codebook import load_codebook
  from videobert_jax.quantize.show import show
  codebook = load_codebook(args.codebook)
  tokens = None
  if args.tokens:
    try:
      tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
    except ValueError:
      raise ValueError(f"--tokens must be comma-separated integers, got {args.tokens!r}")
  result = show(codebook, args.corpus, args.out, tokens=tokens, top=args.top,
                per_token=args.per_token, progress=True)
  grid = f" and {args.out}/grid.png" if "grid" in result else ""
  print(f"{len(result['tokens'])} visual words, {args.per_token} clips each, "
        f"{result['frames_decoded']} frames decoded -> {args.out}/index.html{grid}")
  return result


def main(argv=None) -> int:
  """Runs one command; returns the exit status (1 with one line on bad input)."""
  from videobert_jax.quantize.codebook import CodebookError
  args = _parser().parse_args(argv)
  try:
    if getattr(args, "distributed", "off") != "off":
      from videobert_jax.train import distributed  # pylint: disable=g-import-not-at-top
      distributed.initialize(args.distributed)  # before any device is touched
    {"fit": run_fit, "assign": run_assign, "show": run_show}[args.command](args)
  except (reader.CorpusError, CodebookError, ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
