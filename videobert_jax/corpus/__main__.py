"""Command line of the corpus format: ``python -m videobert_jax.corpus COMMAND``.

Commands:

* ``validate CORPUS [--skip-bad] [--json OUT] [--no-transcripts]
  [--allow-outside-paths]``: checks every
  line, feature file and transcript; prints a summary and exits 0 on a good corpus,
  else prints one ``FILE:LINE: message`` line per problem and exits 1. With
  ``--skip-bad`` bad videos are skipped and listed, and it exits 0 while at least
  one good video remains.
* ``synthesize --out DIR ...``: writes the synthetic cooking corpus and its
  YouCook II style evaluation set (``videobert_jax.synthetic.synthesize``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

PROG = "python -m videobert_jax.corpus"


def _add_validate(subparsers) -> None:
  """Registers ``validate``."""
  parser = subparsers.add_parser(
      "validate", help="check a corpus folder and print its summary",
      description="Checks videos.jsonl, every feature file and every transcript of a "
                  "corpus. Exits 0 and prints a summary on a good corpus; otherwise "
                  "prints one 'FILE:LINE: message' line per problem and exits 1.")
  parser.add_argument("corpus", metavar="CORPUS",
                      help="the corpus folder (holding videos.jsonl)")
  parser.add_argument("--skip-bad", action="store_true",
                      help="skip bad videos instead of failing: list them and exit 0 "
                           "if at least one good video remains")
  parser.add_argument("--json", metavar="OUT", default=None,
                      help="also write the full report (totals and every problem) "
                           "as JSON to OUT")
  parser.add_argument("--no-transcripts", dest="check_transcripts",
                      action="store_false",
                      help="do not parse transcripts (only check that the index and "
                           "features are sound)")
  parser.add_argument("--no-progress", dest="progress", action="store_false",
                      help="hide the progress bar")
  parser.add_argument("--allow-outside-paths", "--allow_outside_paths",
                      dest="allow_outside_paths", action="store_true",
                      help="accept absolute paths, gs:// URLs and '..' paths that "
                           "leave the corpus folder in videos.jsonl (rejected by "
                           "default)")
  parser.set_defaults(func=_run_validate)


def _add_synthesize(subparsers, full: bool) -> None:
  """Registers ``synthesize``; its flags come from the synthesize module when used.

  The synthesize module is only imported when that command is asked for, so
  ``validate`` neither pays for nor depends on it.
  """
  parser = subparsers.add_parser(
      "synthesize", help="write a synthetic cooking corpus and evaluation set",
      description="Writes a synthetic cooking corpus in the documented format and a "
                  "YouCook II style evaluation set.")
  if full:
    from videobert_jax.synthetic import synthesize  # pylint: disable=g-import-not-at-top
    synthesize.add_arguments(parser)
    parser.set_defaults(func=synthesize.run)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
  """The argument parser; ``argv`` decides whether synthesize's flags are loaded."""
  parser = argparse.ArgumentParser(
      prog=PROG, description="Check or create a corpus folder (videos.jsonl + "
                             "features/*.npy + asr/ transcripts).")
  subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
  _add_validate(subparsers)
  _add_synthesize(subparsers, full=bool(argv) and argv[0] == "synthesize")
  return parser


def _run_validate(args: argparse.Namespace) -> int:
  """Runs ``validate``; returns the exit code."""
  from videobert_jax.corpus import validate  # pylint: disable=g-import-not-at-top
  report = validate.validate_corpus(args.corpus, skip_bad=args.skip_bad,
                                    check_transcripts=args.check_transcripts,
                                    progress=args.progress and sys.stderr.isatty(),
                                    allow_outside_paths=args.allow_outside_paths)
  out = sys.stdout
  if args.skip_bad:
    # One line per skipped video, then what is not about a skipped video (a
    # missing videos.jsonl, a note about the reference feature dimension).
    skipped_ids = {e.video_id for e in report.skipped if e.video_id is not None}
    others = [p for p in report.problems
              if not any(p is s for s in report.skipped)
              and (p.video_id is None or p.video_id not in skipped_ids)]
  else:
    others = report.problems
  for problem in others:
    print(problem, file=out)
  for line in report.summary_lines():
    print(line, file=out)
  if report.skipped:
    print(f"skipped          {len(report.skipped):,} bad video(s) or line(s):", file=out)
    for problem in report.skipped:
      print(f"  {problem}", file=out)
  if args.json:
    from videobert_jax import fileio  # pylint: disable=g-import-not-at-top
    fileio.write_json(args.json, report.to_dict())
    print(f"report written to {args.json}", file=out)
  if report.ok:
    print("OK" if not report.skipped else
          f"OK with {len(report.skipped):,} bad video(s) skipped", file=out)
    return 0
  if report.num_videos == 0:
    print("FAILED: no good video in the corpus", file=out)
  else:
    print(f"FAILED: {len(report.problems):,} problem(s); fix them or pass --skip-bad "
          "to skip the bad videos", file=out)
  return 1


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point; returns the exit code (argparse usage errors exit 2)."""
  argv = list(sys.argv[1:] if argv is None else argv)
  args = build_parser(argv).parse_args(argv)
  return int(args.func(args) or 0)


if __name__ == "__main__":
  sys.exit(main())
