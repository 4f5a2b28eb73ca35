"""Reading .json/.vtt/.srt transcripts, their errors, and rolling-caption dedup."""

import json
import os

import pytest

from videobert_jax.text import dedup
from videobert_jax.text.transcripts import Cue
from videobert_jax.text.transcripts import parse_timestamp
from videobert_jax.text.transcripts import read_transcript
from videobert_jax.text.transcripts import TranscriptError

# A YouTube automatic-caption file as yt-dlp saves it: header with Kind/Language,
# rolling two-line cues (line 1 repeats the previous line 2), a line holding one
# space, 10 ms transition cues, inline word timings, a [Music] cue.
YOUTUBE_VTT_PATH = os.path.join(os.path.dirname(__file__), "fixtures",
                                "youtube_auto.en.vtt")
with open(YOUTUBE_VTT_PATH, encoding="utf-8") as _f:
  YOUTUBE_VTT = _f.read()

# Older YouTube captions: colour classes around each timed word.
YOUTUBE_COLOUR_VTT = """WEBVTT
Kind: captions
Language: en
Style:
::cue(c.colorE5E5E5) { color: rgb(229,229,229); }
##

00:00:01.000 --> 00:00:03.000 align:start position:19%
<c.colorE5E5E5>heat</c><c.colorCCCCCC><00:00:01.500><c> the</c><00:00:01.800><c> oil</c></c>

00:00:03.000 --> 00:00:05.000 align:start position:19%
<c.colorE5E5E5>heat the oil</c>
<c.colorE5E5E5>in<00:00:03.400><c> a</c><00:00:03.600><c> pan</c></c>
"""


def write(tmp_path, name, text, encoding="utf-8", newline="\n"):
  path = tmp_path / name
  path.write_bytes(text.replace("\n", newline).encode(encoding))
  return str(path)


def youtube_vtt(words, times, line_words=4, end=None):
  """A YouTube-style rolling VTT of ``words`` spoken at ``times``."""
  lines = [words[i:i + line_words] for i in range(0, len(words), line_words)]
  starts = [times[i] for i in range(0, len(words), line_words)]
  end = end if end is not None else times[-1] + 2.0
  out = ["WEBVTT", "Kind: captions", "Language: en", ""]

  def ts(t):
    return f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{t % 60:06.3f}"

  previous = " "
  for n, (line, start) in enumerate(zip(lines, starts)):
    stop = starts[n + 1] if n + 1 < len(starts) else end
    first = n * line_words
    timed = line[0] + "".join(f"<{ts(times[first + j])}><c> {w}</c>"
                              for j, w in enumerate(line) if j > 0)
    out += [f"{ts(start)} --> {ts(stop - 0.01)} align:start position:0%",
            previous, timed, ""]
    previous = " ".join(line)
    out += [f"{ts(stop - 0.01)} --> {ts(stop)} align:start position:0%",
            previous, " ", ""]
  return "\n".join(out)


# ------------------------------------------------------------------------ reading


def test_json_transcript(tmp_path):
  path = write(tmp_path, "a.json", json.dumps(
      [{"start": 0, "end": 1.5, "text": "hello"},
       {"start": 1.5, "end": 3, "text": "world"}]))
  assert read_transcript(path) == [Cue(0.0, 1.5, "hello"), Cue(1.5, 3.0, "world")]


@pytest.mark.parametrize("body, line, fragment", [
    ('[{"start": 0, "end": 1, "text": "a"},\n {"start": 0, "end": 1 "text": "b"}]', 2,
     "not valid JSON"),
    ('{"start": 0}', 1, "expected a JSON list"),
    ('[{"start": 0, "end": 1, "text": "a"},\n "oops"]', 2, "item 1: expected an object"),
    ('[\n{"start": 0, "end": 1, "text": "a"},\n{"end": 1, "text": "b"}]', 3,
     "item 1: 'start' must be a number"),
    ('[\n{"start": true, "end": 1, "text": "a"}]', 2, "item 0: 'start' must be a number"),
    ('[\n{"start": 0, "end": 1, "text": "a"},\n\n{"start": 5, "end": 4, "text": "b"}]', 4,
     "item 1: end 4.000s is before start 5.000s"),
    ('[{"start": 0, "end": 1, "text": 3}]', 1, "item 0: 'text' must be a string"),
    ('[{"start": -1, "end": 1, "text": "a"}]', 1, "negative start"),
])
def test_json_errors_name_file_and_line(tmp_path, body, line, fragment):
  path = write(tmp_path, "bad.json", body)
  with pytest.raises(TranscriptError) as info:
    read_transcript(path)
  assert info.value.path == path and info.value.line == line
  assert str(info.value).startswith(f"{path}:{line}: ")
  assert fragment in str(info.value)


