"""Evaluation inputs are checked like training inputs (#14 item 3): one clear error, or
a counted and listed skip under --skip_missing, for every task reading YouCook II."""

import os
import shutil

import numpy as np
import pytest

from videobert_jax.corpus import youcook
from videobert_jax.corpus.reader import CorpusError
from videobert_jax.eval import __main__ as eval_cli
from videobert_jax.eval import segments as segments_lib
from videobert_jax.testing import workdirs


@pytest.fixture(scope="module")
def world(tmp_path_factory):
  root = tmp_path_factory.mktemp("eval_inputs")
  made = workdirs.untrained_eval_run(str(root), num_videos=1, num_eval_videos=4)
  validation = youcook.load_annotations(made["world"]["annotations"],
                                        subsets=("validation",))
  made["validation_video"] = validation[0].video_id
  made["root"] = root
  return made


def _features_copy(world, name, change):
  """A copy of the evaluation features with the validation video's file changed."""
  folder = os.path.join(world["root"], name)
  shutil.rmtree(folder, ignore_errors=True)
  shutil.copytree(world["world"]["eval_features_dir"], folder)
  path = os.path.join(folder, f"{world['validation_video']}.npy")
  change(path)
  return folder, path


def _truncate(path):
  np.save(path, np.load(path)[:4])  # 6 s of a video whose segments start much later


def test_features_ending_before_a_segment_starts_are_one_error(world):
  folder, path = _features_copy(world, "short", _truncate)
  with pytest.raises(CorpusError) as e:
    segments_lib.load_segment_inputs(world["world"]["annotations"], folder, world["book"],
                                     progress=False)
  text = str(e.value)
  assert text.startswith(f"{path}: segment ") and "\n" not in text
  assert f"of video {world['validation_video']!r} starts at " in text
  assert "after the end of its features (4 clips of 1.5 s = 6 s)" in text


def test_too_short_features_are_a_listed_skip_with_skip_missing(world):
  folder, _ = _features_copy(world, "short_skip", _truncate)
  inputs, skipped = segments_lib.load_segment_inputs(
      world["world"]["annotations"], folder, world["book"],
      subsets=("training", "validation"), skip_missing=True, progress=False)
  assert skipped == [world["validation_video"]]
  assert inputs and world["validation_video"] not in {s.segment.video_id for s in inputs}


def test_full_length_features_are_accepted(world):
  inputs, skipped = segments_lib.load_segment_inputs(
      world["world"]["annotations"], world["world"]["eval_features_dir"], world["book"],
      subsets=("training", "validation"), progress=False)
  assert not skipped and len({s.segment.video_id for s in inputs}) == 4


def test_features_of_another_dimension_are_one_error_even_with_skip_missing(world):
  folder, path = _features_copy(world, "narrow", lambda p: np.save(p, np.load(p)[:, :16]))
  for skip in (False, True):
    with pytest.raises(CorpusError, match=r"features have dimension 16 but the codebook "
                       r"expects 32$") as e:
      segments_lib.load_segment_inputs(world["world"]["annotations"], folder, world["book"],
                                       skip_missing=skip, progress=False)
    assert str(e.value).startswith(path + ": ")


def test_text_to_video_recall_lists_what_skip_missing_skipped(world):
  from videobert_jax.eval import restore
  from videobert_jax.eval import text_to_video_recall
  # A training video: the recall's frequency prior reads them.
  folder, _ = _features_copy(world, "one_missing", lambda p: None)
  (missing,) = [v for v in sorted(os.listdir(folder)) if world["validation_video"] not in v][:1]
  os.remove(os.path.join(folder, missing))
  run = restore.load_run(world["workdir"], None, None)
  recall = text_to_video_recall.run_recall(run, world["world"]["annotations"], folder,
                                           world["book"], skip_missing=True, progress=False)
  assert recall["skipped_videos"] == [missing[:-len(".npy")]]


def test_the_summary_counts_and_lists_skipped_videos():
  summary = eval_cli._summary({"table": "T", "skipped_videos": ["a", "b"]})  # pylint: disable=protected-access
  assert summary.splitlines() == ["T", "skipped 2 videos (--skip_missing: no feature file, "
                                  "or one shorter than its segments): a, b"]
  many = eval_cli._summary({"table": "T", "skipped_videos": [f"v{i}" for i in range(12)]})  # pylint: disable=protected-access
  assert many.splitlines()[1].endswith("v8, v9 and 2 more")
  assert eval_cli._summary({"table": "T", "skipped_videos": []}) == "T"  # pylint: disable=protected-access
