"""Verb and noun label lists for zero-shot classification, and labelling captions.

A label list is a text file, one lemma per line, optionally with its count and the
inflected forms the tagger gave it (tab-separated); lines starting with ``#`` are
comments (the shipped lists name their source and tagger there)::

  # columns: lemma<TAB>count<TAB>form:count/total,...
  add	5530	add:5506/5510,adding:22/22,added:1/1,adds:1/1
  mix	123	mix:102/1430,mixture:21/21

``form:count/total`` says the tagger gave ``form`` this list's part of speech and
lemma ``count`` times out of ``total`` occurrences (``form`` alone means always).

A plain list of lemmas, one per line, is valid too (then only the rules below
lemmatise). ``videobert_jax/resources/youcook2_{verbs,nouns}.txt`` are the 45 verbs
and 100 nouns of the YouCook II captions, derived by ``python -m
videobert_jax.eval.label_lists derive`` (see ``derive.py``, which needs spaCy).

Labelling a caption needs no tagger: each word is looked up in the list's form
table (``added`` -> ``add``), and counts as a form of the lemma only when the
tagger gave it this part of speech in at least ``min_form_share`` (default 0.5)
of its occurrences, so "mix" is a verb label but not a noun label, while "slices"
is a noun label only. A word absent from the table is lemmatised by suffix rules
whose candidates must be a list lemma (``chopping`` -> ``chop``, ``sliced`` ->
``slice``, ``berries`` -> ``berry``).
"""

from __future__ import annotations

import collections
import dataclasses
import importlib.resources
import os
import re
from typing import Iterable, Sequence

RESOURCE_PACKAGE = "videobert_jax.resources"
DEFAULT_VERBS = "youcook2_verbs.txt"
DEFAULT_NOUNS = "youcook2_nouns.txt"
DEFAULT_MIN_FORM_SHARE = 0.5

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_VOWELS = set("aeiou")


class LabelListError(ValueError):
  """A malformed label list; ``str()`` names the file and line."""


@dataclasses.dataclass(frozen=True)
class LabelList:
  """An ordered list of lemmas (most common first) with their inflected forms."""

  kind: str  # "verb" or "noun" (free text for user lists)
  lemmas: tuple[str, ...]  # the classes, most common first
  counts: tuple[int, ...]  # occurrences of each lemma in the derivation captions
  # inflected form -> (lemma, count with this POS and lemma, total occurrences)
  forms: dict[str, tuple[str, int, int]]
  header: tuple[str, ...] = ()  # the file's comment lines (source, tagger)
  min_form_share: float = DEFAULT_MIN_FORM_SHARE  # see the module docstring

  def __post_init__(self):
    if len(set(self.lemmas)) != len(self.lemmas):
      dup = [w for w, c in collections.Counter(self.lemmas).items() if c > 1]
      raise ValueError(f"{self.kind} list repeats lemmas {dup}")

  def __len__(self) -> int:
    return len(self.lemmas)

  @property
  def index(self) -> dict[str, int]:
    """Lemma -> class index."""
    return {w: i for i, w in enumerate(self.lemmas)}

  def lemmatize(self, word: str, use_rules: bool = True) -> str | None:
    """The list lemma of ``word``, or None when it is no form of a list lemma.

    Args:
      word: one word.
      use_rules: try the suffix rules when ``word`` is not in the form table.
    """
    word = word.lower()
    entry = self.forms.get(word)
    if entry is not None:
      lemma, count, total = entry
      return lemma if count >= self.min_form_share * total else None
    if not use_rules:
      return None
    lemmas = set(self.lemmas)
    for candidate in candidate_lemmas(word):
      if candidate in lemmas:
        return candidate
    return None


def candidate_lemmas(word: str) -> list[str]:
  """Possible lemmas of an English word by inflection rules, the word itself first.

  The rules over-generate on purpose (``sliced`` -> ``slic``, ``slice``); callers
  keep only candidates that are in a label list, which makes them precise.
  """
  out = [word]
  def add(stem):
    if len(stem) >= 2 and stem not in out:
      out.append(stem)
  doubled = lambda s: len(s) >= 3 and s[-1] == s[-2] and s[-1] not in _VOWELS
  if word.endswith("ies"):
    add(word[:-3] + "y")
  if word.endswith("ves"):
    add(word[:-3] + "f")
    add(word[:-3] + "fe")
  if word.endswith("es"):
    add(word[:-2])
  if word.endswith("s") and not word.endswith("ss"):
    add(word[:-1])
  if word.endswith("ied"):
    add(word[:-3] + "y")
  if word.endswith("ed"):
    stem = word[:-2]
    add(stem)
    add(stem + "e")
    if doubled(stem):
      add(stem[:-1])
  if word.endswith("ing"):
    stem = word[:-3]
    add(stem)
    add(stem + "e")
    if doubled(stem):
      add(stem[:-1])
  return out


def caption_words(text: str) -> list[str]:
  """Lower-cased words of a caption (letters and inner apostrophes)."""
  return _WORD.findall(text.lower())


