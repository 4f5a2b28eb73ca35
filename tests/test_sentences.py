"""Timed sentences: punctuation where present, the pause segmenter otherwise."""

import json
import os

import pytest

from videobert_jax.text import sentences as sl
from videobert_jax.text.dedup import Word
from videobert_jax.text.sentences import PauseSegmenter
from videobert_jax.text.sentences import Sentence
from videobert_jax.text.transcripts import Cue

YOUTUBE_VTT_PATH = os.path.join(os.path.dirname(__file__), "fixtures",
                                "youtube_auto.en.vtt")


def timed_words(text, gaps=None, duration=0.3):
  """Words of ``text`` 0.3 s long, separated by 0.1 s or ``gaps[i]`` before word i."""
  gaps = gaps or {}
  out, t = [], 0.0
  for i, w in enumerate(text.split()):
    t += gaps.get(i, 0.1) if i else 0.0
    out.append(Word(t, t + duration, w))
    t += duration
  return out


def texts(sentences):
  return [s.text for s in sentences]


def test_punctuated_cues_split_at_sentence_ends_with_times():
  cues = [Cue(0.0, 2.0, "Heat the oil."),
          Cue(2.0, 5.0, "Add 1.5 cups of rice, then stir!"),
          Cue(5.0, 6.0, "Ready?"), Cue(6.0, 8.0, "Serve it hot")]
  out = sl.sentences_from_cues(cues)
  assert texts(out) == ["Heat the oil.", "Add 1.5 cups of rice, then stir!", "Ready?",
                        "Serve it hot"]
  assert [(s.start, s.end) for s in out] == [(0.0, 2.0), (2.0, 5.0), (5.0, 6.0),
                                             (6.0, 8.0)]


def test_sentence_inside_a_cue_gets_interpolated_times():
  out = sl.sentences_from_cues([Cue(10.0, 14.0, "Cut it. Now fry it.")])
  assert texts(out) == ["Cut it.", "Now fry it."]
  assert out[0].start == 10.0 and out[1].end == 14.0
  assert 10.0 < out[0].end == out[1].start < 14.0


@pytest.mark.parametrize("text, expected", [
    ("Mr. Smith adds salt. Then he stirs.", ["Mr. Smith adds salt.", "Then he stirs."]),
    ("Add 2 tbsp. of sugar. Done.", ["Add 2 tbsp. of sugar.", "Done."]),
    ("Add 2 tbsp. Then stir.", ["Add 2 tbsp.", "Then stir."]),
    ("Use herbs, e.g. basil. Good.", ["Use herbs, e.g. basil.", "Good."]),
    ("Wait... and stir. Done.", ["Wait... and stir.", "Done."]),
    ("Wait... Now stir.", ["Wait...", "Now stir."]),
    ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
    ("It costs 3.50 now. I said no. Ok!", ["It costs 3.50 now.", "I said no.", "Ok!"]),
    ("J. R. Tolkien cooks. Yes.", ["J. R. Tolkien cooks.", "Yes."]),
])
def test_abbreviations_decimals_ellipses_and_quotes(text, expected):
  assert texts(sl.sentences_from_cues([Cue(0, 10, text)])) == expected


def test_punctuation_rule():
  assert sl.is_punctuated(timed_words("one two three."))
  assert not sl.is_punctuated(timed_words("so now we cut the chicken"))
  # One stray full stop in 100 words is not punctuation.
  assert not sl.is_punctuated(timed_words(" ".join(["word"] * 99) + " end."))
  assert sl.is_punctuated(timed_words(" ".join((["word"] * 39 + ["end."]) * 3)))


def test_unpunctuated_asr_splits_at_pauses():
  words = timed_words("so today we make rice first wash the rice", gaps={5: 1.4})
  out = PauseSegmenter(max_pause_seconds=1.0)(words)
  assert texts(out) == ["so today we make rice", "first wash the rice"]
  assert out[0].start == 0.0 and out[0].end == pytest.approx(words[4].end)
  assert out[1].start == pytest.approx(words[5].start)


def test_long_run_is_cut_at_the_largest_pause_in_the_window():
  text = " ".join(f"w{i}" for i in range(30))
  words = timed_words(text, gaps={7: 0.6, 9: 0.8, 20: 0.7})
  out = PauseSegmenter(max_pause_seconds=2.0, max_words=12, min_words=4)(words)
  # Window 1 (cuts after 4..12 words): largest pause before w9. Then w9..: before w20
  # is 11 words in, inside the window.
  assert [len(s.text.split()) for s in out] == [9, 11, 10]
  assert out[1].text.split()[0] == "w9" and out[2].text.split()[0] == "w20"


def test_no_sentence_exceeds_max_words_and_min_words_respected():
  words = timed_words(" ".join(["x"] * 100))  # no pauses at all
  out = PauseSegmenter(max_words=7, min_words=3)(words)
  assert sum(len(s.text.split()) for s in out) == 100
  assert all(len(s.text.split()) <= 7 for s in out)
  assert all(len(s.text.split()) >= 3 for s in out[:-1])


def test_segmenter_validation():
  with pytest.raises(ValueError, match="max_words"):
    PauseSegmenter(max_words=0)
  with pytest.raises(ValueError, match="max_pause_seconds"):
    PauseSegmenter(max_pause_seconds=0)


def test_custom_segmenter_is_used_for_unpunctuated_text():
  calls = []

  def one_sentence_per_word(words):
    calls.append(len(words))
    return [Sentence(w.start, w.end, w.text) for w in words]

  out = sl.sentences_from_cues([Cue(0, 1, "a b"), Cue(1, 2, "c")], one_sentence_per_word)
  assert texts(out) == ["a", "b", "c"] and calls == [3]


def test_overlong_punctuated_sentence_is_split_by_the_segmenter():
  text = " ".join(["word"] * 30) + ". Short one."
  out = sl.sentences_from_cues([Cue(0, 30, text)], PauseSegmenter(max_words=10))
  assert [len(s.text.split()) for s in out] == [10, 10, 10, 2]


def test_empty_input():
  assert sl.sentences_from_cues([]) == []
  assert sl.sentences_from_cues([Cue(0, 1, "")]) == []


def test_load_sentences_from_youtube_vtt():
  out = sl.load_sentences(YOUTUBE_VTT_PATH)
  # "making" (at 0.88 s, ~0.52 s long) is followed by 0.96 s of silence.
  assert texts(out) == ["so today we're making", "orange chicken with sauce",
                        "first cut the chicken"]
  assert out[0].start == 0.0 and out[0].end == pytest.approx(0.88 + 0.52)
  assert out[1].start == pytest.approx(2.36) and out[1].end == pytest.approx(3.6 + 0.45)
  assert out[2].start == pytest.approx(7.51) and out[2].end == pytest.approx(8.3 + 0.59)


def test_load_sentences_from_json(tmp_path):
  path = tmp_path / "a.json"
  path.write_text(json.dumps([{"start": 1, "end": 3, "text": "Wash the rice."},
                              {"start": 3, "end": 4, "text": "[Music]"},
                              {"start": 4, "end": 6, "text": "Boil it &amp; salt it."}]))
  assert sl.load_sentences(path) == [Sentence(1.0, 3.0, "Wash the rice."),
                                     Sentence(4.0, 6.0, "Boil it & salt it.")]
