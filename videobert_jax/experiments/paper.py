"""``experiments paper``: every pretraining and evaluation the paper's three tables need.

Runs, in ``W/runs/``: ``full`` (the whole corpus, the budget's recipe), one run per
Table 2 subset (``subset_10`` ... at the full run's number of epochs, on the same
codebook) and ``video_only`` (the video objective alone: Table 3's "VideoBERT (video
only)"). Each finished stage leaves its result in ``W/stages/<stage>.json``, so a
rerun after an interruption continues where it stopped (training itself resumes from
its last checkpoint); delete a stage's file to redo it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Callable, Sequence

import numpy as np

from videobert_jax import fileio
from videobert_jax.experiments import budgets as budgets_lib
from videobert_jax.experiments import report as report_lib
from videobert_jax.experiments import subsets as subsets_lib
from videobert_jax.stages import Stages

VIDEO_ONLY_MIXTURE = {"text": 0.0, "video": 1.0, "video_text": 0.0}
CAPTION_ROWS_FULL = ("features", "videobert", "videobert_features")
ANNOTATIONS = "youcookii_annotations_trainval.json"  # in the --youcook folder
MIN_VALIDATION_VIDEOS = 3  # a subset's validation split is never empty


@dataclasses.dataclass(frozen=True)
class Inputs:
  """What ``experiments paper`` was asked to do."""

  corpus_dir: str
  youcook_dir: str  # youcookii_annotations_trainval.json and features/<id>.npy
  workdir: str
  budget: budgets_lib.Budget
  fractions: Sequence[float] = (0.1, 0.25, 0.5, 1.0)
  seeds: Sequence[int] = (0, 1, 2)  # captioner seeds (Table 3's spread)
  seed: int = 0  # pretraining, codebook and subset seed
  vocab: str | None = None
  init_checkpoint: str | None = None
  codebook: str | None = None  # an existing codebook (default: fit one)

  @property
  def annotations(self) -> str:
    return os.path.join(self.youcook_dir, ANNOTATIONS)

  @property
  def features_dir(self) -> str:
    return os.path.join(self.youcook_dir, "features")


class StageCache:
  """Stage results kept in ``W/stages/``: a rerun reuses what already finished."""

  def __init__(self, workdir: str, stages: Stages):
    self.folder = os.path.join(workdir, "stages")
    self.stages = stages

  def run(self, name: str, key: Any, fn: Callable[[], Any],
          outputs: Sequence[str] = ()) -> Any:
    """``fn()`` as stage ``name``, or its saved result when ``key`` is unchanged.

    ``outputs``: files the stage writes; a saved result whose files are gone is
    redone.
    """
    slug = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
    path = os.path.join(self.folder, f"{slug}.json")
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode())
    digest = digest.hexdigest()[:16]
    if os.path.isfile(path) and all(os.path.exists(o) for o in outputs):
      with open(path, encoding="utf-8") as f:
        saved = json.load(f)
      if saved.get("key") == digest:
        print(f"\n== {name}: done earlier ({path})", flush=True)
        self.stages.results[name] = saved["result"]
        # The time it took when it ran, so a report covers every stage of the run.
        self.stages.seconds[name] = saved.get("seconds", 0.0)
        return saved["result"]
    result = self.stages.run(name, fn)
    fileio.write_json(path, {"key": digest, "result": result,
                             "seconds": self.stages.seconds[name]})
    return result


def corpus_config(spec: str, corpus_dir: str, codebook: str, tfds_dir: str, seed: int,
                  *, steps: int | None = None, vocab: str | None = None):
  """``configs.load(spec)`` pointed at a corpus, its codebook and TFDS folder.

  ``seed`` seeds the model and the data order; ``steps`` (if set) replaces the
  config's number of steps. Every command that trains on a corpus starts here.
  """
  from videobert_jax import configs  # pylint: disable=g-import-not-at-top
  config = configs.load(spec)
  config.data.corpus_dir = corpus_dir
  config.data.codebook = codebook
  config.data.tfds_data_dir = tfds_dir
  config.data.vocab_path = vocab
  config.train.seed = config.data.seed = seed
  if steps:
    config.train.num_steps = steps
  return config


def pretrain_config(inputs: Inputs, corpus_dir: str, codebook: str, tfds_dir: str, *,
                    steps: int | None = None, mixture: dict | None = None,
                    min_validation_videos: int | None = None):
  """The budget's pretraining config on ``corpus_dir``."""
  config = corpus_config(f"pretrain:{inputs.budget.size}", corpus_dir, codebook, tfds_dir,
                         inputs.seed, steps=steps or inputs.budget.steps,
                         vocab=inputs.vocab)
  if inputs.init_checkpoint:
    config.init.checkpoint = inputs.init_checkpoint
  if mixture:
    config.data.mixture_rates.update(mixture)
  if min_validation_videos:
    percent = 100.0 * MIN_VALIDATION_VIDEOS / min_validation_videos
    config.data.validation_percent = min(50.0, max(config.data.validation_percent,
                                                   percent))
  return config