@dataclasses.dataclass(frozen=True)
class LabelVocabulary:
  """The verb and noun lists together; turns captions into label sets."""

  verbs: LabelList
  nouns: LabelList

  def labels(self, caption: str) -> tuple[frozenset[str], frozenset[str]]:
    """``(verb lemmas, noun lemmas)`` of the list words a caption contains.

    The suffix rules apply only to words in neither form table: a word the tagger
    saw (say "slices", always a noun) is labelled by the tables alone.
    """
    verbs, nouns = set(), set()
    for word in caption_words(caption):
      unseen = word not in self.verbs.forms and word not in self.nouns.forms
      verb = self.verbs.lemmatize(word, use_rules=unseen)
      if verb is not None:
        verbs.add(verb)
      noun = self.nouns.lemmatize(word, use_rules=unseen)
      if noun is not None:
        nouns.add(noun)
    return frozenset(verbs), frozenset(nouns)


def _parse_form(item: str) -> tuple[str | None, tuple[int, int]]:
  """``word`` or ``word:count/total`` -> (word, (count, total)); (None, ..) if bad."""
  form, _, stats = item.strip().lower().partition(":")
  if not _WORD.fullmatch(form):
    return None, (0, 0)
  if not stats:
    return form, (1, 1)
  count, _, total = stats.partition("/")
  if not (count.isdigit() and total.isdigit()) or int(total) < int(count):
    return None, (0, 0)
  return form, (int(count), int(total))


def parse_label_list(text: str, path: str, kind: str,
                     min_form_share: float = DEFAULT_MIN_FORM_SHARE) -> LabelList:
  """Parses the text of a label list; raises LabelListError naming ``path:line``."""
  lemmas, counts, forms, header = [], [], {}, []
  for number, raw in enumerate(text.splitlines(), start=1):
    line = raw.strip()
    if not line:
      continue
    if line.startswith("#"):
      header.append(line[1:].strip())
      continue
    fields = raw.rstrip("\n").split("\t")
    lemma = fields[0].strip().lower()
    if not _WORD.fullmatch(lemma):
      raise LabelListError(f"{path}:{number}: {lemma!r} is not a lower-case word")
    if lemma in lemmas:
      raise LabelListError(f"{path}:{number}: lemma {lemma!r} appears twice")
    count = 0
    if len(fields) > 1 and fields[1].strip():
      try:
        count = int(fields[1])
      except ValueError:
        raise LabelListError(f"{path}:{number}: count {fields[1]!r} is not an "
                             "integer") from None
    if len(fields) > 2 and fields[2].strip():
      for item in fields[2].split(","):
        form, count_total = _parse_form(item)
        if form is None:
          raise LabelListError(f"{path}:{number}: form {item.strip()!r} is not "
                               "'word' or 'word:count/total'")
        forms.setdefault(form, (lemma,) + count_total)
    if len(fields) > 3:
      raise LabelListError(f"{path}:{number}: expected at most 3 tab-separated "
                           f"columns (lemma, count, forms), got {len(fields)}")
    forms.setdefault(lemma, (lemma, 1, 1))
    lemmas.append(lemma)
    counts.append(count)
  if not lemmas:
    raise LabelListError(f"{path}: the {kind} list has no lemmas")
  return LabelList(kind=kind, lemmas=tuple(lemmas), counts=tuple(counts),
                   forms=forms, header=tuple(header), min_form_share=min_form_share)


def load_label_list(path: str | os.PathLike, kind: str) -> LabelList:
  """Reads a label list file (see the module docstring for the format)."""
  path = os.fspath(path)
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except OSError as e:
    raise LabelListError(f"{path}: cannot read the {kind} list ({e.strerror})") from None
  return parse_label_list(text, path, kind)


def default_label_list(kind: str) -> LabelList:
  """The shipped YouCook II list: ``kind`` is "verb" or "noun"."""
  name = {"verb": DEFAULT_VERBS, "noun": DEFAULT_NOUNS}[kind]
  resource = importlib.resources.files(RESOURCE_PACKAGE).joinpath(name)
  return parse_label_list(resource.read_text(encoding="utf-8"),
                          f"{RESOURCE_PACKAGE}/{name}", kind)


def load_vocabulary(verbs_path: str | os.PathLike | None = None,
                    nouns_path: str | os.PathLike | None = None) -> LabelVocabulary:
  """The verb and noun lists from files, the shipped YouCook II lists by default."""
  verbs = (default_label_list("verb") if verbs_path is None
           else load_label_list(verbs_path, "verb"))
  nouns = (default_label_list("noun") if nouns_path is None
           else load_label_list(nouns_path, "noun"))
  return LabelVocabulary(verbs=verbs, nouns=nouns)


def format_label_list(lemmas: Sequence[str], counts: Sequence[int],
                      forms: Sequence[Iterable[tuple[str, int, int]]],
                      header: Sequence[str]) -> str:
  """The text of a label list file (inverse of ``parse_label_list``).

  ``forms[i]`` holds ``(form, count, total)`` triples of lemma ``i``.
  """
  lines = [f"# {h}" for h in header]
  lines.append("# columns: lemma<TAB>count<TAB>form:count/total,...")
  for lemma, count, lemma_forms in zip(lemmas, counts, forms):
    forms_text = ",".join(f"{f}:{c}/{t}" for f, c, t in lemma_forms)
    lines.append(f"{lemma}\t{count}\t{forms_text}")
  return "\n".join(lines) + "\n"
