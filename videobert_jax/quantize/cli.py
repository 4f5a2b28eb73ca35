"""Command line: ``fit`` a codebook, ``assign`` visual words, ``show`` what they mean.

    python -m videobert_jax.quantize fit --corpus DIR --levels 4 --clusters 12 \
        --out codebook.npz
    python -m videobert_jax.quantize assign --corpus DIR --codebook codebook.npz --out DIR
    python -m videobert_jax.quantize show --codebook codebook.npz --corpus DIR --out DIR

Each command prints a short summary and writes its JSON (``fit``: next to the
codebook as ``<name>.json``). Bad input exits 1 with one line naming the file.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


from videobert_jax import fileio
from videobert_jax.corpus import reader


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

  assign = sub.add_parser("assign", help="write a visual-token sequence per video")
  assign.add_argument("--corpus", required=True, help="corpus folder")
  assign.add_argument("--codebook", required=True, help="codebook file from `fit`")
  assign.add_argument("--out", required=True, help="output folder (tokens/, tokens.jsonl)")
  assign.add_argument("--exact", action="store_true",
                      help="nearest of all k^d leaves instead of tree descent")
  assign.add_argument("--skip-bad", action="store_true",
                      help="skip (and list) bad corpus lines and feature files")

  show = sub.add_parser("show", help="the clips nearest to chosen visual words")
  show.add_argument("--codebook", required=True, help="codebook file from `fit`")
  show.add_argument("--corpus", required=True, help="corpus folder")
  show.add_argument("--out", required=True, help="output folder (index.html, show.json)")
  show.add_argument("--tokens", help="comma-separated visual word ids (default: the most "
                    "frequent --top words)")
  show.add_argument("--top", type=int, default=8, help="how many frequent words (default 8)")
  show.add_argument("--per-token", type=int, default=8, help="clips per word (default 8)")
  return p


def _corpus_blocks(corpus: str, skip_bad: bool, counters: dict):
  """A callable that streams every video's features (one pass per call)."""
  from tqdm.auto import tqdm

  def blocks():
    skipped = counters.setdefault("skipped", [])
    for record in tqdm(reader.iter_videos(corpus, skip_bad=skip_bad, skipped=skipped),
                       desc="sample", unit="video"):
      try:
        feats = reader.load_features(record)
      except reader.CorpusError as e:
        if not skip_bad:
          raise
        skipped.append(e)
        continue
      if counters.setdefault("dim", feats.shape[1]) != feats.shape[1]:
        raise reader.CorpusError(record.features_path, f"features of video "
                                 f"{record.video_id!r} are {feats.shape[1]}-d, earlier "
                                 f"videos are {counters['dim']}-d", video_id=record.video_id)
      counters["videos"] = counters.get("videos", 0) + 1
      counters["clips"] = counters.get("clips", 0) + feats.shape[0]
      yield feats

  return blocks


def run_fit(args) -> dict:
  """``fit``: sample the corpus, fit the tree, save the codebook and a summary."""
  from videobert_jax.quantize.hierarchical import fit_hierarchical
  if args.levels < 1 or args.clusters < 2 or args.sample < 1:
    raise ValueError("--levels must be >= 1, --clusters >= 2 and --sample >= 1")
  counters: dict = {}
  stats: dict = {}
  t0 = time.perf_counter()
  codebook = fit_hierarchical(_corpus_blocks(args.corpus, args.skip_bad, counters),
                              args.levels, args.clusters, seed=args.seed,
                              sample_size=args.sample, max_iter=args.max_iter, tol=args.tol,
                              progress=True, stats=stats)
  codebook.save(args.out)
  summary = {"codebook": os.path.abspath(args.out), "corpus": os.path.abspath(args.corpus),
             "levels": codebook.levels, "clusters": codebook.clusters,
             "num_words": codebook.num_words, "feature_dim": codebook.feature_dim,
             "seed": codebook.seed, "videos": counters.get("videos", 0),
             "clips": counters.get("clips", 0), "sample_rows": codebook.sample_size,
             "filled_children": stats["filled_children"], "empty_nodes": stats["empty_nodes"],
             "level_seconds": [round(s, 3) for s in stats["level_seconds"]],
             "seconds": round(time.perf_counter() - t0, 3),
             "skipped": [str(e) for e in counters.get("skipped", [])]}
  path = args.summary or os.path.splitext(args.out)[0] + ".json"
  fileio.write_json(path, summary)
  print(f"codebook: {codebook.num_words} visual words ({codebook.levels} levels x "
        f"{codebook.clusters}), {codebook.feature_dim}-d, fit on {codebook.sample_size} of "
        f"{summary['clips']} clips from {summary['videos']} videos in "
        f"{summary['seconds']:.1f} s; {summary['filled_children']} children filled by "
        f"perturbed copies -> {args.out} (summary {path})")
  if summary["skipped"]:
    print(f"skipped {len(summary['skipped'])} bad records (listed in {path})")
  return summary


def run_assign(args) -> dict:
  """``assign``: write a token sequence per video."""
  from videobert_jax.quantize.assign import assign_corpus
  from videobert_jax.quantize.codebook import load_codebook
  codebook = load_codebook(args.codebook)
  summary = assign_corpus(args.corpus, codebook, args.out, exact=args.exact,
                          skip_bad=args.skip_bad, progress=True)
  print(f"assigned {summary['clips']} clips of {summary['videos']} videos "
        f"({summary['method']}); {summary['words_used']} of {summary['num_words']} words "
        f"used; {len(summary['skipped'])} skipped -> {args.out}/tokens.jsonl "
        f"(summary {args.out}/summary.json)")
  return summary


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
    {"fit": run_fit, "assign": run_assign, "show": run_show}[args.command](args)
  except (reader.CorpusError, CodebookError, ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0
