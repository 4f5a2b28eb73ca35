"""Zero-shot verb and noun classification on YouCook II (the paper's Table 1).

For every validation segment the input is ``[CLS] <template> [>] <the segment's
visual words> [SEP]`` with the template ``now let me show you how to [MASK] the
[MASK] .``; the verb is read from the first ``[MASK]`` and the noun from the
second. A prediction is correct when it is any of the segment's labels
(``labels.py``); segments without a label of a kind do not count for that kind.

Two protocols, both in one run (every row says which in ``"protocol"``):

* ``label_lists``: candidates are the words of the verb (noun) list, scored by
  the masked LM's logit of their WordPiece; a list word that is several
  WordPieces cannot be predicted by one ``[MASK]`` and is left out of the
  candidates (it still counts as a label, so such segments can be missed; the
  result lists these words).
* ``open_vocabulary`` (the paper's): candidates are all ordinary whole-word
  WordPieces (``vocabulary.py``: no specials, ``[unused*]``, ``##`` pieces,
  non-alphabetic pieces or visual words); a predicted word is correct when its
  lemma, as the label code lemmatises a caption word, is a label.

Rows, in one run, per protocol:

* BERT language prior: the model before video pretraining (``initial_params``),
  input ``[CLS] <template> [SEP]``: one prediction for every segment.
* VideoBERT language prior: the trained model, same text-only input.
* VideoBERT cross-modal: the trained model with the segment's visual words.
* Co-occurrence (visual words x speech): counts in the pretraining corpus, no
  training (``cooccurrence.py``); present when the corpus is readable.
* Supervised (label lists only): a linear classifier on average-pooled
  features, trained on the training split (``supervised.py``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import numpy as np

from videobert_jax.eval import labels as labels_lib
from videobert_jax.eval import report
from videobert_jax.eval import sequences
from videobert_jax.eval import vocabulary as vocabulary_lib

COLUMNS = (("verb_top1", "verb top-1"), ("verb_top5", "verb top-5"),
           ("noun_top1", "noun top-1"), ("noun_top5", "noun top-5"))
TOP_K = 5
LABEL_LISTS = "label_lists"
OPEN_VOCABULARY = "open_vocabulary"
PROTOCOLS = (LABEL_LISTS, OPEN_VOCABULARY)
COOCCURRENCE_ROW = "Co-occurrence (visual words x speech)"
PREDICT_CHUNK = 512  # examples per model call: bounds the [n, 2, C] logits on the host


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


def accuracy_row(name: str, verb_ranked, noun_ranked, verb_labels, noun_labels,
                 protocol: str = LABEL_LISTS) -> dict:
  """One table row: top-1/top-5 verb and noun accuracy under ``protocol``."""
  verbs = top_k_accuracy(verb_ranked, verb_labels)
  nouns = top_k_accuracy(noun_ranked, noun_labels)
  return {"name": name, "protocol": protocol,
          "verb_top1": verbs["top1"], "verb_top5": verbs["top5"],
          "noun_top1": nouns["top1"], "noun_top5": nouns["top5"],
          "verb_count": verbs["count"], "noun_count": nouns["count"]}


@dataclasses.dataclass(frozen=True)
class SlotCandidates:
  """What the two slots rank under both protocols, scored in one model call."""

  verbs: Candidates  # label_lists, verb slot
  nouns: Candidates  # label_lists, noun slot
  open: vocabulary_lib.OpenVocabulary  # open_vocabulary, both slots

  @property
  def ids(self) -> np.ndarray:
    """Every candidate id: the verb list's, the noun list's, then the open vocabulary's."""
    return np.concatenate([self.verbs.ids, self.nouns.ids, self.open.ids]).astype(np.int32)

  def rank(self, logits: np.ndarray, k: int = TOP_K) -> dict[str, tuple[list, list]]:
    """``logits`` [N, 2, len(ids)] -> per protocol, (verb ranks, noun ranks), k best."""
    num_verbs, num_nouns = len(self.verbs.ids), len(self.nouns.ids)
    open_logits = logits[:, :, num_verbs + num_nouns:]
    return {LABEL_LISTS: (rank(logits[:, 0, :num_verbs], self.verbs.lemmas, k),
                          rank(logits[:, 1, num_verbs:num_verbs + num_nouns],
                               self.nouns.lemmas, k)),
            OPEN_VOCABULARY: (rank(open_logits[:, 0], self.open.words, k),
                              rank(open_logits[:, 1], self.open.words, k))}


