"""``python -m videobert_jax.eval --task=zeroshot|captioning|text_to_video|forecast|alignment``.

Examples::

  python -m videobert_jax.eval --task=zeroshot --workdir=runs/tiny \\
      --youcook=youcook/youcookii_annotations_trainval.json \\
      --features=youcook/features --codebook=codebook.npz
  python -m videobert_jax.eval --task=captioning --workdir=runs/tiny --youcook=... \\
      --features=... --captioner.num_steps=500
  python -m videobert_jax.eval --task=text_to_video --workdir=runs/tiny \\
      --sentence="cut the onion" --features=youcook/features
  python -m videobert_jax.eval --task=forecast --workdir=runs/tiny \\
      --video=VIDEO_ID --time=30 --features=youcook/features
  python -m videobert_jax.eval --task=zeroshot --bundle=runs/tiny_bundle \\
      --youcook=... --features=...
  python -m videobert_jax.eval --task=alignment --workdir=runs/tiny

Several processes (``launch/local.sh --processes N --module videobert_jax.eval --
...``, or ``--distributed=on`` on every host of a pod) split zeroshot's and
captioning's model runs over the segments; process 0 writes the results
(``eval.shards``). text_to_video, forecast and alignment run whole on every process.

``alignment`` reads the run's own validation alignment pairs (its pretraining
datasets, no ``--features``): accuracy split by whether the text names a label
verb or noun, beside a counting reference on the same pairs (``eval.alignment``).

Results: ``WORKDIR/eval/<task>.json`` (and ``.html`` pages for generation); with
``--bundle`` (a bundle of ``python -m videobert_jax.export``, in place of
``--workdir`` + ``--codebook``) ``BUNDLE/eval/`` unless ``--workdir`` is given.
"""

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from videobert_jax import configs
from videobert_jax.train import distributed

TASKS = ("zeroshot", "captioning", "text_to_video", "forecast", "alignment")
FLAGS = flags.FLAGS
flags.DEFINE_enum("task", None, TASKS, "Which evaluation to run.")
flags.DEFINE_string("workdir", None, "Training workdir (config.json, checkpoints/); "
                    "results are written to WORKDIR/eval/.")
flags.DEFINE_integer("checkpoint", None, "Checkpoint step to evaluate (default: newest).")
flags.DEFINE_string("bundle", None, "A bundle of python -m videobert_jax.export, in place "
                    "of --workdir and --codebook (its codebook, vocabulary and label "
                    "lists); results go to --workdir/eval/ if given, else BUNDLE/eval/.")
flags.DEFINE_string("youcook", None, "YouCook II-format annotation JSON "
                    "(zeroshot, captioning).")
flags.DEFINE_string("features", None, "Folder of <video_id>.npy clip features (all "
                    "tasks; for generation, the clips that show visual words).")
flags.DEFINE_string("codebook", None, "Codebook file (default: the one in the training "
                    "config).")
flags.DEFINE_string("template", None, "Text part of the input with [MASK] slots "
                    "(default: the paper's template of the task).")
flags.DEFINE_string("verbs", None, "Verb label list (default: shipped YouCook II list).")
flags.DEFINE_string("nouns", None, "Noun label list (default: shipped YouCook II list).")
flags.DEFINE_bool("supervised", True, "zeroshot: also train the linear baseline.")
flags.DEFINE_bool("cooccurrence", True, "zeroshot: also count the co-occurrence baseline "
                  "(visual words x speech) when the pretraining corpus is readable.")
flags.DEFINE_string("corpus", None, "zeroshot: pretraining corpus for the co-occurrence "
                    "baseline (default: the training config's data.corpus_dir).")
flags.DEFINE_list("rows", ["features", "videobert", "videobert_features"],
                  "captioning: which rows to run.")
flags.DEFINE_multi_string("sentence", [], "text_to_video: a sentence (repeatable).")
flags.DEFINE_string("sentences_file", None, "text_to_video: file with one sentence a line.")
flags.DEFINE_integer("num_video_tokens", 3, "text_to_video: visual words per sentence.")
flags.DEFINE_multi_string("video", [], "forecast: a video id in --features (repeatable).")
flags.DEFINE_float("time", 0.0, "forecast: seconds into the video to forecast from.")
flags.DEFINE_multi_integer("visual_word", [], "forecast: a visual word to start from.")
flags.DEFINE_list("horizons", ["1", "2", "3"], "forecast: steps (clips) ahead.")
flags.DEFINE_integer("context", 8, "forecast: visual words of context from a video.")
flags.DEFINE_integer("top_k", 3, "text_to_video/forecast: visual words shown per slot.")
flags.DEFINE_string("frames", None, "Optional FRAMES_DIR/<video_id>/<clip>.jpg frames "
                    "for the HTML pages.")
