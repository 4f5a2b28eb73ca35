"""Video captioning with VideoBERT features (the paper's Section 4.4 and Table 3).

Features of a segment, as in the paper: the input is the template ``now let's
[MASK] the [MASK] to the [MASK], and then [MASK] the [MASK] .`` followed by the
segment's visual words; the feature is the average of the video tokens' last
hidden states concatenated with the average of the masked text tokens' hidden
states (2H values), optionally concatenated with the average-pooled clip
features. A transformer encoder-decoder (``captioner.py``, sizes in
``configs/captioner.py``) is trained on the training split and decoded on the
validation split; BLEU-3/4, METEOR, ROUGE-L and CIDEr come from pycocoevalcap.

Rows: features only (pooled clip features), VideoBERT only, VideoBERT +
features. Predictions are written to ``WORKDIR/eval/captions_<row>.json`` so the
metrics can be recomputed with pycocoevalcap independently.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from videobert_jax import tokens
from videobert_jax.eval import caption_metrics
from videobert_jax.eval import report
from videobert_jax.eval import sequences

ROWS = (("features", "Features only (pooled)"),
        ("videobert", "VideoBERT only"),
        ("videobert_features", "VideoBERT + features"))
COLUMNS = tuple((m, m) for m in caption_metrics.METRICS)


def load_captioner_config():
  """The installed ``videobert_jax/configs/captioner.py`` ``get_config()``."""
  from videobert_jax.configs import captioner  # pylint: disable=g-import-not-at-top
  return captioner.get_config()


def _pool_video_and_masks(examples: Sequence[sequences.Example], hidden: np.ndarray):
  """Per example: mean hidden over visual words ++ mean over the text [MASK]s."""
  out = []
  for example, h in zip(examples, hidden):
    video = list(example.video_positions) or [0]  # no clip: fall back to [CLS]
    out.append(np.concatenate([h[video].mean(0), h[list(example.text_mask_positions)].mean(0)]))
  return np.stack(out)


def videobert_features(masked_model, inputs, layout: tokens.TokenLayout, text_ids,
                       max_video: int, progress: bool = True) -> np.ndarray:
  """VideoBERT captioning features ``[N, 2H]`` of segment inputs."""
  examples = [sequences.assemble(text_ids, layout.visual_ids(s.visual_words), layout,
                                 masked_model.seq_len, max_video) for s in inputs]
  positions = [list(e.text_mask_positions) for e in examples]
  out = masked_model.run(examples, positions, np.asarray([tokens.MASK_ID], np.int32),
                         reduce_hidden=_pool_video_and_masks,
                         desc="captioning features" if progress else None)
  return out["hidden"]


def run_captioning(workdir: str, annotations: str, features_dir: str,
                   codebook: str | None = None, *, step: int | None = None,
                   template: str = sequences.CAPTIONING_TEMPLATE, captioner_config=None,
                   rows: Sequence[str] = tuple(r for r, _ in ROWS), batch_size: int = 32,
                   skip_missing: bool = False, progress: bool = True, write: bool = True,
                   run=None, processes=None) -> dict[str, Any] | None:
  """Trains and evaluates the captioner for each row; returns (and writes) the table.

  With several processes (``eval.shards``) each computes the VideoBERT features
  of its share of the segments; process 0 trains and scores the captioners and
  returns the results, the others return None.

  Args:
    workdir: training workdir; results go to ``WORKDIR/eval/captioning.json``.
    annotations, features_dir, codebook, step, batch_size, skip_missing,
      progress, write, run: as ``zeroshot.run_zeroshot``.
    template: the text part with ``[MASK]`` slots.
    captioner_config: ``configs/captioner.py`` config (default: its get_config()).
    rows: which of ``ROWS`` to run.
    processes: an ``eval.shards.Processes`` (default: this JAX run's).
  """
  from videobert_jax.eval import shards  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import restore as checkpoint_lib  # pylint: disable=g-import-not-at-top
  from videobert_jax.quantize import codebook as codebook_lib  # pylint: disable=g-import-not-at-top
  unknown = set(rows) - {r for r, _ in ROWS}
  if unknown:
    raise ValueError(f"unknown captioning rows {sorted(unknown)}; choose from "
                     f"{[r for r, _ in ROWS]}")
  caption_metrics.check_available()  # fail before the slow part
  procs = processes or shards.current()
  progress = progress and procs.is_main
  config = captioner_config or load_captioner_config()
  run = run or checkpoint_lib.load_run(workdir, step, codebook)
  codebook_path = codebook or run.config.data.codebook
  if not codebook_path:
    raise ValueError("no codebook: pass --codebook (the model's training config has none)")
  book = codebook_lib.load_codebook(codebook_path)
  splits, skipped = _load_splits(annotations, features_dir, book, skip_missing, progress)
  features = _row_features(run, splits, rows, template, batch_size, progress, procs,
                           report.results_dir(workdir))
  if features is None:  # another process than 0: its shares are with process 0
    return None
  table, outputs, references = _train_and_score(features, splits, rows, config, progress)

  results = {"task": "captioning", "workdir": os.path.abspath(workdir), "step": run.step,
             "template": template, "annotations": os.path.abspath(annotations),
             "num_training_segments": len(splits["training"]),
             "num_validation_segments": len(splits["validation"]),
             "skipped_videos": skipped, "captioner": config.to_dict(), "rows": table}
  results["table"] = format_captioning_table(results)
  if write:
    for row, predictions in outputs.items():
      report.write_results(workdir, f"captions_{row}", {
          "references": references, "predictions": predictions})
    results["path"] = report.write_results(workdir, "captioning", results)
  return results


def _load_splits(annotations: str, features_dir: str, book, skip_missing: bool,
                 progress: bool) -> tuple[dict[str, list], Any]:
  """Segment inputs by subset (``training``, ``validation``) and the skipped videos;
  an empty subset is an error, as no captioner could be trained or scored."""
  from videobert_jax.eval import segments as segments_lib  # pylint: disable=g-import-not-at-top
  inputs, skipped = segments_lib.load_segment_inputs(
      annotations, features_dir, book, subsets=("training", "validation"),
      skip_missing=skip_missing, progress=progress)
  splits = {name: [s for s in inputs if s.segment.subset == name]
            for name in ("training", "validation")}
  for name, items in splits.items():
    if not items:
      raise ValueError(f"{annotations}: no {name} segments with features")
  return splits, skipped


def _row_features(run, splits: dict[str, list], rows: Sequence[str], template: str,
                  batch_size: int, progress: bool, procs=None,
                  folder: str = "") -> dict[tuple[str, str], np.ndarray] | None:
  """``(row, subset) -> [N, F]`` captioner inputs of every row asked for.

  Each process of ``procs`` (default: one) computes the VideoBERT features of
  its share of each subset (``eval.shards``, part files in ``folder``); None on
  processes other than 0.
  """
  from videobert_jax.eval import runner  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import shards  # pylint: disable=g-import-not-at-top
  procs = procs or shards.Processes()
  features = {}
  # The VideoBERT forward passes are the slow part: run them only when a row needs them.
  if {"videobert", "videobert_features"} & set(rows):
    masked = runner.MaskedModel(run.model, run.params, run.mesh,
                                int(run.config.data.max_seq_len), batch_size)
    text_ids = sequences.encode_template(template, run.config.data.get("vocab_path"))
    for name, items in splits.items():
      merged = shards.map_shared(
          lambda share: {"features": videobert_features(
              masked, share, run.layout, text_ids, int(run.config.data.max_video_tokens),
              progress)},
          items, masked.batch_size, procs, folder, f"captioning-{name}")
      if merged is not None:
        features[("videobert", name)] = merged["features"]
  if not procs.is_main:
    return None
  for name, items in splits.items():
    features[("features", name)] = np.stack([s.pooled for s in items])
    if ("videobert", name) in features:
      features[("videobert_features", name)] = np.concatenate(
          [features[("videobert", name)], features[("features", name)]], axis=1)
  return features


def _train_and_score(features: dict, splits: dict[str, list], rows: Sequence[str], config,
                     progress: bool) -> tuple[list[dict], dict, dict]:
  """Trains one captioner per row on the training split and scores it on validation.

  Returns ``(table rows, row -> predictions, references)``, captions keyed by ``_key``.
  """
  from videobert_jax.eval import captioner as captioner_lib  # pylint: disable=g-import-not-at-top
  train_captions = [s.segment.sentence for s in splits["training"]]
  val = splits["validation"]
  references = {_key(s): [s.segment.sentence] for s in val}
  table, outputs = [], {}
  for row, title in ROWS:
    if row not in rows:
      continue
    trained = captioner_lib.train_captioner(features[(row, "training")], train_captions,
                                            config, progress=progress)
    predicted = captioner_lib.generate(trained, features[(row, "validation")])
    predictions = {_key(s): p for s, p in zip(val, predicted)}
    scores = caption_metrics.score_captions(references, predictions)
    table.append({"name": title, "row": row, **scores,
                  "train_loss": trained.final_loss,
                  "feature_dim": int(features[(row, "training")].shape[1])})
    outputs[row] = predictions
  return table, outputs, references


def _key(segment_input) -> str:
  """A segment's id in the caption files: ``<video_id>_<segment index>``."""
  return f"{segment_input.segment.video_id}_{segment_input.segment.segment_index}"


def format_captioning_table(results: dict[str, Any]) -> str:
  """The printed table: BLEU, METEOR, ROUGE-L x100 as in the paper, CIDEr as is."""
  shown = [{**r, **{m: 100 * r[m] for m in caption_metrics.METRICS if m != "CIDEr"}}
           for r in results["rows"]]
  return (f"Captioning, {results['num_validation_segments']} validation segments "
          "(BLEU, METEOR, ROUGE-L x100; CIDEr as is)\n"
          + report.format_table(shown, COLUMNS, percent=False))
