"""The token-id layout: one embedding table for WordPieces, ``[>]`` and visual words.

This module is the only place that knows where each kind of token lives in the
embedding table; everything else asks it by name. The layout (DESIGN.md):

* ``[0, text_vocab_size)``: the BERT WordPiece vocabulary (bert-base/large uncased
  has 30,522 entries, with ``[PAD]``=0, ``[UNK]``=100, ``[CLS]``=101, ``[SEP]``=102,
  ``[MASK]``=103);
* ``text_vocab_size``: ``[>]``, the separator between text and video;
* the next ``num_visual_words`` ids: visual words ``v0 … v(K-1)`` (K = k**d, 20,736
  for the paper's d=4, k=12);
* padding rows up to a multiple of ``pad_multiple`` (128), so the vocabulary
  dimension shards evenly and matmuls stay aligned. Padding ids never occur in data.

Example on the wire: ``[CLS] orange chicken with [MASK] sauce [>] v01 [MASK] v08 [SEP]``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

PAD_ID = 0
UNK_ID = 100
CLS_ID = 101
SEP_ID = 102
MASK_ID = 103

BERT_UNCASED_VOCAB_SIZE = 30522
PAPER_NUM_VISUAL_WORDS = 12**4

# WordPiece ids that are control symbols rather than words; masking and random
# replacement must never pick them.
TEXT_SPECIAL_IDS = (PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID)


@dataclasses.dataclass(frozen=True)
class TokenLayout:
  """Where text, ``[>]``, visual and padding ids live in the embedding table."""

  text_vocab_size: int = BERT_UNCASED_VOCAB_SIZE  # entries of vocab.txt
  num_visual_words: int = PAPER_NUM_VISUAL_WORDS  # k**d leaves of the codebook
  pad_multiple: int = 128  # vocabulary rows are padded to a multiple of this

  def __post_init__(self):
    if self.text_vocab_size <= MASK_ID:
      raise ValueError(
          f"text_vocab_size={self.text_vocab_size} is too small: the BERT "
          f"specials need ids up to [MASK]={MASK_ID}")
    if self.num_visual_words < 1:
      raise ValueError(f"num_visual_words must be >= 1, got {self.num_visual_words}")
    if self.pad_multiple < 1:
      raise ValueError(f"pad_multiple must be >= 1, got {self.pad_multiple}")

  # Ids by name.
  pad_id: int = dataclasses.field(default=PAD_ID, init=False)
  unk_id: int = dataclasses.field(default=UNK_ID, init=False)
  cls_id: int = dataclasses.field(default=CLS_ID, init=False)
  sep_id: int = dataclasses.field(default=SEP_ID, init=False)
  mask_id: int = dataclasses.field(default=MASK_ID, init=False)

  @property
  def video_sep_id(self) -> int:
    """Id of ``[>]``, the separator between the text and the video part."""
    return self.text_vocab_size

  @property
  def visual_offset(self) -> int:
    """Id of visual word ``v0``."""
    return self.text_vocab_size + 1

  @property
  def num_used_ids(self) -> int:
    """Ids that can occur in data: text, ``[>]`` and visual words."""
    return self.visual_offset + self.num_visual_words

  @property
  def vocab_size(self) -> int:
    """Rows of the embedding table, padded to a multiple of ``pad_multiple``."""
    m = self.pad_multiple
    return -(-self.num_used_ids // m) * m

  def visual_ids(self, visual_words):
    """Maps visual-word indices (0..K-1, from the codebook) to token ids."""
    words = np.asarray(visual_words)
    if words.size and (words.min() < 0 or words.max() >= self.num_visual_words):
      raise ValueError(
          f"visual word out of range [0, {self.num_visual_words}): "
          f"min {words.min()}, max {words.max()}")
    return words.astype(np.int64) + self.visual_offset

  def visual_words(self, ids):
    """Maps token ids back to visual-word indices; ids that are not visual give -1."""
    ids = np.asarray(ids)
    return np.where(self.is_visual(ids), ids - self.visual_offset, -1)

  def is_visual(self, ids):
    """True where ``ids`` are visual words (works on numpy and jax arrays)."""
    return (ids >= self.visual_offset) & (ids < self.num_used_ids)

  def is_text(self, ids):
    """True where ``ids`` are WordPieces, specials included."""
    return (ids >= 0) & (ids < self.text_vocab_size)

  def token_name(self, token_id: int, vocab_words=None) -> str:
    """A human-readable name: the WordPiece (if ``vocab_words`` given), ``[>]`` or ``vN``."""
    token_id = int(token_id)
    if token_id == self.video_sep_id:
      return "[>]"
    if self.visual_offset <= token_id < self.num_used_ids:
      return f"v{token_id - self.visual_offset}"
    if 0 <= token_id < self.text_vocab_size:
      if vocab_words is not None:
        return vocab_words[token_id]
      return {PAD_ID: "[PAD]", UNK_ID: "[UNK]", CLS_ID: "[CLS]", SEP_ID: "[SEP]",
              MASK_ID: "[MASK]"}.get(token_id, f"t{token_id}")
    if self.num_used_ids <= token_id < self.vocab_size:
      return f"[PADROW{token_id - self.num_used_ids}]"
    raise ValueError(f"token id {token_id} outside the table of {self.vocab_size} rows")

  def to_dict(self) -> dict:
    """The layout as plain JSON-able values (for configs and checkpoints)."""
    return {"text_vocab_size": self.text_vocab_size,
            "num_visual_words": self.num_visual_words,
            "pad_multiple": self.pad_multiple,
            "vocab_size": self.vocab_size,
            "video_sep_id": self.video_sep_id,
            "visual_offset": self.visual_offset}


def layout_for_codebook(levels: int, clusters: int,
                        text_vocab_size: int = BERT_UNCASED_VOCAB_SIZE) -> TokenLayout:
  """The layout for a hierarchical codebook with ``clusters**levels`` leaves."""
  return TokenLayout(text_vocab_size=text_vocab_size,
                     num_visual_words=clusters**levels)