def mask_slots(example: sequences.Example) -> tuple[int, int]:
  """Positions of the verb (first) and noun (second) ``[MASK]`` of an input."""
  if len(example.text_mask_positions) != 2:
    raise ValueError(f"the zero-shot template needs exactly 2 [MASK] slots (verb, "
                     f"noun), found {len(example.text_mask_positions)}")
  return example.text_mask_positions[0], example.text_mask_positions[1]


def predict(masked_model, examples: Sequence[sequences.Example],
            candidates: SlotCandidates, desc: str | None = None,
            chunk: int = PREDICT_CHUNK, k: int = TOP_K) -> dict[str, tuple[list, list]]:
  """Per protocol, the verb and noun rankings (``k`` best) at each example's two slots."""
  slots = [list(mask_slots(e)) for e in examples]
  ids = candidates.ids
  # Whole model batches per chunk: a process's share (eval.shards) is then batched
  # as in a one-process run.
  batch = getattr(masked_model, "batch_size", 1)
  chunk = max(chunk // batch, 1) * batch
  out = {p: ([], []) for p in PROTOCOLS}
  for start in range(0, len(examples), chunk):
    logits = masked_model.run(examples[start:start + chunk], slots[start:start + chunk],
                              ids, desc=desc)["logits"]
    for protocol, (verb_rank, noun_rank) in candidates.rank(logits, k).items():
      out[protocol][0].extend(verb_rank)
      out[protocol][1].extend(noun_rank)
  return out


@dataclasses.dataclass(frozen=True)
class _Setup:
  """The restored model and everything the rows share."""

  run: Any  # restore.Run
  book: Any  # quantize.codebook.Codebook
  codebook_path: str
  candidates: SlotCandidates
  text_ids: list[int]  # the template's WordPieces
  seq_len: int
  max_video: int


@dataclasses.dataclass(frozen=True)
class _Segments:
  """The evaluation segments and their labels."""

  val: list  # segments.SegmentInput of the validation split
  train: list  # ... of the training split (supervised baseline)
  skipped: list[str]  # videos without a feature file
  verb_labels: list[frozenset[str]]  # per validation segment
  noun_labels: list[frozenset[str]]


def _setup(workdir, codebook, step, template, vocabulary, run) -> _Setup:
  """Restores the run, checks the codebook and builds the candidates."""
  from videobert_jax.eval import restore as checkpoint_lib  # pylint: disable=g-import-not-at-top
  from videobert_jax.quantize import codebook as codebook_lib  # pylint: disable=g-import-not-at-top
  from videobert_jax.text import wordpiece  # pylint: disable=g-import-not-at-top
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
  candidates = SlotCandidates(
      verbs=candidates_for(vocabulary.verbs, words),
      nouns=candidates_for(vocabulary.nouns, words),
      open=vocabulary_lib.open_vocabulary(words, layout, vocabulary))
  return _Setup(run=run, book=book, codebook_path=codebook_path, candidates=candidates,
                text_ids=sequences.encode_template(template, vocab_path),
                seq_len=int(config.data.max_seq_len),
                max_video=int(config.data.max_video_tokens))


def _load_segments(annotations, features_dir, book, vocabulary, supervised: bool,
                   skip_missing: bool, progress: bool) -> _Segments:
  """Reads the validation (and training) segments with their labels."""
  from videobert_jax.eval import segments as segments_lib  # pylint: disable=g-import-not-at-top
  subsets = ("training", "validation") if supervised else ("validation",)
  inputs, skipped = segments_lib.load_segment_inputs(
      annotations, features_dir, book, subsets=subsets, skip_missing=skip_missing,
      progress=progress)
  val = [s for s in inputs if s.segment.subset == "validation"]
  if not val:
    raise ValueError(f"{annotations}: no validation segments with features")
  labels = [vocabulary.labels(s.segment.sentence) for s in val]
  return _Segments(val=val, train=[s for s in inputs if s.segment.subset == "training"],
                   skipped=skipped, verb_labels=[v for v, _ in labels],
                   noun_labels=[n for _, n in labels])


def protocol_rows(name: str, ranked: dict[str, tuple[list, list]], segs: _Segments,
                  open_vocab: vocabulary_lib.OpenVocabulary, repeat: int = 1) -> list[dict]:
  """One row per protocol in ``ranked``; open-vocabulary words are scored by lemma.

  ``repeat`` repeats a single prediction for every segment (the language priors).
  """
  rows = []
  for protocol, (verb_rank, noun_rank) in ranked.items():
    if protocol == OPEN_VOCABULARY:
      verb_rank = vocabulary_lib.lemma_ranks(verb_rank, open_vocab.verb_lemmas)
      noun_rank = vocabulary_lib.lemma_ranks(noun_rank, open_vocab.noun_lemmas)
    rows.append(accuracy_row(name, verb_rank * repeat, noun_rank * repeat,
                             segs.verb_labels, segs.noun_labels, protocol))
  return rows


def _model_rows(setup: _Setup, segs: _Segments, batch_size: int, progress: bool,
                procs, folder: str):
  """The language-prior and cross-modal rows; returns (rows, predictions).

  The cross-modal inputs are split across ``procs`` (``eval.shards``); processes
  other than 0 return ``(None, None)`` once their share is handed over.
  """
  from videobert_jax.eval import runner  # pylint: disable=g-import-not-at-top
  run, layout, cands = setup.run, setup.run.layout, setup.candidates
  masked = runner.MaskedModel(run.model, run.params, run.mesh, setup.seq_len, batch_size)
  text_only = sequences.assemble(setup.text_ids, None, layout, setup.seq_len)
  mask_slots(text_only)  # fail early on a template without two slots
  examples = [sequences.assemble(setup.text_ids, layout.visual_ids(s.visual_words),
                                 layout, setup.seq_len, setup.max_video)
              for s in segs.val]
  ranked = _shared_predict(masked, examples, cands, procs, folder,
                           "zero-shot" if progress else None)
  if ranked is None:
    return None, None
  rows = []
  initial = runner.MaskedModel(run.model, run.initial_params(), run.mesh, setup.seq_len,
                               batch_size)
  for name, model in (("BERT language prior (before video)", initial),
                      ("VideoBERT language prior (no video)", masked)):
    rows += protocol_rows(name, predict(model, [text_only], cands), segs, cands.open,
                          repeat=len(segs.val))
  del initial
  rows += protocol_rows("VideoBERT cross-modal", ranked, segs, cands.open)
  return rows, {"cross_modal": ranked}


def _shared_predict(masked, examples, cands: SlotCandidates, procs, folder: str,
                    desc: str | None):
  """``predict`` of every example, each process ranking its share; None but on 0."""
  from videobert_jax.eval import shards  # pylint: disable=g-import-not-at-top

  def ranked_arrays(share):
    ranked = predict(masked, share, cands, desc=desc)
    # Names as string arrays [n, k], one per protocol and slot (0 verb, 1 noun).
    return {f"{p}.{slot}": np.array(ranked[p][slot]) for p in PROTOCOLS for slot in (0, 1)}

  merged = shards.map_shared(ranked_arrays, examples, masked.batch_size, procs, folder,
                             "zeroshot-cross-modal")
  if merged is None:
    return None
  return {p: tuple(merged[f"{p}.{slot}"].tolist() for slot in (0, 1)) for p in PROTOCOLS}


def _cooccurrence_rows(setup: _Setup, segs: _Segments, vocabulary, corpus_dir,
                       skip_missing: bool):
  """The co-occurrence baseline's rows; returns (rows, predictions, info)."""
  from videobert_jax.corpus import reader  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import cooccurrence  # pylint: disable=g-import-not-at-top
  data = setup.run.config.data
  corpus_dir = corpus_dir or data.get("corpus_dir")
  if not corpus_dir or not os.path.isfile(reader.index_path(corpus_dir)):
    return [], {}, {"available": False, "corpus_dir": corpus_dir,
                    "reason": "no pretraining corpus (config.data.corpus_dir)"}
  cooc = cooccurrence.from_corpus(corpus_dir, setup.codebook_path, setup.book.num_words,
                                  data.get("eval_video_ids"), skip_bad=skip_missing)
  cands, visual = setup.candidates, [s.visual_words for s in segs.val]
  verb_of, noun_of = vocabulary_lib.word_lemmas(vocabulary, cooc.words)
  ranked_lists = []
  for found, lemma_of in ((cands.verbs, verb_of), (cands.nouns, noun_of)):
    columns = cooccurrence.lemma_columns(cooc, found.lemmas, lemma_of.get)
    ranked_lists.append(cooccurrence.rank(cooccurrence.candidate_counts(cooc, columns),
                                          visual, found.lemmas, TOP_K))
  open_counts = cooccurrence.candidate_counts(
      cooc, cooccurrence.word_columns(cands.open.words))
  open_rank = cooccurrence.rank(open_counts, visual, cands.open.words, TOP_K)
  # Counts know no slot: the open-vocabulary ranking is the same at both.
  ranked = {LABEL_LISTS: tuple(ranked_lists), OPEN_VOCABULARY: (open_rank, open_rank)}
  info = {"available": True, "corpus_dir": os.path.abspath(corpus_dir), **cooc.summary()}
  return (protocol_rows(COOCCURRENCE_ROW, ranked, segs, cands.open),
          {"cooccurrence": ranked}, info)


def _supervised_rows(segs: _Segments, vocabulary):
  """The linear baseline's label-list row (if it can train); (rows, predictions)."""
  from videobert_jax.eval import supervised as supervised_lib  # pylint: disable=g-import-not-at-top
  train_labels = [vocabulary.labels(s.segment.sentence) for s in segs.train]
  ranked = []
  for kind in (0, 1):
    ranked.append(supervised_lib.rank_with_linear_classifier(
        [s.pooled for s in segs.train], [l[kind] for l in train_labels],
        [s.pooled for s in segs.val], TOP_K))
  if ranked[0] is None or ranked[1] is None:
    return [], {}
  row = accuracy_row("Supervised (linear, pooled features)", ranked[0], ranked[1],
                     segs.verb_labels, segs.noun_labels, LABEL_LISTS)
  return [row], {"supervised": {LABEL_LISTS: tuple(ranked)}}


def run_zeroshot(workdir: str, annotations: str, features_dir: str,
                 codebook: str | None = None, *, step: int | None = None,
                 template: str = sequences.ZEROSHOT_TEMPLATE,
                 verbs_path: str | None = None, nouns_path: str | None = None,
                 batch_size: int = 32, supervised: bool = True,
                 cooccurrence: bool = True, corpus_dir: str | None = None,
                 skip_missing: bool = False, progress: bool = True,
                 write: bool = True, run=None, processes=None) -> dict[str, Any] | None:
  """Evaluates zero-shot classification; returns (and writes) the table as a dict.

  With several processes (``eval.shards``) each scores its share of the
  validation segments and process 0 does the rest and returns the results;
  the others return None.

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
    cooccurrence: also count the co-occurrence baseline, when the corpus exists.
    corpus_dir: the pretraining corpus (default: the training config's).
    skip_missing: skip videos without a feature file (counted in the result).
    progress: tqdm bars.
    write: write the JSON files.
    run: an already restored ``checkpoint.Run`` (skips restoring).
    processes: an ``eval.shards.Processes`` (default: this JAX run's).
  """
  from videobert_jax.eval import shards  # pylint: disable=g-import-not-at-top
  procs = processes or shards.current()
  progress = progress and procs.is_main
  vocabulary = labels_lib.load_vocabulary(verbs_path, nouns_path)
  setup = _setup(workdir, codebook, step, template, vocabulary, run)
  segs = _load_segments(annotations, features_dir, setup.book, vocabulary, supervised,
                        skip_missing, progress)
  rows, predictions = _model_rows(setup, segs, batch_size, progress, procs,
                                  report.results_dir(workdir))
  if rows is None:  # another process than 0: its share is with process 0
    return None
  cooc_info = {"available": False, "reason": "not requested"}
  if cooccurrence:
    more, ranked, cooc_info = _cooccurrence_rows(setup, segs, vocabulary, corpus_dir,
                                                 skip_missing)
    rows, predictions = rows + more, {**predictions, **ranked}
  if supervised:
    more, ranked = _supervised_rows(segs, vocabulary)
    rows, predictions = rows + more, {**predictions, **ranked}
  rows.sort(key=lambda r: PROTOCOLS.index(r["protocol"]))  # stable: blocks in order
  results = _results(workdir, annotations, template, setup, segs, vocabulary, rows)
  results["cooccurrence"] = cooc_info
  results["table"] = format_zeroshot_table(results)
  if write:
    results["path"] = report.write_results(workdir, "zeroshot", results)
    _write_predictions(workdir, segs, predictions)
  return results


def _results(workdir, annotations, template, setup: _Setup, segs: _Segments,
             vocabulary, rows) -> dict[str, Any]:
  """The results dict (without the table)."""
  cands = setup.candidates
  return {
      "task": "zeroshot", "workdir": os.path.abspath(workdir), "step": setup.run.step,
      "template": template, "annotations": os.path.abspath(annotations),
      "num_segments": len(segs.val), "num_training_segments": len(segs.train),
      "skipped_videos": segs.skipped,
      "protocols": list(PROTOCOLS),
      "label_lists": {"verbs": list(vocabulary.verbs.lemmas),
                      "nouns": list(vocabulary.nouns.lemmas),
                      "header": list(vocabulary.verbs.header)},
      "not_single_wordpiece": {"verbs": list(cands.verbs.skipped),
                               "nouns": list(cands.nouns.skipped)},
      "open_vocabulary": {"num_candidates": len(cands.open),
                          "verb_forms": len(cands.open.verb_lemmas),
                          "noun_forms": len(cands.open.noun_lemmas)},
      "rows": rows,
  }


_BLOCK_TITLES = {
    LABEL_LISTS: "Label lists (each slot ranks the list's single-WordPiece words):",
    OPEN_VOCABULARY: ("Open vocabulary (each slot ranks {n} whole-word WordPieces; "
                      "correct when the word's lemma is a label):"),
}


def format_zeroshot_table(results: dict[str, Any]) -> str:
  """The printed table (accuracies in percent), one block per protocol."""
  counts = results["rows"][0] if results["rows"] else {}
  blocks = []
  for protocol in PROTOCOLS:
    rows = [r for r in results["rows"] if r.get("protocol", LABEL_LISTS) == protocol]
    if rows:
      n = results.get("open_vocabulary", {}).get("num_candidates", "all")
      blocks.append(_BLOCK_TITLES[protocol].format(n=n) + "\n"
                    + report.format_table(rows, COLUMNS))
  return (f"Zero-shot classification, {results['num_segments']} validation segments "
          f"({counts.get('verb_count', 0)} with a verb label, "
          f"{counts.get('noun_count', 0)} with a noun label), accuracy in %\n"
          + "\n\n".join(blocks))


def _write_predictions(workdir, segs: _Segments, predictions) -> None:
  """One JSON line per validation segment: caption, labels and each row's top-5.

  Keys: ``<row>_verbs`` / ``<row>_nouns`` (label lists) and
  ``<row>_open_vocabulary_verbs`` / ``..._nouns`` (open vocabulary, words).
  """
  import json  # pylint: disable=g-import-not-at-top
  from videobert_jax import fileio  # pylint: disable=g-import-not-at-top
  path = os.path.join(report.results_dir(workdir), "zeroshot_predictions.jsonl")
  with fileio.atomic_open(path, "w", encoding="utf-8") as f:
    for i, s in enumerate(segs.val):
      line = {"video_id": s.segment.video_id, "segment": s.segment.segment_index,
              "sentence": s.segment.sentence, "verb_labels": sorted(segs.verb_labels[i]),
              "noun_labels": sorted(segs.noun_labels[i])}
      for name, by_protocol in predictions.items():
        for protocol, (verb_rank, noun_rank) in by_protocol.items():
          key = name if protocol == LABEL_LISTS else f"{name}_{protocol}"
          line[f"{key}_verbs"] = list(verb_rank[i][:TOP_K])
          line[f"{key}_nouns"] = list(noun_rank[i][:TOP_K])
      f.write(json.dumps(line) + "\n")
