"""The co-occurrence baseline: counts, smoothed scores and ranking, by hand."""

import json
import os

import numpy as np
import pytest

from videobert_jax.eval import cooccurrence
from videobert_jax.eval import labels
from videobert_jax.eval import vocabulary

# Three spans: visual words of the clips, words spoken over them.
SPANS = [(np.array([0, 0, 1]), ["cut", "onion"]),
         (np.array([1]), ["fry", "onion", "onion"]),
         (np.array([2]), ["fry", "fry"]),
         (np.array([], np.int32), ["salt"]),  # no clip: not counted
         (np.array([2]), [])]  # no speech: not counted
CANDIDATES = ["cut", "fry", "onion", "salt"]  # "salt" is never counted


def _cooc():
  return cooccurrence.count(SPANS, num_visual_words=3)


def test_counts_are_clip_times_word_occurrences():
  cooc = _cooc()
  assert cooc.words == ("cut", "onion", "fry") and cooc.num_spans == 3
  # c(v, w) += n(v) * n(w) per span: v0 twice with cut and onion once; v1 once
  # with cut, onion (span 1) and fry, 2x onion (span 2); v2 once with 2x fry.
  assert cooc.counts.toarray().tolist() == [[2, 2, 0], [1, 3, 1], [0, 0, 2]]
  assert cooc.summary()["num_pairs"] == 11
  with pytest.raises(ValueError, match="out of range"):
    cooccurrence.count([(np.array([3]), ["cut"])], num_visual_words=3)


def test_counts_flush_in_parts_to_the_same_matrix(monkeypatch):
  monkeypatch.setattr(cooccurrence, "_FLUSH_ENTRIES", 1)
  assert (cooccurrence.count(SPANS, 3).counts != _cooc().counts).nnz == 0


def test_scores_are_sums_of_add_one_log_probabilities():
  cooc = _cooc()
  counts = cooccurrence.candidate_counts(cooc, cooccurrence.word_columns(CANDIDATES))
  assert counts.toarray().tolist() == [[2, 0, 2, 0], [1, 1, 3, 0], [0, 2, 0, 0]]
  scores = cooccurrence.log_scores(counts, [np.array([0, 1]), np.array([2]),
                                            np.array([], np.int32)])
  # p(w|v) = (c(v,w) + 1) / (c(v) + |C|): v0 (4 + 4), v1 (5 + 4), v2 (2 + 4).
  expected = np.log([[3 / 8 * 2 / 9, 1 / 8 * 2 / 9, 3 / 8 * 4 / 9, 1 / 8 * 1 / 9],
                     [1 / 6, 3 / 6, 1 / 6, 1 / 6],
                     [1, 1, 1, 1]])
  np.testing.assert_allclose(scores, expected, rtol=1e-12)


def test_rank_breaks_ties_by_corpus_count():
  cooc = _cooc()
  counts = cooccurrence.candidate_counts(cooc, cooccurrence.word_columns(CANDIDATES))
  ranked = cooccurrence.rank(counts, [np.array([0]), np.array([2]), np.array([0, 1]),
                                      np.array([], np.int32)], CANDIDATES, k=4)
  # v0: cut = onion = 3/8 (onion counted 5 times in all, cut 3), fry = salt = 1/8.
  assert ranked[0] == ["onion", "cut", "fry", "salt"]
  # v2: fry 3/6; the rest 1/6, in corpus-count order (cut and fry: 3, list order).
  assert ranked[1] == ["fry", "onion", "cut", "salt"]
  assert ranked[2] == ["onion", "cut", "fry", "salt"]
  assert ranked[3] == ["onion", "cut", "fry", "salt"]  # no visual word: the prior
  assert cooccurrence.rank(counts, [np.array([2])], CANDIDATES, k=2, chunk=1) == [
      ["fry", "onion"]]


def test_label_lists_count_every_form_of_a_lemma():
  vocab = labels.LabelVocabulary(
      verbs=labels.parse_label_list("cut\nfry\n", "v.txt", "verb"),
      nouns=labels.parse_label_list("onion\n", "n.txt", "noun"))
  cooc = cooccurrence.count([(np.array([0]), ["cutting", "onions", "cut"]),
                             (np.array([1]), ["fried", "the", "onion"])], 2)
  verb_of, noun_of = vocabulary.word_lemmas(vocab, cooc.words)
  columns = cooccurrence.lemma_columns(cooc, ["cut", "fry"], verb_of.get)
  assert columns == [["cutting", "cut"], ["fried"]]
  counts = cooccurrence.candidate_counts(cooc, columns)
  assert counts.toarray().tolist() == [[2, 0], [0, 1]]
  assert cooccurrence.lemma_columns(cooc, ["onion"], noun_of.get) == [["onions", "onion"]]
  assert cooccurrence.rank(counts, [np.array([1]), np.array([0])], ["cut", "fry"]) == [
      ["fry", "cut"], ["cut", "fry"]]


def test_from_corpus_pairs_sentence_spans_with_their_clips(tmp_path):
  from videobert_jax.testing import workdirs
  corpus = tmp_path / "corpus"
  (corpus / "features").mkdir(parents=True)
  (corpus / "asr").mkdir()
  rng = np.random.default_rng(0)
  features = rng.normal(size=(4, 8)).astype(np.float32)  # 4 clips of 1.5 s
  index = []
  for video_id, language in (("a", "en"), ("b", "de"), ("evalvid", "en")):
    np.save(corpus / "features" / f"{video_id}.npy", features)
    (corpus / "asr" / f"{video_id}.json").write_text(json.dumps(
        [{"start": 0.0, "end": 3.0, "text": "Cut the onion."},
         {"start": 3.0, "end": 6.0, "text": "Fry it."}]))
    index.append({"video_id": video_id, "features": f"features/{video_id}.npy",
                  "asr": f"asr/{video_id}.json", "language": language})
  (corpus / "videos.jsonl").write_text("".join(json.dumps(r) + "\n" for r in index))
  book = workdirs.fit_codebook(str(corpus / "features"), str(tmp_path / "cb.npz"),
                               levels=1, clusters=4)
  words = book.assign(features)
  spans = list(cooccurrence.corpus_spans(str(corpus), str(tmp_path / "cb.npz"),
                                         frozenset({"evalvid"})))
  # German ASR and the evaluation video are left out; clips 0-1 and 2-3.
  assert [(v, w.tolist(), s) for v, w, s in spans] == [
      ("a", words[:2].tolist(), ["cut", "the", "onion"]),
      ("a", words[2:].tolist(), ["fry", "it"])]
  cooc = cooccurrence.from_corpus(str(corpus), str(tmp_path / "cb.npz"), book.num_words,
                                  eval_video_ids=["evalvid"])
  assert cooc.num_videos == 1 and cooc.num_spans == 2
  expected = cooccurrence.count([(w, s) for _, w, s in spans], book.num_words)
  assert (cooc.counts != expected.counts).nnz == 0
