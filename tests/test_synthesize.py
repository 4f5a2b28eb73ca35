"""Tests of the synthetic cooking world (videobert_jax.synthetic.synthesize)."""

import argparse
import collections
import json
import os
import re

import numpy as np
import pytest

from videobert_jax.corpus import reader
from videobert_jax.synthetic import synthesize
from videobert_jax.testing import files
from videobert_jax.corpus import validate
from videobert_jax.synthetic import world as world_lib
from videobert_jax.text import dedup
from videobert_jax.text import sentences as sentences_lib
from videobert_jax.text import transcripts
from videobert_jax.text import wordpiece

SMALL = dict(num_videos=12, num_eval_videos=6, feature_dim=32, seed=0, progress=False)


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
  """A small world shared by the read-only tests."""
  out = tmp_path_factory.mktemp("world")
  return synthesize.synthesize(out, **SMALL)


@pytest.fixture(scope="module")
def eval_world(tmp_path_factory):
  """A world with many evaluation segments, for the statistical tests."""
  out = tmp_path_factory.mktemp("eval_world")
  return synthesize.synthesize(out, num_videos=40, num_eval_videos=90, feature_dim=32,
                               seed=3, progress=False)


def _latents(summary):
  with open(summary["latents"], encoding="utf-8") as f:
    return {r["video_id"]: r for r in map(json.loads, f)}


def _database(summary):
  with open(summary["annotations"], encoding="utf-8") as f:
    return json.load(f)["database"]


def test_same_arguments_write_same_bytes(tmp_path, small_world):
  again = synthesize.synthesize(tmp_path / "again", **SMALL)
  first, second = files.file_bytes(small_world["out_dir"]), files.file_bytes(again["out_dir"])
  assert first.keys() == second.keys()
  assert all(first[k] == second[k] for k in first), "same seed, different bytes"
  assert not any(".tmp" in k for k in first), "a temporary file was left behind"
  other = synthesize.synthesize(tmp_path / "seed1", **{**SMALL, "seed": 1})
  assert files.file_bytes(other["out_dir"])["world.json"] != first["world.json"]


def test_speech_and_latents_do_not_depend_on_feature_dim(tmp_path, small_world):
  wide = synthesize.synthesize(tmp_path / "wide", **{**SMALL, "feature_dim": 48})
  narrow_files, wide_files = files.file_bytes(small_world["out_dir"]), files.file_bytes(wide["out_dir"])
  for name in narrow_files:
    if name.startswith(os.path.join("corpus", "asr")) or name == "latents.jsonl":
      assert narrow_files[name] == wide_files[name], name
  record = next(reader.iter_videos(wide["corpus_dir"]))
  assert reader.load_features(record).shape[1] == 48


def test_corpus_passes_the_validator(small_world):
  report = validate.validate_corpus(small_world["corpus_dir"])
  assert [str(p) for p in report.problems] == []
  assert report.num_videos == 12 and report.feature_dim == 32
  assert report.num_clips == small_world["clips"]
  latents = _latents(small_world)
  for record in reader.iter_videos(small_world["corpus_dir"]):
    features = reader.load_features(record, mmap=False)
    assert features.shape == (latents[record.video_id]["num_clips"], 32)
    assert features.min() >= 0.0 and features.max() > 0.0  # pooled ReLU activations
    assert (features == 0).mean() < 0.9
    assert np.load(record.features_path).dtype == np.float16
    assert record.clip_seconds == 1.5


def test_every_transcript_kind_occurs(small_world):
  with open(small_world["world"], encoding="utf-8") as f:
    world = json.load(f)
  records = list(reader.iter_videos(small_world["corpus_dir"]))
  suffixes = {os.path.splitext(r.asr_path)[1] for r in records if r.asr_path}
  assert suffixes == {".json", ".vtt", ".srt"}
  assert any(r.asr_path is None for r in records)
  foreign = [r for r in records if r.asr_path and not r.is_english]
  assert {r.language for r in foreign} == {"de", "es"}
  for record in foreign:
    text = " ".join(s.text.lower() for s in sentences_lib.load_sentences(record.asr_path))
    words = world["translations"][record.language]
    assert any(w in text for w in list(words["verbs"].values()) + list(words["nouns"].values()))
    assert not re.search(r"\b(now we|the)\b", text), "English leaked into " + record.asr_path


def test_youtube_vtt_is_rolling_with_inline_timings(small_world):
  record = next(r for r in reader.iter_videos(small_world["corpus_dir"])
                if r.asr_path and r.asr_path.endswith(".vtt") and r.is_english)
  with open(record.asr_path, encoding="utf-8") as f:
    text = f.read()
  assert text.startswith("WEBVTT\nKind: captions\nLanguage: en\n")
  assert re.search(r"\w<\d\d:\d\d:\d\d\.\d{3}><c> \w", text)
  cues = transcripts.read_transcript(record.asr_path)
  transitions = [c for c in cues if abs(c.end - c.start - 0.01) < 1e-6]
  assert len(transitions) >= len(cues) // 2 - 1
  # Rolling: the first row of a cue repeats the line completed by the cue before.
  rows = [c.text.split("\n") for c in cues]
  assert any(rows[k][0] == rows[k - 1][0] for k in range(2, len(rows)))


