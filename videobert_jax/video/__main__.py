"""Command line of the video stage: ``python -m videobert_jax.video COMMAND``.

Commands:

* ``extract --videos DIR_OR_LIST --weights FILE --out CORPUS [--asr DIR]``: writes
  or extends a corpus with S3D features of 1.5 s clips; resumable.
* ``convert --from {torchvision,howto100m} --checkpoint PTH --out FILE``: converts a
  public S3D checkpoint once into the ``.npz`` that ``extract`` loads.
* ``beam ...``: the same extraction as an Apache Beam pipeline (``video/beam.py``).

Exit codes: 0 on success; 1 on a bad input or when any video failed (the others
are still extracted and the failures listed); 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

PROG = "python -m videobert_jax.video"


def add_clip_arguments(parser: argparse.ArgumentParser) -> None:
  """Flags of the clip rules (shared by ``extract`` and ``beam``)."""
  group = parser.add_argument_group("clips (defaults are the paper's)")
  group.add_argument("--fps", type=float, default=20.0,
                     help="frame rate videos are resampled to (default 20)")
  group.add_argument("--frames-per-clip", type=int, default=30,
                     help="frames per clip, without overlap (default 30 = 1.5 s)")
  group.add_argument("--min-last-clip-frames", type=int, default=15,
                     help="keep a short last clip with at least this many frames, "
                          "padded by repeating its last frame (default 15)")
  group.add_argument("--size", type=int, default=224,
                     help="short side after resizing and square centre crop; the "
                          "pretrained weights expect 224 (default); smaller sizes are "
                          "for tests and benchmarks")


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
  """Flags of the inputs and the corpus written (shared by ``extract`` and ``beam``)."""
  parser.add_argument("--videos", required=True, metavar="DIR_OR_LIST",
                      help="a folder of videos (not recursive), one video, or a text "
                           "file listing one video path per line")
  parser.add_argument("--out", required=True, metavar="CORPUS",
                      help="corpus folder to write or extend (videos.jsonl, features/, "
                           "asr/); videos already listed there are skipped")
  parser.add_argument("--weights", default=None, metavar="FILE",
                      help="S3D weights converted by `convert` (.npz)")
  parser.add_argument("--random-init", action="store_true",
                      help="allow running without --weights on random S3D weights "
                           "(smoke tests and benchmarks only: the features mean nothing)")
  parser.add_argument("--seed", type=int, default=0,
                      help="seed of --random-init weights (default 0)")
  parser.add_argument("--asr", default=None, metavar="DIR",
                      help="folder of transcripts (.json/.vtt/.srt) matched to videos by "
                           "file stem: VIDEO.vtt, or VIDEO.LANG.vtt (language taken "
                           "from the name)")
  parser.add_argument("--asr-mode", choices=("copy", "symlink"), default="copy",
                      help="copy transcripts into CORPUS/asr (default) or symlink them")
  parser.add_argument("--language", default=None,
                      help="'language' of transcripts whose file name has none, e.g. en")
  parser.add_argument("--batch-size", type=int, default=32,
                      help="clips per network step over all local devices (rounded up "
                           "to a multiple of the device count; default 32)")
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                      help="S3D computation dtype (bfloat16 is faster on GPU/TPU)")
  parser.add_argument("--feature-dtype", choices=("float16", "float32"),
                      default="float16",
                      help="dtype of the stored features (default float16; a video "
                           "that overflows float16 is stored as float32)")


def _add_extract(subparsers) -> None:
  """Registers ``extract``."""
  parser = subparsers.add_parser(
      "extract", help="videos -> S3D features of 1.5 s clips -> corpus",
      description="Decodes each video at 20 fps into 30-frame clips, runs S3D on every "
                  "local device and writes features/<id>.npy plus a videos.jsonl line "
                  "per video. Re-running skips finished videos; unreadable videos are "
                  "listed at the end.")
  add_corpus_arguments(parser)
  add_clip_arguments(parser)
  parser.add_argument("--decode-workers", type=int, default=2,
                      help="videos decoded in parallel threads (default 2)")
  parser.add_argument("--json", default=None, metavar="OUT",
                      help="write the run's report as JSON here (default "
                           "CORPUS/extract_report.json)")
  parser.add_argument("--no-progress", dest="progress", action="store_false",
                      help="hide the progress bar")
  parser.set_defaults(func=_run_extract)


def _add_convert(subparsers) -> None:
  """Registers ``convert``."""
  parser = subparsers.add_parser(
      "convert", help="convert a public S3D checkpoint into the extractor's .npz",
      description="Converts torchvision's Kinetics-400 S3D or the HowTo100M MIL-NCE "
                  "S3D-G into one .npz (BatchNorm folded, config and input "
                  "normalisation stored). Reading .pth needs torch; a state dict "
                  "saved as .safetensors or .npz does not.")
  parser.add_argument("--from", dest="source", required=True,
                      choices=("torchvision", "howto100m"),
                      help="torchvision: s3d-d76dad2f.pth (Kinetics-400); howto100m: "
                           "s3d_howto100m.pth (MIL-NCE)")
  parser.add_argument("--checkpoint", required=True, metavar="FILE",
                      help="the state dict: .pth (needs torch), .safetensors or .npz")
  parser.add_argument("--out", required=True, metavar="FILE",
                      help="weights file to write (.npz)")
  parser.set_defaults(func=_run_convert)


def _fail(message: str) -> int:
  print(f"error: {message}", file=sys.stderr)
  return 1


def make_clip_spec(args: argparse.Namespace):
  """The ClipSpec of parsed flags (raises ValueError on bad values)."""
  from videobert_jax.video import decode  # pylint: disable=g-import-not-at-top
  return decode.ClipSpec(fps=args.fps, frames_per_clip=args.frames_per_clip,
                         min_last_clip_frames=args.min_last_clip_frames, size=args.size)


def _run_extract(args: argparse.Namespace) -> int:
  """``extract``: see the module docstring."""
  from videobert_jax.corpus.reader import CorpusError  # pylint: disable=g-import-not-at-top
  from videobert_jax import fileio  # pylint: disable=g-import-not-at-top
  from videobert_jax.video import weights  # pylint: disable=g-import-not-at-top
  if not args.weights and not args.random_init:
    return _fail(weights.RANDOM_INIT_REFUSAL)  # before jax is imported: fast
  from videobert_jax.video import corpus_writer, decode, encoder, extract  # pylint: disable=g-import-not-at-top
  try:
    spec = make_clip_spec(args)
    paths = decode.list_videos(args.videos)
    if not paths:
      return _fail(f"{args.videos}: no video found (suffixes: "
                   f"{' '.join(decode.VIDEO_SUFFIXES)})")
    if args.asr and not os.path.isdir(args.asr):
      return _fail(f"{args.asr}: --asr folder does not exist")
    writer = corpus_writer.CorpusWriter(args.out, asr_dir=args.asr,
                                        asr_mode=args.asr_mode, language=args.language,
                                        feature_dtype=args.feature_dtype)
    enc, info = encoder.load_encoder(args.weights, args.random_init, args.batch_size,
                                     args.dtype, args.seed)
  except (ValueError, OSError, CorpusError, weights.WeightsError) as e:
    return _fail(str(e))
  import jax  # pylint: disable=g-import-not-at-top
  info.update({"devices": enc.num_devices, "platform": jax.default_backend(),
               "batch_size": enc.batch_size, "dtype": args.dtype,
               "clip": {"fps": spec.fps, "frames_per_clip": spec.frames_per_clip,
                        "min_last_clip_frames": spec.min_last_clip_frames,
                        "size": spec.size}})
  if info["random_init"]:
    print("warning: --random-init: these features are for smoke tests only",
          file=sys.stderr)
  report = extract.run_extraction(paths, writer, enc, spec, args.decode_workers,
                                  progress=args.progress)
  report.info = info
  json_path = args.json or os.path.join(args.out, "extract_report.json")
  fileio.write_json(json_path, report.to_dict())
  print("\n".join(report.summary_lines()))
  print(f"corpus           {os.path.abspath(args.out)}")
  print(f"report           {json_path}")
  return 1 if report.failed else 0


def _run_convert(args: argparse.Namespace) -> int:
  """``convert``: read a state dict, map it, save the ``.npz``."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from videobert_jax.video import convert, weights  # pylint: disable=g-import-not-at-top
  path = args.checkpoint
  try:
    if path.endswith(".safetensors"):
      from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
      state = load_file(path)
    elif path.endswith(".npz"):
      with np.load(path, allow_pickle=False) as data:
        state = {k: data[k] for k in data.files}
    else:
      state = convert.load_torch_state_dict(path)
    params, config = convert.CONVERTERS[args.source](state)
  except convert.ConversionError as e:
    return _fail(f"{path}: {e}" if not str(e).startswith(path) else str(e))
  except (OSError, ValueError) as e:
    return _fail(f"{path}: cannot read ({e})")
  weights.save(args.out, params, config, source=f"{args.source}:{os.path.basename(path)}")
  count = sum(v.size for _, v in convert.iter_params(params))
  print(json.dumps({"out": args.out, "source": args.source, "parameters": int(count),
                    "config": config.to_dict()}))
  return 0


