"""python -m videobert_jax.datasets build: quiet, recovers, and bad input is one line (#14)."""

import json
import os
import subprocess
import sys

import pytest

from test_corpus_rules import FULL, bad_npy_corpus, empty_corpus, feats, good, make_codebook, write_corpus  # pylint: disable=import-error
from videobert_jax.corpus import reader
from videobert_jax.corpus.reader import CorpusError
from videobert_jax.datasets import __main__ as cli
from videobert_jax.datasets import corpus_builder
from videobert_jax.datasets import segments
from videobert_jax.testing import files
from videobert_jax.testing import workdirs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRT = "1\n00:00:00,000 --> 00:00:03,000\nadd the salt\n\n2\n00:00:03,000 --> 00:00:06,000\nand stir\n"


def _build(capsys, *args):
  """Runs the command in this process; returns (status, stdout lines, stderr lines)."""
  code = cli.main(["build", *map(str, args)])
  captured = capsys.readouterr()
  return code, captured.out.splitlines(), captured.err.splitlines()


def test_build_prints_a_few_lines_logs_the_rest_and_clears_a_killed_build(tmp_path, capsys):
  world = workdirs.synthetic_world(str(tmp_path / "world"), num_videos=6, num_eval_videos=2)
  data_dir = tmp_path / "tfds"
  # What kill -9 during a build leaves behind: a half-written version folder.
  leftover = data_dir / "videobert_text" / "incomplete.AB12CD_1.1.0"
  leftover.mkdir(parents=True)
  (leftover / "videobert_text-train.tfrecord-00000-of-00001").write_bytes(b"half")
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "TF_CPP_MIN_LOG_LEVEL")}
  result = subprocess.run(
      [sys.executable, "-m", "videobert_jax.datasets", "build", "videobert_text",
       f"--manual_dir={world['corpus_dir']}", f"--data_dir={data_dir}"],
      capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)
  assert result.returncode == 0, result.stderr
  out, err = result.stdout.splitlines(), result.stderr.splitlines()
  assert len(out) == 2 and out[0].startswith("built videobert_text: "), out
  assert " train, " in out[0] and out[1] == f"log: {data_dir / 'build.log'}"
  # stderr: what it builds and the leftover it removed, nothing of TF's or TFDS's.
  assert err[0] == f"building videobert_text into {data_dir / 'videobert_text' / '1.1.0'}"
  assert [line for line in err[1:] if "%|" not in line] == [
      f"WARNING: removing {leftover}, left by an interrupted build"], err
  assert not leftover.exists()
  log = (data_dir / "build.log").read_text(encoding="utf-8")
  assert "Generating dataset videobert_text" in log and "Downloading and preparing" in log

  before = files.file_bytes(data_dir / "videobert_text")
  code, out, err = _build(capsys, "videobert_text", f"--manual_dir={world['corpus_dir']}",
                          f"--data_dir={data_dir}")
  assert code == 0 and not err
  assert out[0].startswith("videobert_text: already built in ") and "nothing to do" in out[0]
  assert files.file_bytes(data_dir / "videobert_text") == before


def test_a_corpus_too_small_for_a_validation_split_is_one_line(tmp_path, capsys):
  corpus = write_corpus(tmp_path / "corpus", [good("a", "a.srt")],
                        {"features/a.npy": feats(), "asr/a.srt": SRT})
  code, _, err = _build(capsys, "videobert_text/eval_ids=none", f"--manual_dir={corpus}",
                        f"--data_dir={tmp_path / 'tfds'}")
  assert code == 1
  assert err[-1] == (f"error: {os.path.join(corpus, 'videos.jsonl')}: videobert_text: no "
                     "validation split: validation_percent=1 of 1 usable video holds out "
                     "none (a validation split takes at least 2 videos; evaluation ids "
                     "are excluded first)")
  assert not (tmp_path / "tfds" / "videobert_text" / "1.1.0").exists()


def test_held_out_videos_without_english_asr_are_one_line_for_text(tmp_path, capsys):
  (held_out,) = corpus_builder.validation_ids(["a", "b"], 1.0)
  kept = "b" if held_out == "a" else "a"
  corpus = write_corpus(tmp_path / "corpus", [good(kept, "t.srt"), good(held_out)],
                        {f"features/{kept}.npy": feats(), f"features/{held_out}.npy": feats(),
                         "asr/t.srt": SRT})
  code, _, err = _build(capsys, "videobert_text/eval_ids=none", f"--manual_dir={corpus}",
                        f"--data_dir={tmp_path / 'tfds'}")
  assert code == 1
  assert err[-1].startswith(f"error: {os.path.join(corpus, 'videos.jsonl')}: videobert_text: "
                            "none of the 1 held-out validation video(s) has English ASR")


def test_a_split_whose_videos_give_no_examples_names_them():
  corpus_records = [reader.VideoRecord(video_id="x", features_path="/c/features/x.npy",
                                       asr_path=None, index_path="/c/videos.jsonl")]
  spec = segments.BuildSpec(kind=segments.TEXT)
  with pytest.raises(CorpusError, match=r"^/c/videos.jsonl: the validation split of "
                     r"videobert_text has no examples: its 1 video\(s\) \('x'\)"):
    list(corpus_builder._iterate(  # pylint: disable=protected-access
        corpus_records, spec, [], where="the validation split of videobert_text"))


@pytest.mark.parametrize("beam", [(), ("--beam_pipeline_options=runner=DirectRunner",)],
                         ids=["plain", "beam"])
