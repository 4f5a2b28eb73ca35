"""Zero-shot classification: accuracy, template masks, baseline, end to end."""

import json
import os

import numpy as np
import pytest

from videobert_jax import batch as batch_lib
from videobert_jax import tokens
from videobert_jax.eval import labels
from videobert_jax.eval import sequences
from videobert_jax.eval import supervised
from videobert_jax.eval import vocabulary
from videobert_jax.eval import zeroshot

LAYOUT = tokens.TokenLayout(num_visual_words=16)


def test_accuracy_counts_any_label_and_skips_unlabelled():
  ranked = [["cut", "add", "mix", "fry", "pour", "stir"],
            ["add", "mix", "cut", "fry", "pour"],
            ["fry", "add", "mix", "stir", "cut"],
            ["pour", "add", "mix", "cut", "fry"],
            ["add", "mix", "cut", "fry", "pour"]]
  gold = [frozenset({"cut"}),  # top-1 hit
          frozenset({"slice", "cut"}),  # third: top-5 hit only
          frozenset({"peel"}),  # miss
          frozenset({"stir", "pour"}),  # second label matches at top-1
          frozenset()]  # no label: not counted
  result = zeroshot.top_k_accuracy(ranked, gold)
  assert result == {"top1": 0.5, "top5": 0.75, "count": 4}
  # The sixth prediction is outside the top 5.
  assert zeroshot.top_k_accuracy([ranked[0][::-1]], [frozenset({"cut"})])["top5"] == 0.0
  assert zeroshot.top_k_accuracy([], [])["top1"] is None


def test_rank_orders_by_score_and_keeps_ties_stable():
  scores = np.array([[0.1, 3.0, 3.0, -1.0]])
  assert zeroshot.rank(scores, ["a", "b", "c", "d"], k=3) == [["b", "c", "a"]]


def test_template_masks_land_on_verb_and_noun_slots():
  text = [2085, 2292, 2033, 2265, 2017, 2129, 2000, tokens.MASK_ID, 1996,
          tokens.MASK_ID, 1012]  # now let me show you how to [MASK] the [MASK] .
  video = LAYOUT.visual_ids([3, 1, 4, 1, 5])
  ex = sequences.assemble(text, video, LAYOUT, max_len=32)
  ids = ex.input_ids.tolist()
  assert ids[0] == tokens.CLS_ID and ids[-1] == tokens.SEP_ID
  verb, noun = zeroshot.mask_slots(ex)
  assert (verb, noun) == (8, 10)  # after [CLS] and 7 words; after "the"
  assert ids[verb] == ids[noun] == tokens.MASK_ID and ids[verb + 1] == 1996
  sep = ids.index(LAYOUT.video_sep_id)
  assert sep == 12 and ids[13:18] == video.tolist()
  assert list(ex.video_positions) == list(range(13, 18))
  assert ex.token_type_ids.tolist() == [0] * 12 + [1] * 7
  batch = sequences.make_batch([ex], 32, [[verb, noun]], batch_size=2)
  assert batch["masked_positions"][0].tolist() == [8, 10]
  assert batch["masked_ids"][0].tolist() == [tokens.MASK_ID] * 2
  assert batch["masked_weights"].tolist() == [[1, 1], [0, 0]]
  assert batch["objective"][0] == batch_lib.VIDEO_TEXT
  # The language-prior input has no video and no [>].
  prior = sequences.assemble(text, None, LAYOUT, max_len=32)
  assert LAYOUT.video_sep_id not in prior.input_ids
  assert zeroshot.mask_slots(prior) == (8, 10)
  assert prior.token_type_ids.tolist() == [0] * 13


def test_long_video_is_subsampled_evenly_to_fit():
  video = LAYOUT.visual_ids(np.arange(16))
  ex = sequences.assemble([tokens.MASK_ID, tokens.MASK_ID], video, LAYOUT, max_len=12)
  kept = LAYOUT.visual_words(ex.input_ids[list(ex.video_positions)]).tolist()
  assert len(ex.input_ids) == 12 and len(kept) == 7
  assert kept[0] == 0 and kept[-1] == 15 and kept == sorted(kept)