def test_transcript_writers_round_trip(tmp_path):
  spoken = [world_lib.Sentence(("now", "we", "cut", "the", "onion"),
                               (1.0, 1.3, 1.6, 1.9, 2.1), (1.25, 1.55, 1.85, 2.05, 2.5)),
            world_lib.Sentence(("add", "some", "salt", "in", "the", "pan", "and", "stir",
                                "it", "well"),
                               tuple(5.0 + 0.3 * i for i in range(10)),
                               tuple(5.25 + 0.3 * i for i in range(10)))]
  expected = [w for s in spoken for w in s.words]
  for name, text in (("a.vtt", synthesize.to_youtube_vtt(spoken, "en")),
                     ("a.srt", synthesize.to_srt(spoken)),
                     ("a.json", synthesize.to_json_transcript(spoken))):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    words = dedup.dedup_words(transcripts.read_transcript(path))
    assert [re.sub(r"\W", "", w.text.lower()) for w in words] == expected, name
    assert words[0].start == pytest.approx(1.0, abs=0.01), name
    # A 2.5 s silence splits sentences even without punctuation (a VTT word's
    # end is known only from the next word's start).
    found = sentences_lib.load_sentences(path)
    assert [s.text.lower().rstrip(".") for s in found] == [s.text for s in spoken], name


def test_eval_annotations_follow_the_official_schema(small_world):
  database = _database(small_world)
  latents = _latents(small_world)
  with open(small_world["world"], encoding="utf-8") as f:
    world = json.load(f)
  assert len(database) == 6
  assert {v["subset"] for v in database.values()} == {"training", "validation"}
  for video_id, video in database.items():
    assert list(video) == ["duration", "subset", "recipe_type", "annotations", "video_url"]
    assert isinstance(video["duration"], float) and isinstance(video["recipe_type"], str)
    assert video["video_url"] == f"https://www.youtube.com/watch?v={video_id}"
    features = np.load(os.path.join(small_world["eval_features_dir"], f"{video_id}.npy"))
    assert features.shape[1] == 32 and features.min() >= 0
    assert features.shape[0] * 1.5 <= video["duration"] < (features.shape[0] + 1) * 1.5
    steps = latents[video_id]["steps"]
    assert [a["id"] for a in video["annotations"]] == list(range(len(steps)))
    for annotation, step in zip(video["annotations"], steps):
      start, end = annotation["segment"]
      assert isinstance(start, int) and isinstance(end, int)
      assert 0 <= start < end <= video["duration"]
      words = annotation["sentence"].split()
      assert words[0] == step["verb"] and step["noun"] in words
      assert words[0] in world["verbs"]
      # A caption names exactly one verb and one noun of the world.
      assert sum(w in world["nouns"] for w in words) == 1


def test_ids_are_youtube_like_and_eval_is_disjoint(small_world):
  corpus_ids = {r.video_id for r in reader.iter_videos(small_world["corpus_dir"])}
  eval_ids = set(_database(small_world))
  assert len(corpus_ids) == 12 and not corpus_ids & eval_ids
  for video_id in corpus_ids | eval_ids:
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{10}", video_id)


def test_vocabulary_is_single_wordpieces():
  vocab = set(wordpiece.vocab_words())
  for entry in world_lib.VERBS:
    assert entry[0] in vocab, entry[0]
  for entry in world_lib.NOUNS:
    assert entry[0] in vocab, entry[0]


def test_joint_is_balanced_and_mildly_structured():
  world = world_lib.World(world_lib.WorldConfig(), feature_dim=8, seed=0)
  np.testing.assert_allclose(world.joint.sum(axis=1), 1 / len(world.verbs), rtol=1e-6)
  np.testing.assert_allclose(world.joint.sum(axis=0), 1 / len(world.nouns), rtol=1e-6)
  assert 0 < world.joint[~world.plausible].sum() < 0.1  # implausible pairs are rare
  steps = [s for r in world.recipes for s in r.steps]
  verbs = np.bincount([v for v, _ in steps], minlength=len(world.verbs))
  nouns = np.bincount([n for _, n in steps], minlength=len(world.nouns))
  assert verbs.max() - verbs.min() <= 1 and nouns.max() - nouns.min() <= 1


