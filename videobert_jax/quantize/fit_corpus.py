"""Fits a codebook on a corpus: stream its features, sample, fit the tree, save.

What ``python -m videobert_jax.quantize fit`` runs, callable from Python (the demo
does). The summary JSON goes next to the codebook as ``<name>.json``.
"""

from __future__ import annotations

import os
import time

from videobert_jax import fileio
from videobert_jax.corpus import reader


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


def fit_corpus_codebook(corpus: str, out: str, levels: int, clusters: int, *,
                        sample: int = 500_000, seed: int = 0, max_iter: int = 50,
                        tol: float = 1e-4, skip_bad: bool = False,
                        summary_path: str | None = None) -> dict:
  """Fits a ``clusters ** levels`` codebook on ``corpus``, saves it to ``out``.

  Prints a one-line summary and returns it (also written as JSON to
  ``summary_path``, default ``<out without extension>.json``).
  """
  from videobert_jax.quantize.hierarchical import fit_hierarchical
  if levels < 1 or clusters < 2 or sample < 1:
    raise ValueError("levels must be >= 1, clusters >= 2 and sample >= 1")
  counters: dict = {}
  stats: dict = {}
  t0 = time.perf_counter()
  codebook = fit_hierarchical(_corpus_blocks(corpus, skip_bad, counters),
                              levels, clusters, seed=seed,
                              sample_size=sample, max_iter=max_iter, tol=tol,
                              progress=True, stats=stats)
  import jax  # pylint: disable=g-import-not-at-top
  writer = jax.process_index() == 0  # every process holds the same codebook
  if writer:
    codebook.save(out)
  summary = {"codebook": os.path.abspath(out), "corpus": os.path.abspath(corpus),
             "levels": codebook.levels, "clusters": codebook.clusters,
             "num_words": codebook.num_words, "feature_dim": codebook.feature_dim,
             "seed": codebook.seed, "videos": counters.get("videos", 0),
             "clips": counters.get("clips", 0), "sample_rows": codebook.sample_size,
             "filled_children": stats["filled_children"], "empty_nodes": stats["empty_nodes"],
             "level_seconds": [round(s, 3) for s in stats["level_seconds"]],
             "seconds": round(time.perf_counter() - t0, 3),
             "skipped": [str(e) for e in counters.get("skipped", [])]}
  path = summary_path or os.path.splitext(out)[0] + ".json"
  if not writer:
    return summary
  fileio.write_json(path, summary)
  print(f"codebook: {codebook.num_words} visual words ({codebook.levels} levels x "
        f"{codebook.clusters}), {codebook.feature_dim}-d, fit on {codebook.sample_size} of "
        f"{summary['clips']} clips from {summary['videos']} videos in "
        f"{summary['seconds']:.1f} s; {summary['filled_children']} children filled by "
        f"perturbed copies -> {out} (summary {path})")
  if summary["skipped"]:
    print(f"skipped {len(summary['skipped'])} bad records (listed in {path})")
  return summary