def pretrain(config, workdir: str) -> dict:
  """Trains (or resumes, or finds finished) one run; returns its final metrics."""
  from videobert_jax.train import loop  # pylint: disable=g-import-not-at-top
  metrics = loop.train(config, workdir)
  return {k: float(v) for k, v in metrics.items()
          if isinstance(v, (int, float, np.number)) or getattr(v, "ndim", None) == 0}


def zero_shot(workdir: str, youcook_dir: str, codebook: str, *, baselines: bool) -> dict:
  """The zero-shot rows (both protocols) of one run, on ``youcook_dir``'s validation."""
  from videobert_jax.eval import zeroshot  # pylint: disable=g-import-not-at-top
  result = zeroshot.run_zeroshot(
      workdir, os.path.join(youcook_dir, ANNOTATIONS),
      os.path.join(youcook_dir, "features"), codebook, supervised=baselines,
      cooccurrence=baselines)
  print(result["table"])
  return {"rows": result["rows"], "num_segments": result["num_segments"],
          "step": result["step"]}


def text_to_video(workdir: str, youcook_dir: str, codebook: str) -> dict:
  """Text-to-video recall@5 of one run against the frequency prior (validation)."""
  from videobert_jax.eval import generation  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import restore  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import text_to_video_recall  # pylint: disable=g-import-not-at-top
  run = restore.load_run(workdir, codebook=codebook)
  recall = text_to_video_recall.run_recall(
      run, os.path.join(youcook_dir, ANNOTATIONS), os.path.join(youcook_dir, "features"),
      generation.codebook_for(run, codebook), progress=False)
  print("   " + text_to_video_recall.format_recall(recall))
  return {k: recall[k] for k in ("k", "segments", "model_recall", "prior_recall", "ratio")}


def captioning(workdir: str, inputs: Inputs, codebook: str, rows: Sequence[str]) -> dict:
  """``{row: [metrics per captioner seed]}`` for one run."""
  from videobert_jax import configs  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import captioning as captioning_lib  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import restore  # pylint: disable=g-import-not-at-top
  run = restore.load_run(workdir, codebook=codebook)
  out: dict[str, list] = {row: [] for row in rows}
  for seed in inputs.seeds:
    config = configs.load(inputs.budget.captioner)
    config.seed = seed
    if inputs.budget.caption_steps:
      config.num_steps = inputs.budget.caption_steps
    result = captioning_lib.run_captioning(
        workdir, inputs.annotations, inputs.features_dir, codebook,
        captioner_config=config, rows=rows, write=False, run=run)
    print(f"   captioner seed {seed}:\n{result['table']}")
    for row in result["rows"]:
      out[row["row"]].append({**row, "seed": seed})
  return out


def shared_codebook(cache: StageCache, corpus_dir: str, workdir: str, levels: int,
                    clusters: int, seed: int, existing: str | None = None) -> str:
  """The codebook every run of an experiment shares (fit once on the whole corpus)."""
  if existing:
    return os.path.abspath(existing)
  from videobert_jax.quantize import fit_corpus  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, "codebook.npz")
  # Refit only when asked for another codebook or the file is gone: a rewritten
  # codebook (new mtime) would make every built TFDS dataset refuse it.
  cache.run(f"fit the codebook ({clusters}^{levels} visual words)",
            [corpus_dir, levels, clusters, seed],
            lambda: fit_corpus.fit_corpus_codebook(corpus_dir, path, levels, clusters,
                                                   seed=seed), outputs=[path])
  return path