def _segment_dataset(summary, subset):
  """Average-pooled features and caption verb and noun of each segment of a subset."""
  with open(summary["world"], encoding="utf-8") as f:
    world = json.load(f)
  pooled, verbs, nouns = [], [], []
  for video_id, video in _database(summary).items():
    if video["subset"] != subset:
      continue
    features = np.load(os.path.join(summary["eval_features_dir"], f"{video_id}.npy"))
    for annotation in video["annotations"]:
      start, end = annotation["segment"]
      clips = features[int(start // 1.5):max(int(np.ceil(end / 1.5)), int(start // 1.5) + 1)]
      pooled.append(clips.astype(np.float32).mean(axis=0))
      words = annotation["sentence"].split()
      verbs.append(world["verbs"].index(words[0]))
      nouns.append(next(world["nouns"].index(w) for w in words if w in world["nouns"]))
  return np.stack(pooled), np.array(verbs), np.array(nouns)


def test_video_predicts_caption_verb_and_noun_but_language_prior_does_not(eval_world):
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  x_train, verb_train, noun_train = _segment_dataset(eval_world, "training")
  x_val, verb_val, noun_val = _segment_dataset(eval_world, "validation")
  assert len(x_val) >= 100
  verb_chance, noun_chance = 1 / len(eval_world["verbs"]), 1 / len(eval_world["nouns"])
  # The most frequent training verb (noun) is what a text-only prior would say.
  majority_verb = np.bincount(verb_train).argmax()
  majority_noun = np.bincount(noun_train).argmax()
  assert (verb_val == majority_verb).mean() < 2 * verb_chance
  assert (noun_val == majority_noun).mean() < 2.5 * noun_chance
  verb_accuracy = LogisticRegression(max_iter=3000).fit(x_train, verb_train).score(
      x_val, verb_val)
  noun_accuracy = LogisticRegression(max_iter=3000).fit(x_train, noun_train).score(
      x_val, noun_val)
  assert verb_accuracy > 4 * verb_chance, verb_accuracy
  assert noun_accuracy > 4 * noun_chance, noun_accuracy


def test_single_clips_carry_the_verb_only_partly(eval_world):
  latents = _latents(eval_world)
  clips, labels = [], []
  for video_id, record in latents.items():
    if record["split"] == "corpus":
      continue
    features = np.load(os.path.join(eval_world["eval_features_dir"], f"{video_id}.npy"))
    for step in record["steps"]:
      clips.append(features[step["start_clip"]:step["end_clip"]].astype(np.float32))
      labels.append(np.full(step["end_clip"] - step["start_clip"], step["verb"]))
  x, y = np.concatenate(clips), np.concatenate(labels)
  half = len(x) // 2
  names = sorted(set(y))
  centroids = np.stack([x[:half][y[:half] == n].mean(axis=0) for n in names])
  nearest = ((x[half:, None] - centroids[None]) ** 2).sum(-1).argmin(axis=1)
  accuracy = (np.array(names)[nearest] == y[half:]).mean()
  assert 2 / len(names) < accuracy < 0.9, accuracy  # informative, not trivial


def test_speech_names_the_step_near_its_time(eval_world):
  latents = _latents(eval_world)
  hits, steps, decoy_hits, decoys = 0, 0, 0, 0
  for record in reader.iter_videos(eval_world["corpus_dir"]):
    if record.asr_path is None or not record.is_english:
      continue
    spoken = sentences_lib.load_sentences(record.asr_path)
    video_steps = latents[record.video_id]["steps"]
    for step in video_steps:
      start, end = step["start_clip"] * 1.5 - 3, step["end_clip"] * 1.5 + 3
      near = " ".join(s.text.lower() for s in spoken if s.end > start and s.start < end)
      steps += 1
      hits += bool(re.search(rf"\b{step['verb']}\b", near))
      # Verbs of this video's steps that happen elsewhere: spoken, but not here.
      near_verbs = {s["verb"] for s in video_steps
                    if s["start_clip"] * 1.5 < end and s["end_clip"] * 1.5 > start}
      for verb in {s["verb"] for s in video_steps} - near_verbs:
        decoys += 1
        decoy_hits += bool(re.search(rf"\b{verb}\b", near))
  assert steps > 50 and decoys > 50
  assert hits / steps > 0.6, hits / steps
  assert decoy_hits / decoys < 0.15, decoy_hits / decoys


def test_cli_run_prints_a_summary_and_rejects_bad_flags(tmp_path, capsys):
  parser = argparse.ArgumentParser()
  synthesize.add_arguments(parser)
  args = parser.parse_args(["--out", str(tmp_path / "w"), "--videos", "7", "--eval-videos",
                            "3", "--dim", "16", "--seed", "5", "--no-progress"])
  assert synthesize.run(args) == 0
  out = capsys.readouterr().out
  assert "7 videos" in out and "3 videos" in out and "dim 16" in out
  with open(tmp_path / "w" / "world.json", encoding="utf-8") as f:
    world = json.load(f)
  assert world["seed"] == 5 and world["feature_dim"] == 16
  assert world["counts"]["videos"] == 7
  bad = parser.parse_args(["--out", str(tmp_path / "bad"), "--eval-videos", "1"])
  assert synthesize.run(bad) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "num_eval_videos" in err[0]
  assert not os.path.exists(tmp_path / "bad")


def test_languages_and_formats_scale_with_size():
  kinds = synthesize.assign_kinds(np.random.default_rng(0), 200)
  counts = collections.Counter(kinds)
  assert counts[(None, None)] == 16
  assert sum(n for (lang, _), n in counts.items() if lang in ("de", "es")) == 20
  assert {fmt for _, fmt in kinds} == {None, "vtt", "json", "srt"}
