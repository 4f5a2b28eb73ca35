"""Tests of the TFDS builders (videobert_jax.datasets) on a tiny synthetic corpus.

One module-scoped build is shared by the tests: the three pretraining datasets
and youcook2 without Beam, and videobert_video_text again with Beam
(DirectRunner) for the Beam-versus-plain comparison.
"""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

import videobert_jax.datasets  # pylint: disable=unused-import  (registers builders)
from videobert_jax.corpus import reader
from videobert_jax.synthetic import synthesize
from videobert_jax.corpus import youcook
from videobert_jax.datasets import eval_ids
from videobert_jax.datasets import segments
from videobert_jax.quantize.codebook import Codebook
from videobert_jax.text import sentences as sentences_lib

FEATURE_DIM = 32
PRETRAINING = ("videobert_text", "videobert_video", "videobert_video_text")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_codebook(path, feature_dim=FEATURE_DIM, seed=0):
  """A 2-level, 3-way codebook (9 visual words) with random centroids."""
  rng = np.random.default_rng(seed)
  Codebook(levels=2, clusters=3, feature_dim=feature_dim, seed=seed, sample_size=0,
           level_centroids=[rng.random((3, feature_dim)), rng.random((9, feature_dim))]
           ).save(path)
  return str(path)


def read_split(builder, split):
  return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def read_all(builder):
  return [ex for split in ("train", "validation") for ex in read_split(builder, split)]


def canonical(examples):
  """Examples as comparable tuples, sorted (order on disk may differ)."""
  def value(v):
    return tuple(v.tolist()) if isinstance(v, np.ndarray) else (
        v.item() if isinstance(v, np.generic) else v)
  return sorted(tuple(sorted((k, value(v)) for k, v in ex.items())) for ex in examples)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  root = tmp_path_factory.mktemp("datasets")
  summary = synthesize.synthesize(root / "syn", num_videos=12, num_eval_videos=4,
                                  feature_dim=FEATURE_DIM, seed=0, progress=False)
  corpus = summary["corpus_dir"]
  codebook = make_codebook(root / "codebook.npz")
  records = list(reader.iter_videos(corpus))
  # Two corpus videos play the evaluation set: one English, one not.
  english = [r for r in records if r.asr_path and r.is_english]
  foreign = [r for r in records if r.asr_path and not r.is_english]
  excluded = [english[0].video_id, foreign[0].video_id]
  eval_file = root / "eval_ids.txt"
  eval_file.write_text("# held out\n" + "\n".join(excluded) + "\n")
  kwargs = dict(corpus_dir=corpus, codebook=codebook, eval_ids=str(eval_file))
  plain = {}
  for name in PRETRAINING:
    builder = tfds.builder(name, data_dir=str(root / "plain"), **kwargs)
    builder.download_and_prepare()
    plain[name] = builder
  yc = tfds.builder("youcook2", data_dir=str(root / "plain"), codebook=codebook)
  yc.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=summary["youcook_dir"]))
  import apache_beam as beam  # pylint: disable=import-outside-toplevel
  beam_builder = tfds.builder("videobert_video_text", data_dir=str(root / "beam"), **kwargs)
  beam_builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      beam_options=beam.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])))
  return {"root": root, "summary": summary, "corpus": corpus, "codebook": codebook,
          "records": records, "excluded": set(excluded), "plain": plain,
          "youcook": yc, "beam": beam_builder, "kwargs": kwargs}


def expected_counts(records, excluded):
  """Examples per builder computed straight from the corpus files."""
  text = video = video_text = 0
  for r in records:
    if r.video_id in excluded:
      continue
    sents = sentences_lib.load_sentences(r.asr_path) if r.asr_path else []
    num_clips = len(reader.load_features(r))
    covering = [s for s in sents if s.start < num_clips * r.clip_seconds]
    video += len(covering) if covering else math.ceil(num_clips / 16)
    if r.is_english:
      text += len(sents)
      video_text += len(covering)
  return {"videobert_text": text, "videobert_video": video,
          "videobert_video_text": video_text}