def _table2_runs(inputs: Inputs, cache: StageCache, codebook: str,
                 full_steps: int) -> list[dict]:
  """Pretrains and evaluates each subset below 100%; returns their results."""
  ids = subsets_lib.corpus_video_ids(inputs.corpus_dir)
  partial = [f for f in inputs.fractions if f < 1.0]
  out = []
  for fraction, chosen in subsets_lib.nested_subsets(ids, partial, inputs.seed).items():
    pct = f"{100 * fraction:g}"
    corpus = subsets_lib.write_subset_corpus(
        inputs.corpus_dir, chosen, os.path.join(inputs.workdir, "subsets", pct))
    steps = budgets_lib.subset_steps(full_steps, len(chosen), len(ids),
                                     inputs.budget.min_steps)
    config = pretrain_config(inputs, corpus, codebook,
                             os.path.join(inputs.workdir, "tfds", f"subset_{pct}"),
                             steps=steps, min_validation_videos=len(chosen))
    workdir = os.path.join(inputs.workdir, "runs", f"subset_{pct}")
    name = f"pretrain on {pct}% of the videos ({len(chosen)}, {steps} steps)"
    cache.run(name, [config.to_dict()], lambda: pretrain(config, workdir))
    result = cache.run(f"zero-shot, {pct}% of the videos", [workdir, steps],
                       lambda: zero_shot(workdir, inputs.youcook_dir, codebook,
                                         baselines=False))
    out.append({"fraction": fraction, "num_videos": len(chosen), "steps": steps,
                **result})
  return out


def run_paper(inputs: Inputs) -> dict:
  """Runs every stage; writes ``W/report.json`` and ``W/report.html``; returns the report."""
  os.makedirs(inputs.workdir, exist_ok=True)
  stages = Stages()
  cache = StageCache(inputs.workdir, stages)
  codebook = shared_codebook(cache, inputs.corpus_dir, inputs.workdir,
                             inputs.budget.levels, inputs.budget.clusters, inputs.seed,
                             inputs.codebook)
  full_config = pretrain_config(inputs, inputs.corpus_dir, codebook,
                                os.path.join(inputs.workdir, "tfds", "full"))
  full_dir = os.path.join(inputs.workdir, "runs", "full")
  full_steps = int(full_config.train.num_steps)
  full = cache.run(f"pretrain the full model ({full_steps} steps)",
                   [full_config.to_dict()], lambda: pretrain(full_config, full_dir))
  table1 = cache.run("zero-shot, full model", [full_dir, full_steps],
                     lambda: zero_shot(full_dir, inputs.youcook_dir, codebook, baselines=True))
  subsets = _table2_runs(inputs, cache, codebook, full_steps)
  video_config = pretrain_config(inputs, inputs.corpus_dir, codebook,
                                 os.path.join(inputs.workdir, "tfds", "full"),
                                 mixture=VIDEO_ONLY_MIXTURE)
  video_dir = os.path.join(inputs.workdir, "runs", "video_only")
  cache.run("pretrain the video-only model", [video_config.to_dict()],
            lambda: pretrain(video_config, video_dir))
  caption_key = [list(inputs.seeds), inputs.budget.captioner, inputs.budget.caption_steps]
  captions_full = cache.run(
      f"captioning, full model ({len(inputs.seeds)} seeds)", [full_dir, *caption_key],
      lambda: captioning(full_dir, inputs, codebook, CAPTION_ROWS_FULL))
  captions_video = cache.run(
      f"captioning, video-only model ({len(inputs.seeds)} seeds)",
      [video_dir, *caption_key],
      lambda: captioning(video_dir, inputs, codebook, ("videobert",)))
  report = report_lib.build_report(
      budget=inputs.budget.name, full=full, table1=table1,
      table2=[*subsets, {"fraction": 1.0, "num_videos": len(
          subsets_lib.corpus_video_ids(inputs.corpus_dir)), "steps": full_steps,
          **table1}],
      captions_full=captions_full, captions_video_only=captions_video["videobert"],
      seconds=stages.seconds)
  return report_lib.write_report(inputs.workdir, report)
