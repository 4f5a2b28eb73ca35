"""Timed sentences from de-duplicated cues.

The paper punctuated YouTube ASR with an LSTM model that is not available; here a
transcript is split one of two ways, chosen automatically:

* **Punctuated** when it has at least one sentence end per
  ``PUNCTUATED_WORDS_PER_END`` (40) words, and at least one: a word ending in
  ``.``, ``?``, ``!`` or ``…`` (closing quotes and brackets allowed after it)
  ends a sentence, with these exceptions: a title (``Mr.``, ``Dr.``; ``TITLES``)
  or a capital initial (``J.``) never does; another abbreviation (``tbsp.``,
  ``etc.``, ``e.g.``; ``ABBREVIATIONS``) or an ellipsis (``so...``) does only when
  the next word starts with a capital. Decimals (``1.5``) never split: the ``.``
  is inside the word. The last word always ends the last sentence. A punctuated
  sentence longer than the segmenter's ``max_words`` (when it has one) is
  split further by the segmenter.
* **Unpunctuated** (YouTube automatic captions): the words go to the segmenter,
  by default ``PauseSegmenter``.

A ``Segmenter`` is any callable taking a list of timed words
(``videobert_jax.text.dedup.Word``: start, end, text) and returning a list of
``Sentence``; pass one to ``sentences_from_cues(cues, segmenter=...)``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Protocol, Sequence

from videobert_jax.text.dedup import Word
from videobert_jax.text.dedup import dedup_cues
from videobert_jax.text.dedup import is_empty
from videobert_jax.text.dedup import spread_words
from videobert_jax.text.transcripts import Cue
from videobert_jax.text.transcripts import read_transcript

PUNCTUATED_WORDS_PER_END = 40

# Lower-cased, without the final ".". A title never ends a sentence (except as the
# last word); another abbreviation ends one only when a capital follows
# ("Add 2 tbsp. Then stir" vs "2 tbsp. of sugar"). Common words that double as
# abbreviations ("no", "sun", "max") are left out: they end sentences far more often.
TITLES = frozenset("mr mrs ms dr prof sr jr st mt rev gen capt lt sgt".split())
ABBREVIATIONS = frozenset("""
etc vs approx cf fig figs dept inc ltd corp jan feb apr jun jul aug sep sept oct nov
dec tbsp tbs tsp oz lb lbs qt gal ml kg mg min mins hr hrs secs
""".split())

_CLOSERS = "\"'”’)]}»"
_OPENERS = "\"'“‘([{«"
_INITIAL = re.compile(r"^[A-Z]\.$")  # "J." in "J. Smith"
_DOTTED = re.compile(r"^(?:[a-z]\.){2,}$")  # "e.g.", "i.e.", "u.s."


@dataclasses.dataclass(frozen=True)
class Sentence:
  """A sentence of the transcript with its span in seconds."""

  start: float
  end: float
  text: str


class Segmenter(Protocol):
  """Splits a run of timed words (no usable punctuation) into sentences."""

  def __call__(self, words: Sequence[Word]) -> list[Sentence]:
    ...


def sentence_of(words: Sequence[Word]) -> Sentence:
  """One sentence spanning ``words`` (non-empty), their texts joined by spaces."""
  return Sentence(words[0].start, words[-1].end, " ".join(w.text for w in words))


@dataclasses.dataclass(frozen=True)
class PauseSegmenter:
  """Splits at long pauses, and long runs at their largest pause.

  A sentence ends wherever the silence between two words (next start minus this
  end) is at least ``max_pause_seconds``. A run still longer than ``max_words`` is
  cut where the pause is largest among the cut points that leave at least
  ``min_words`` words on the left (ties: the later one), repeatedly, so no
  sentence exceeds ``max_words``.
  """

  # Pauses between sentences are typically 0.5-1 s, inside a sentence well below.
  max_pause_seconds: float = 0.8  # a silence this long ends a sentence
  max_words: int = 24  # no sentence is longer (BERT text sentences stay short)
  min_words: int = 4  # a length cut leaves at least this many words before it

  def __post_init__(self):
    if self.max_pause_seconds <= 0:
      raise ValueError(f"max_pause_seconds must be > 0, got {self.max_pause_seconds}")
    if self.max_words < 1:
      raise ValueError(f"max_words must be >= 1, got {self.max_words}")
    if not 1 <= self.min_words:
      raise ValueError(f"min_words must be >= 1, got {self.min_words}")

  def __call__(self, words: Sequence[Word]) -> list[Sentence]:
    """Sentences of ``words`` (see the class docstring)."""
    runs, current = [], []
    for word in words:
      if current and word.start - current[-1].end >= self.max_pause_seconds:
        runs.append(current)
        current = []
      current.append(word)
    if current:
      runs.append(current)
    return [sentence_of(piece) for run in runs for piece in self._cut(run)]

  def _cut(self, run: list[Word]) -> list[list[Word]]:
    """Cuts ``run`` into pieces of at most ``max_words`` at the largest pauses."""
    pieces = []
    min_left = min(self.min_words, self.max_words)
    while len(run) > self.max_words:
      # A cut after index i (1-based count i) keeps run[:i]; i in [min_left, max_words].
      best = max(range(min_left, self.max_words + 1),
                 key=lambda i: (run[i].start - run[i - 1].end, i))
      pieces.append(run[:best])
      run = run[best:]
    if run:
      pieces.append(run)
    return pieces


def words_from_cues(cues: Sequence[Cue]) -> list[Word]:
  """The words of (de-duplicated) cues, each cue's span shared by its words."""
  words = []
  for cue in cues:
    words.extend(spread_words(cue.text.split(), cue.start, cue.end))
  return words