def test_counts_match_the_corpus(built):
  want = expected_counts(built["records"], built["excluded"])
  for name, builder in built["plain"].items():
    splits = builder.info.splits
    assert splits["train"].num_examples + splits["validation"].num_examples == want[name], name
    assert splits["validation"].num_examples > 0


def test_text_is_english_only_and_video_covers_every_video(built):
  kept = [r for r in built["records"] if r.video_id not in built["excluded"]]
  english = {r.video_id for r in kept if r.asr_path and r.is_english}
  for name in ("videobert_text", "videobert_video_text"):
    ids = {ex["video_id"].decode() for ex in read_all(built["plain"][name])}
    assert ids == english, name
  video_ids = {ex["video_id"].decode() for ex in read_all(built["plain"]["videobert_video"])}
  assert video_ids == {r.video_id for r in kept}
  assert any(not r.is_english for r in kept if r.video_id in video_ids)


def test_evaluation_ids_are_excluded(built):
  for name, builder in built["plain"].items():
    ids = {ex["video_id"].decode() for ex in read_all(builder)}
    assert not ids & built["excluded"], name
    assert builder.info.metadata["num_excluded_eval_videos"] == 2
    assert set(builder.info.metadata["excluded_eval_video_ids"]) == built["excluded"]


def test_default_evaluation_ids_are_youcook2():
  ids = eval_ids.load(None)
  official = youcook.video_ids(os.path.join(ROOT, "..", "shared", "data", "youcook2",
                                            "youcookii_annotations_trainval.json")) \
      if os.path.isdir(os.path.join(ROOT, "..", "shared", "data", "youcook2")) else None
  assert len(ids) == 1790 and "GLd3aX16zBg" in ids
  if official is not None:
    assert ids == set(official)
  assert eval_ids.load(["a", "b"]) == {"a", "b"}


def test_video_without_asr_falls_back_to_16_token_chunks(built):
  no_asr = [r for r in built["records"] if r.asr_path is None]
  assert no_asr, "the synthetic corpus should have a video without ASR"
  record = no_asr[0]
  num_clips = len(reader.load_features(record))
  examples = sorted((ex for ex in read_all(built["plain"]["videobert_video"])
                     if ex["video_id"].decode() == record.video_id),
                    key=lambda ex: ex["segment_index"])
  assert len(examples) == math.ceil(num_clips / 16)
  lengths = [len(ex["visual_words"]) for ex in examples]
  assert lengths[:-1] == [16] * (len(lengths) - 1) and 1 <= lengths[-1] <= 16
  assert {ex["source"] for ex in examples} == {b"chunk"}
  # The next chunk is stored for neighbour concatenation.
  np.testing.assert_array_equal(examples[0]["next_visual_words"],
                                examples[1]["visual_words"])


def test_video_text_pairs_keep_the_sentence_span_and_neighbour(built):
  record = next(r for r in built["records"] if r.asr_path and r.is_english
                and r.video_id not in built["excluded"])
  book = segments._codebook(built["codebook"])  # pylint: disable=protected-access
  words = book.assign(reader.load_features(record))
  sents = sentences_lib.load_sentences(record.asr_path)
  examples = {int(ex["sentence_index"]): ex
              for ex in read_all(built["plain"]["videobert_video_text"])
              if ex["video_id"].decode() == record.video_id}
  order = sorted(examples)
  for i, index in enumerate(order):
    ex = examples[index]
    assert ex["text"].decode() == sents[index].text
    first, last = segments.clip_range(sents[index].start, sents[index].end,
                                      record.clip_seconds, len(words))
    np.testing.assert_array_equal(ex["visual_words"], words[first:last])
    assert len(ex["action_groups"]) == len(ex["text_ids"])
    if i + 1 < len(order):
      np.testing.assert_array_equal(ex["next_text_ids"], examples[order[i + 1]]["text_ids"])
      np.testing.assert_array_equal(ex["next_action_groups"],
                                    examples[order[i + 1]]["action_groups"])
    else:
      assert len(ex["next_text_ids"]) == 0


