"""Useful tokens/s: our packed VideoBERT step vs Hugging Face's FlaxBertForPreTraining unpacked.

Both run in one process on the same device(s), at the same size, sequence length,
compute dtype and vocabulary, on the same examples: BERT pretraining (masked-token
loss + a 2-way [CLS] classifier) with Adam. The examples have VideoBERT's lengths
(``example_lengths``: a sentence ~17 WordPieces, p95 29, joined to the next one
half the time; a few visual words per sentence), far shorter than T. HF takes
them one per row, as its pretraining does; ours packs them several per row
(``tasks.packing``; ``--pack off`` for one per row), computes logits only at the
masked positions and attends through jax.nn.dot_product_attention.

The headline is useful tokens/s: real (non-padding) tokens of those examples
processed per second. Ours times B packed rows; HF times B unpacked rows and
takes ceil(examples / B) steps for the same examples. tokens/s (every position,
padding too) and MFU are the per-row work figures as before. FLOPs per token
(issue 5): 6 x non-embedding params + 12 x layers x hidden x T + 6 x hidden x V
per position whose logits are computed; MFU = achieved FLOP/s / the matmul peak
measured in the same run.

  python benchmarks/train_step.py --size tiny --batch 8 --seq-len 128 --steps 5
  python benchmarks/train_step.py --size base --batch 8 --seq-len 128 --dtype float32 --json out.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from videobert_jax.configs import pretrain  # pylint: disable=wrong-import-position
from videobert_jax import batch as batch_lib  # pylint: disable=wrong-import-position
from videobert_jax import fileio  # pylint: disable=wrong-import-position
from videobert_jax import tokens  # pylint: disable=wrong-import-position


def parse_args(argv=None):
  """Command-line flags."""
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--size", default="tiny", choices=sorted(pretrain.SIZES),
                      help="model size from videobert_jax/configs/pretrain.py")
  parser.add_argument("--batch", type=int, default=8, help="rows per step (B), both models")
  parser.add_argument("--seq-len", type=int, default=128, help="tokens per row (T)")
  parser.add_argument("--predictions", type=int, default=20,
                      help="masked positions per example (P); a packed row holds the "
                           "config's data.packed_max_predictions")
  parser.add_argument("--pack", choices=["on", "off"], default="on",
                      help="pack our rows (HF is always one example per row)")
  parser.add_argument("--steps", type=int, default=10, help="timed steps per model")
  parser.add_argument("--warmup", type=int, default=2,
                      help="untimed steps after compilation")
  parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16"],
                      help="compute dtype (default: the config's)")
  parser.add_argument("--num-visual-words", type=int, default=tokens.PAPER_NUM_VISUAL_WORDS,
                      help="visual words in the vocabulary (paper: 20736)")
  parser.add_argument("--freeze-embeddings", choices=["config", "on", "off"],
                      default="config", help="our step's frozen input tables (HF trains all)")
  parser.add_argument("--remat", choices=["config", "on", "off"], default="config",
                      help="rematerialise our encoder layers")
  parser.add_argument("--corpus-words", type=int, default=0,
                      help="draw the text from this many WordPieces and rank only "
                           "those (model.mlm_vocab='corpus'; the bundled world uses "
                           "156); 0: every WordPiece, the whole table ranked (as HF)")
  parser.add_argument("--layers", type=int, default=None,
                      help="encoder layers (default: the size's; tiny was 2 before "
                           "2026-12-07, 4 since)")
  parser.add_argument("--skip-hf", action="store_true", help="time only our step")
  parser.add_argument("--json", default=None, help="write the results here (JSON)")
  return parser.parse_args(argv)


def make_config(args):
  """The benchmark's config: the named size with the flags applied."""
  config = pretrain.get_config(args.size)
  config.model.num_visual_words = args.num_visual_words
  config.model.num_layers = args.layers or config.model.num_layers
  config.model.dtype = args.dtype or config.model.dtype
  if args.freeze_embeddings != "config":
    config.model.freeze_embeddings = args.freeze_embeddings == "on"
  if args.remat != "config":
    config.model.remat = args.remat == "on"
  config.data.max_seq_len, config.data.max_predictions = args.seq_len, args.predictions
  config.data.pack = args.pack == "on"
  # A packed row's P and S as the configs set them: about T / 5 and T / 4.
  config.data.packed_max_predictions = max(round(args.seq_len / 5.3), args.predictions)
  config.data.max_segments = args.seq_len // 4
  config.train.batch_size = args.batch
  config.model.mlm_vocab, config.model.mlm_vocab_ids = "full", None
  if args.corpus_words:
    layout = tokens.TokenLayout(config.model.text_vocab_size, config.model.num_visual_words)
    config.model.mlm_vocab = "corpus"
    config.model.mlm_vocab_ids = sorted(tokens.TEXT_SPECIAL_IDS) + [
        int(i) for i in corpus_words(layout, args.corpus_words)] + list(
            range(layout.video_sep_id, layout.num_used_ids))
  config.train.grad_clip_norm = 0.0  # HF's loop below does not clip either
  config.train.warmup_steps = 0
  return config


