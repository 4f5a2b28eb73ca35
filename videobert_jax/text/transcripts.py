"""Reading ASR transcripts: ``.json``, WebVTT (``.vtt``) and SubRip (``.srt``).

``read_transcript(path)`` returns the cues of a transcript in file order, each a
``Cue(start, end, text)`` with times in seconds. ``Cue.text`` is the cue payload as
written (lines joined by ``\\n``; tags, HTML entities and YouTube's inline word
timestamps such as ``<00:00:01.234><c> word</c>`` kept), because
``videobert_jax.text.dedup`` needs the inline timings; ``dedup.normalise_text``
cleans it.

Formats:

* ``.json``: a list of ``{"start": s, "end": s, "text": "..."}`` (seconds).
* ``.vtt``: WebVTT, as YouTube automatic captions come: a ``WEBVTT`` header block
  (``Kind:``/``Language:`` lines), ``NOTE``/``STYLE``/``REGION`` blocks (skipped),
  optional cue ids, cue settings after the end time (``align:start position:0%``),
  hours optional (``mm:ss.ttt``). YouTube puts a line holding one space inside
  cues; only a truly empty line ends a block, as the WebVTT spec says.
* ``.srt``: numbered blocks, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, optional ``<i>``,
  ``<b>``, ``<font>`` tags. A text paragraph with no timing line after a blank line
  continues the previous cue (some subtitle editors write blank lines in cues).

Both subtitle formats accept ``.`` or ``,`` before the milliseconds and 1-3
fraction digits, are read as UTF-8 with or without a byte-order mark, and take
LF, CRLF or CR line ends. Every problem raises ``TranscriptError`` whose ``str()``
is one line ``PATH:LINE: message`` (JSON: ``PATH:LINE: item N: message``, N the
0-based list index).

Empty transcripts: a file holding only whitespace (any suffix, a 0-byte ``.json``
included) reads as no cues, and ``dedup.is_empty(cues)`` is True when no cue has text
left after ``dedup.normalise_text`` (tags, timings and ``[Music]`` markers
removed). Every stage treats such a transcript as no ASR; ``validate`` counts it
as a warning.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re

SUFFIXES = (".json", ".vtt", ".srt")

# [hours:]minutes:seconds[.,]fraction; the hours are optional in WebVTT.
_TIMESTAMP = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3}))?$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclasses.dataclass(frozen=True)
class Cue:
  """One timed piece of a transcript: ``[start, end]`` seconds and its raw text."""

  start: float  # seconds from the start of the video
  end: float  # seconds, >= start
  text: str  # payload as written; see the module docstring


class TranscriptError(ValueError):
  """A problem at one place of one transcript; ``str()`` is ``PATH:LINE: message``."""

  def __init__(self, path: str, line: int | None, message: str):
    self.path = path
    self.line = line
    self.message = message
    where = f"{path}:{line}" if line is not None else path
    super().__init__(f"{where}: {message}")


def parse_timestamp(text: str) -> float:
  """Parses ``[hh:]mm:ss[.ttt]`` (``.`` or ``,``) to seconds; raises ValueError."""
  match = _TIMESTAMP.match(text.strip())
  if not match:
    raise ValueError(f"unparsable timestamp {text.strip()!r} (expected [hh:]mm:ss.ttt)")
  hours, minutes, seconds, fraction = match.groups()
  if int(minutes) >= 60 or int(seconds) >= 60:
    raise ValueError(f"unparsable timestamp {text.strip()!r}: minutes and seconds "
                     "must be below 60")
  value = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
  if fraction:
    value += int(fraction) / 10**len(fraction)
  return float(value)


def read_transcript(path: str | os.PathLike) -> list[Cue]:
  """Reads a ``.json``, ``.vtt`` or ``.srt`` transcript into cues (file order).

  Raises:
    TranscriptError: unknown suffix, unreadable file, malformed structure,
      unparsable timestamp or an end before its start; names the file and line.
  """
  path = os.fspath(path)
  suffix = os.path.splitext(path)[1].lower()
  if suffix not in SUFFIXES:
    raise TranscriptError(path, None, f"unknown transcript suffix {suffix!r}; expected "
                          "one of " + ", ".join(SUFFIXES))
  text = _read_text(path)
  if not text.strip():
    return []
  if suffix == ".json":
    return _parse_json(text, path)
  lines = _LINE_BREAK.split(text)
  if suffix == ".vtt":
    return _parse_vtt(lines, path)
  return _parse_srt(lines, path)


def _read_bytes(path: str) -> bytes:
  """The bytes of a local file, or of a ``scheme://`` URL through ``tf.io.gfile``."""
  if "://" in path:
    from videobert_jax import quiet  # pylint: disable=g-import-not-at-top
    tf = quiet.import_tensorflow()  # without its start-up lines
    with tf.io.gfile.GFile(path, "rb") as f:
      return f.read()
  with open(path, "rb") as f:
    return f.read()


