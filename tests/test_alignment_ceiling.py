"""The alignment references of a synthetic world (perfect perception, visual words)."""

import json
import os

import numpy as np
import pytest

from videobert_jax.synthetic import alignment_ceiling as ac


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
  from videobert_jax.testing import workdirs as testing
  return testing.synthetic_world(str(tmp_path_factory.mktemp("w") / "world"),
                                 num_videos=24)["out_dir"]


def test_world_reads_what_a_text_names_in_every_form(world_dir):
  world = ac.World(world_dir)
  verbs, nouns = world.named("now i'm cutting the onion and adding salt")
  assert verbs == {world.verbs["cut"], world.verbs["add"]}
  assert nouns == {world.nouns["onion"], world.nouns["salt"]}
  assert world.named("zwiebel schneiden") == ({world.verbs["cut"]}, {world.nouns["onion"]})
  assert world.named("don't forget to subscribe") == (set(), set())


def test_clip_labels_follow_the_latent_steps(world_dir):
  world = ac.World(world_dir)
  with open(os.path.join(world_dir, "latents.jsonl")) as f:
    video = json.loads(f.readline())
  step = video["steps"][0]
  labels = world.clip_labels(video["video_id"], 0, step["end_clip"])
  assert labels[0] == (ac.IDLE, ac.IDLE)  # every video opens with idle intro clips
  assert labels[step["start_clip"]] == (world.verbs[step["verb"]], world.nouns[step["noun"]])


def _sentences():
  def s(video, text, first, n):
    return ac.Sentence(video, text, first, first + n, np.arange(first, first + n))
  return {"a": [s("a", "cut the onion", 0, 3), s("a", "add salt", 3, 2)],
          "b": [s("b", "fry the egg", 0, 4)]}


def test_pairs_come_both_ways_with_another_videos_span():
  pairs = ac.draw_pairs(_sentences(), np.random.default_rng(0), concat_rate=1.0,
                        max_subsample=1, min_video_tokens=4)
  assert len(pairs) == 6 and [p[4] for p in pairs] == [1, 0] * 3
  for own, other in zip(pairs[::2], pairs[1::2]):
    assert own[0] == other[0] and own[1] != other[1]
  # concat_rate 1: a sentence with a next one carries its text and clips too.
  assert pairs[0][0] == "cut the onion add salt" and pairs[0][2] == [0, 1, 2, 3, 4]


def test_pairs_need_two_videos():
  with pytest.raises(ValueError, match="two videos"):
    ac.draw_pairs({"a": _sentences()["a"]}, np.random.default_rng(0), concat_rate=0.5,
                  max_subsample=5, min_video_tokens=4)


def test_references_on_a_built_world_beat_chance_and_are_written(world_dir, tmp_path):
  from videobert_jax.testing import workdirs as testing
  _, config = testing.world_config(str(tmp_path), validation_percent=30.0,
                                   world_dir=world_dir)
  workdir = testing.untrained_workdir(str(tmp_path / "run"), config)

  result = ac.run(world_dir, workdir, draws=3)

  assert result["validation_pairs"] > 0 and result["draws"] == 3
  # The latent steps decide most pairs: speech names the step its span shows.
  assert result["perfect_perception"]["mean"] > 0.7
  assert 0.0 <= result["visual_words_supervised"]["mean"] <= 1.0
  with open(os.path.join(workdir, "eval", "alignment_ceiling.json")) as f:
    assert json.load(f)["perfect_perception"] == result["perfect_perception"]
  assert "perfect perception" in ac.format_result(result)


def test_cli_names_a_folder_that_is_no_world(tmp_path, capsys):
  assert ac.main(["--world", str(tmp_path), "--workdir", str(tmp_path)]) == 1
  assert "not a synthetic world folder" in capsys.readouterr().err