def test_template_without_two_masks_is_rejected():
  ex = sequences.assemble([2000, tokens.MASK_ID], None, LAYOUT, max_len=8)
  with pytest.raises(ValueError, match="exactly 2"):
    zeroshot.mask_slots(ex)


def test_candidates_skip_words_of_several_wordpieces():
  words = ["[PAD]"] * 5 + ["cut", "onion", "##s"]
  verb_list = labels.parse_label_list("cut\nbake\n", "v.txt", "verb")
  found = zeroshot.candidates_for(verb_list, words)
  assert found.lemmas == ("cut",) and found.ids.tolist() == [5]
  assert found.skipped == ("bake",)


def test_linear_baseline_learns_separable_labels():
  rng = np.random.default_rng(0)
  centers = {"cut": np.array([3.0, 0, 0]), "fry": np.array([0, 3.0, 0]),
             "mix": np.array([0, 0, 3.0])}
  names = list(centers) * 20
  x = [centers[n] + rng.normal(0, 0.3, 3) for n in names]
  ranked = supervised.rank_with_linear_classifier(
      x, [frozenset({n}) for n in names], [centers["fry"], centers["mix"]], top_k=2)
  assert [r[0] for r in ranked] == ["fry", "mix"]
  assert supervised.rank_with_linear_classifier(x[:2], [frozenset({"a"})] * 2, x) is None


def _tiny_vocab():
  """A vocab.txt-like list: [unused*] fill, the specials at their ids, some words."""
  words = [f"[unused{i}]" for i in range(100)]
  words[0] = "[PAD]"
  words += ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 100..103
  words += ["cut", "##s", "onions", "1990", "caf\u00e9", "cutting", "the", "."]
  return words  # "cut"=104, "onions"=106, "cutting"=109, "the"=110


def _label_vocabulary():
  return labels.LabelVocabulary(
      verbs=labels.parse_label_list("cut\nfry\n", "v.txt", "verb"),
      nouns=labels.parse_label_list("onion\n", "n.txt", "noun"))


def test_open_vocabulary_candidates_exclude_specials_pieces_and_visual_words():
  words = _tiny_vocab()
  layout = tokens.TokenLayout(text_vocab_size=len(words), num_visual_words=4)
  found = vocabulary.open_vocabulary(words, layout, _label_vocabulary())
  assert found.ids.tolist() == [104, 106, 109, 110]
  assert found.words == ("cut", "onions", "cutting", "the")
  assert not set(found.ids.tolist()) & set(tokens.TEXT_SPECIAL_IDS)
  # Specials are excluded by id, even in a vocabulary that spells one as a word.
  renamed = list(words)
  renamed[tokens.UNK_ID] = "unk"
  assert tokens.UNK_ID not in vocabulary.ordinary_word_ids(renamed, layout)
  assert not layout.is_visual(found.ids).any() and layout.is_text(found.ids).all()
  assert layout.video_sep_id not in found.ids
  # Only the text part of the table: ids past the vocabulary are never candidates.
  assert vocabulary.ordinary_word_ids(words + ["extra"], layout).tolist() == [
      104, 106, 109, 110]


def test_open_vocabulary_predictions_are_scored_by_lemma():
  words = _tiny_vocab()
  layout = tokens.TokenLayout(text_vocab_size=len(words), num_visual_words=4)
  found = vocabulary.open_vocabulary(words, layout, _label_vocabulary())
  # The same lemmatiser as caption labelling: table forms first, then suffix rules.
  assert found.verb_lemmas == {"cut": "cut", "cutting": "cut"}
  assert found.noun_lemmas == {"onions": "onion"}
  ranked = [["the", "cutting", "onions"], ["onions", "the", "cut"]]
  verbs = vocabulary.lemma_ranks(ranked, found.verb_lemmas)
  assert verbs == [[None, "cut", None], [None, None, "cut"]]
  gold = [frozenset({"cut"}), frozenset({"fry"})]
  assert zeroshot.top_k_accuracy(verbs, gold) == {"top1": 0.0, "top5": 0.5, "count": 2}
  nouns = vocabulary.lemma_ranks(ranked, found.noun_lemmas)
  assert zeroshot.top_k_accuracy(nouns, [frozenset({"onion"})] * 2)["top1"] == 0.5


