"""Open-vocabulary zero-shot candidates: every ordinary whole-word WordPiece.

The paper's zero-shot protocol ranks, at each ``[MASK]`` slot, all words of the
vocabulary, not only the words of the label lists. Here a candidate is a
WordPiece id that is

* a text id (``TokenLayout.is_text``), so never ``[>]``, a visual word or a
  padding row;
* none of the control symbols (``tokens.TEXT_SPECIAL_IDS``: ``[PAD]``, ``[UNK]``,
  ``[CLS]``, ``[SEP]``, ``[MASK]``) nor a bracketed entry (``[unused17]``);
* not a continuation piece (``##s``): one ``[MASK]`` predicts one whole word;
* alphabetic: lower-case ASCII letters only (no digits, punctuation, accented or
  CJK pieces), the words a caption labeller can read (``labels.caption_words``).

A predicted word is correct when its lemma is one of the segment's labels. The
lemma is the one ``labels.LabelVocabulary.labels`` gives the word as a caption
word (form tables first, suffix rules for words in neither table), so a
prediction and a caption are lemmatised by the very same code: "cutting" at the
verb slot counts as "cut", "onions" at the noun slot as "onion".
"""

from __future__ import annotations

import dataclasses
import re
from typing import Sequence

import numpy as np

from videobert_jax import tokens
from videobert_jax.eval import labels as labels_lib

_ORDINARY = re.compile(r"[a-z]+")


def is_ordinary_word(word: str) -> bool:
  """True for a whole, lower-case, alphabetic WordPiece (``onion``, not ``##s``)."""
  return bool(_ORDINARY.fullmatch(word))


def ordinary_word_ids(vocab_words: Sequence[str], layout: tokens.TokenLayout) -> np.ndarray:
  """Ids (int32, ascending) of the ordinary whole-word WordPieces of a vocabulary."""
  special = set(tokens.TEXT_SPECIAL_IDS)
  ids = [i for i, word in enumerate(vocab_words)
         if i < layout.text_vocab_size and i not in special and is_ordinary_word(word)]
  ids = np.asarray(ids, np.int32)
  if ids.size and not bool(np.all(layout.is_text(ids))):
    raise ValueError("open-vocabulary candidates must be text ids")
  return ids


@dataclasses.dataclass(frozen=True)
class OpenVocabulary:
  """The open-vocabulary candidates and the label lemma of each of their words."""

  words: tuple[str, ...]  # candidate words, in id order
  ids: np.ndarray  # int32 [C]: their WordPiece ids
  verb_lemmas: dict[str, str]  # word -> verb-list lemma (only words that have one)
  noun_lemmas: dict[str, str]  # word -> noun-list lemma

  def __len__(self) -> int:
    return len(self.words)

  def lemmas(self, kind: str) -> dict[str, str]:
    """``verb_lemmas`` or ``noun_lemmas`` for ``kind`` "verb" / "noun"."""
    return {"verb": self.verb_lemmas, "noun": self.noun_lemmas}[kind]


def word_lemmas(vocabulary: labels_lib.LabelVocabulary,
                words: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
  """Per word, the verb and the noun lemma it labels as a caption word (if any)."""
  verbs, nouns = {}, {}
  for word in words:
    verb, noun = vocabulary.labels(word)
    # A single word labels at most one lemma of each kind.
    if verb:
      verbs[word] = next(iter(verb))
    if noun:
      nouns[word] = next(iter(noun))
  return verbs, nouns


def open_vocabulary(vocab_words: Sequence[str], layout: tokens.TokenLayout,
                    vocabulary: labels_lib.LabelVocabulary) -> OpenVocabulary:
  """The open-vocabulary candidates of ``vocab_words`` with their label lemmas."""
  ids = ordinary_word_ids(vocab_words, layout)
  words = tuple(vocab_words[i] for i in ids)
  verbs, nouns = word_lemmas(vocabulary, words)
  return OpenVocabulary(words=words, ids=ids, verb_lemmas=verbs, noun_lemmas=nouns)


def lemma_ranks(ranked: Sequence[Sequence[str]],
                lemmas: dict[str, str]) -> list[list[str | None]]:
  """Ranked words as their lemmas (None for a word that is no list lemma's form)."""
  return [[lemmas.get(word) for word in row] for row in ranked]