def _bare(word: str) -> str:
  """The word without closing quotes or brackets at its end."""
  return word.rstrip(_CLOSERS)


def ends_sentence(word: str, next_word: str | None) -> bool:
  """True when ``word`` ends a sentence (see the module docstring for the rule)."""
  bare = _bare(word)
  if not bare or bare[-1] not in ".?!…":
    return False
  if bare[-1] in "?!":
    return True
  starts_capital = next_word is None or next_word.lstrip(_OPENERS)[:1].isupper()
  if bare.endswith("..") or bare.endswith("…"):  # an ellipsis: only before a capital
    return starts_capital
  stem = bare.lstrip(_OPENERS)
  if stem[:-1].lower() in TITLES or _INITIAL.match(stem):
    return next_word is None
  if stem[:-1].lower() in ABBREVIATIONS or _DOTTED.match(stem.lower()):
    return starts_capital
  return any(c.isalnum() for c in stem)


def is_punctuated(words: Sequence[Word]) -> bool:
  """The automatic rule: at least one sentence end per 40 words, and at least one."""
  texts = [w.text for w in words]
  ends = sum(ends_sentence(t, texts[i + 1] if i + 1 < len(texts) else None)
             for i, t in enumerate(texts))
  return ends >= 1 and ends * PUNCTUATED_WORDS_PER_END >= len(texts)


def sentences_from_cues(cues: Sequence[Cue],
                        segmenter: Segmenter | None = None) -> list[Sentence]:
  """Timed sentences of de-duplicated cues (``dedup.dedup_cues`` output).

  Args:
    cues: cues with clean text, each word once.
    segmenter: splits unpunctuated text (and over-long punctuated sentences);
      default ``PauseSegmenter()``.
  """
  segmenter = segmenter or PauseSegmenter()
  words = [w for w in words_from_cues(cues) if w.text]
  if not words:
    return []
  if not is_punctuated(words):
    return list(segmenter(words))
  max_words = getattr(segmenter, "max_words", None)
  sentences, current = [], []
  for i, word in enumerate(words):
    current.append(word)
    next_text = words[i + 1].text if i + 1 < len(words) else None
    if next_text is None or ends_sentence(word.text, next_text):
      if max_words is not None and len(current) > max_words:
        sentences.extend(segmenter(current))
      else:
        sentences.append(sentence_of(current))
      current = []
  return sentences


def load_sentences(asr_path: str | os.PathLike,
                   segmenter: Segmenter | None = None) -> list[Sentence]:
  """Reads a transcript, removes rolling-caption repeats and splits it into sentences.

  This is what dataset builders call. An empty transcript (``dedup.is_empty``)
  gives no sentences, like a video without ASR. Raises ``TranscriptError`` on bad
  input.
  """
  cues = read_transcript(asr_path)
  if is_empty(cues):
    return []
  return sentences_from_cues(dedup_cues(cues), segmenter)