def corpus_words(layout: tokens.TokenLayout, count: int) -> np.ndarray:
  """The sorted WordPiece ids of a corpus with ``count`` distinct ones (seeded)."""
  rng = np.random.default_rng(1234)
  return np.sort(rng.choice(np.arange(1000, layout.text_vocab_size), count, replace=False))


def example_lengths(rng, n: int):
  """(objective, WordPieces, visual words) of ``n`` examples with VideoBERT's lengths.

  A sentence is lognormal with median 15.9 and sigma 0.36 WordPieces (mean 17,
  p95 29: the issue's ASR figures), joined to the next one half the time as the
  pipeline does; a sentence's span has 4-12 visual words after subsampling.
  """
  def sentences():
    words = np.maximum(np.round(np.exp(rng.normal(np.log(15.9), 0.36, n))), 1)
    more = np.maximum(np.round(np.exp(rng.normal(np.log(15.9), 0.36, n))), 1)
    return (words + (rng.random(n) < 0.5) * more).astype(int)
  objective = rng.integers(0, batch_lib.NUM_OBJECTIVES, n)
  text, video = sentences(), rng.integers(4, 13, n)
  text = np.where(objective == batch_lib.VIDEO, 0, text)
  video = np.where(objective == batch_lib.TEXT, 0, video)
  return objective, text, video


def make_examples(config, n: int, seed: int = 0) -> dict:
  """``n`` examples in the window layout of ``packing.pack_examples`` (15% masked)."""
  layout = tokens.TokenLayout(config.model.text_vocab_size, config.model.num_visual_words)
  t, p = config.data.max_seq_len, config.data.max_predictions
  rng = np.random.default_rng(seed)
  objective, text, video = example_lengths(rng, n)
  out = {k: np.zeros((n, t), np.int32) for k in ("input_ids", "token_type_ids")}
  out.update({k: np.zeros((n, p), np.int32) for k in ("masked_positions", "masked_ids")})
  out.update(num_tokens=np.zeros(n, np.int32), num_masked=np.zeros(n, np.int32),
             objective=objective.astype(np.int32), mlm_weight=np.ones(n, np.float32),
             alignment_label=rng.integers(0, 2, n).astype(np.int32),
             alignment_weight=(objective == batch_lib.VIDEO_TEXT).astype(np.float32))
  ranked = config.model.get("mlm_vocab_ids")
  vocabulary = (np.arange(tokens.MASK_ID + 1, layout.text_vocab_size) if ranked is None
                else np.asarray([i for i in ranked if tokens.MASK_ID < i < layout.text_vocab_size]))
  for i in range(n):
    words = rng.choice(vocabulary, min(text[i], 48 if video[i] else t - 2))
    visual = rng.integers(layout.visual_offset, layout.num_used_ids, video[i])
    middle = [[layout.video_sep_id], visual] if video[i] else []
    ids = np.concatenate([[tokens.CLS_ID], words, *middle, [tokens.SEP_ID]])[:t]
    maskable = np.concatenate([1 + np.arange(len(words)),
                               len(words) + 2 + np.arange(len(visual))]).astype(int)
    maskable = maskable[maskable < len(ids) - 1]
    count = min(max(1, round(0.15 * len(maskable))), p)
    positions = np.sort(rng.choice(maskable, count, replace=False))
    out["input_ids"][i, :len(ids)] = ids
    out["token_type_ids"][i, len(words) + 1:len(ids)] = 1
    out["masked_positions"][i, :count] = positions
    out["masked_ids"][i, :count] = ids[positions]
    out["num_tokens"][i], out["num_masked"][i] = len(ids), count
  return out


