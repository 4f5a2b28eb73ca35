"""Zero-shot verb and noun classification on YouCook II (the paper's Table 1).

For every validation segment the input is ``[CLS] <template> [>] <the segment's
visual words> [SEP]`` with the template ``now let me show you how to [MASK] the
[MASK] .``; the verb is read from the first ``[MASK]`` and the noun from the
second. Candidates are the words of the verb (noun) list, scored by the masked
LM's logit of their WordPiece; a list word that is several WordPieces cannot be
predicted by one ``[MASK]`` and is left out of the candidates (it still counts as
a label, so such segments can be missed; the result lists these words). A
prediction is correct when it is any of the segment's labels (``labels.py``);
segments without a label of a kind do not count for that kind.

Rows, in one run:

* BERT language prior: the model before video pretraining (``initial_params``),
  input ``[CLS] <template> [SEP]``: one prediction for every segment.
* VideoBERT language prior: the trained model, same text-only input.
* VideoBERT cross-modal: the trained model with the segment's visual words.
* Supervised: a linear classifier on average-pooled features, trained on the
  training split (``supervised.py``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import numpy as np

from videobert_jax.eval import labels as labels_lib
from videobert_jax.eval import report
from videobert_jax.eval import sequences

COLUMNS = (("verb_top1", "verb top-1"), ("verb_top5", "verb top-5"),
           ("noun_top1", "noun top-1"), ("noun_top5", "noun top-5"))
TOP_K = 5


@dataclasses.dataclass(frozen=True)
class Candidates:
  """The list words a single ``[MASK]`` can predict, with their token ids."""

  lemmas: tuple[str, ...]  # predictable lemmas, in list order
  ids: np.ndarray  # int32 [C]: the WordPiece id of each lemma
  skipped: tuple[str, ...]  # list lemmas that are several WordPieces


def candidates_for(label_list: labels_lib.LabelList,
                   vocab_words: Sequence[str]) -> Candidates:
  """Maps list lemmas to WordPiece ids; words that are not one WordPiece are skipped.

  A lower-case word that is a whole entry of ``vocab.txt`` is exactly one
  WordPiece (the tokenizer's longest match takes the whole word).
  """
  index = {w: i for i, w in enumerate(vocab_words)}
  kept, ids, skipped = [], [], []
  for lemma in label_list.lemmas:
    if lemma in index:
      kept.append(lemma)
      ids.append(index[lemma])
    else:
      skipped.append(lemma)
  return Candidates(tuple(kept), np.asarray(ids, np.int32), tuple(skipped))


def rank(scores: np.ndarray, names: Sequence[str], k: int = TOP_K) -> list[list[str]]:
  """Per row of ``scores`` [N, C], the ``k`` best names (ties: earlier name first)."""
  order = np.argsort(-np.asarray(scores), axis=-1, kind="stable")[:, :k]
  return [[names[j] for j in row] for row in order]


def top_k_accuracy(ranked: Sequence[Sequence[str]], labels: Sequence[frozenset[str]],
                   ks: Sequence[int] = (1, 5)) -> dict[str, Any]:
  """Share of labelled items whose top-k holds any of their labels.

  Args:
    ranked: per item, predictions best first.
    labels: per item, the set of correct labels; items with none are skipped.
    ks: the k values.

  Returns:
    ``{"top1": float | None, "top5": ..., "count": labelled items}``; None when
    no item is labelled.
  """
  if len(ranked) != len(labels):
    raise ValueError(f"{len(ranked)} predictions for {len(labels)} label sets")
  hits = {k: 0 for k in ks}
  count = 0
  for predictions, item_labels in zip(ranked, labels):
    if not item_labels:
      continue
    count += 1
    for k in ks:
      hits[k] += any(p in item_labels for p in list(predictions)[:k])
  out: dict[str, Any] = {f"top{k}": (hits[k] / count if count else None) for k in ks}
  out["count"] = count
  return out


def accuracy_row(name: str, verb_ranked, noun_ranked, verb_labels, noun_labels) -> dict:
  """One table row: top-1/top-5 verb and noun accuracy."""
  verbs = top_k_accuracy(verb_ranked, verb_labels)
  nouns = top_k_accuracy(noun_ranked, noun_labels)
  return {"name": name, "verb_top1": verbs["top1"], "verb_top5": verbs["top5"],
          "noun_top1": nouns["top1"], "noun_top5": nouns["top5"],
          "verb_count": verbs["count"], "noun_count": nouns["count"]}


def mask_slots(example: sequences.Example) -> tuple[int, int]:
  """Positions of the verb (first) and noun (second) ``[MASK]`` of an input."""
  if len(example.text_mask_positions) != 2:
    raise ValueError(f"the zero-shot template needs exactly 2 [MASK] slots (verb, "
                     f"noun), found {len(example.text_mask_positions)}")
  return example.text_mask_positions[0], example.text_mask_positions[1]


def predict(masked_model, examples: Sequence[sequences.Example], verbs: Candidates,
            nouns: Candidates, desc: str | None = None):
  """Ranks verb and noun candidates at each example's two slots."""
  slots = [list(mask_slots(e)) for e in examples]
  both = np.concatenate([verbs.ids, nouns.ids])
  logits = masked_model.run(examples, slots, both, desc=desc)["logits"]
  num_verbs = len(verbs.ids)
  return (rank(logits[:, 0, :num_verbs], verbs.lemmas),
          rank(logits[:, 1, num_verbs:], nouns.lemmas))


def run_zeroshot(workdir: str, annotations: str, features_dir: str,
                 codebook: str | None = None, *, step: int | None = None,
                 template: str = sequences.ZEROSHOT_TEMPLATE,
                 verbs_path: str | None = None, nouns_path: str | None = None,
                 batch_size: int = 32, supervised: bool = True,
                 skip_missing: bool = False, progress: bool = True,
                 write: bool = True, run=None) -> dict[str, Any]:
  """Evaluates zero-shot classification; returns (and writes) the table as a dict.

  Args:
    workdir: the training workdir (checkpoints, config.json); results go to
      ``WORKDIR/eval/zeroshot.json`` and ``zeroshot_predictions.jsonl``.
    annotations: YouCook II-format annotation JSON.
    features_dir: ``<video_id>.npy`` clip features of its videos.
    codebook: codebook file (default: the one the model was trained with).
    step: checkpoint step (default: newest).
    template: the text part with two ``[MASK]`` slots (verb, noun).
    verbs_path, nouns_path: label lists (default: the shipped YouCook II lists).
    batch_size: evaluation batch size.
    supervised: also train and evaluate the linear baseline.
    skip_missing: skip videos without a feature file (counted in the result).
    progress: tqdm bars.
    write: write the JSON files.
    run: an already restored ``checkpoint.Run`` (skips restoring).
  """
  from videobert_jax.eval import restore as checkpoint_lib  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import runner  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import segments as segments_lib  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import supervised as supervised_lib  # pylint: disable=g-import-not-at-top
  from videobert_jax.quantize import codebook as codebook_lib  # pylint: disable=g-import-not-at-top
  from videobert_jax.text import wordpiece  # pylint: disable=g-import-not-at-top

  vocabulary = labels_lib.load_vocabulary(verbs_path, nouns_path)
  run = run or checkpoint_lib.load_run(workdir, step, codebook)
  config, layout = run.config, run.layout
  codebook_path = codebook or config.data.codebook
  if not codebook_path:
    raise ValueError("no codebook: pass --codebook (the model's training config has none)")
  book = codebook_lib.load_codebook(codebook_path)
  if book.num_words != layout.num_visual_words:
    raise ValueError(f"{codebook_path}: codebook has {book.num_words} visual words, the "
                     f"model {layout.num_visual_words}")
  vocab_path = config.data.get("vocab_path")
  words = wordpiece.vocab_words(vocab_path)
  verbs, nouns = candidates_for(vocabulary.verbs, words), candidates_for(vocabulary.nouns, words)
  text_ids = sequences.encode_template(template, vocab_path)
  seq_len = int(config.data.max_seq_len)
  max_video = int(config.data.max_video_tokens)

  subsets = ("training", "validation") if supervised else ("validation",)
  inputs, skipped = segments_lib.load_segment_inputs(
      annotations, features_dir, book, subsets=subsets, skip_missing=skip_missing,
      progress=progress)
  val = [s for s in inputs if s.segment.subset == "validation"]
  train_inputs = [s for s in inputs if s.segment.subset == "training"]
  if not val:
    raise ValueError(f"{annotations}: no validation segments with features")
  val_labels = [vocabulary.labels(s.segment.sentence) for s in val]
  verb_labels = [v for v, _ in val_labels]
  noun_labels = [n for _, n in val_labels]

  masked = runner.MaskedModel(run.model, run.params, run.mesh, seq_len, batch_size)
  text_only = sequences.assemble(text_ids, None, layout, seq_len)
  mask_slots(text_only)  # fail early on a template without two slots
  rows, predictions = [], {}

  initial = runner.MaskedModel(run.model, run.initial_params(), run.mesh, seq_len,
                               batch_size)
  for name, model in (("BERT language prior (before video)", initial),
                      ("VideoBERT language prior (no video)", masked)):
    verb_rank, noun_rank = predict(model, [text_only], verbs, nouns)
    rows.append(accuracy_row(name, verb_rank * len(val), noun_rank * len(val),
                             verb_labels, noun_labels))
  del initial

  examples = [sequences.assemble(text_ids, layout.visual_ids(s.visual_words), layout,
                                 seq_len, max_video) for s in val]
  verb_rank, noun_rank = predict(masked, examples, verbs, nouns,
                                 desc="zero-shot" if progress else None)
  rows.append(accuracy_row("VideoBERT cross-modal", verb_rank, noun_rank,
                           verb_labels, noun_labels))
  predictions["cross_modal"] = (verb_rank, noun_rank)

  if supervised:
    train_labels = [vocabulary.labels(s.segment.sentence) for s in train_inputs]
    ranked = []
    for kind in (0, 1):
      ranked.append(supervised_lib.rank_with_linear_classifier(
          [s.pooled for s in train_inputs], [l[kind] for l in train_labels],
          [s.pooled for s in val], TOP_K))
    if ranked[0] is not None and ranked[1] is not None:
      rows.append(accuracy_row("Supervised (linear, pooled features)", ranked[0],
                               ranked[1], verb_labels, noun_labels))
      predictions["supervised"] = tuple(ranked)

  results = {
      "task": "zeroshot", "workdir": os.path.abspath(workdir), "step": run.step,
      "template": template, "annotations": os.path.abspath(annotations),
      "num_segments": len(val), "num_training_segments": len(train_inputs),
      "skipped_videos": skipped,
      "label_lists": {"verbs": list(vocabulary.verbs.lemmas),
                      "nouns": list(vocabulary.nouns.lemmas),
                      "header": list(vocabulary.verbs.header)},
      "not_single_wordpiece": {"verbs": list(verbs.skipped), "nouns": list(nouns.skipped)},
      "rows": rows,
  }
  results["table"] = format_zeroshot_table(results)
  if write:
    results["path"] = report.write_results(workdir, "zeroshot", results)
    _write_predictions(workdir, val, verb_labels, noun_labels, predictions)
  return results


def format_zeroshot_table(results: dict[str, Any]) -> str:
  """The printed table (accuracies in percent)."""
  counts = results["rows"][0] if results["rows"] else {}
  return (f"Zero-shot classification, {results['num_segments']} validation segments "
          f"({counts.get('verb_count', 0)} with a verb label, "
          f"{counts.get('noun_count', 0)} with a noun label), accuracy in %\n"
          + report.format_table(results["rows"], COLUMNS))


def _write_predictions(workdir, val, verb_labels, noun_labels, predictions) -> None:
  """One JSON line per validation segment: caption, labels and each row's top-5."""
  import json  # pylint: disable=g-import-not-at-top
  from videobert_jax import fileio  # pylint: disable=g-import-not-at-top
  path = os.path.join(report.results_dir(workdir), "zeroshot_predictions.jsonl")
  with fileio.atomic_open(path, "w", encoding="utf-8") as f:
    for i, s in enumerate(val):
      line = {"video_id": s.segment.video_id, "segment": s.segment.segment_index,
              "sentence": s.segment.sentence, "verb_labels": sorted(verb_labels[i]),
              "noun_labels": sorted(noun_labels[i])}
      for name, (verb_rank, noun_rank) in predictions.items():
        line[f"{name}_verbs"] = verb_rank[i]
        line[f"{name}_nouns"] = noun_rank[i]
      f.write(json.dumps(line) + "\n")