def test_slot_candidates_split_one_call_into_both_protocols():
  words = _tiny_vocab()
  layout = tokens.TokenLayout(text_vocab_size=len(words), num_visual_words=4)
  vocab = _label_vocabulary()
  cands = zeroshot.SlotCandidates(
      verbs=zeroshot.candidates_for(vocab.verbs, words),  # cut (fry: not in vocab)
      nouns=zeroshot.candidates_for(vocab.nouns, words),  # nothing: "onion" missing
      open=vocabulary.open_vocabulary(words, layout, vocab))
  assert cands.ids.tolist() == [104, 104, 106, 109, 110]
  logits = np.array([[[9.0, 1.0, 2.0, 3.0, 4.0], [0.0, 4.0, 3.0, 2.0, 1.0]]])
  ranked = cands.rank(logits)
  assert set(ranked) == set(zeroshot.PROTOCOLS)
  assert ranked["label_lists"] == ([["cut"]], [[]])
  assert ranked["open_vocabulary"][0] == [["the", "cutting", "onions", "cut"]]
  assert ranked["open_vocabulary"][1] == [["cut", "onions", "cutting", "the"]]


@pytest.fixture(scope="module")
def untrained_run(tmp_path_factory):
  from videobert_jax.testing import workdirs as testing
  root = str(tmp_path_factory.mktemp("evalrun"))
  return testing.untrained_eval_run(root, num_videos=4, num_eval_videos=8)


MODEL_ROWS = ["BERT language prior (before video)", "VideoBERT language prior (no video)",
              "VideoBERT cross-modal"]


def test_run_zeroshot_writes_table_rows(untrained_run):
  world = untrained_run["world"]
  result = zeroshot.run_zeroshot(untrained_run["workdir"], world["annotations"],
                                 world["eval_features_dir"], progress=False,
                                 corpus_dir=world["corpus_dir"])
  names = {p: [r["name"] for r in result["rows"] if r["protocol"] == p]
           for p in zeroshot.PROTOCOLS}
  assert all("protocol" in r for r in result["rows"])
  assert names["label_lists"] == MODEL_ROWS + [zeroshot.COOCCURRENCE_ROW,
                                              "Supervised (linear, pooled features)"]
  assert names["open_vocabulary"] == MODEL_ROWS + [zeroshot.COOCCURRENCE_ROW]
  # The label-list block comes first (readers that take rows[:3] keep working).
  assert [r["protocol"] for r in result["rows"]] == ["label_lists"] * 5 + [
      "open_vocabulary"] * 4
  for row in result["rows"]:
    for key, _ in zeroshot.COLUMNS:
      assert 0.0 <= row[key] <= 1.0
    assert row["verb_top1"] <= row["verb_top5"]
  assert result["cooccurrence"]["available"] and result["cooccurrence"]["num_spans"] > 0
  assert result["open_vocabulary"]["num_candidates"] > 20_000  # bert-base-uncased
  with open(result["path"]) as f:
    assert json.load(f)["rows"] == result["rows"]
  lines = open(os.path.join(untrained_run["workdir"], "eval",
                            "zeroshot_predictions.jsonl")).read().splitlines()
  assert len(lines) == result["num_segments"]
  first = json.loads(lines[0])
  for key in ("cross_modal", "cooccurrence"):
    for protocol_key in (key, f"{key}_open_vocabulary"):
      assert len(first[f"{protocol_key}_verbs"]) == 5
      assert len(first[f"{protocol_key}_nouns"]) == 5
  assert len(first["supervised_verbs"]) == 5
  open_words = set(first["cross_modal_open_vocabulary_verbs"])
  assert all(vocabulary.is_ordinary_word(w) for w in open_words)
  assert "verb top-1" in result["table"]
  assert "Label lists" in result["table"] and "Open vocabulary" in result["table"]


def test_run_zeroshot_without_corpus_has_no_cooccurrence_row(untrained_run):
  world = untrained_run["world"]
  result = zeroshot.run_zeroshot(untrained_run["workdir"], world["annotations"],
                                 world["eval_features_dir"], progress=False,
                                 supervised=False, write=False)
  assert [r["name"] for r in result["rows"]] == MODEL_ROWS * 2
  assert not result["cooccurrence"]["available"]
