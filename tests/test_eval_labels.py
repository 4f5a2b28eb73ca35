"""Label lists and tagger-free caption labelling (videobert_jax.eval.labels)."""

import pytest

from videobert_jax.eval import label_lists
from videobert_jax.eval import labels


def test_shipped_lists_have_paper_sizes_and_name_the_tagger():
  vocabulary = labels.load_vocabulary()
  assert len(vocabulary.verbs) == 45
  assert len(vocabulary.nouns) == 100
  header = " ".join(vocabulary.verbs.header)
  assert "spaCy" in header and "en_core_web_sm" in header
  # The most common YouCook II verbs and nouns lead the lists.
  assert vocabulary.verbs.lemmas[:3] == ("add", "mix", "chop")
  assert {"pan", "oil", "salt", "onion"} <= set(vocabulary.nouns.lemmas[:5])


def test_caption_labels_are_lemmatised_list_words():
  vocabulary = labels.load_vocabulary()
  verbs, nouns = vocabulary.labels("Chopped the onions and stirred them with 2 eggs.")
  assert verbs == {"chop", "stir"}
  assert nouns == {"onion", "egg"}


def test_form_shares_decide_the_part_of_speech():
  vocabulary = labels.load_vocabulary()
  # "mix" is mostly a verb, "slices" always a noun, in the tagged captions.
  verbs, nouns = vocabulary.labels("mix the slices")
  assert verbs == {"mix"}
  assert nouns == {"slice"}


def test_rules_lemmatise_unseen_forms_onto_list_lemmas():
  text = "# a hand-made list\nchop\nslice\nberry\nknife\n"
  words = labels.parse_label_list(text, "mine.txt", "any")
  assert words.lemmatize("chopping") == "chop"
  assert words.lemmatize("slicing") == "slice"
  assert words.lemmatize("berries") == "berry"
  assert words.lemmatize("knives") == "knife"
  assert words.lemmatize("chopper") is None
  assert words.header == ("a hand-made list",)


def test_format_and_parse_round_trip():
  text = labels.format_label_list(["add", "cut"], [10, 4],
                                  [[("add", 9, 9), ("added", 1, 2)], [("cut", 4, 5)]],
                                  ["test list"])
  parsed = labels.parse_label_list(text, "x.txt", "verb")
  assert parsed.lemmas == ("add", "cut")
  assert parsed.counts == (10, 4)
  assert parsed.forms["added"] == ("add", 1, 2)
  assert parsed.lemmatize("added") == "add"  # 1/2 meets the default share 0.5
  strict = labels.parse_label_list(text, "x.txt", "verb", min_form_share=0.9)
  assert strict.lemmatize("added") is None


@pytest.mark.parametrize("text, message", [
    ("add\nadd\n", "x.txt:2: lemma 'add' appears twice"),
    ("add\tmany\n", "x.txt:1: count 'many' is not an integer"),
    ("add\t3\tadded:5/2\n", "x.txt:1: form 'added:5/2'"),
    ("# only comments\n", "x.txt: the verb list has no lemmas"),
    ("Add it\n", "x.txt:1: 'add it' is not a lower-case word"),
])
def test_bad_lists_name_file_and_line(text, message):
  with pytest.raises(labels.LabelListError, match=message.replace("(", r"\(")):
    labels.parse_label_list(text, "x.txt", "verb")


def test_show_command_needs_no_tagger(capsys):
  assert label_lists.main(["show", "slice the bread"]) == 0
  out = capsys.readouterr().out
  assert "verbs=['slice']" in out and "nouns=['bread']" in out


def test_missing_list_file_is_one_line_error(tmp_path, capsys):
  assert label_lists.main(["show", "x", "--verbs", str(tmp_path / "none.txt")]) == 1
  assert "none.txt: cannot read the verb list" in capsys.readouterr().err