def test_empty_transcripts_are_counted_by_the_build_and_warned(tmp_path, capsys, caplog,
                                                               beam):
  corpus = empty_corpus(tmp_path / "corpus")
  book = make_codebook(tmp_path / "book.npz")
  code, out, err = _build(
      capsys, f"videobert_video/codebook={book},eval_ids=none,validation_percent=50",
      f"--manual_dir={corpus}", f"--data_dir={tmp_path / 'tfds'}", *beam)
  assert code == 0, err
  meta_path = tmp_path / "tfds" / "videobert_video" / "1.1.0" / "metadata.json"
  meta = json.loads(meta_path.read_text(encoding="utf-8"))
  assert meta["built_with_beam"] is bool(beam)
  # Beam workers count them in Beam metrics, read once the pipeline is done.
  assert meta["empty_transcripts"] == 8 == len(meta["empty_transcript_files"])
  assert os.path.join(corpus, "asr", "b.vtt") in meta["empty_transcript_files"]
  # One warning (it reaches the terminal as the leftover warning above does).
  assert [r.getMessage() for r in caplog.records if "empty transcript" in r.getMessage()] == [
      f"videobert_video: 8 videos with an empty transcript: treated as no ASR (listed in "
      f"{meta_path})"]
  assert out[0].startswith("built videobert_video: ")


def test_a_truncated_feature_file_is_one_line_naming_it_and_its_index_line(tmp_path, capsys):
  corpus = bad_npy_corpus(tmp_path / "corpus", FULL[:200])
  book = make_codebook(tmp_path / "book.npz")
  code, _, err = _build(capsys, f"videobert_video/codebook={book},eval_ids=none",
                        f"--manual_dir={corpus}", f"--data_dir={tmp_path / 'tfds'}")
  assert code == 1
  assert err[-1].startswith(f"error: {os.path.join(corpus, 'features', 'bad.npy')}: ")
  assert "truncated .npy" in err[-1]
  assert f"(listed on line 3 of {os.path.join(corpus, 'videos.jsonl')})" in err[-1]
  assert not any("Traceback" in line for line in err)


def test_youcook2_features_ending_before_a_segment_are_one_line(tmp_path, capsys):
  import numpy as np
  world = workdirs.synthetic_world(str(tmp_path / "world"), num_videos=1, num_eval_videos=2)
  youcook_dir = os.path.dirname(world["annotations"])
  path = sorted(os.path.join(world["eval_features_dir"], n)
                for n in os.listdir(world["eval_features_dir"]))[0]
  np.save(path, np.load(path)[:2])  # 3 s left of a video annotated much later
  book = make_codebook(tmp_path / "book.npz", feature_dim=32)
  code, _, err = _build(capsys, f"youcook2/codebook={book}", f"--manual_dir={youcook_dir}",
                        f"--data_dir={tmp_path / 'tfds'}")
  assert code == 1
  assert err[-1].startswith(f"error: {path}: segment ")
  assert "after the end of its features (2 clips of 1.5 s = 3 s)" in err[-1]


def test_tfds_build_on_a_truncated_feature_file_is_one_line_too(tmp_path):
  tfds_cli = os.path.join(os.path.dirname(sys.executable), "tfds")
  if not os.path.exists(tfds_cli):
    pytest.skip("no tfds command beside this Python")
  corpus = bad_npy_corpus(tmp_path / "corpus", FULL[:200])
  book = make_codebook(tmp_path / "book.npz")
  result = subprocess.run(
      [tfds_cli, "build", f"videobert_video/codebook={book},eval_ids=none",
       "--imports", "videobert_jax.datasets", f"--manual_dir={corpus}",
       f"--data_dir={tmp_path / 'tfds'}"],
      capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  last = result.stderr.strip().splitlines()[-1].split("\r")[-1].strip()
  assert last.startswith(f"error: {os.path.join(corpus, 'features', 'bad.npy')}: ")
  assert f"(listed on line 3 of {os.path.join(corpus, 'videos.jsonl')})" in last


def test_youcook2_without_a_validation_video_is_one_line(tmp_path, capsys):
  from videobert_jax.corpus import youcook
  world = workdirs.synthetic_world(str(tmp_path / "world"), num_videos=1, num_eval_videos=2)
  youcook_dir = os.path.dirname(world["annotations"])
  for segment in youcook.load_annotations(world["annotations"], subsets=("validation",)):
    path = os.path.join(world["eval_features_dir"], f"{segment.video_id}.npy")
    if os.path.exists(path):
      os.remove(path)
  book = make_codebook(tmp_path / "book.npz", feature_dim=32)
  code, _, err = _build(capsys, f"youcook2/codebook={book},skip_missing=True",
                        f"--manual_dir={youcook_dir}", f"--data_dir={tmp_path / 'tfds'}")
  assert code == 1
  assert err[-1] == (f"error: {world['annotations']}: youcook2: no validation video with a "
                     f"feature file in {world['eval_features_dir']}, so no validation split")


def test_a_relative_manual_dir_builds_what_the_trainer_accepts(tmp_path, capsys, monkeypatch):
  """README step 3 then step 4, typed from the corpus's parent folder."""
  from videobert_jax import configs
  from videobert_jax.tasks import pipeline
  workdirs.synthetic_world(str(tmp_path / "w"), num_videos=6, num_eval_videos=2)
  monkeypatch.chdir(tmp_path)
  # validation_percent: tiny holds out 10% (the builder default is 1%, as large).
  code, _, _ = _build(capsys, "videobert_text/validation_percent=10", "--manual_dir=w/corpus",
                      "--data_dir=tfds")
  assert code == 0
  config = configs.load("pretrain:tiny")
  config.data.corpus_dir = str(tmp_path / "w" / "corpus")  # absolute, as train makes it
  config.data.tfds_data_dir = "tfds"
  meta = pipeline.ensure_datasets(config.data, kinds=("text",))  # no mismatch error
  assert meta["text"]["corpus_dir"] == str(tmp_path / "w" / "corpus")