def test_video_text_examples_mark_verb_object_pairs(built):
  from videobert_jax.text import wordpiece
  marked = 0
  for ex in read_all(built["plain"]["videobert_video_text"]):
    pieces = wordpiece.tokens_of(ex["text_ids"])
    for group in set(ex["action_groups"].tolist()) - {0}:
      words = [p for p, g in zip(pieces, ex["action_groups"]) if g == group]
      assert len(words) >= 2, (ex["text"], words)  # a verb and its object
      marked += 1
  assert marked > 0


def test_validation_videos_are_the_same_in_every_builder(built):
  held_out = []
  for builder in built["plain"].values():
    train = {ex["video_id"] for ex in read_split(builder, "train")}
    val = {ex["video_id"] for ex in read_split(builder, "validation")}
    assert not train & val
    held_out.append(val)
  assert held_out[0] == held_out[2] and held_out[0] <= held_out[1]


def test_beam_and_plain_builds_give_the_same_examples(built):
  plain, beam = built["plain"]["videobert_video_text"], built["beam"]
  assert beam.info.metadata["built_with_beam"] is True
  for split in ("train", "validation"):
    assert canonical(read_split(plain, split)) == canonical(read_split(beam, split))


def test_youcook2_has_one_example_per_segment(built):
  annotations = youcook.load_annotations(built["summary"]["annotations"])
  train = read_split(built["youcook"], "train")
  val = read_split(built["youcook"], "validation")
  assert len(train) == sum(s.subset == "training" for s in annotations)
  assert len(val) == sum(s.subset == "validation" for s in annotations)
  for ex in train + val:
    assert ex["pooled_features"].shape == (FEATURE_DIM,)
    assert len(ex["visual_words"]) >= 1 and len(ex["caption_ids"]) >= 1
    assert ex["visual_words"].max() < 9


def test_missing_codebook_is_a_clear_error(built, tmp_path):
  builder = tfds.builder("videobert_video", data_dir=str(tmp_path),
                         corpus_dir=built["corpus"])
  with pytest.raises(reader.CorpusError, match="codebook"):
    builder.download_and_prepare()


@pytest.mark.slow
def test_tfds_cli_build_with_beam_matches_python_build(built, tmp_path):
  pytest.importorskip("mlcroissant", reason="the tfds CLI imports mlcroissant")
  tfds_cli = os.path.join(os.path.dirname(sys.executable), "tfds")
  eval_file = built["kwargs"]["eval_ids"]
  cmd = [tfds_cli, "build",
         f"videobert_video/codebook={built['codebook']},eval_ids={eval_file}",
         "--imports", "videobert_jax.datasets", "--manual_dir", built["corpus"],
         "--data_dir", str(tmp_path), "--beam_pipeline_options=runner=DirectRunner"]
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600,
                        check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  cli = tfds.builder("videobert_video", data_dir=str(tmp_path))
  assert cli.info.metadata["built_with_beam"] is True
  assert canonical(read_all(cli)) == canonical(read_all(built["plain"]["videobert_video"]))


def test_pipeline_build_keeps_tfds_chatter_off_stdout_and_reports_sizes(built, tmp_path,
                                                                          capfd):
  import ml_collections  # pylint: disable=import-outside-toplevel
  from videobert_jax.tasks import pipeline as input_pipeline  # pylint: disable=import-outside-toplevel
  data = ml_collections.ConfigDict({
      "corpus_dir": built["corpus"], "codebook": built["codebook"], "vocab_path": None,
      "eval_video_ids": built["kwargs"]["eval_ids"], "tfds_data_dir": str(tmp_path)})
  input_pipeline.ensure_datasets(data, kinds=("video",))
  out, err = capfd.readouterr()
  # TFDS would print "Downloading and preparing dataset Unknown size ..." and warn
  # that the version folder it is about to fill has no dataset_info.json.
  assert "Downloading" not in out and "prepared" not in out
  assert "has no dataset_info.json" not in err
  sizes = input_pipeline.dataset_sizes(data, kinds=("video",))
  splits = built["plain"]["videobert_video"].info.splits
  assert sizes == {"video": {s: splits[s].num_examples for s in ("train", "validation")}}
