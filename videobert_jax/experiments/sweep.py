"""``experiments sweep``: recipe variants x seeds on a dev corpus, with mean and spread.

How a recipe is chosen without looking at the reported split: run each candidate
(a named set of config overrides) with 3 or more seeds on a *dev* world (another
``corpus synthesize --seed``, or a held-out part of YouCook II's training videos as
the ``--youcook`` folder's validation subset), compare the mean and standard
deviation of the zero-shot and alignment columns, and only then set the default.
``docs/training.md`` records the sweeps behind this project's defaults.
"""

from __future__ import annotations

import ast
import dataclasses
import os
from typing import Any, Sequence

import numpy as np

from videobert_jax import fileio
from videobert_jax.experiments import paper
from videobert_jax.stages import Stages

CROSS_MODAL = "VideoBERT cross-modal"
PRIOR = "VideoBERT language prior (no video)"
# (column, zero-shot row, protocol, field); alignment and loss come from the metrics.
ZEROSHOT_COLUMNS = (
    ("verb_top1", CROSS_MODAL, "label_lists", "verb_top1"),
    ("verb_top5", CROSS_MODAL, "label_lists", "verb_top5"),
    ("noun_top1", CROSS_MODAL, "label_lists", "noun_top1"),
    ("noun_top5", CROSS_MODAL, "label_lists", "noun_top5"),
    ("open_verb_top5", CROSS_MODAL, "open_vocabulary", "verb_top5"),
    ("open_noun_top5", CROSS_MODAL, "open_vocabulary", "noun_top5"),
    ("prior_verb_top5", PRIOR, "label_lists", "verb_top5"),
)
METRIC_COLUMNS = (("eval_alignment", "eval/alignment/accuracy"),
                  ("train_loss", "train/loss"))
# Text-to-video recall@5 (percent) and its ratio to the text-blind frequency prior.
RECALL_COLUMNS = (("t2v_recall5", "model_recall"), ("t2v_vs_prior", "ratio"))
COLUMNS = (tuple(c for c, *_ in ZEROSHOT_COLUMNS) + tuple(c for c, _ in METRIC_COLUMNS)
           + tuple(c for c, _ in RECALL_COLUMNS))


@dataclasses.dataclass(frozen=True)
class Variant:
  """A named recipe: dotted config fields and their values."""

  name: str
  overrides: tuple[tuple[str, Any], ...] = ()


def parse_variant(spec: str) -> Variant:
  """``lr2e-3:train.learning_rate=2e-3,train.num_steps=1500`` -> a Variant."""
  name, _, fields = spec.partition(":")
  if not name or not all(c.isalnum() or c in "-_." for c in name):
    raise ValueError(f"--variant {spec!r}: a name of letters, digits, -_. comes first")
  items = list(filter(None, fields.split(",")))
  return Variant(name, tuple(parse_override(item, flag="--variant", spec=spec)
                             for item in items))


def parse_override(item: str, *, flag: str = "--set", spec: str | None = None
                   ) -> tuple[str, Any]:
  """``train.learning_rate=2e-3`` -> (field, value): a Python literal, else the text."""
  key, sep, text = item.partition("=")
  if not sep or not key.strip():
    raise ValueError(f"{flag} {spec or item!r}: {item!r} is not FIELD=VALUE")
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text  # a bare string
  return key.strip(), value


def apply_overrides(config, overrides: Sequence[tuple[str, Any]], flag: str = "--variant"):
  """Sets each dotted field of ``config``; a field it does not have is an error."""
  for key, value in overrides:
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
      node = node.get(part) if hasattr(node, "get") else None
    if node is None or not hasattr(node, "get") or leaf not in node:
      raise ValueError(f"{flag}: the pretraining config has no field {key!r}")
    node[leaf] = value
  return config


def run_config(corpus_dir: str, codebook: str, tfds_dir: str, size: str, seed: int,
               steps: int | None, variant: Variant, vocab: str | None = None):
  """The pretraining config of one variant and seed."""
  config = paper.corpus_config(f"pretrain:{size}", corpus_dir, codebook, tfds_dir, seed,
                               steps=steps, vocab=vocab)
  return apply_overrides(config, variant.overrides)


