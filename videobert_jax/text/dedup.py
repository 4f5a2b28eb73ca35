"""Normalising cue text and removing the repetition of rolling captions.

YouTube automatic captions (and broadcast roll-up captions) repeat text: each cue
shows two lines, the first repeating the previous cue's second line, and a 10 ms
"transition" cue between them repeats the line once more. ``dedup_words`` turns
cues into the stream of spoken words, each word once, each with a start and end:

1. ``normalise_text`` cleans a line: inline timestamps and tags (``<c>``,
   ``<c.colorE5E5E5>``, ``<i>``, ``<font ...>``, ``{\\an8}``) removed, HTML entities
   decoded (``&amp;`` ``&gt;`` ``&nbsp;``), sound annotations (``[Music]``,
   ``[Applause]``, ``♪``) and speaker markers (``>>``, a leading ``- ``) removed,
   whitespace collapsed.
2. Overlap: the longest ``k`` such that the last ``k`` words already emitted equal
   the cue's first ``k`` words (compared lower-cased, edge punctuation ignored) is
   dropped when the cue starts within ``MAX_ROLL_GAP_SECONDS`` of the previous
   cue's end and either ``k >= MIN_FREE_OVERLAP`` words or the ``k`` words are whole
   lines of the cue (the rolling-caption pattern). So a speaker who really says
   "yes" at the end of one cue and "yes, I know" at the start of the next keeps
   both; a 3-word phrase repeated exactly across adjacent cues is taken as a roll.
3. Times: a word after an inline timestamp ``<00:00:01.234>`` starts then (the
   first word of such a line starts with the cue); it ends at the next word's
   start but lasts at most ``estimated_word_seconds`` (0.1 s + 0.07 s a
   character, at most 1 s), so a silence before the next word stays visible as a
   pause. Words of a cue without inline timings share the cue's
   span in proportion to their length (characters + 1).

``dedup_cues`` returns the same words as cues: one cue per word where inline
timings gave the word its time, otherwise one cue per source cue with only its new
words. Times never go backwards (a start earlier than the previous word's is
raised to it), so overlapping cues give monotone word times.
"""

from __future__ import annotations

import dataclasses
import html
import re
from typing import Iterable, Sequence

from videobert_jax.text.transcripts import Cue
from videobert_jax.text.transcripts import parse_timestamp

MIN_FREE_OVERLAP = 3  # words; a shorter overlap is dropped only if it is whole lines
MAX_ROLL_GAP_SECONDS = 1.0  # a rolling cue starts (almost) where the previous ended
# A word known only by its start gets a duration from its length: about 14
# characters a second (150 words a minute), at most MAX_WORD_SECONDS.
SECONDS_PER_CHARACTER = 0.07
BASE_WORD_SECONDS = 0.1
MAX_WORD_SECONDS = 1.0

_INLINE_TIME = re.compile(r"<((?:\d+:)?\d{1,2}:\d{1,2}[.,]\d{1,3})>")
_TAG = re.compile(r"</?[A-Za-z][^<>]*>|\{\\[^{}]*\}")
_SOUND = re.compile(r"\[[^\[\]]*\]|[♪♫♬]")
_SPEAKER = re.compile(r"^\s*(?:-\s+|>>+\s*)|\s>>+(?=\s|$)")
_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = re.compile(r"^\W+|\W+$")


@dataclasses.dataclass(frozen=True)
class Word:
  """One spoken word with its time span in seconds."""

  start: float
  end: float
  text: str
  timed: bool = False  # True when an inline timestamp gave its start


def normalise_text(text: str) -> str:
  """Cleans cue text (one or more lines) to plain words; see the module docstring."""
  lines = []
  for line in text.split("\n"):
    line = _INLINE_TIME.sub(" ", line)
    line = _TAG.sub("", line)
    line = html.unescape(line)
    line = _SOUND.sub(" ", line)
    line = _SPEAKER.sub(" ", line)
    line = _SPACE.sub(" ", line).strip()
    if line:
      lines.append(line)
  return " ".join(lines)


def is_empty(cues: Iterable[Cue]) -> bool:
  """True when no cue holds any words (an empty transcript counts as no ASR)."""
  return not any(normalise_text(cue.text) for cue in cues)


def word_key(word: str) -> str:
  """The form used to compare words across cues: lower-cased, edge punctuation off."""
  return _EDGE_PUNCT.sub("", word.lower())


def spread_words(words: Sequence[str], start: float, end: float) -> list[Word]:
  """Shares ``[start, end]`` among ``words`` in proportion to characters + 1."""
  if not words:
    return []
  weights = [len(w) + 1 for w in words]
  total = float(sum(weights))
  out, t = [], start
  for word, weight in zip(words, weights):
    t_end = t + (end - start) * weight / total
    out.append(Word(t, t_end, word))
    t = t_end
  # Rounding must not leave the last word short of the cue's end.
  out[-1] = dataclasses.replace(out[-1], end=end)
  return out


