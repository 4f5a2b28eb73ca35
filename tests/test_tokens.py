"""The token-id layout of DESIGN.md."""

import numpy as np
import pytest

from videobert_jax import tokens


def test_paper_layout_matches_design():
  layout = tokens.TokenLayout()
  assert (layout.pad_id, layout.unk_id, layout.cls_id, layout.sep_id,
          layout.mask_id) == (0, 100, 101, 102, 103)
  assert layout.video_sep_id == 30522
  assert layout.visual_offset == 30523
  assert layout.num_visual_words == 20736
  assert layout.num_used_ids == 30523 + 20736
  assert layout.vocab_size % 128 == 0
  assert layout.num_used_ids <= layout.vocab_size < layout.num_used_ids + 128


def test_visual_ids_round_trip_and_classification():
  layout = tokens.layout_for_codebook(levels=2, clusters=3, text_vocab_size=200)
  words = np.array([0, 4, 8])
  ids = layout.visual_ids(words)
  np.testing.assert_array_equal(ids, [201, 205, 209])
  np.testing.assert_array_equal(layout.visual_words(ids), words)
  assert not layout.is_visual(layout.video_sep_id)
  assert layout.is_text(tokens.MASK_ID) and not layout.is_text(layout.video_sep_id)
  assert layout.token_name(205) == "v4" and layout.token_name(200) == "[>]"
  assert layout.token_name(tokens.MASK_ID) == "[MASK]"
  np.testing.assert_array_equal(layout.visual_words([5, 200, 209]), [-1, -1, 8])


def test_out_of_range_visual_words_raise():
  layout = tokens.layout_for_codebook(levels=1, clusters=4, text_vocab_size=200)
  with pytest.raises(ValueError, match="out of range"):
    layout.visual_ids([4])
  with pytest.raises(ValueError, match="too small"):
    tokens.TokenLayout(text_vocab_size=50)
