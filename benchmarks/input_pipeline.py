"""Benchmark: the pretraining mixture's rows/s and real-token share next to a train step.

    python benchmarks/input_pipeline.py                      # tiny and base, defaults
    python benchmarks/input_pipeline.py --num-videos 50 --batches 20 --json out.json
    python benchmarks/input_pipeline.py --train-rows-per-second base=2.5

The input side synthesises a corpus of the bundled world
(``videobert_jax.synthetic.synthesize``), fits nothing (a random 4 x 12 codebook,
the paper's 20,736 visual words), builds the three TFDS datasets and times
``pretrain_batches`` after a warm-up batch, unpacked and packed
(``config.data.pack``), with the share of real (non-padding) tokens per row
(``real_token_share`` in the JSON: the packed one). The train side times the
jitted train step of each config on this machine's devices (after compilation),
or takes the rates given with ``--train-rows-per-second``. The input pipeline
keeps up when its rows/s are above the train step's.

The defaults run on the 2-core, 24 GiB development machine: the train step is
timed at the largest batch whose estimated memory fits in half of what is
available (base at its batch of 128 would need more than 24 GiB), and says so;
rows/s scale with the batch from there.
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
  """Rows/s, examples/s and real-token share of ``pretrain_batches`` (first batch apart)."""
  from videobert_jax.tasks import pipeline as input_pipeline  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  iterator = input_pipeline.pretrain_batches(config, batch_size=batch_size)
  next(iterator)
  startup = time.perf_counter() - start
  real = examples = 0
  start = time.perf_counter()
  for _ in range(batches):
    batch = next(iterator)
    real += int(batch["attention_mask"].sum())
    examples += int(batch["segment_ids"].max(1).sum() if "segment_ids" in batch
                    else len(batch["input_ids"]))
  seconds = time.perf_counter() - start
  rows = batches * batch_size
  return {"rows_per_second": rows / seconds, "examples_per_second": examples / seconds,
          "examples_per_row": examples / rows,
          "real_token_share": real / (rows * config.data.max_seq_len),
          "startup_seconds": startup, "batch_size": batch_size, "batches": batches}


def _available_bytes() -> int:
  """MemAvailable of /proc/meminfo (total physical memory where there is none)."""
  try:
    with open("/proc/meminfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def train_step_bytes(config, batch_size: int) -> float:
  """A rough upper estimate of one train step's memory at ``batch_size`` rows.

  Per token and layer the backward pass keeps about 9 hidden-size and 2 MLP-size
  activations plus two attention maps; XLA:CPU's buffers are counted twice.
  Parameters, gradients and Adam's moments: 4 float32 copies.
  """
  m, t = config.model, config.data.max_seq_len
  per_token = m.num_layers * (9 * m.hidden_size + 2 * m.mlp_dim + 2 * m.num_heads * t)
  activations = 2 * 4 * per_token * t * batch_size
  vocab = m.text_vocab_size + 1 + (m.num_visual_words or 0)
  params = 12 * m.num_layers * m.hidden_size ** 2 + vocab * m.hidden_size
  return activations + 4 * 4 * params


def train_rate(config, steps: int) -> dict:
  """Rows/s consumed by the jitted train step of ``config`` on this machine.

  Timed at the config's batch, or at the largest that fits in half the available
  memory (``train_step_bytes``), which the result says.
  """
  import jax  # pylint: disable=import-outside-toplevel
  from videobert_jax import batch as batch_lib  # pylint: disable=import-outside-toplevel
  from videobert_jax.train import state as train  # pylint: disable=import-outside-toplevel
  config = config.copy_and_resolve_references()
  wanted, budget = config.train.batch_size, _available_bytes() / 2
  b = wanted
  while b > 1 and train_step_bytes(config, b) > budget:
    b //= 2
  note = None
  if b < wanted:
    note = (f"timed at batch {b}, not the config's {wanted}: that needs about "
            f"{train_step_bytes(config, wanted) / 2**30:.0f} GiB, this machine has "
            f"{budget * 2 / 2**30:.0f} GiB available")
    print(f"{config.size}: train step {note}", file=sys.stderr)
  config.train.batch_size = b
  setup = train.Setup(config)
  state = setup.init_state(jax.random.key(0))
  rng = jax.random.key(1)
  sizes = batch_lib.sizes(config.data)
  local = batch_lib.zeros(b, sizes["seq_len"], sizes["max_predictions"], sizes["max_segments"])
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
  return {"rows_per_second": steps * b / seconds, "batch_size": b, "steps": steps,
          "note": note, "devices": len(jax.devices()),
          "platform": jax.devices()[0].platform}


def _parse(argv):
  """Command-line flags; ``--train-rows-per-second`` parsed into ``args.given``."""
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
  parser.add_argument("--train-rows-per-second", action="append", default=[],
                      metavar="SIZE=RATE",
                      help="use this train-step rate (rows/s) for SIZE instead of measuring it")
  parser.add_argument("--workdir", default=None,
                      help="where to write the corpus and TFDS data (default: a temp dir)")
  parser.add_argument("--json", default=None, help="write the results here")
  args = parser.parse_args(argv)
  args.given = {}
  for item in args.train_rows_per_second:
    size, _, rate = item.partition("=")
    try:
      args.given[size] = float(rate)
    except ValueError:
      parser.error(f"--train-rows-per-second wants SIZE=RATE, got {item!r}")
  return args


def main(argv=None) -> int:
  """Runs the benchmark and prints a table (and writes JSON with --json)."""
  args = _parse(argv)
  workdir = args.workdir or tempfile.mkdtemp(prefix="videobert_input_bench_")
  corpus, codebook = make_inputs(workdir, args.num_videos, args.feature_dim, seed=0)
  results = {"num_videos": args.num_videos, "sizes": {}}
  for size in args.sizes.split(","):
    config = load_config(size)
    config.data.corpus_dir, config.data.codebook = corpus, codebook
    # One build per size: sizes may split the data differently (validation share).
    config.data.tfds_data_dir = os.path.join(workdir, "tfds", size)
    config.model.num_visual_words = 12 ** 4
    row = {}
    for pack in (False, True):
      config.data.pack = pack
      row["packed" if pack else "unpacked"] = input_rate(config, config.train.batch_size,
                                                         args.batches)
    if size in args.given:
      row["train"] = {"rows_per_second": args.given[size], "source": "given"}
    else:
      row["train"] = train_rate(config, args.steps)  # packed rows (the default)
    results["sizes"][size] = row
  shares = [row[kind]["real_token_share"] for row in results["sizes"].values()
            for kind in ("unpacked", "packed")]
  results["real_token_share"] = min(shares[1::2])  # packed, the worst size
  results["real_token_share_unpacked"] = max(shares[0::2])
  _print(results)
  if args.json:
    from videobert_jax import fileio  # pylint: disable=import-outside-toplevel
    fileio.write_json(args.json, results)
  if args.workdir is None:
    shutil.rmtree(workdir, ignore_errors=True)
  return 0


def _print(results) -> None:
  """One line per size and layout: real tokens, examples and rows per second."""
  print(f"{'size':<6} {'rows':<9} {'real tokens':>11} {'ex/row':>7} {'input ex/s':>11} "
        f"{'input rows/s':>13} {'train rows/s':>13} {'input/train':>12}")
  for size, row in results["sizes"].items():
    train = row["train"]["rows_per_second"]
    for kind in ("unpacked", "packed"):
      r = row[kind]
      print(f"{size:<6} {kind:<9} {r['real_token_share']:>11.1%} "
            f"{r['examples_per_row']:>7.2f} {r['examples_per_second']:>11.1f} "
            f"{r['rows_per_second']:>13.1f} {train:>13.2f} "
            f"{r['rows_per_second'] / train:>12.1f}")
    if row["train"].get("note"):
      print(f"       ({size} train step {row['train']['note']})")


if __name__ == "__main__":
  sys.exit(main())
