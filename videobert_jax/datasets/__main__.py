"""Command line: ``python -m videobert_jax.datasets build NAME[/key=value,...] ...``.

The quiet way to run the TFDS builders of this package; ``tfds build NAME
--imports videobert_jax.datasets`` builds the same datasets with TFDS's own
output (TensorFlow's start-up lines, the dataset's full description; its INFO
lines go to ``DATA_DIR/build.log`` there too). Here:

* each dataset gets one line when it starts and one with its split sizes when it
  is done (or "already built"), warnings (empty transcripts, skipped videos)
  still reach the terminal, and every INFO line goes to ``--log``
  (``DATA_DIR/build.log`` by default);
* what a killed earlier build left (``incomplete.*`` folders) is removed first;
* bad input exits 1 with one line naming the file (and its ``videos.jsonl``
  line), never a traceback.

Example::

  python -m videobert_jax.datasets build videobert_text \\
      videobert_video_text/codebook=/abs/codebook.npz \\
      --manual_dir /abs/CORPUS --data_dir /abs/tfds
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence

PROG = "python -m videobert_jax.datasets"


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog=PROG, description="Builds the VideoBERT TFDS "
                                   "datasets quietly (see docs/datasets.md).")
  sub = parser.add_subparsers(dest="command", required=True)
  build = sub.add_parser("build", help="build one or more datasets",
                         description="Builds each NAME (videobert_text, videobert_video, "
                         "videobert_video_text, youcook2), builder arguments after a "
                         "slash as in tfds build: NAME/key=value,key=value.")
  build.add_argument("datasets", nargs="+", metavar="NAME[/key=value,...]")
  build.add_argument("--manual_dir", "--manual-dir", dest="manual_dir",
                     help="the corpus folder (youcook2: the annotation + features "
                          "folder), unless given as corpus_dir=...")
  build.add_argument("--data_dir", "--data-dir", dest="data_dir",
                     default=os.path.join("~", "tensorflow_datasets"),
                     help="where the datasets go (default ~/tensorflow_datasets)")
  build.add_argument("--beam_pipeline_options", "--beam-pipeline-options",
                     dest="beam_pipeline_options",
                     help="build with Apache Beam: comma-separated options, e.g. "
                          "runner=DirectRunner")
  build.add_argument("--log", help="file for the INFO lines (default DATA_DIR/build.log; "
                     "none for a gs:// DATA_DIR unless given)")
  from videobert_jax import quiet  # pylint: disable=import-outside-toplevel
  quiet.add_verbose_flag(build)
  return parser


def _download_config(args):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  kwargs = {}
  if args.beam_pipeline_options:
    from apache_beam.options import pipeline_options  # pylint: disable=import-outside-toplevel
    kwargs["beam_options"] = pipeline_options.PipelineOptions(
        flags=[f"--{option}" for option in args.beam_pipeline_options.split(",")])
  return tfds.download.DownloadConfig(manual_dir=args.manual_dir, **kwargs)


def build_one(spec: str, args) -> dict[str, int]:
  """Builds one ``NAME[/key=value,...]`` (unless built); returns its split sizes."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  from videobert_jax import quiet  # pylint: disable=import-outside-toplevel
  name, kwargs = tfds.core.naming.parse_builder_name_kwargs(spec)
  # TFDS prints to stdout while it builds; our own lines go out after the block.
  with quiet.tfds_build_messages_to_log():
    builder = tfds.builder(str(name), data_dir=args.data_dir, **kwargs)
    built_before = builder.is_prepared()
    if not built_before:
      print(f"building {builder.name} into {builder.data_path}", file=sys.stderr,
            flush=True)
      started = time.perf_counter()
      builder.download_and_prepare(download_config=_download_config(args))
  sizes = {split: int(info.num_examples) for split, info in builder.info.splits.items()}
  counts = ", ".join(f"{n:,} {split}" for split, n in sizes.items())
  if built_before:
    print(f"{builder.name}: already built in {builder.data_path} ({counts} examples); "
          "nothing to do")
  else:
    print(f"built {builder.name}: {counts} examples in "
          f"{time.perf_counter() - started:.1f} s ({builder.data_path})")
  return sizes


def _log_path(args) -> str | None:
  if args.log:
    return args.log
  if "://" in args.data_dir:
    return None
  return os.path.join(os.path.expanduser(args.data_dir), "build.log")


def main(argv: Sequence[str] | None = None) -> int:
  """Runs the command; returns the exit status (1 on bad input)."""
  args = _parser().parse_args(argv)
  # Importing this package (which ``-m`` does first) registered the builders.
  from videobert_jax import quiet  # pylint: disable=import-outside-toplevel
  from videobert_jax.corpus.reader import CorpusError  # pylint: disable=import-outside-toplevel
  log = _log_path(args)
  try:
    with quiet.info_to_file(log, info_on_terminal=args.verbose):
      for spec in args.datasets:
        build_one(spec, args)
  except (CorpusError, ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  if log:
    print(f"log: {log}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
