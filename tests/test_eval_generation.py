"""Text-to-video, forecasting and their HTML pages."""

import os

import numpy as np
import pytest

from videobert_jax.eval import generation
from videobert_jax.eval import pages


def test_nearest_clips_find_the_closest_row_and_frames(tmp_path):
  features = tmp_path / "features"
  features.mkdir()
  np.save(features / "vidA.npy", np.array([[0, 0], [5, 5], [9, 0]], np.float32))
  np.save(features / "vidB.npy", np.array([[1, 1], [0, 9]], np.float32))
  frames = tmp_path / "frames" / "vidB"
  frames.mkdir(parents=True)
  (frames / "1.jpg").write_bytes(b"jpg")
  leaves = np.array([[5, 4], [0, 8], [8.5, 0.5]], np.float32)
  clips = pages.nearest_clips(leaves, [0, 1, 2], str(features), clip_seconds=1.5,
                              frames_dir=str(tmp_path / "frames"))
  assert (clips[0].video_id, clips[0].index) == ("vidA", 1)
  assert (clips[1].video_id, clips[1].index) == ("vidB", 1)
  assert clips[1].frame.endswith("vidB/1.jpg") and clips[0].frame is None
  assert (clips[2].start, clips[2].end) == (3.0, 4.5)
  assert clips[0].distance == pytest.approx(1.0)


def test_video_context_takes_the_past_and_the_observed_future():
  words = np.arange(10)
  ctx = generation.video_context(words, 1.5, seconds=6.0, context=3, horizons=2,
                                 video_id="v")
  assert ctx.visual_words == (2, 3, 4) and ctx.future == (5, 6)


def test_pages_show_words_by_clip(tmp_path):
  clips = {3: pages.Clip("vidA", 2, 3.0, 4.5, 0.1)}
  results = [{"sentence": "cut the onion", "slots": [{"top": [3, 7], "probs": [0.6, 0.1]}]}]
  path = tmp_path / "t2v.html"
  pages.text_to_video_page(str(path), results, clips)
  text = path.read_text()
  assert "cut the onion" in text and "vidA<br>3.0-4.5 s" in text
  assert "v7 (10%)" in text and "no clip found" in text
  assert pages.words_on(results) == {3, 7}


@pytest.fixture(scope="module")
def untrained_run(tmp_path_factory):
  from videobert_jax.testing import workdirs as testing
  root = str(tmp_path_factory.mktemp("genrun"))
  return testing.untrained_eval_run(root, num_videos=1, num_eval_videos=4)


def test_text_to_video_and_forecast_end_to_end(untrained_run):
  from videobert_jax.corpus import youcook
  workdir, world = untrained_run["workdir"], untrained_run["world"]
  k = untrained_run["book"].num_words
  out = generation.run_text_to_video(workdir, ["cut the onion", "fry an egg"],
                                     world["eval_features_dir"], num_video_tokens=2)
  assert [r["sentence"] for r in out["results"]] == ["cut the onion", "fry an egg"]
  for r in out["results"]:
    assert len(r["slots"]) == 2
    for slot in r["slots"]:
      assert len(slot["top"]) == 3 and all(0 <= w < k for w in slot["top"])
      assert slot["probs"] == sorted(slot["probs"], reverse=True)
  assert os.path.exists(out["html"]) and os.path.exists(out["path"])

  video_id = youcook.video_ids(world["annotations"])[0]
  out = generation.run_forecast(workdir, world["eval_features_dir"], video_ids=[video_id],
                                seconds=9.0, visual_words=[1], horizons=(1, 3))
  video, word = out["results"]
  assert [h["steps"] for h in video["horizons"]] == [1, 3]
  assert len(video["observed"]) == 3 and word["visual_words"] == [1]
  html = open(out["html"]).read()
  assert f"video {video_id} at 9 s" in html and "+3 step(s)" in html
  assert "slot 1" in generation.format_results(
      generation.run_text_to_video(workdir, ["add salt"], world["eval_features_dir"],
                                   write=False)["results"])


def test_features_of_another_dimension_are_one_clear_error(tmp_path):
  features = tmp_path / "features"
  features.mkdir()
  np.save(features / "vidA.npy", np.zeros((3, 5), np.float32))
  with pytest.raises(ValueError, match=r"vidA.npy: features of shape \[3, 5\].*2-d"):
    pages.nearest_clips(np.zeros((4, 2), np.float32), [0], str(features))


def test_forecast_past_the_end_of_a_video_is_refused(untrained_run):
  from videobert_jax.corpus import youcook
  workdir, world = untrained_run["workdir"], untrained_run["world"]
  video_id = youcook.video_ids(world["annotations"])[0]
  with pytest.raises(ValueError, match=rf"{video_id}.npy: --time=99999 s is outside the video"):
    generation.run_forecast(workdir, world["eval_features_dir"], video_ids=[video_id],
                            seconds=99999, write=False)


def test_recall_counts_a_segment_when_any_predicted_word_is_in_its_clips():
  from videobert_jax.eval import text_to_video_recall as recall
  truth = [np.array([3, 4]), np.array([1, 1, 2]), np.array([7])]
  assert recall.recall_at_k([[4, 9], [5, 6], [7]], truth) == pytest.approx(2 / 3)
  assert recall.recall_at_k([], []) is None
  # Most frequent first; a tie goes to the smaller id.
  assert recall.frequency_prior(truth, 2) == [1, 2]


def test_text_to_video_recall_end_to_end_beside_the_frequency_prior(untrained_run):
  from videobert_jax.eval import restore
  from videobert_jax.eval import text_to_video_recall as recall
  workdir, world = untrained_run["workdir"], untrained_run["world"]
  run = restore.load_run(workdir)
  out = recall.run_recall(run, world["annotations"], world["eval_features_dir"],
                          generation.codebook_for(run, None), progress=False)
  assert out["k"] == 5 and out["segments"] > 0 and len(out["prior_words"]) == 5
  assert 0 <= out["model_recall"] <= 1 and 0 < out["prior_recall"] <= 1
  assert "text-blind frequency prior" in recall.format_recall(out)
  written = generation.run_text_to_video(workdir, [], world["eval_features_dir"], run=run,
                                         recall=out)
  assert written["recall"] == out and written["results"] == []