def _line_words(line: str, cue: Cue) -> list[tuple[str, float | None]]:
  """(word, inline start or None) pairs of one raw cue line."""
  parts = _INLINE_TIME.split(line)
  if len(parts) == 1:
    return [(w, None) for w in normalise_text(line).split()]
  # parts = [text, time, text, time, text, ...]; the leading text starts with the cue.
  pairs = []
  times = [cue.start] + [_safe_time(t, cue) for t in parts[1::2]]
  for text, t in zip(parts[0::2], times):
    pairs.extend((w, t) for w in normalise_text(text).split())
  return pairs


def _safe_time(text: str, cue: Cue) -> float:
  """An inline timestamp, clamped into the cue (YouTube's can overshoot by a frame)."""
  try:
    return min(max(parse_timestamp(text), cue.start), cue.end)
  except ValueError:
    return cue.start


def _cue_words(cue: Cue) -> tuple[list[tuple[str, float | None]], set[int]]:
  """All words of a cue and the word counts at which a line ends."""
  words, boundaries = [], set()
  for line in cue.text.split("\n"):
    pairs = _line_words(line, cue)
    if pairs:
      words.extend(pairs)
      boundaries.add(len(words))
  return words, boundaries


def _overlap(emitted_keys: list[str], keys: list[str], boundaries: set[int]) -> int:
  """Length of the longest acceptable repeat of the emitted tail at the cue's head."""
  for k in range(min(len(emitted_keys), len(keys)), 0, -1):
    if emitted_keys[-k:] == keys[:k] and (k >= MIN_FREE_OVERLAP or k in boundaries):
      return k
  return 0


def _time_new_words(pairs: list[tuple[str, float | None]], cue: Cue) -> list[Word]:
  """Words with starts: inline times where given, else the cue's span shared out."""
  if all(t is None for _, t in pairs):
    return spread_words([w for w, _ in pairs], cue.start, cue.end)
  out: list[Word] = []
  i = 0
  while i < len(pairs):
    # Words under one timestamp (and untimed words after it) share up to the next one.
    j = i + 1
    while j < len(pairs) and (pairs[j][1] is None or pairs[j][1] == pairs[i][1]):
      j += 1
    start = pairs[i][1] if pairs[i][1] is not None else cue.start
    stop = pairs[j][1] if j < len(pairs) else cue.end
    group = spread_words([w for w, _ in pairs[i:j]], start, max(stop, start))
    out.extend(dataclasses.replace(w, timed=pairs[i][1] is not None) for w in group)
    i = j
  return out


def _dedup(cues: Iterable[Cue]) -> tuple[list[Word], list[int]]:
  """The de-duplicated words and, for each, the index of the cue that added it."""
  words: list[Word] = []
  sources: list[int] = []
  keys: list[str] = []
  previous_end = None
  for index, cue in enumerate(cues):
    pairs, boundaries = _cue_words(cue)
    if not pairs:
      continue
    cue_keys = [word_key(w) for w, _ in pairs]
    k = 0
    if previous_end is not None and cue.start <= previous_end + MAX_ROLL_GAP_SECONDS:
      k = _overlap(keys[-len(cue_keys):], cue_keys, boundaries)
    previous_end = cue.end if previous_end is None else max(previous_end, cue.end)
    for word in _time_new_words(pairs[k:], cue) if k < len(pairs) else []:
      # Overlapping cues must not make time run backwards.
      start = max(word.start, words[-1].start) if words else word.start
      words.append(dataclasses.replace(word, start=start, end=max(word.end, start)))
      sources.append(index)
      keys.append(word_key(word.text))
  return _cap_timed_durations(words), sources


def estimated_word_seconds(word: str) -> float:
  """How long saying ``word`` takes, roughly: 0.1 s + 0.07 s a character, <= 1 s."""
  return min(MAX_WORD_SECONDS, BASE_WORD_SECONDS + SECONDS_PER_CHARACTER * len(word))


def _cap_timed_durations(words: list[Word]) -> list[Word]:
  """An inline-timed word ends at the next word's start, within its estimated length."""
  out = []
  for i, word in enumerate(words):
    if word.timed:
      end = word.end
      if i + 1 < len(words):
        end = min(end, max(words[i + 1].start, word.start))
      word = dataclasses.replace(
          word, end=min(end, word.start + estimated_word_seconds(word.text)))
    out.append(word)
  return out


def dedup_words(cues: Iterable[Cue]) -> list[Word]:
  """The spoken words of ``cues``, each once, with times (see the module docstring)."""
  return _dedup(cues)[0]


def dedup_cues(cues: Iterable[Cue]) -> list[Cue]:
  """Rolling-caption-free cues: clean text, each spoken word once, sensible times.

  Words that carry an inline timing become one cue each; other words are grouped
  back into one cue per source cue (only the words that cue added).
  """
  words, sources = _dedup(cues)
  out: list[Cue] = []
  i = 0
  while i < len(words):
    j = i + 1
    if not words[i].timed:
      while j < len(words) and not words[j].timed and sources[j] == sources[i]:
        j += 1
    group = words[i:j]
    out.append(Cue(group[0].start, group[-1].end, " ".join(w.text for w in group)))
    i = j
  return out
