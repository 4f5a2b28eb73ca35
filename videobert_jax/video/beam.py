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

import dataclasses
import os
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