def build_parser() -> argparse.ArgumentParser:
  """The argument parser (Beam itself is imported only when ``beam`` runs)."""
  parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
  subparsers = parser.add_subparsers(dest="command", required=True)
  _add_extract(subparsers)
  _add_convert(subparsers)
  add_beam_subcommand(subparsers)
  return parser


def add_beam_subcommand(subparsers) -> None:
  """Registers ``beam`` on the video command line."""
  parser = subparsers.add_parser(
      "beam", help="the extraction as an Apache Beam pipeline (many machines)",
      description="Same inputs, outputs and rules as `extract`, as a Beam pipeline. "
                  "Flags not listed here are Beam pipeline options, e.g. --runner "
                  "DirectRunner (default) --direct_num_workers 1.")
  add_corpus_arguments(parser)
  add_clip_arguments(parser)
  parser.set_defaults(func=run_beam)


def run_beam(args: argparse.Namespace) -> int:
  """Runs the pipeline from parsed flags; prints the summary; exit code."""
  import json  # pylint: disable=g-import-not-at-top
  from videobert_jax.corpus.reader import CorpusError  # pylint: disable=g-import-not-at-top
  from videobert_jax.video import beam as beam_lib  # pylint: disable=g-import-not-at-top
  from videobert_jax.video import decode, weights  # pylint: disable=g-import-not-at-top
  if not args.weights and not args.random_init:
    print(f"error: {weights.RANDOM_INIT_REFUSAL}", file=sys.stderr)
    return 1
  try:
    spec = make_clip_spec(args)
    paths = [os.path.abspath(p) for p in decode.list_videos(args.videos)]
    if not paths:
      raise ValueError(f"{args.videos}: no video found")
    if args.weights and not os.path.isfile(args.weights):
      raise ValueError(f"{args.weights}: weights file not found")
    if args.asr and not os.path.isdir(args.asr):
      raise ValueError(f"{args.asr}: --asr folder does not exist")
    os.makedirs(args.out, exist_ok=True)
  except (ValueError, OSError, CorpusError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=g-import-not-at-top
  job = beam_lib.BeamJob(
      out_dir=os.path.abspath(args.out),
      weights=os.path.abspath(args.weights) if args.weights else None,
      random_init=args.random_init, seed=args.seed, batch_size=args.batch_size,
      dtype=args.dtype, feature_dtype=args.feature_dtype,
      asr_dir=os.path.abspath(args.asr) if args.asr else None, asr_mode=args.asr_mode,
      language=args.language, fps=spec.fps, frames_per_clip=spec.frames_per_clip,
      min_last_clip_frames=spec.min_last_clip_frames, size=spec.size)
  options = PipelineOptions(args.beam_options or ["--runner", "DirectRunner"])
  try:
    with beam.Pipeline(options=options) as pipeline:
      beam_lib.build_pipeline(pipeline, paths, job)
  except CorpusError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  with open(os.path.join(job.out_dir, beam_lib.REPORT_NAME), encoding="utf-8") as f:
    report = json.load(f)
  print(f"videos listed    {report['videos_listed']}")
  print(f"already done     {report['already_done']}")
  print(f"extracted        {report['extracted']} ({report['clips']} clips in "
        f"{report['seconds']:.1f} s)")
  print(f"failed           {len(report['failed'])}")
  for failure in report["failed"]:
    print(f"  {failure['error']}")
  print(f"report           {os.path.join(job.out_dir, beam_lib.REPORT_NAME)}")
  return 1 if report["failed"] else 0


def main(argv: Sequence[str] | None = None) -> int:
  """Runs one command; returns its exit code."""
  args, extra = build_parser().parse_known_args(argv)
  if extra and args.command != "beam":
    build_parser().error(f"unrecognized arguments: {' '.join(extra)}")
  args.beam_options = extra
  return args.func(args)


if __name__ == "__main__":
  sys.exit(main())
