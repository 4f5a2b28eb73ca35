"""A zero-shot baseline without training: visual-word x speech co-occurrence counts.

Row "Co-occurrence (visual words x speech)" of the zero-shot table (issue #16).
It asks how far plain counting gets: which words are spoken while a visual word
is on screen in the pretraining corpus?

Counting. The pretraining corpus is read as the ``videobert_video_text`` builder
reads it (``datasets.segments``): every English video with a transcript, minus
the evaluation videos (``datasets.eval_ids``, the training config's
``data.eval_video_ids``); each ASR sentence covering at least one clip is a span,
its visual words are the codebook leaves of the clips it covers
(``segments.sentence_segments``) and its words are the lower-cased words of the
sentence (``labels.caption_words``). Within a span every (clip, spoken word)
pair counts once::

  c(v, w) += n_span(v) * n_span(w)

where ``n_span(x)`` is how often ``x`` occurs in the span.

Scoring. For a candidate set ``C`` (one slot's candidates) and visual word
``v``, with add-one (Laplace, ``alpha = 1``) smoothing over ``C``::

  p(w | v) = (c(v, w) + alpha) / (sum_{w' in C} c(v, w') + alpha * |C|)

A segment with visual words ``v_1 .. v_n`` (one per clip, repeats kept) scores
``w`` by ``sum_i log p(w | v_i)``; candidates are ranked by that score. A visual
word never seen in the corpus adds the same constant to every candidate, and
ties (say, a segment whose visual words were never seen) are broken by the
candidate's total count in the corpus (the most spoken word first), then by
candidate order. This is ``log p(w | v)``, not pointwise mutual information: in
the open vocabulary frequent function words ("the", "and", "we") have the largest
``p(w | v)`` for most visual words and fill the top 5, so that row stays near 0;
the label-list row, whose candidates are content words only, is the informative one.

Candidates. Open vocabulary: candidate ``w`` counts its own word. Label lists:
candidate lemma ``l`` of the verb (noun) list counts every spoken word that
``labels.LabelVocabulary.labels`` labels as ``l``, so "cutting" and "cuts" count
for "cut" exactly as they would in a caption.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from scipy import sparse

ALPHA = 1.0  # add-one smoothing
_FLUSH_ENTRIES = 2_000_000  # pending (v, w) entries before they are summed


@dataclasses.dataclass(frozen=True)
class Cooccurrence:
  """Visual word x spoken word counts of a corpus."""

  counts: sparse.csr_matrix  # int64 [K, W]: c(v, w)
  words: tuple[str, ...]  # the W spoken words (columns), in first-seen order
  num_spans: int  # spans counted
  num_videos: int  # videos that gave at least one span

  @property
  def num_visual_words(self) -> int:
    return self.counts.shape[0]

  def summary(self) -> dict:
    """Plain JSON-able sizes, for the results file."""
    return {"num_videos": self.num_videos, "num_spans": self.num_spans,
            "num_words": len(self.words), "num_visual_words": self.num_visual_words,
            "num_pairs": int(self.counts.sum()), "smoothing": f"add-{ALPHA:g}"}


def count(spans: Iterable[tuple[np.ndarray, Sequence[str]]],
          num_visual_words: int) -> Cooccurrence:
  """Counts ``c(v, w)`` over ``(visual_words [n], spoken words)`` spans.

  Args:
    spans: per span, its visual words (codebook indices) and its spoken words;
      a span without either is not counted.
    num_visual_words: K, the codebook size.
  """
  index: dict[str, int] = {}
  rows, cols, vals = [], [], []
  total = sparse.csr_matrix((num_visual_words, 0), dtype=np.int64)
  num_spans, pending = 0, 0

  def flush(total):
    if not rows:
      return total
    width = max(len(index), total.shape[1])
    part = sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(num_visual_words, width), dtype=np.int64).tocsr()
    total = _widen(total, width) + part
    rows.clear(), cols.clear(), vals.clear()
    return total

  for visual, words in spans:
    visual = np.asarray(visual, np.int64)
    if visual.size and (visual.min() < 0 or visual.max() >= num_visual_words):
      raise ValueError(f"visual word out of range [0, {num_visual_words}): "
                       f"{visual.min()}..{visual.max()}")
    if not visual.size or not len(words):
      continue
    num_spans += 1
    v, nv = np.unique(visual, return_counts=True)
    w, nw = np.unique([index.setdefault(x, len(index)) for x in words],
                      return_counts=True)
    rows.append(np.repeat(v, len(w)))
    cols.append(np.tile(w, len(v)))
    vals.append(np.outer(nv, nw).ravel())
    pending += len(v) * len(w)
    if pending >= _FLUSH_ENTRIES:
      total, pending = flush(total), 0
  total = _widen(flush(total), len(index))
  return Cooccurrence(counts=total.tocsr(), words=tuple(index), num_spans=num_spans,
                      num_videos=0)


def _widen(matrix: sparse.csr_matrix, width: int) -> sparse.csr_matrix:
  """``matrix`` with zero columns appended up to ``width``."""
  if matrix.shape[1] >= width:
    return matrix
  matrix = matrix.tocsr(copy=True)
  matrix.resize((matrix.shape[0], width))
  return matrix


def corpus_spans(corpus_dir: str, codebook_path: str, excluded_ids: frozenset[str],
                 skip_bad: bool = False) -> Iterator[tuple[str, np.ndarray, list[str]]]:
  """``(video_id, visual_words, spoken words)`` of every span of the corpus."""
  from videobert_jax.corpus import reader  # pylint: disable=g-import-not-at-top
  from videobert_jax.datasets import segments  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import labels as labels_lib  # pylint: disable=g-import-not-at-top
  for record in reader.iter_videos(corpus_dir, skip_bad=skip_bad):
    if record.video_id in excluded_ids or not record.is_english:
      continue
    try:
      sentences = segments.load_sentences(record)
      if not sentences:
        continue
      words = segments.visual_words(record, codebook_path)
    except ValueError:
      if not skip_bad:
        raise
      continue
    for index, first, last in segments.sentence_segments(
        sentences, record.clip_seconds, len(words)):
      yield (record.video_id, words[first:last],
             labels_lib.caption_words(sentences[index].text))


def from_corpus(corpus_dir: str, codebook_path: str, num_visual_words: int,
                eval_video_ids=None, skip_bad: bool = False) -> Cooccurrence:
  """Counts a corpus folder (see the module docstring).

  Args:
    corpus_dir: the pretraining corpus (videos.jsonl, features, asr).
    codebook_path: the codebook the evaluated model uses.
    num_visual_words: its number of leaves.
    eval_video_ids: ids never counted, as ``datasets.eval_ids.load`` takes them
      (None: the YouCook II ids).
    skip_bad: skip videos with bad files instead of failing.
  """
  from videobert_jax.datasets import eval_ids  # pylint: disable=g-import-not-at-top
  excluded = eval_ids.load(eval_video_ids)
  videos: list[str] = []

  def spans():
    for video_id, visual, words in corpus_spans(corpus_dir, codebook_path, excluded,
                                                skip_bad):
      videos.append(video_id)
      yield visual, words

  result = count(spans(), num_visual_words)
  return dataclasses.replace(result, num_videos=len(set(videos)))


def candidate_counts(cooc: Cooccurrence,
                     columns: Sequence[Sequence[str]]) -> sparse.csr_matrix:
  """``[K, C]`` counts of each candidate: the sum of its spoken words' columns.

  ``columns[c]`` names the spoken words counted for candidate ``c`` (words never
  spoken are ignored).
  """
  index = {w: i for i, w in enumerate(cooc.words)}
  rows, cols = [], []
  for c, words in enumerate(columns):
    for word in set(words):
      if word in index:
        rows.append(index[word])
        cols.append(c)
  select = sparse.csr_matrix((np.ones(len(rows), np.int64), (rows, cols)),
                             shape=(len(cooc.words), len(columns)))
  return (cooc.counts @ select).tocsr()


def word_columns(words: Sequence[str]) -> list[list[str]]:
  """Open vocabulary: each candidate word counts itself."""
  return [[w] for w in words]


def lemma_columns(cooc: Cooccurrence, lemmas: Sequence[str],
                  lemmatize: Callable[[str], str | None]) -> list[list[str]]:
  """Label lists: each lemma counts the spoken words ``lemmatize`` maps to it."""
  position = {l: i for i, l in enumerate(lemmas)}
  columns: list[list[str]] = [[] for _ in lemmas]
  for word in cooc.words:
    lemma = lemmatize(word)
    if lemma in position:
      columns[position[lemma]].append(word)
  return columns


def log_scores(counts: sparse.csr_matrix, segment_words: Sequence[np.ndarray],
               alpha: float = ALPHA) -> np.ndarray:
  """``[N, C]``: per segment and candidate, ``sum_i log p(w | v_i)`` (float64)."""
  num_visual, num_candidates = counts.shape
  lengths = [len(np.asarray(w)) for w in segment_words]
  rows = np.repeat(np.arange(len(segment_words)), lengths)
  cols = (np.concatenate([np.asarray(w, np.int64) for w in segment_words])
          if segment_words else np.zeros(0, np.int64))
  if cols.size and (cols.min() < 0 or cols.max() >= num_visual):
    raise ValueError(f"visual word out of range [0, {num_visual})")
  histogram = sparse.csr_matrix((np.ones(len(cols)), (rows, cols)),
                                shape=(len(segment_words), num_visual))
  # log p(w|v) = log(alpha) + log1p(c(v,w)/alpha) - log(c(v) + alpha*|C|)
  gain = (counts.astype(np.float64) / alpha).log1p()
  totals = np.asarray(counts.sum(axis=1), np.float64).ravel()
  per_visual = np.log(alpha) - np.log(totals + alpha * num_candidates)
  constant = histogram @ per_visual
  return np.asarray((histogram @ gain).todense()) + constant[:, None]


def rank(counts: sparse.csr_matrix, segment_words: Sequence[np.ndarray],
         names: Sequence[str], k: int = 5, alpha: float = ALPHA,
         chunk: int = 256) -> list[list[str]]:
  """Per segment, the ``k`` best candidates (ties: most counted, then first)."""
  prior = np.asarray(counts.sum(axis=0)).ravel()
  order = np.argsort(-prior, kind="stable")  # candidate columns, most counted first
  reordered = counts[:, order]
  out = []
  for start in range(0, len(segment_words), chunk):
    scores = log_scores(reordered, segment_words[start:start + chunk], alpha)
    best = np.argsort(-scores, axis=-1, kind="stable")[:, :k]
    out.extend([names[order[j]] for j in row] for row in best)
  return out