def unpacked_batch(examples: dict, rows: np.ndarray, predictions: int) -> dict:
  """The examples ``rows`` one per row (the model batch HF's step takes)."""
  t = examples["input_ids"].shape[1]
  batch = batch_lib.zeros(len(rows), t, predictions)
  for key in ("input_ids", "token_type_ids", "masked_positions", "masked_ids"):
    batch[key][:] = examples[key][rows, :batch[key].shape[1]]
  batch["attention_mask"][:] = np.arange(t)[None] < examples["num_tokens"][rows, None]
  batch["masked_weights"][:] = (np.arange(predictions)[None]
                                < examples["num_masked"][rows, None])
  for key in batch_lib.PER_EXAMPLE:
    batch[key][:] = examples[key][rows]
  return batch


def benchmark_batches(config, seed: int = 0):
  """(our batch, HF's batch, examples covered, their real tokens).

  One packing window of examples is packed as the input pipeline does; our
  batch is B of its rows spread evenly over the window (the part-full last rows
  weigh in), and the examples in them are what both models must process. HF's
  (and ours with ``--pack off``) is B of those examples, one per row.
  """
  from videobert_jax.tasks import packing  # pylint: disable=g-import-not-at-top
  b, data = config.train.batch_size, config.data
  examples = make_examples(config, max(packing.PACK_WINDOW, 64 * b), seed)
  sizes = batch_lib.sizes(dict(data, pack=True))
  rows_of, num_rows = packing.first_fit(
      examples["num_tokens"], examples["num_masked"], seq_len=data.max_seq_len,
      max_predictions=sizes["max_predictions"], max_segments=sizes["max_segments"])
  chosen = np.linspace(0, num_rows - 1, b).round().astype(int)
  covered = np.flatnonzero(np.isin(rows_of, chosen))
  packed = packing.pack_examples(examples, seq_len=data.max_seq_len,
                                 max_predictions=sizes["max_predictions"],
                                 max_segments=sizes["max_segments"])
  packed = {k: v[chosen] for k, v in packed.items()}
  unpacked = unpacked_batch(examples, covered[:b], data.max_predictions)
  ours = packed if data.pack else unpacked
  return ours, unpacked, len(covered), int(examples["num_tokens"][covered].sum())


def time_steps(step_fn, state, steps: int, warmup: int):
  """Compiles, warms up, then times ``steps`` calls; returns (seconds/step, state)."""
  import jax  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  state, out = step_fn(state)
  jax.block_until_ready(out)
  compile_seconds = time.perf_counter() - start
  for _ in range(warmup):
    state, out = step_fn(state)
  jax.block_until_ready((state, out))
  start = time.perf_counter()
  for _ in range(steps):
    state, out = step_fn(state)
  jax.block_until_ready((state, out))
  return (time.perf_counter() - start) / steps, compile_seconds, float(out)


