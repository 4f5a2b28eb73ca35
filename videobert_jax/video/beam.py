"""The extractor as an Apache Beam pipeline, for corpora spread over many machines.

``python -m videobert_jax.video beam --videos ... --out CORPUS [--weights FILE]
[--runner DirectRunner ...]``: flags that the command does not know are Beam
pipeline options (``--runner``, ``--direct_num_workers``, ``--project`` ...).

Stages: the videos not yet in ``CORPUS/videos.jsonl`` are reshuffled over the
workers; ``ExtractVideoFn`` decodes one video at a time, runs S3D on the worker's
devices (each worker builds its encoder once, in ``setup``), writes
``features/<id>.npy`` and the transcript atomically and emits the index line (or,
tagged ``failed``, the error); a final single step appends all new lines to
``videos.jsonl`` (sorted by id) and writes ``extract_beam_report.json``. The same
corpus layout as ``extract``; a killed pipeline leaves no listed video
incomplete and a re-run skips the listed ones. CORPUS must be a file system every
worker sees (local for DirectRunner; a shared mount on a cluster).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

REPORT_NAME = "extract_beam_report.json"
FAILED_TAG = "failed"


@dataclasses.dataclass(frozen=True)
class BeamJob:
  """What every worker needs to extract a video (picklable, no jax inside)."""

  out_dir: str
  weights: str | None
  random_init: bool
  seed: int
  batch_size: int
  dtype: str
  feature_dtype: str
  asr_dir: str | None
  asr_mode: str
  language: str | None
  fps: float
  frames_per_clip: int
  min_last_clip_frames: int
  size: int

  def clip_spec(self):
    """The decoding rules."""
    from videobert_jax.video import decode  # pylint: disable=g-import-not-at-top
    return decode.ClipSpec(self.fps, self.frames_per_clip, self.min_last_clip_frames,
                           self.size)


def _make_dofn_class():
  """Defines ExtractVideoFn (deferred so that importing this module needs no Beam)."""
  import apache_beam as beam  # pylint: disable=g-import-not-at-top

  class ExtractVideoFn(beam.DoFn):
    """One video path -> features and transcript written, index line emitted."""

    def __init__(self, job: BeamJob):
      super().__init__()
      self.job = job
      self.encoder = None
      self.writer = None

    def setup(self):
      from videobert_jax.video import corpus_writer, encoder  # pylint: disable=g-import-not-at-top
      self.encoder = encoder.cached_encoder(
          self.job.weights, self.job.random_init, self.job.batch_size, self.job.dtype,
          self.job.seed)
      self.writer = corpus_writer.CorpusWriter(
          self.job.out_dir, asr_dir=self.job.asr_dir, asr_mode=self.job.asr_mode,
          language=self.job.language, feature_dtype=self.job.feature_dtype,
          resume_scan=False)

    def process(self, path):
      from videobert_jax.video import corpus_writer, decode, extract  # pylint: disable=g-import-not-at-top
      spec = self.job.clip_spec()
      video_id = corpus_writer.video_id_of(path)
      try:
        features = extract.extract_video_features(path, self.encoder, spec)
      except decode.VideoDecodeError as e:
        yield beam.pvalue.TaggedOutput(FAILED_TAG, {"video": path, "error": str(e)})
        return
      if features.shape[0] == 0:
        yield beam.pvalue.TaggedOutput(FAILED_TAG, {
            "video": path, "error": f"{path}: no clip (no frame decoded, or shorter "
                                    f"than {spec.min_last_clip_frames / spec.fps:.2f} s)"})
        return
      relpath = self.writer.write_features(video_id, features)
      stem = os.path.splitext(os.path.basename(path))[0]
      transcript = self.writer.add_transcript(video_id, stem)
      yield self.writer.make_line(video_id, relpath, spec.clip_seconds, path, transcript)

  return ExtractVideoFn


def _write_index(lines: list[dict], failed: list[dict], job: BeamJob,
                 listed: int, done_before: int, duplicates: list[dict],
                 start: float) -> None:
  """The final step: append the new lines, write the report."""
  from videobert_jax import fileio  # pylint: disable=g-import-not-at-top
  from videobert_jax.video import corpus_writer  # pylint: disable=g-import-not-at-top
  writer = corpus_writer.CorpusWriter(job.out_dir, resume_scan=True)
  lines = sorted((l for l in lines if not writer.has(l["video_id"])),
                 key=lambda l: l["video_id"])
  writer.append_lines(lines)
  import numpy as np  # pylint: disable=g-import-not-at-top
  clips = 0
  for line in lines:
    clips += np.load(os.path.join(job.out_dir, line["features"]), mmap_mode="r").shape[0]
  report = {"videos_listed": listed, "already_done": done_before,
            "extracted": len(lines), "clips": clips,
            "failed": sorted(duplicates + list(failed), key=lambda f: f["video"]),
            "seconds": round(time.time() - start, 3)}
  fileio.write_json(os.path.join(job.out_dir, REPORT_NAME), report)


def build_pipeline(pipeline, paths: list[str], job: BeamJob):
  """Adds the extraction to ``pipeline``; returns ``(to_do, duplicates)`` lists."""
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  from videobert_jax.video import corpus_writer  # pylint: disable=g-import-not-at-top
  writer = corpus_writer.CorpusWriter(job.out_dir, resume_scan=True)
  todo, duplicates, seen = [], [], {}
  done_before = 0
  for path in paths:
    video_id = corpus_writer.video_id_of(path)
    if writer.has(video_id):
      done_before += 1
    elif video_id in seen:
      duplicates.append({"video": path, "error": f"{path}: duplicate video id "
                         f"{video_id!r} (same file stem as {seen[video_id]})"})
    else:
      seen[video_id] = path
      todo.append(path)
  start = time.time()
  results = (pipeline
             | "ListVideos" >> beam.Create(todo)
             | "Spread" >> beam.Reshuffle()
             | "Extract" >> beam.ParDo(_make_dofn_class()(job)).with_outputs(
                 FAILED_TAG, main="lines"))
  lines = results.lines | "GatherLines" >> beam.combiners.ToList()
  failed = results[FAILED_TAG] | "GatherFailed" >> beam.combiners.ToList()
  _ = (lines
       | "WriteIndex" >> beam.Map(
           lambda ls, fs: _write_index(ls, fs, job, len(paths), done_before,
                                       duplicates, start),
           fs=beam.pvalue.AsSingleton(failed)))
  return todo, duplicates


def add_subcommand(subparsers) -> None:
  """Registers ``beam`` on the video command line."""
  from videobert_jax.video import __main__ as cli  # pylint: disable=g-import-not-at-top
  parser = subparsers.add_parser(
      "beam", help="the extraction as an Apache Beam pipeline (many machines)",
      description="Same inputs, outputs and rules as `extract`, as a Beam pipeline. "
                  "Flags not listed here are Beam pipeline options, e.g. --runner "
                  "DirectRunner (default) --direct_num_workers 1.")
  cli.add_corpus_arguments(parser)
  cli.add_clip_arguments(parser)
  parser.set_defaults(func=run_beam)


def run_beam(args: argparse.Namespace) -> int:
  """Runs the pipeline from parsed flags; prints the summary; exit code."""
  import json  # pylint: disable=g-import-not-at-top
  from videobert_jax.corpus.reader import CorpusError  # pylint: disable=g-import-not-at-top
  from videobert_jax.video import __main__ as cli  # pylint: disable=g-import-not-at-top
  from videobert_jax.video import decode, weights  # pylint: disable=g-import-not-at-top
  if not args.weights and not args.random_init:
    print(f"error: {weights.RANDOM_INIT_REFUSAL}", file=sys.stderr)
    return 1
  try:
    spec = cli.make_clip_spec(args)
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
  job = BeamJob(
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
      build_pipeline(pipeline, paths, job)
  except CorpusError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  with open(os.path.join(job.out_dir, REPORT_NAME), encoding="utf-8") as f:
    report = json.load(f)
  print(f"videos listed    {report['videos_listed']}")
  print(f"already done     {report['already_done']}")
  print(f"extracted        {report['extracted']} ({report['clips']} clips in "
        f"{report['seconds']:.1f} s)")
  print(f"failed           {len(report['failed'])}")
  for failure in report["failed"]:
    print(f"  {failure['error']}")
  print(f"report           {os.path.join(job.out_dir, REPORT_NAME)}")
  return 1 if report["failed"] else 0
