"""Tests of videobert_jax.text.actions: verb-object pairs on WordPieces (real spaCy)."""

import numpy as np
import pytest

from videobert_jax.text import actions
from videobert_jax.text import wordpiece


def groups_by_piece(text):
  ids = wordpiece.encode(text)
  (groups,) = actions.action_groups([text], [ids])
  return list(zip(wordpiece.tokens_of(ids), groups.tolist()))


def test_verb_and_its_object_share_a_group_across_word_pieces():
  assert groups_by_piece("now i'm chopping the tomato") == [
      ("now", 0), ("i", 0), ("'", 0), ("m", 0), ("chop", 1), ("##ping", 1),
      ("the", 0), ("tomato", 1)]


def test_each_pair_gets_its_own_group_and_pronoun_objects_none():
  pieces = groups_by_piece("stir the sauce and then boil the pasta, then serve it")
  marked = {}
  for piece, group in pieces:
    if group:
      marked.setdefault(group, []).append(piece)
  assert marked == {1: ["stir", "sauce"], 2: ["boil", "pasta"]}


def test_sentences_without_a_verb_object_pair_have_no_groups():
  assert all(g == 0 for _, g in groups_by_piece("hi everyone, welcome back"))
  assert all(g == 0 for _, g in groups_by_piece("the soup smells so good"))


def test_ids_that_do_not_match_the_text_give_no_groups():
  text = "chop the onion"
  (groups,) = actions.action_groups([text], [wordpiece.encode("dice the onion finely")])
  np.testing.assert_array_equal(groups, np.zeros(4, np.int32))


def test_one_id_sequence_per_text_is_required():
  with pytest.raises(ValueError, match="2 texts but 1 id sequences"):
    actions.action_groups(["a", "b"], [[1]])