def test_vtt_header_notes_ids_settings_and_hourless_times(tmp_path):
  path = write(tmp_path, "a.vtt", """WEBVTT - cooking show

NOTE this is a comment
spanning two lines

STYLE
::cue { color: yellow }

REGION
id:fred width:40%

intro
00:01.000 --> 00:02.500 align:start position:0% line:84%
<v Chef>Hello &amp; welcome</v>

2
01:00:03.000 --> 01:00:04.000
second line
of text
""")
  assert read_transcript(path) == [
      Cue(1.0, 2.5, "<v Chef>Hello &amp; welcome</v>"),
      Cue(3603.0, 3604.0, "second line\nof text")]


def test_vtt_crlf_bom_empty_and_overlapping_cues(tmp_path):
  text = ("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nfirst\n\n"
          "00:00:01.000 --> 00:00:03.000\n\n00:00:01.500 --> 00:00:01.500\noverlap\n")
  path = write(tmp_path, "a.vtt", "\ufeff" + text, newline="\r\n")
  cues = read_transcript(path)
  assert cues == [Cue(0.0, 2.0, "first"), Cue(1.0, 3.0, ""), Cue(1.5, 1.5, "overlap")]
  words = dedup.dedup_words(cues)
  assert [w.text for w in words] == ["first", "overlap"]
  assert words[1].start >= words[0].start  # time never runs backwards


def test_vtt_whitespace_line_does_not_end_a_cue(tmp_path):
  path = write(tmp_path, "a.vtt", "WEBVTT\n\n00:00.000 --> 00:01.000\n \nword\n")
  assert read_transcript(path) == [Cue(0.0, 1.0, " \nword")]


@pytest.mark.parametrize("body, line, fragment", [
    ("WEBVTT\n\n00:00:01.000 --> 00:00:0x.000\nhi\n", 3, "unparsable timestamp"),
    ("WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\nok\n\n2\n00:00:05.000 --> "
     "00:00:04.000\nbad\n", 8, "end 4.000s is before start 5.000s"),
    ("WEBVTT\n\n00:00:01.000 -> 00:00:02.000\nhi\n", 3, "expected a cue timing line"),
    ("WEBVTT\n\n00:75:01.000 --> 00:76:02.000\nhi\n", 3, "below 60"),
    ("WEBVTT\n\n00:00:01.000 -->\nhi\n", 3, "no end time"),
])
def test_vtt_errors_name_file_and_line(tmp_path, body, line, fragment):
  path = write(tmp_path, "bad.vtt", body)
  with pytest.raises(TranscriptError) as info:
    read_transcript(path)
  assert str(info.value).startswith(f"{path}:{line}: ")
  assert fragment in info.value.message


def test_srt_tags_crlf_bom_and_paragraph_continuation(tmp_path):
  text = """1
00:00:01,000 --> 00:00:02,500
<i>Hello</i> <b>there</b>

2
00:00:02,500 --> 00:00:04,000 X1:40 X2:600 Y1:20 Y2:50
<font color="#ffff00">stir the</font>
sauce

second paragraph of cue 2

3
00:00:04,000 --> 00:00:05,000
{\\an8}done
"""
  path = write(tmp_path, "a.srt", "\ufeff" + text, newline="\r\n")
  cues = read_transcript(path)
  assert [(c.start, c.end) for c in cues] == [(1.0, 2.5), (2.5, 4.0), (4.0, 5.0)]
  assert cues[1].text.endswith("sauce\nsecond paragraph of cue 2")
  assert [c.text for c in dedup.dedup_cues(cues)] == [
      "Hello there", "stir the sauce second paragraph of cue 2", "done"]


@pytest.mark.parametrize("body, line, fragment", [
    ("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 --> 00:00:aa,000\nx\n", 6,
     "unparsable timestamp"),
    ("1\n00:00:03,000 --> 00:00:02,000\nx\n", 2, "before start"),
    ("1\nhello\n", 1, "timing line"),
    ("hello\n", 1, "timing line"),
])
def test_srt_errors_name_file_and_line(tmp_path, body, line, fragment):
  path = write(tmp_path, "bad.srt", body)
  with pytest.raises(TranscriptError) as info:
    read_transcript(path)
  assert str(info.value).startswith(f"{path}:{line}: ")
  assert fragment in info.value.message


def test_unknown_suffix_missing_file_and_bad_encoding(tmp_path):
  with pytest.raises(TranscriptError, match=r"a\.txt: unknown transcript suffix"):
    read_transcript(tmp_path / "a.txt")
  with pytest.raises(TranscriptError, match=r"missing\.vtt: cannot read"):
    read_transcript(tmp_path / "missing.vtt")
  path = tmp_path / "latin.srt"
  path.write_bytes(b"1\n00:00:01,000 --> 00:00:02,000\ncr\xe8me\n")
  with pytest.raises(TranscriptError, match=r"latin\.srt:3: not UTF-8"):
    read_transcript(path)


def test_parse_timestamp():
  assert parse_timestamp("01:02:03.456") == pytest.approx(3723.456)
  assert parse_timestamp("02:03,5") == pytest.approx(123.5)
  with pytest.raises(ValueError):
    parse_timestamp("1:2:3:4")