flags.DEFINE_integer("batch_size", 32, "Evaluation batch size.")
flags.DEFINE_enum("distributed", "auto", list(distributed.MODES),
                  "Call jax.distributed.initialize() (several processes, as the trainer's "
                  "flag): zeroshot and captioning then split the segments across the "
                  "processes and process 0 writes the results.")
flags.DEFINE_bool("skip_missing", False, "zeroshot/captioning/text_to_video --youcook: "
                  "skip videos without a feature file, or whose features end before "
                  "one of their segments starts (counted and listed in the summary and "
                  "the results), instead of failing.")
if __name__ == "__main__":
  # A config flag with a default applies the command line's overrides as soon as it
  # is defined, so names are resolved and overrides checked before that.
  sys.argv = configs.command_argv(sys.argv, "captioner", default="captioner")
config_flags.DEFINE_config_file(
    "captioner", configs.config_path("captioner"),
    "Captioner config: 'captioner' (installed; 'captioner:paper' is the paper's 40K-step "
    "budget) or FILE.py; override "
    "fields with --captioner.num_steps=...")


def _require(*names):
  # A bundle stands in for the workdir's model.
  missing = [f"--{n}" for n in names
             if not getattr(FLAGS, n) and not (n == "workdir" and FLAGS.bundle)]
  if missing:
    raise ValueError(f"--task={FLAGS.task} needs {' '.join(missing)}")


def _sentences():
  sentences = list(FLAGS.sentence)
  if FLAGS.sentences_file:
    with open(FLAGS.sentences_file, encoding="utf-8") as f:
      sentences += [line.strip() for line in f if line.strip()]
  return sentences


def results_workdir() -> str | None:
  """Where results go: ``--workdir``, else a local ``--bundle`` folder."""
  if FLAGS.workdir or not FLAGS.bundle or "://" in FLAGS.bundle:
    return FLAGS.workdir
  return FLAGS.bundle


def _model():
  """``(workdir, codebook, run or None, verbs, nouns)`` of --workdir or --bundle."""
  if not FLAGS.bundle:
    return FLAGS.workdir, FLAGS.codebook, None, FLAGS.verbs, FLAGS.nouns
  from videobert_jax.export import bundle  # pylint: disable=g-import-not-at-top
  if FLAGS.codebook:
    raise ValueError("--codebook cannot be combined with --bundle (it has its own)")
  if "://" in FLAGS.bundle and not FLAGS.workdir:
    raise ValueError("a remote --bundle needs --workdir for the results")
  run = bundle.load_run(FLAGS.bundle, FLAGS.checkpoint)
  verbs, nouns = bundle.label_paths(run)
  return (FLAGS.workdir or run.workdir, run.config.data.codebook, run,
          FLAGS.verbs or verbs, FLAGS.nouns or nouns)