def _read_text(path: str) -> str:
  """The file as text (UTF-8, optional BOM); errors name the file and line."""
  try:
    data = _read_bytes(path)
  except OSError as e:
    raise TranscriptError(path, None, "cannot read transcript: "
                          f"{e.strerror or e}") from None
  try:
    return data.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    line = data[:e.start].count(b"\n") + 1
    raise TranscriptError(path, line, f"not UTF-8 (byte 0x{data[e.start]:02x}); "
                          "re-save the transcript as UTF-8") from None


def _check_span(start: float, end: float, path: str, line: int, prefix: str = "") -> None:
  """Rejects negative, non-finite and reversed spans."""
  if not (math.isfinite(start) and math.isfinite(end)):
    raise TranscriptError(path, line, f"{prefix}times must be finite, got {start}, {end}")
  if start < 0:
    raise TranscriptError(path, line, f"{prefix}negative start time {start}")
  if end < start:
    raise TranscriptError(path, line, f"{prefix}end {end:.3f}s is before start "
                          f"{start:.3f}s")


def _parse_timing_line(line: str, path: str, line_no: int) -> tuple[float, float]:
  """Parses ``START --> END [settings]``; the settings are ignored."""
  left, _, right = line.partition("-->")
  right_parts = right.split()
  if not right_parts:
    raise TranscriptError(path, line_no, f"cue timing line {line.strip()!r} has no "
                          "end time")
  try:
    start = parse_timestamp(left)
    end = parse_timestamp(right_parts[0])
  except ValueError as e:
    raise TranscriptError(path, line_no, str(e)) from None
  _check_span(start, end, path, line_no)
  return start, end


# ---------------------------------------------------------------------------- JSON


def _json_item_lines(text: str) -> list[int]:
  """1-based line of each top-level list item (best effort; [] when not a list)."""
  decoder = json.JSONDecoder()
  pos = text.find("[")
  if pos < 0:
    return []
  lines = []
  pos += 1
  try:
    while True:
      while pos < len(text) and text[pos] in " \t\r\n,":
        pos += 1
      if pos >= len(text) or text[pos] == "]":
        return lines
      lines.append(text.count("\n", 0, pos) + 1)
      _, pos = decoder.raw_decode(text, pos)
  except json.JSONDecodeError:
    return lines


def _parse_json(text: str, path: str) -> list[Cue]:
  """A JSON list of ``{"start", "end", "text"}`` objects."""
  try:
    items = json.loads(text)
  except json.JSONDecodeError as e:
    raise TranscriptError(path, e.lineno, f"not valid JSON ({e.msg} at column "
                          f"{e.colno})") from None
  if not isinstance(items, list):
    raise TranscriptError(path, 1, "expected a JSON list of {start, end, text} "
                          f"objects, got {type(items).__name__}")
  item_lines = _json_item_lines(text)
  cues = []
  for index, item in enumerate(items):
    line = item_lines[index] if index < len(item_lines) else None
    prefix = f"item {index}: "
    if not isinstance(item, dict):
      raise TranscriptError(path, line, f"{prefix}expected an object with start, end "
                            f"and text, got {type(item).__name__}")
    for key in ("start", "end"):
      value = item.get(key)
      if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TranscriptError(path, line, f"{prefix}{key!r} must be a number of "
                              f"seconds, got {value!r}")
    if not isinstance(item.get("text"), str):
      raise TranscriptError(path, line, f"{prefix}'text' must be a string, got "
                            f"{item.get('text')!r}")
    start, end = float(item["start"]), float(item["end"])
    _check_span(start, end, path, line, prefix)
    cues.append(Cue(start, end, item["text"]))
  return cues


