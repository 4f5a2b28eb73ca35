"""eval --task=alignment: the split accuracies and the counting reference."""

import json
import os

import numpy as np
import pytest

from videobert_jax.eval import alignment


def test_best_threshold_separates_separable_scores():
  scores = np.array([0.1, 0.9, 0.2, 0.8, 0.3])
  labels = np.array([0, 1, 0, 1, 0])
  threshold = alignment.best_threshold(scores, labels)
  assert ((scores > threshold) == (labels == 1)).all()


def test_best_threshold_calls_everything_aligned_when_that_is_best():
  scores = np.array([0.5, 0.6, 0.7])
  labels = np.array([1, 1, 1])
  assert (scores > alignment.best_threshold(scores, labels)).all()


def test_auc_counts_ties_half_and_needs_both_labels():
  assert alignment._auc(np.array([1.0, 0.0]), np.array([1, 0])) == 1.0
  assert alignment._auc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5
  assert alignment._auc(np.array([0.5, 0.7]), np.array([1, 1])) is None


def _examples():
  """Word 10 is always spoken over visual word 0, word 11 over visual word 1."""
  text0, text1 = np.array([10, 20]), np.array([11, 20])
  return [(text0, np.array([0, 0]), "a"), (text1, np.array([1]), "b")] * 5


def test_pmi_scores_a_matching_video_above_a_mismatched_one():
  scorer = alignment.PmiScorer(_examples(), num_visual_words=2, text_vocab_size=30)
  assert scorer.score(np.array([10]), np.array([0])) > scorer.score(np.array([10]),
                                                                    np.array([1]))
  assert scorer.score(np.array([11]), np.array([1])) > scorer.score(np.array([11]),
                                                                    np.array([0]))
  assert scorer.score(np.array([], np.int64), np.array([0])) == 0.0


def test_measure_splits_accuracy_by_what_the_text_names():
  def pair(text, video, label, predicted, named):
    return alignment.Pair(np.array(text), np.array(video), label, predicted, named)

  pairs = [pair([10], [0], 1, 1, True), pair([10], [1], 0, 1, True),  # named: 1 of 2
           pair([20], [0], 1, 1, False), pair([20], [1], 0, 0, False)]  # none: 2 of 2
  result = alignment.measure(pairs, _examples(), num_visual_words=2, text_vocab_size=30)
  assert result["pairs"] == 4 and result["negatives"] == 2
  assert result["model_accuracy"] == 0.75
  assert result["names_label_word"] == {"pairs": 2, "model_accuracy": 0.5,
                                        "counting_accuracy": 1.0}
  assert result["names_no_label_word"]["model_accuracy"] == 1.0
  # Counting tells word 10's own video from the other; word 20 is spoken over both.
  assert result["counting_auc"] > 0.5


def test_measure_refuses_no_pairs():
  with pytest.raises(ValueError, match="no validation alignment pairs"):
    alignment.measure([], _examples(), num_visual_words=2, text_vocab_size=30)


def test_eval_alignment_scores_the_validation_pairs_both_ways(tmp_path):
  from videobert_jax.testing import workdirs as testing
  from videobert_jax.tasks import pipeline
  _, config = testing.world_config(str(tmp_path))
  workdir = testing.untrained_workdir(str(tmp_path / "run"), config)

  result = alignment.run_alignment(workdir)

  sentences = pipeline.dataset_sizes(config.data, kinds=("video_text",))["video_text"]
  # Each sentence with another video in the pool comes both ways (the first ones of
  # a video may have none yet).
  assert 0 < result["pairs"] <= 2 * sentences["validation"]
  assert result["pairs"] == 2 * result["negatives"]
  split = result["names_label_word"]["pairs"] + result["names_no_label_word"]["pairs"]
  assert split == result["pairs"] and result["names_label_word"]["pairs"] > 0
  assert 0.0 <= result["model_accuracy"] <= 1.0
  assert 0.0 <= result["counting_accuracy"] <= 1.0
  assert result["counting"]["training_examples"] == sentences["train"]
  with open(os.path.join(workdir, "eval", "alignment.json")) as f:
    written = json.load(f)
  assert written["model_accuracy"] == result["model_accuracy"]
  assert "text names a label verb or noun" in result["table"]