def run_task() -> dict | None:
  """Runs the task the flags name; returns its results (None on processes but 0)."""
  from videobert_jax.eval import sequences  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import shards  # pylint: disable=g-import-not-at-top
  if FLAGS.task == "alignment":
    if not FLAGS.workdir:  # a bundle has no pretraining datasets to draw pairs from
      raise ValueError("--task=alignment needs --workdir: a training run, whose "
                       "validation alignment pairs it scores")
    from videobert_jax.eval import alignment  # pylint: disable=g-import-not-at-top
    return alignment.run_alignment(FLAGS.workdir, step=FLAGS.checkpoint,
                                   batch_size=FLAGS.batch_size, verbs_path=FLAGS.verbs,
                                   nouns_path=FLAGS.nouns,
                                   write=shards.current().is_main)
  _require("workdir", *(("youcook", "features") if FLAGS.task in ("zeroshot", "captioning")
                        else ("features",)))
  workdir, codebook, run, verbs, nouns = _model()
  common = dict(step=FLAGS.checkpoint, batch_size=FLAGS.batch_size)
  if FLAGS.task == "zeroshot":
    from videobert_jax.eval import zeroshot  # pylint: disable=g-import-not-at-top
    return zeroshot.run_zeroshot(
        workdir, FLAGS.youcook, FLAGS.features, codebook,
        template=FLAGS.template or sequences.ZEROSHOT_TEMPLATE, verbs_path=verbs,
        nouns_path=nouns, supervised=FLAGS.supervised,
        cooccurrence=FLAGS.cooccurrence, corpus_dir=FLAGS.corpus,
        skip_missing=FLAGS.skip_missing, run=run, **common)
  if FLAGS.task == "captioning":
    from videobert_jax.eval import captioning  # pylint: disable=g-import-not-at-top
    return captioning.run_captioning(
        workdir, FLAGS.youcook, FLAGS.features, codebook,
        template=FLAGS.template or sequences.CAPTIONING_TEMPLATE,
        captioner_config=FLAGS.captioner, rows=FLAGS.rows,
        skip_missing=FLAGS.skip_missing, run=run, **common)
  from videobert_jax.eval import generation  # pylint: disable=g-import-not-at-top
  # Not split: every process runs the whole task, and process 0 writes it.
  common["write"] = shards.current().is_main
  if FLAGS.task == "text_to_video":
    recall = None
    if FLAGS.youcook:  # recall@5 of each validation caption against its own clips
      from videobert_jax.eval import restore  # pylint: disable=g-import-not-at-top
      from videobert_jax.eval import text_to_video_recall  # pylint: disable=g-import-not-at-top
      run = run or restore.load_run(workdir, FLAGS.checkpoint, codebook)
      recall = text_to_video_recall.run_recall(
          run, FLAGS.youcook, FLAGS.features, generation.codebook_for(run, codebook),
          batch_size=FLAGS.batch_size, skip_missing=FLAGS.skip_missing)
    return generation.run_text_to_video(
        workdir, _sentences() if FLAGS.sentence or not recall else [],
        FLAGS.features, codebook, num_video_tokens=FLAGS.num_video_tokens,
        top_k=FLAGS.top_k, frames_dir=FLAGS.frames, run=run, recall=recall, **common)
  return generation.run_forecast(
      workdir, FLAGS.features, codebook, video_ids=FLAGS.video,
      seconds=FLAGS.time, visual_words=FLAGS.visual_word, context=FLAGS.context,
      horizons=[int(h) for h in FLAGS.horizons], top_k=FLAGS.top_k,
      frames_dir=FLAGS.frames, run=run, **common)


def _summary(results: dict) -> str:
  """The human-readable end of a run."""
  if "table" in results:
    text = results["table"]
  else:
    from videobert_jax.eval import generation  # pylint: disable=g-import-not-at-top
    text = generation.format_results(results["results"])
    if results.get("recall"):
      from videobert_jax.eval import text_to_video_recall  # pylint: disable=g-import-not-at-top
      text = (text + "\n" if text else "") + text_to_video_recall.format_recall(
          results["recall"])
  skipped = results.get("skipped_videos") or (results.get("recall") or {}).get(
      "skipped_videos")
  if skipped:  # --skip-missing: counted and listed, never silent
    shown = ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more"
                                       if len(skipped) > 10 else "")
    text += (f"\nskipped {len(skipped)} video{'s' if len(skipped) != 1 else ''} "
             f"(--skip_missing: no feature file, or one shorter than its segments): {shown}")
  for key in ("path", "html"):
    if results.get(key):
      text += f"\nwrote {results[key]}"
  return text


def main(argv):
  """Runs one evaluation task and prints its summary; exit 1 on bad input."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from videobert_jax import quiet  # pylint: disable=g-import-not-at-top
  # Orbax's restore and TFDS report at INFO: kept in WORKDIR/logs/eval.log (with the
  # other commands' logs; eval.process-N.log on the other processes), off the
  # terminal unless --verbosity=0. Dropped until the process knows its index.
  undo = quiet.log_to_file(None)
  quiet.import_tensorflow()  # the feature readers use it; minus its start-up lines
  from videobert_jax.corpus.reader import CorpusError  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import shards  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval.caption_metrics import MetricsUnavailableError  # pylint: disable=g-import-not-at-top
  try:
    distributed.initialize(FLAGS.distributed)  # before any device is touched
    procs = shards.current()
    undo()
    if results_workdir():
      quiet.log_to_file(quiet.run_log_path(
          results_workdir(), "eval" if procs.is_main else f"eval.process-{procs.index}"))
    if not FLAGS.task:
      raise ValueError(f"--task is required: one of {', '.join(TASKS)}")
    results = run_task()
  except (CorpusError, ValueError, OSError, ImportError, MetricsUnavailableError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  shards.finish(procs)  # no process leaves the JAX run before process 0 is done
  if procs.is_main:
    print(_summary(results))


if __name__ == "__main__":
  app.run(main)