# -------------------------------------------------------------------------- WebVTT


def _blocks(lines: list[str], is_blank) -> list[tuple[int, list[str]]]:
  """Groups lines into (first line number, lines) blocks separated by blank lines."""
  blocks, current, first = [], [], 0
  for number, line in enumerate(lines, start=1):
    if is_blank(line):
      if current:
        blocks.append((first, current))
      current = []
    else:
      if not current:
        first = number
      current.append(line)
  if current:
    blocks.append((first, current))
  return blocks


def _parse_vtt(lines: list[str], path: str) -> list[Cue]:
  """WebVTT: header, NOTE/STYLE/REGION blocks, cue ids, settings, YouTube quirks."""
  # Only a truly empty line separates blocks: YouTube writes " " lines in cues.
  blocks = _blocks(lines, lambda line: line == "")
  if blocks and blocks[0][1][0].lstrip().startswith("WEBVTT"):
    header_first, header = blocks.pop(0)
    # A header with a cue right below it and no blank line: keep the cue part.
    for offset, line in enumerate(header):
      if "-->" in line:
        start = offset - 1 if offset > 1 else offset
        blocks.insert(0, (header_first + start, header[start:]))
        break
  cues = []
  for first, block in blocks:
    keyword = block[0].strip().split(" ", 1)[0].split("\t", 1)[0]
    if keyword in ("NOTE", "STYLE", "REGION"):
      continue
    if all(not line.strip() for line in block):
      continue
    timing_rows = [i for i, line in enumerate(block) if "-->" in line]
    if not timing_rows:
      raise TranscriptError(path, first, "expected a cue timing line "
                            f"'START --> END', got {block[0].strip()[:60]!r}")
    if timing_rows[0] > 1:
      raise TranscriptError(path, first, "expected a cue id and a timing line "
                            f"'START --> END', got {block[0].strip()[:60]!r}")
    for k, row in enumerate(timing_rows):
      start, end = _parse_timing_line(block[row], path, first + row)
      stop = timing_rows[k + 1] if k + 1 < len(timing_rows) else len(block)
      # In a block merged by a whitespace-only separator line, the line before the
      # next timing line is that cue's id when a blank-looking line precedes it.
      if (stop < len(block) and stop - 2 > row and not block[stop - 2].strip()):
        stop -= 1
      text_lines = block[row + 1:stop]
      cues.append(Cue(start, end, "\n".join(text_lines)))
  return cues


# ----------------------------------------------------------------------------- SRT


def _parse_srt(lines: list[str], path: str) -> list[Cue]:
  """SubRip: optional index line, timing line, text lines, blank line."""
  blocks = _blocks(lines, lambda line: not line.strip())
  cues: list[Cue] = []
  for first, block in blocks:
    if "-->" in block[0]:
      row = 0
    elif len(block) > 1 and "-->" in block[1]:
      row = 1
    elif not any("-->" in line for line in block) and not block[0].strip().isdigit():
      if not cues:
        raise TranscriptError(path, first, "expected a numbered block with a timing "
                              f"line 'START --> END', got {block[0].strip()[:60]!r}")
      # A blank line inside a cue's text: the paragraph continues the previous cue.
      last = cues.pop()
      cues.append(dataclasses.replace(last, text=last.text + "\n" + "\n".join(block)))
      continue
    else:
      raise TranscriptError(path, first, "expected a cue number followed by a timing "
                            f"line 'START --> END', got {block[0].strip()[:60]!r}")
    start, end = _parse_timing_line(block[row], path, first + row)
    cues.append(Cue(start, end, "\n".join(block[row + 1:])))
  return cues
