"""The extractor: a real clip to a valid corpus, resume after a crash, bad videos skipped.

Random S3D weights on 32x32 frames keep it fast on CPU (the rules under test do
not depend on the weights or the frame size). The encoder is built once per
module (batch 4 over the 4 CPU devices of conftest) and shared with the Beam
test through ``encoder.cached_encoder``, so S3D compiles once.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from videobert_jax.corpus.validate import validate_corpus
from videobert_jax.video import corpus_writer
from videobert_jax.video import decode
from videobert_jax.video import encoder as encoder_lib
from videobert_jax.video import extract
from videobert_jax.testing import videos as synthetic

PANCAKE = "/work/shared/data/videos/flipping_a_pancake.mkv"
_here_pancake = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                             "videos", "flipping_a_pancake.mkv")
if os.path.isfile(_here_pancake):
  PANCAKE = _here_pancake
VTT = os.path.join(os.path.dirname(__file__), "fixtures", "youtube_auto.en.vtt")
SPEC = decode.ClipSpec(size=32)
BATCH = 4
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Crash(Exception):
  """Stands for the process being killed."""


@pytest.fixture(scope="module")
def encoder():
  return encoder_lib.cached_encoder(None, True, BATCH, "float32", 0)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
  """The real clip (7 clips) and three synthetic ones (2, 1 and 3 clips)."""
  folder = tmp_path_factory.mktemp("videos")
  shutil.copy(PANCAKE, folder / "flipping_a_pancake.mkv")
  synthetic.write_striped_video(str(folder / "a_25fps.mkv"), 25, 75)  # 3.0 s
  synthetic.write_striped_video(str(folder / "b_60fps.mp4"), 60, 100)  # 1.67 s
  synthetic.write_striped_video(str(folder / "c_30fps.mp4"), 30, 130)  # 4.33 s
  return folder


EXPECTED_CLIPS = {"flipping_a_pancake": 7, "a_25fps": 2, "b_60fps": 1, "c_30fps": 3}


def _lines(corpus):
  with open(os.path.join(corpus, "videos.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f]


def test_real_clip_and_synthetic_videos_make_a_valid_corpus(tmp_path, videos, encoder):
  asr = tmp_path / "asr"
  asr.mkdir()
  shutil.copy(VTT, asr / "flipping_a_pancake.en.vtt")
  corpus = tmp_path / "corpus"
  writer = corpus_writer.CorpusWriter(corpus, asr_dir=str(asr))
  report = extract.run_extraction(decode.list_videos(videos), writer, encoder, SPEC,
                                  decode_workers=2, progress=False)
  assert report.failed == [] and report.extracted == 4
  assert report.clips == sum(EXPECTED_CLIPS.values())
  lines = {line["video_id"]: line for line in _lines(corpus)}
  assert set(lines) == set(EXPECTED_CLIPS)
  pancake = lines["flipping_a_pancake"]
  assert pancake["asr"] == "asr/flipping_a_pancake.vtt" and pancake["language"] == "en"
  assert pancake["video"] == str(videos / "flipping_a_pancake.mkv")
  assert pancake["clip_seconds"] == 1.5
  assert "asr" not in lines["a_25fps"]
  validation = validate_corpus(corpus)
  assert validation.ok, [str(p) for p in validation.problems]
  assert validation.num_clips == 13 and validation.videos_with_asr == 1
  for video_id, count in EXPECTED_CLIPS.items():
    features = np.load(corpus / "features" / f"{video_id}.npy")
    assert features.shape == (count, 1024) and features.dtype == np.float16
  # Clips of different videos shared batches; rows must still be each video's own.
  direct = encoder.encode(decode.read_clips(str(videos / "flipping_a_pancake.mkv"), SPEC))
  stored = np.load(corpus / "features" / "flipping_a_pancake.npy").astype(np.float32)
  np.testing.assert_allclose(stored, direct, rtol=2e-3, atol=1e-3 * np.abs(direct).max())


def test_resume_after_an_interrupted_run(tmp_path, videos, encoder):
  corpus = tmp_path / "corpus"
  paths = decode.list_videos(videos)
  written = []

  def crash_after_two(line):
    written.append(line["video_id"])
    if len(written) == 2:
      raise Crash()

  with pytest.raises(Crash):
    extract.run_extraction(paths, corpus_writer.CorpusWriter(corpus), encoder, SPEC,
                           progress=False, on_video_written=crash_after_two)
  assert [line["video_id"] for line in _lines(corpus)] == written
  # What a kill -9 in the middle of a write leaves: a temporary file and a torn line.
  (corpus / "features" / ".x.npy.abc.tmp").write_bytes(b"half")
  with open(corpus / "videos.jsonl", "a", encoding="utf-8") as f:
    f.write('{"video_id": "c_30f')
  report = extract.run_extraction(paths, corpus_writer.CorpusWriter(corpus), encoder,
                                  SPEC, progress=False)
  assert report.already_done == 2 and report.extracted == 2 and not report.failed
  ids = [line["video_id"] for line in _lines(corpus)]
  assert sorted(ids) == sorted(EXPECTED_CLIPS) and len(ids) == len(set(ids))
  assert not [n for n in os.listdir(corpus / "features") if n.endswith(".tmp")]
  assert validate_corpus(corpus).ok
  # A third run has nothing left to do.
  report = extract.run_extraction(paths, corpus_writer.CorpusWriter(corpus), encoder,
                                  SPEC, progress=False)
  assert report.already_done == 4 and report.extracted == 0


def test_corrupt_and_empty_videos_are_reported_and_skipped(tmp_path, videos, encoder):
  folder = tmp_path / "mixed"
  folder.mkdir()
  shutil.copy(videos / "a_25fps.mkv", folder / "a_25fps.mkv")
  (folder / "broken.mp4").write_bytes(b"\x00\x01garbage" * 500)
  (folder / "empty.mkv").write_bytes(b"")
  synthetic.write_striped_video(str(folder / "tiny.mkv"), 20, 10)  # 0.5 s: no clip
  shutil.copy(videos / "c_30fps.mp4", folder / "z_last.mp4")
  corpus = tmp_path / "corpus"
  report = extract.run_extraction(decode.list_videos(folder),
                                  corpus_writer.CorpusWriter(corpus), encoder, SPEC,
                                  progress=False)
  failed = {os.path.basename(f["video"]): f["error"] for f in report.failed}
  assert set(failed) == {"broken.mp4", "empty.mkv", "tiny.mkv"}
  assert failed["broken.mp4"].startswith(str(folder / "broken.mp4") + ": ")
  assert "no clip" in failed["tiny.mkv"]
  assert sorted(line["video_id"] for line in _lines(corpus)) == ["a_25fps", "z_last"]
  assert validate_corpus(corpus).ok
  assert any("broken.mp4" in line for line in report.summary_lines())


def test_beam_pipeline_writes_the_same_corpus(tmp_path, videos, encoder):
  del encoder  # built; the DoFn gets the same one from the cache
  from videobert_jax.video import beam as beam_lib  # pylint: disable=import-outside-toplevel
  import apache_beam as beam  # pylint: disable=import-outside-toplevel
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
  folder = tmp_path / "in"
  folder.mkdir()
  for name in ("a_25fps.mkv", "b_60fps.mp4", "c_30fps.mp4"):
    shutil.copy(videos / name, folder / name)
  (folder / "broken.mp4").write_bytes(b"garbage" * 100)
  corpus = tmp_path / "corpus"
  # One video is already there: the pipeline must skip it.
  extract.run_extraction([str(folder / "a_25fps.mkv")], corpus_writer.CorpusWriter(
      corpus), encoder_lib.cached_encoder(None, True, BATCH, "float32", 0), SPEC,
                         progress=False)
  job = beam_lib.BeamJob(
      out_dir=str(corpus), weights=None, random_init=True, seed=0, batch_size=BATCH,
      dtype="float32", feature_dtype="float16", asr_dir=None, asr_mode="copy",
      language=None, fps=SPEC.fps, frames_per_clip=SPEC.frames_per_clip,
      min_last_clip_frames=SPEC.min_last_clip_frames, size=SPEC.size)
  with beam.Pipeline(options=PipelineOptions(["--runner", "DirectRunner"])) as p:
    todo, _ = beam_lib.build_pipeline(p, decode.list_videos(folder), job)
  assert len(todo) == 3
  assert sorted(line["video_id"] for line in _lines(corpus)) == [
      "a_25fps", "b_60fps", "c_30fps"]
  with open(corpus / beam_lib.REPORT_NAME, encoding="utf-8") as f:
    report = json.load(f)
  assert report["extracted"] == 2 and report["already_done"] == 1
  assert report["clips"] == 4 and len(report["failed"]) == 1
  assert validate_corpus(corpus).ok


def _cli(args, **kwargs):
  env = dict(os.environ, PYTHONPATH=REPO)
  return subprocess.run([sys.executable, "-m", "videobert_jax.video", *args], env=env,
                        capture_output=True, text=True, cwd=REPO, timeout=300, **kwargs)


def test_cli_refuses_to_run_without_weights(tmp_path, videos):
  result = _cli(["extract", "--videos", str(videos), "--out", str(tmp_path / "c")])
  assert result.returncode == 1
  assert "no --weights given" in result.stderr and "--random-init" in result.stderr
  assert not (tmp_path / "c").exists()


def test_cli_extracts_lists_failures_and_writes_a_report(tmp_path, videos):
  folder = tmp_path / "in"
  folder.mkdir()
  shutil.copy(videos / "b_60fps.mp4", folder / "b_60fps.mp4")
  (folder / "broken.mkv").write_bytes(b"garbage" * 100)
  corpus = tmp_path / "corpus"
  result = _cli(["extract", "--videos", str(folder), "--out", str(corpus),
                 "--random-init", "--size", "32", "--batch-size", "4", "--no-progress"])
  assert result.returncode == 1, result.stderr  # a video failed; the other is done
  assert "broken.mkv" in result.stdout and "extracted        1" in result.stdout
  with open(corpus / "extract_report.json", encoding="utf-8") as f:
    report = json.load(f)
  assert report["clips"] == 1 and report["info"]["random_init"]
  assert report["info"]["devices"] == 4 and report["info"]["batch_size"] == 4
  assert validate_corpus(corpus).ok