# ------------------------------------------------------------------ normalisation


@pytest.mark.parametrize("raw, clean", [
    ("Salt &amp; pepper&nbsp;&gt; sugar", "Salt & pepper > sugar"),
    ("<c.colorE5E5E5>heat</c><00:00:01.500><c> the</c>", "heat the"),
    ("[Music] let's cook [Applause]", "let's cook"),
    ("&gt;&gt; and now", "and now"),
    ("- Hi.\n- Hello.", "Hi. Hello."),
    ("♪ la la ♪", "la la"),
    ("<font color=\"red\">  two\t spaces </font>", "two spaces"),
])
def test_normalise_text(raw, clean):
  assert dedup.normalise_text(raw) == clean


# ---------------------------------------------------------------- de-duplication


def test_youtube_rolling_captions_give_each_word_once_with_inline_times(tmp_path):
  cues = read_transcript(write(tmp_path, "yt.en.vtt", YOUTUBE_VTT))
  assert len(cues) == 8
  words = dedup.dedup_words(cues)
  assert " ".join(w.text for w in words) == (
      "so today we're making orange chicken with sauce first cut the chicken")
  starts = {w.text + str(i): w.start for i, w in enumerate(words)}
  assert starts["chicken5"] == pytest.approx(2.96)  # inline timing
  assert starts["orange4"] == pytest.approx(2.36)  # first word of a line: the cue start
  assert starts["first8"] == pytest.approx(7.51)
  # A word known only by its start lasts until the next word, at most its
  # estimated length (0.1 s + 0.07 s a character): "sauce" 0.45 s, "so" until "today".
  assert words[7].end == pytest.approx(3.6 + 0.45)
  assert words[0].end == pytest.approx(0.24) and words[1].end == pytest.approx(0.64)
  assert all(w.end >= w.start for w in words)
  assert all(a.start <= b.start for a, b in zip(words, words[1:]))


def test_dedup_cues_one_cue_per_timed_word(tmp_path):
  cues = dedup.dedup_cues(read_transcript(write(tmp_path, "yt.vtt", YOUTUBE_VTT)))
  assert [c.text for c in cues][:4] == ["so", "today", "we're", "making"]
  assert cues[1] == Cue(0.32, 0.64, "today")


def test_colour_tagged_youtube_captions(tmp_path):
  cues = read_transcript(write(tmp_path, "old.vtt", YOUTUBE_COLOUR_VTT))
  words = dedup.dedup_words(cues)
  assert [w.text for w in words] == ["heat", "the", "oil", "in", "a", "pan"]
  assert [w.start for w in words] == pytest.approx([1.0, 1.5, 1.8, 3.0, 3.4, 3.6])


def test_generated_long_rolling_transcript_round_trips(tmp_path):
  script = ("now we take the chicken and cut it into small pieces then we heat some oil "
            "in a pan and add the garlic the the onions stir it well and wait for two "
            "minutes yes yes it smells good").split()
  times = [0.5 + 0.37 * i + (1.5 if i >= 20 else 0.0) for i in range(len(script))]
  path = write(tmp_path, "long.vtt", youtube_vtt(script, times, line_words=5))
  words = dedup.dedup_words(read_transcript(path))
  assert [w.text for w in words] == script  # repeated "the the", "yes yes" kept
  assert [w.start for w in words] == pytest.approx(times, abs=1e-3)


def test_broadcast_rollup_without_inline_timings(tmp_path):
  text = """1
00:00:00,000 --> 00:00:02,000
hello there my friend

2
00:00:02,000 --> 00:00:04,000
hello there my friend
how are you

3
00:00:04,000 --> 00:00:06,000
how are you
today we cook rice
"""
  cues = dedup.dedup_cues(read_transcript(write(tmp_path, "roll.srt", text)))
  assert [c.text for c in cues] == ["hello there my friend", "how are you",
                                    "today we cook rice"]
  assert [(c.start, c.end) for c in cues] == [(0, 2), (2, 4), (4, 6)]


def test_genuine_repetition_across_cues_is_kept():
  cues = [Cue(0, 1, "I said no"), Cue(1, 2, "no, no way"), Cue(2, 3, "way")]
  # "no" is not a whole line of cue 2; "way" is a whole line but one word of cue 3
  # repeating the last word of cue 2, so it counts as a roll.
  assert " ".join(w.text for w in dedup.dedup_words(cues)) == "I said no no, no way"
  far_apart = [Cue(0, 1, "stir it well"), Cue(30, 31, "stir it well")]
  assert len(dedup.dedup_words(far_apart)) == 6  # a roll never skips 29 s


def test_spread_words_shares_the_span_by_length():
  words = dedup.spread_words(["a", "bbb"], 0.0, 6.0)
  assert [w.start for w in words] == pytest.approx([0.0, 2.0])
  assert [w.end for w in words] == pytest.approx([2.0, 6.0])
