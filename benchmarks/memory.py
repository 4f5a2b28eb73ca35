"""Benchmark: peak host memory of each per-corpus stage, on a small and a 10x corpus.

    python benchmarks/memory.py                       # about 5K and 50K clips
    python benchmarks/memory.py --clips 5000,50000 --json memory.json

A stage that streams its corpus keeps the same peak resident memory (RSS) however
large the corpus; one that loads it grows with it. For each corpus size the script
synthesizes the bundled cooking world with enough videos for that many clips
(1024-d float16 features, as S3D's), then runs every stage as its own command in a
fresh process and reads that process tree's peak RSS (``getrusage`` of the waited
children, so imports and TensorFlow's own arenas count too):

* ``corpus validate``: reads every feature file and transcript;
* ``quantize fit``: reservoir-samples clips (``--sample``, default 4,000: below the
  small corpus, so both sizes fit on the same number of clips; the fit's memory
  follows the sample, by design) and fits a 2 x 12 tree;
* ``quantize assign``: one token file per video;
* ``tfds build``: the three pretraining datasets (the trainer's on-demand build);
* ``input pipeline``: 50 packed batches of the pretraining mixture.

It prints a table (MiB) with the large/small ratio per stage and whether it is flat
(within 25%), and writes the figures as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FLAT = 1.25  # "does not grow": the large corpus's peak within 25% of the small one's
CLIPS_PER_VIDEO = 45  # the synthetic world's mean (about 9K clips in 200 videos)


def _measure(argv: list[str], env: dict) -> dict:
  """Runs ``argv`` in a fresh child of a fresh process; its peak RSS and time."""
  # A fresh intermediate process, so RUSAGE_CHILDREN holds this command alone.
  code = ("import json, resource, subprocess, sys, time; t = time.time(); "
          "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
          "stderr=subprocess.PIPE).returncode; "
          "print(json.dumps({'rc': rc, 'seconds': time.time() - t, 'max_rss_kib': "
          "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")
  out = subprocess.run([sys.executable, "-c", code, *argv], env=env, check=True,
                       capture_output=True, text=True)
  result = json.loads(out.stdout.strip().splitlines()[-1])
  if result["rc"]:
    raise RuntimeError(f"{' '.join(argv)} exited {result['rc']}")
  return {"peak_rss_mib": result["max_rss_kib"] / 1024, "seconds": result["seconds"]}


_PIPELINE = """
import itertools, sys
from videobert_jax import configs
from videobert_jax.tasks import pipeline
config = configs.load("pretrain:tiny")
config.data.corpus_dir, config.data.codebook, config.data.tfds_data_dir = sys.argv[1:4]
for _ in itertools.islice(pipeline.pretrain_batches(config, batch_size=32), 50):
  pass
"""

_BUILD = """
import sys
from videobert_jax import configs
from videobert_jax.tasks import pipeline
config = configs.load("pretrain:tiny")
config.data.corpus_dir, config.data.codebook, config.data.tfds_data_dir = sys.argv[1:4]
pipeline.ensure_datasets(config.data)
"""


def stage_commands(corpus: str, work: str, sample: int) -> dict[str, list[str]]:
  """The measured commands, in order (each later one uses the earlier outputs)."""
  py = sys.executable
  codebook, tfds_dir = os.path.join(work, "codebook.npz"), os.path.join(work, "tfds")
  return {
      "corpus validate": [py, "-m", "videobert_jax.corpus", "validate", corpus],
      "quantize fit": [py, "-m", "videobert_jax.quantize", "fit", "--corpus", corpus,
                       "--levels", "2", "--clusters", "12", "--sample", str(sample),
                       "--out", codebook],
      "quantize assign": [py, "-m", "videobert_jax.quantize", "assign", "--corpus",
                          corpus, "--codebook", codebook, "--out",
                          os.path.join(work, "assigned")],
      "tfds build": [py, "-c", _BUILD, corpus, codebook, tfds_dir],
      "input pipeline": [py, "-c", _PIPELINE, corpus, codebook, tfds_dir],
  }


def run_size(clips: int, root: str, sample: int, env: dict) -> dict:
  """Synthesizes a corpus of about ``clips`` clips and measures every stage on it."""
  from videobert_jax.synthetic import synthesize  # pylint: disable=import-outside-toplevel
  work = os.path.join(root, f"clips_{clips}")
  summary = synthesize.synthesize(work, num_videos=max(8, clips // CLIPS_PER_VIDEO),
                                  num_eval_videos=2, feature_dim=1024, seed=0,
                                  progress=False)
  result = {"clips": summary["clips"], "videos": summary["videos"],
            "stages": {}}
  for name, argv in stage_commands(summary["corpus_dir"], work, sample).items():
    result["stages"][name] = _measure(argv, env)
    print(f"  {clips:>7} clips  {name:<16} {result['stages'][name]['peak_rss_mib']:8.0f} "
          f"MiB  {result['stages'][name]['seconds']:6.1f} s", flush=True)
  return result


def main(argv=None) -> int:
  """Runs every size, prints the table, writes the JSON."""
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--clips", default="5000,50000",
                      help="comma-separated corpus sizes in clips (default 5000,50000)")
  parser.add_argument("--sample", type=int, default=4_000,
                      help="quantize fit's reservoir sample (default 4000)")
  parser.add_argument("--json", default=None, help="write the figures here")
  args = parser.parse_args(argv)
  sizes = [int(c) for c in args.clips.split(",")]
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu",
         "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
  sys.path.insert(0, ROOT)
  start = time.time()
  with tempfile.TemporaryDirectory(prefix="vb_memory_") as root:
    runs = [run_size(c, root, args.sample, env) for c in sizes]
  small, large = runs[0], runs[-1]
  print(f"\nPeak RSS (MiB); {small['clips']} vs {large['clips']} clips; flat = within "
        f"{100 * (FLAT - 1):.0f}%")
  rows = {}
  for name in small["stages"]:
    a, b = small["stages"][name]["peak_rss_mib"], large["stages"][name]["peak_rss_mib"]
    rows[name] = {"small_mib": a, "large_mib": b, "ratio": b / a, "flat": b / a <= FLAT}
    print(f"  {name:<16} {a:8.0f} {b:8.0f}  x{b / a:4.2f}  "
          f"{'flat' if b / a <= FLAT else 'GROWS'}")
  print(f"({time.time() - start:.0f} s)")
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump({"runs": runs, "comparison": rows, "flat_within": FLAT}, f, indent=2)
  return 0


if __name__ == "__main__":
  sys.exit(main())