def run_columns(zero_shot: dict, metrics: dict,
                recall: dict | None = None) -> dict[str, float | None]:
  """One run's sweep columns (accuracies and recall in percent)."""
  rows = {(r["name"], r["protocol"]): r for r in zero_shot["rows"]}
  out: dict[str, float | None] = {}
  for column, row, protocol, field in ZEROSHOT_COLUMNS:
    value = rows.get((row, protocol), {}).get(field)
    out[column] = None if value is None else 100.0 * value
  for column, key in METRIC_COLUMNS:
    out[column] = metrics.get(key)
  for column, key in RECALL_COLUMNS:
    value = (recall or {}).get(key)
    out[column] = None if value is None else (100.0 * value if key == "model_recall"
                                              else value)
  return out


def summarise(runs: Sequence[dict]) -> dict[str, Any]:
  """Per column: mean and sample standard deviation over the runs that have it."""
  out: dict[str, Any] = {"seeds": [r["seed"] for r in runs]}
  for column in COLUMNS:
    values = np.asarray([r[column] for r in runs if r.get(column) is not None])
    out[column] = float(values.mean()) if values.size else None
    out[f"{column}_std"] = float(values.std(ddof=1)) if values.size > 1 else None
  return out


def format_sweep(result: dict[str, Any]) -> str:
  """The printed table: mean +- std of each column, one line per variant."""
  def cell(row, column):
    mean, std = row.get(column), row.get(f"{column}_std")
    if mean is None:
      return "-"
    digits = 3 if column in ("eval_alignment", "train_loss") else (
        2 if column == "t2v_vs_prior" else 1)
    return f"{mean:.{digits}f}" + ("" if std is None else f"+-{std:.{digits}f}")
  from videobert_jax.eval import report  # pylint: disable=g-import-not-at-top
  rows = [{"name": v["name"], **{c: cell(v, c) for c in COLUMNS}}
          for v in result["variants"]]
  table = report.format_table(rows, [(c, c) for c in COLUMNS])
  ceiling = result.get("cooccurrence")
  note = ("" if not ceiling else "\nco-occurrence (label lists, the data's ceiling): "
          + " / ".join(f"{ceiling[c]:.1f}" for c in COLUMNS[:4]))
  return (f"Sweep over seeds {result['seeds']} (accuracy in %; label lists unless "
          "'open_'):\n" + table + note)


def run_sweep(corpus_dir: str, youcook_dir: str, workdir: str,
              variants: Sequence[Variant], seeds: Sequence[int], *, size: str = "tiny",
              steps: int | None = None, levels: int = 2, clusters: int = 12,
              codebook: str | None = None, vocab: str | None = None) -> dict[str, Any]:
  """Trains and evaluates every variant x seed; writes ``W/sweep.json``; returns it."""
  os.makedirs(workdir, exist_ok=True)
  cache = paper.StageCache(workdir, Stages())
  book = paper.shared_codebook(cache, corpus_dir, workdir, levels, clusters, 0, codebook)
  per_variant, ceiling = [], None
  for variant in variants:
    runs = []
    for seed in seeds:
      config = run_config(corpus_dir, book, os.path.join(workdir, "tfds", variant.name),
                          size, seed, steps, variant, vocab)
      run_dir = os.path.join(workdir, "runs", f"{variant.name}_seed{seed}")
      label = f"{variant.name}, seed {seed}"
      metrics = cache.run(f"pretrain {label}", [config.to_dict()],
                          lambda c=config, d=run_dir: paper.pretrain(c, d))
      baselines = ceiling is None
      zero_shot = cache.run(f"zero-shot {label}", [run_dir, config.to_dict(), baselines],
                            lambda d=run_dir, b=baselines: paper.zero_shot(
                                d, youcook_dir, book, baselines=b))
      if baselines:
        ceiling = run_columns({"rows": [{**r, "name": CROSS_MODAL}
                                        for r in zero_shot["rows"]
                                        if r["name"].startswith("Co-occurrence")]}, {})
      recall = cache.run(f"text-to-video {label}", [run_dir, config.to_dict()],
                         lambda d=run_dir: paper.text_to_video(d, youcook_dir, book))
      runs.append({"seed": seed, **run_columns(zero_shot, metrics, recall)})
    per_variant.append({"name": variant.name, "overrides": dict(variant.overrides),
                        **summarise(runs), "runs": runs})
  result = {"corpus": corpus_dir, "youcook": youcook_dir, "size": size, "steps": steps,
            "seeds": list(seeds), "columns": list(COLUMNS), "cooccurrence": ceiling,
            "variants": per_variant}
  fileio.write_json(os.path.join(workdir, "sweep.json"), result)
  return result
