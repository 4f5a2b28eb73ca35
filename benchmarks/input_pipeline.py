"""Benchmark: examples/s of the pretraining mixture next to what a train step consumes.

    python benchmarks/input_pipeline.py                      # tiny and base, defaults
    python benchmarks/input_pipeline.py --num-videos 50 --batches 20 --json out.json
    python benchmarks/input_pipeline.py --train-examples-per-second base=900

The input side synthesises a corpus (``videobert_jax.synthetic.synthesize``), fits
nothing (a random 4 x 12 codebook, the paper's 20,736 visual words), builds the
three TFDS datasets and times ``pretrain_batches`` after a warm-up batch. The
train side times the jitted ``videobert_jax.train.train_step`` of each config on
this machine's devices (after compilation), or takes the numbers given with
``--train-examples-per-second``. The input pipeline keeps up when its rate is
above the train step's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)


def load_config(size="tiny"):
  """The installed ``pretrain:SIZE`` config."""
  from videobert_jax import configs  # pylint: disable=import-outside-toplevel
  return configs.load(f"pretrain:{size}")


def make_inputs(workdir: str, num_videos: int, feature_dim: int, seed: int) -> tuple:
  """A synthetic corpus and a random 4-level, 12-way codebook; returns their paths."""
  from videobert_jax.synthetic import synthesize  # pylint: disable=import-outside-toplevel
  from videobert_jax.quantize.codebook import Codebook  # pylint: disable=import-outside-toplevel
  summary = synthesize.synthesize(os.path.join(workdir, "syn"), num_videos=num_videos,
                                  num_eval_videos=2, feature_dim=feature_dim, seed=seed,
                                  progress=False)
  rng = np.random.default_rng(seed)
  levels = [rng.random((12 ** (l + 1), feature_dim), np.float32) for l in range(4)]
  path = os.path.join(workdir, "codebook.npz")
  Codebook(levels=4, clusters=12, feature_dim=feature_dim, seed=seed, sample_size=0,
           level_centroids=levels).save(path)
  return summary["corpus_dir"], path


def input_rate(config, batch_size: int, batches: int) -> dict:
  """Examples/s of ``pretrain_batches`` (first batch timed apart as start-up)."""
  from videobert_jax.tasks import pipeline as input_pipeline  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  iterator = input_pipeline.pretrain_batches(config, batch_size=batch_size)
  next(iterator)
  startup = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  seconds = time.perf_counter() - start
  return {"examples_per_second": batches * batch_size / seconds,
          "startup_seconds": startup, "batch_size": batch_size, "batches": batches}


def train_rate(config, steps: int) -> dict:
  """Examples/s consumed by the jitted train step of ``config`` on this machine."""
  import jax  # pylint: disable=import-outside-toplevel
  from videobert_jax import batch as batch_lib  # pylint: disable=import-outside-toplevel
  from videobert_jax.train import state as train  # pylint: disable=import-outside-toplevel
  setup = train.Setup(config)
  state = setup.init_state(jax.random.key(0))
  rng = jax.random.key(1)
  b = config.train.batch_size
  local = batch_lib.zeros(b, config.data.max_seq_len, config.data.max_predictions)
  local["attention_mask"][:] = 1
  local["masked_weights"][:] = 1.0
  batch = setup.global_batch(local)
  state, metrics = setup.train_step(state, batch, rng)  # compile
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = setup.train_step(state, batch, rng)
  jax.block_until_ready(metrics)
  seconds = time.perf_counter() - start
  return {"examples_per_second": steps * b / seconds, "batch_size": b, "steps": steps,
          "devices": len(jax.devices()), "platform": jax.devices()[0].platform}


def main(argv=None) -> int:
  """Runs the benchmark and prints a table (and writes JSON with --json)."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--sizes", default="tiny,base",
                      help="comma-separated config sizes to compare")
  parser.add_argument("--num-videos", type=int, default=40,
                      help="videos in the synthetic corpus")
  parser.add_argument("--feature-dim", type=int, default=1024,
                      help="clip feature dimension of the synthetic corpus")
  parser.add_argument("--batches", type=int, default=30,
                      help="input batches timed (after one warm-up batch)")
  parser.add_argument("--steps", type=int, default=3,
                      help="train steps timed per size (after compilation)")
  parser.add_argument("--train-examples-per-second", action="append", default=[],
                      metavar="SIZE=RATE",
                      help="use this train-step rate for SIZE instead of measuring it")
  parser.add_argument("--workdir", default=None,
                      help="where to write the corpus and TFDS data (default: a temp dir)")
  parser.add_argument("--json", default=None, help="write the results here")
  args = parser.parse_args(argv)
  given = {}
  for item in args.train_examples_per_second:
    size, _, rate = item.partition("=")
    try:
      given[size] = float(rate)
    except ValueError:
      print(f"error: --train-examples-per-second wants SIZE=RATE, got {item!r}",
            file=sys.stderr)
      return 1
  workdir = args.workdir or tempfile.mkdtemp(prefix="videobert_input_bench_")
  corpus, codebook = make_inputs(workdir, args.num_videos, args.feature_dim, seed=0)
  results = {"num_videos": args.num_videos, "sizes": {}}
  for size in args.sizes.split(","):
    config = load_config(size)
    config.data.corpus_dir, config.data.codebook = corpus, codebook
    config.data.tfds_data_dir = os.path.join(workdir, "tfds")
    config.model.num_visual_words = 12 ** 4
    row = {"input": input_rate(config, config.train.batch_size, args.batches)}
    if size in given:
      row["train"] = {"examples_per_second": given[size], "source": "given"}
    else:
      row["train"] = train_rate(config, args.steps)
    results["sizes"][size] = row
  print(f"{'size':<6} {'input ex/s':>12} {'train ex/s':>12} {'input/train':>12}")
  for size, row in results["sizes"].items():
    i, t = row["input"]["examples_per_second"], row["train"]["examples_per_second"]
    print(f"{size:<6} {i:>12.1f} {t:>12.1f} {i / t:>12.2f}")
  if args.json:
    from videobert_jax import fileio  # pylint: disable=import-outside-toplevel
    fileio.write_json(args.json, results)
  if args.workdir is None:
    shutil.rmtree(workdir, ignore_errors=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