def bench_ours(config, batch, args):
  """Seconds per step of videobert_jax's train step."""
  import jax  # pylint: disable=g-import-not-at-top
  from videobert_jax.train import state as train_lib  # pylint: disable=g-import-not-at-top
  from videobert_jax.models import partitioning  # pylint: disable=g-import-not-at-top
  setup = train_lib.Setup(config)
  state = setup.init_state(jax.random.key(0))
  global_batch = setup.global_batch(batch)
  rng = jax.random.key(1)

  def step(s):
    s, metrics = setup.train_step(s, global_batch, rng)
    return s, metrics["loss_sum"]  # one step: the sum is its loss

  with partitioning.activate(setup.mesh):
    seconds, compile_seconds, loss = time_steps(step, state, args.steps, args.warmup)
  ranked = setup.model.mlm_vocab_ids
  return {"seconds_per_step": seconds, "compile_seconds": compile_seconds, "loss": loss,
          "vocab_size": setup.layout.vocab_size,
          "ranked_vocab_size": setup.layout.vocab_size if ranked is None else len(ranked)}


def bench_hf(config, batch, vocab_size, args):
  """Seconds per step of transformers' FlaxBertForPreTraining with Adam."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top

  m = config.model
  hf_config = transformers.BertConfig(
      vocab_size=vocab_size, hidden_size=m.hidden_size, num_hidden_layers=m.num_layers,
      num_attention_heads=m.num_heads, intermediate_size=m.mlp_dim,
      max_position_embeddings=m.max_len, hidden_dropout_prob=m.dropout_rate,
      attention_probs_dropout_prob=m.attention_dropout_rate, hidden_act="gelu")
  model = transformers.FlaxBertForPreTraining(hf_config, seed=0,
                                              dtype=jnp.dtype(m.dtype))
  tx = optax.adam(config.train.learning_rate, b1=config.train.adam_b1,
                  b2=config.train.adam_b2, eps=config.train.adam_eps)
  device_batch = jax.device_put(batch)
  params = model.params

  def loss_fn(params, b, rng):
    out = model(b["input_ids"], b["attention_mask"], b["token_type_ids"], params=params,
                dropout_rng=rng, train=True)
    logits = jnp.take_along_axis(out.prediction_logits.astype(jnp.float32),
                                 b["masked_positions"][..., None], axis=1)
    mlm = optax.softmax_cross_entropy_with_integer_labels(logits, b["masked_ids"])
    mlm = jnp.sum(mlm * b["masked_weights"]) / jnp.sum(b["masked_weights"])
    nsp = optax.softmax_cross_entropy_with_integer_labels(
        out.seq_relationship_logits.astype(jnp.float32), b["alignment_label"])
    return mlm + jnp.mean(nsp)

  def train_step(params, opt_state, b, rng):
    loss, grads = jax.value_and_grad(loss_fn)(params, b, rng)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  train_step = jax.jit(train_step, donate_argnums=(0, 1))
  rng = jax.random.key(1)

  def step(s):
    p, o = s
    p, o, loss = train_step(p, o, device_batch, rng)
    return (p, o), loss

  seconds, compile_seconds, loss = time_steps(step, (params, tx.init(params)),
                                              args.steps, args.warmup)
  return {"seconds_per_step": seconds, "compile_seconds": compile_seconds, "loss": loss}


def main(argv=None):
  """Runs both steps and the peak measurement; prints a table, optionally writes JSON."""
  args = parse_args(argv)
  import jax  # pylint: disable=g-import-not-at-top
  from videobert_jax.models import flops  # pylint: disable=g-import-not-at-top
  config = make_config(args)
  ours_batch, hf_batch, num_examples, useful_tokens = benchmark_batches(config)
  m = config.model
  devices = jax.devices()
  peak_before = flops.measure_matmul_peak(m.dtype)
  rows_per_step = args.batch
  results = {"size": args.size, "batch": args.batch, "seq_len": args.seq_len,
             "predictions": args.predictions, "dtype": m.dtype, "pack": args.pack,
             "freeze_embeddings": bool(m.freeze_embeddings), "remat": bool(m.remat),
             "device": f"{len(devices)} x {devices[0].device_kind}",
             "examples": num_examples, "useful_tokens": useful_tokens, "runs": {}}
  ours = bench_ours(config, ours_batch, args)
  vocab = ours["vocab_size"]
  # (run, positions with logits per row, steps to process the examples)
  unpacked_steps = -(-num_examples // rows_per_step)
  # (run, logit positions, steps, rows its softmax ranks): MFU counts the work done.
  runs = {"videobert_jax": (ours, batch_lib.sizes(config.data)["max_predictions"],
                            1 if config.data.pack else unpacked_steps,
                            ours["ranked_vocab_size"])}
  if not args.skip_hf:
    runs["hf_flax_bert"] = (bench_hf(config, hf_batch, vocab, args), args.seq_len,
                            unpacked_steps, vocab)
  # Measured before and after the runs, the best taken: a busy (shared) machine
  # must not make the peak look low and the MFU high.
  peak_one = max(peak_before, flops.measure_matmul_peak(m.dtype))
  peak = peak_one if devices[0].platform == "cpu" else peak_one * len(devices)
  results["matmul_peak_tflops"] = peak / 1e12
  for name, (run, logit_positions, steps, ranked) in runs.items():
    per_token = flops.train_flops_per_token(m.num_layers, m.hidden_size, m.mlp_dim,
                                            args.seq_len, ranked, logit_positions)
    tokens_per_second = rows_per_step * args.seq_len / run["seconds_per_step"]
    seconds = steps * run["seconds_per_step"]  # for all the examples
    run.update(tokens_per_second=tokens_per_second, flops_per_token=per_token,
               mfu=tokens_per_second * per_token / peak, steps_for_examples=steps,
               useful_tokens_per_second=useful_tokens / seconds,
               examples_per_second=num_examples / seconds,
               real_token_share=useful_tokens / (steps * rows_per_step * args.seq_len))
    results["runs"][name] = run
  _add_speedups(results)
  _print(results, peak)
  if args.json:
    fileio.write_json(args.json, results)
  return results


def _add_speedups(results) -> None:
  """Ours over HF: useful tokens/s (the headline) and tokens/s (every position)."""
  runs = results["runs"]
  if "hf_flax_bert" in runs:
    ours, hf = runs["videobert_jax"], runs["hf_flax_bert"]
    results["useful_tokens_speedup_vs_hf"] = (ours["useful_tokens_per_second"]
                                              / hf["useful_tokens_per_second"])
    results["speedup_vs_hf"] = ours["tokens_per_second"] / hf["tokens_per_second"]


def _print(results, peak) -> None:
  """The table: useful tokens/s first, then the per-row work figures."""
  print(f"{results['size']}: {results['examples']} examples ({results['useful_tokens']} "
        f"real tokens), batch {results['batch']} x {results['seq_len']}, "
        f"P={results['predictions']}, {results['dtype']}, ours packed: "
        f"{results['pack']}, {results['device']}, measured matmul peak "
        f"{peak / 1e12:.3g} TFLOP/s")
  for name, run in results["runs"].items():
    print(f"  {name:14s} {run['useful_tokens_per_second']:9.0f} useful tokens/s "
          f"({run['real_token_share']:.0%} of positions real, "
          f"{run['examples_per_second']:.1f} examples/s)  "
          f"{run['seconds_per_step'] * 1e3:8.1f} ms/step {run['tokens_per_second']:7.0f} "
          f"tokens/s  MFU {run['mfu']:.1%}  (compile {run['compile_seconds']:.1f} s, "
          f"loss {run['loss']:.3f})")
  if "useful_tokens_speedup_vs_hf" in results:
    print(f"  speed-up vs HF: {results['useful_tokens_speedup_vs_hf']:.2f}x useful "
          f"tokens/s ({results['speedup_vs_hf']:.2f}x tokens/s, every position)")


if __name__ == "__main__":
  main()
