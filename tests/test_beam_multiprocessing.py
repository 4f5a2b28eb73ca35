"""Beam in parallel (issue 18, item 2): the DirectRunner with two worker processes.

``--direct_running_mode=multi_processing --direct_num_workers=2`` runs every
per-video function in separate Python processes, as Dataflow, Flink or Spark
workers would: what they run must pickle, import and write the files itself. The
TFDS builds and the feature extraction give the same examples and features there
as the plain (non-Beam) path.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

beam = pytest.importorskip("apache_beam")
tfds = pytest.importorskip("tensorflow_datasets")

import videobert_jax.datasets  # pylint: disable=unused-import,wrong-import-position  (registers builders)
from videobert_jax.testing import videos as synthetic_videos  # pylint: disable=wrong-import-position
from videobert_jax.testing import workdirs  # pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MULTI_PROCESSING = ["--runner=DirectRunner", "--direct_num_workers=2",
                    "--direct_running_mode=multi_processing"]
PRETRAINING = ("videobert_text", "videobert_video", "videobert_video_text")


def _examples(builder) -> list:
  """Every example of both splits as sorted, comparable tuples (disk order may differ)."""
  def value(v):
    return tuple(v.tolist()) if isinstance(v, np.ndarray) else (
        v.item() if isinstance(v, np.generic) else v)
  out = []
  for split in ("train", "validation"):
    for ex in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)):
      out.append((split, tuple(sorted((k, value(v)) for k, v in ex.items()))))
  return sorted(out)


@pytest.mark.slow
def test_tfds_builds_on_two_beam_worker_processes_give_the_plain_examples(tmp_path):
  world = workdirs.synthetic_world(str(tmp_path / "world"), num_videos=12,
                                   num_eval_videos=2)
  codebook = str(tmp_path / "codebook.npz")
  workdirs.fit_codebook(os.path.join(world["corpus_dir"], "features"), codebook)
  kwargs = {"corpus_dir": world["corpus_dir"], "codebook": codebook}
  options = beam.options.pipeline_options.PipelineOptions(MULTI_PROCESSING)
  for name in PRETRAINING:
    plain = tfds.builder(name, data_dir=str(tmp_path / "plain"), **kwargs)
    plain.download_and_prepare()
    parallel = tfds.builder(name, data_dir=str(tmp_path / "beam"), **kwargs)
    parallel.download_and_prepare(
        download_config=tfds.download.DownloadConfig(beam_options=options))
    assert parallel.info.metadata["built_with_beam"] is True
    expected = _examples(plain)
    assert expected, name
    assert _examples(parallel) == expected, name


def _video_cli(*args):
  return subprocess.run([sys.executable, "-m", "videobert_jax.video", *args],
                        capture_output=True, text=True, cwd=ROOT, timeout=900, check=False)


def _corpus(path) -> dict:
  """{video_id: (index line without paths, features)} of a corpus folder."""
  out = {}
  with open(os.path.join(path, "videos.jsonl"), encoding="utf-8") as f:
    for line in f:
      record = json.loads(line)
      features = np.load(os.path.join(path, record.pop("features")))
      out[record["video_id"]] = (record, features)
  return out


@pytest.mark.slow
def test_feature_extraction_on_two_beam_worker_processes_gives_the_plain_features(
    tmp_path):
  videos = tmp_path / "videos"
  videos.mkdir()
  synthetic_videos.write_striped_video(str(videos / "a_25fps.mkv"), 25, 75)  # 2 clips
  synthetic_videos.write_striped_video(str(videos / "b_60fps.mp4"), 60, 100)  # 1 clip
  synthetic_videos.write_striped_video(str(videos / "c_30fps.mp4"), 30, 130)  # 3 clips
  common = ["--videos", str(videos), "--random-init", "--size", "32", "--batch-size", "4"]
  plain = _video_cli("extract", *common, "--out", str(tmp_path / "plain"), "--no-progress")
  assert plain.returncode == 0, plain.stderr
  parallel = _video_cli("beam", *common, "--out", str(tmp_path / "beam"), *MULTI_PROCESSING)
  assert parallel.returncode == 0, parallel.stderr
  assert "extracted        3 (6 clips" in parallel.stdout
  expected, got = _corpus(tmp_path / "plain"), _corpus(tmp_path / "beam")
  assert sorted(got) == sorted(expected) == ["a_25fps", "b_60fps", "c_30fps"]
  for video_id, (record, features) in expected.items():
    assert got[video_id][0] == record, video_id
    assert got[video_id][1].dtype == features.dtype
    np.testing.assert_array_equal(got[video_id][1], features, err_msg=video_id)
