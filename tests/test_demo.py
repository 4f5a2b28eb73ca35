"""The main job end to end on a very small synthetic world (kept short)."""

import json
import os

import pytest

from videobert_jax import demo


def test_demo_runs_every_stage_and_writes_the_tables(tmp_path, capsys):
  workdir = tmp_path / "demo"
  code = demo.main(["--workdir", str(workdir), "--videos", "10", "--eval-videos", "6",
                    "--dim", "32", "--levels", "1", "--clusters", "8", "--steps", "4",
                    "--caption-steps", "4"])
  assert code == 0
  out = capsys.readouterr().out
  for stage in ("validate the corpus", "fit the codebook", "build the TFDS datasets",
                "pretrain VideoBERT", "zero-shot verb/noun classification", "captioning"):
    assert stage in out
  results = json.loads((workdir / "demo_results.json").read_text())
  zeroshot = results["results"]["zero-shot verb/noun classification"]
  names = [row["name"] for row in zeroshot["rows"]]
  assert names[:3] == ["BERT language prior (before video)",
                       "VideoBERT language prior (no video)", "VideoBERT cross-modal"]
  captioning = results["results"]["captioning"]
  assert [row["row"] for row in captioning["rows"]] == [
      "features", "videobert", "videobert_features"]
  for row in captioning["rows"]:
    assert 0.0 <= row["METEOR"] <= 1.0 and row["CIDEr"] >= 0.0
  assert os.path.isfile(workdir / "train" / "final_metrics.json")
  recall = results["results"]["text-to-video recall"]
  assert recall["k"] == 5 and recall["segments"] > 0
  assert 0.0 <= recall["model_recall"] <= 1.0 and 0.0 <= recall["prior_recall"] <= 1.0
  assert "text-to-video recall@5" in out
  written = json.loads((workdir / "train" / "eval" / "text_to_video.json").read_text())
  assert written["recall"]["model_recall"] == recall["model_recall"]
  assert results["results"]["fit the codebook (8^1 visual words)"]["num_words"] == 8
  # The synthesized world's references for alignment need two validation videos; this
  # world holds out one, and the stage says so instead of failing the demo.
  references = results["results"]["alignment against what the data allows"]
  assert "at least two videos" in references["skipped"] and "not measured" in out


def _zero_shot_rows(workdir):
  """The demo's results, its label-list zero-shot rows by name, the cross-modal row
  and the two language priors."""
  results = json.loads((workdir / "demo_results.json").read_text())["results"]
  rows = {row["name"]: row for row in results["zero-shot verb/noun classification"]["rows"]
          if row.get("protocol", "label_lists") == "label_lists"}
  priors = [rows[name] for name in ("BERT language prior (before video)",
                                    "VideoBERT language prior (no video)")]
  return results, rows, rows["VideoBERT cross-modal"], priors


@pytest.mark.slow
def test_default_demo_learns_the_video_language_link_on_an_unseen_world(tmp_path):
  """The default demo on a world seed no setting was tuned on (~10 min).

  Seed 0 is the bundled (reported) world, seeds 1 and 2 the dev worlds of the recipe
  sweeps (docs/training.md); seed 5 is where a default chosen there is checked
  afterwards (on 2026-12-07 it caught lr 2e-3, which failed the text-to-video bar).
  Cross-modal above both priors everywhere and 1.5x the best in top-5 (#16), set
  before any run of this recipe here; the alignment and text-to-video bars below.
  """
  workdir = tmp_path / "demo"
  assert demo.main(["--workdir", str(workdir), "--skip-captioning", "--seed", "5"]) == 0
  results, rows, cross, priors = _zero_shot_rows(workdir)
  for prior in priors:
    for column in ("verb_top1", "verb_top5", "noun_top1", "noun_top5"):
      assert cross[column] > prior[column], (prior["name"], column)
  # "Clearly": #16's bar for the paper's masking, 1.5x the best prior in top-5.
  for column in ("verb_top5", "noun_top5"):
    assert cross[column] >= 1.5 * max(prior[column] for prior in priors), column
  # Near the counting ceiling: #16 asks 90% of the co-occurrence row's top-5 on the
  # reported world and one more; one run on this world is held to 80%, set before the
  # 4-layer default's first run here (the 2-layer default's nouns were 58% here).
  ceiling = rows["Co-occurrence (visual words x speech)"]
  for column in ("verb_top5", "noun_top5"):
    assert cross[column] >= 0.8 * ceiling[column], column
  # Alignment learns: 0.7 is 7 standard errors of ~300 validation pairs above chance.
  # It was 0.6 from 2026-12-06 (the 2-layer default gave 0.689 here) and is 0.7 again
  # from the 4-layer default, set before its run here; #16's 0.80 sits at what a
  # supervised read of this world's visual words reaches (78.3%, docs/synthetic_world.md).
  metrics = json.loads((workdir / "train" / "final_metrics.json").read_text())
  assert metrics["eval/alignment/accuracy"] >= 0.7
  # Text-to-video reads the text (#16's bar: 2x the text-blind frequency prior).
  recall = results["text-to-video recall"]
  assert recall["model_recall"] >= 2 * recall["prior_recall"]


# BERT's random masking (the paper's) in the video-text pairs, and no text-only
# examples: chosen on the dev worlds (docs/training.md, "The paper's masking without
# the text-only objective"); the recipe #16 holds to 1.5x the best language prior.
RANDOM_MASKING = ["--set", "data.action_mask_rate=0.0", "--set", "data.mixture_rates.text=0.0"]


@pytest.mark.slow
def test_random_masking_demo_reads_the_video_on_an_unseen_world(tmp_path):
  """The demo with the paper's random masking on world seed 5 (~8 min).

  #16's bar, set before any run of this recipe on this world: cross-modal at least
  1.5x the best language prior in every column (label lists).
  """
  workdir = tmp_path / "demo"
  assert demo.main(["--workdir", str(workdir), "--skip-captioning", "--seed", "5",
                    *RANDOM_MASKING]) == 0
  config = json.loads((workdir / "train" / "config.json").read_text())
  assert config["data"]["action_mask_rate"] == 0.0
  assert config["data"]["mixture_rates"]["text"] == 0.0
  _, _, cross, priors = _zero_shot_rows(workdir)
  for column in ("verb_top1", "verb_top5", "noun_top1", "noun_top5"):
    assert cross[column] >= 1.5 * max(prior[column] for prior in priors), column


def test_set_overrides_the_pretraining_config_and_refuses_unknown_fields(tmp_path, capsys):
  args = demo._parser().parse_args(["--workdir", str(tmp_path), *RANDOM_MASKING,
                                    "--set", "train.learning_rate=2e-3"])
  config = demo.pretrain_config(args, str(tmp_path / "corpus"), str(tmp_path / "b.npz"))
  assert config.data.action_mask_rate == 0.0 and config.data.mixture_rates.text == 0.0
  assert config.train.learning_rate == 2e-3
  assert config.data.mixture_rates.video_text == 3.0  # the rest of the recipe stays
  with pytest.raises(SystemExit):
    demo.main(["--workdir", str(tmp_path / "w"), "--set", "data.mask_rat=0.2"])
  assert "no field 'data.mask_rat'" in capsys.readouterr().err
  assert not os.path.exists(tmp_path / "w")  # refused before any stage ran


def test_rerun_reuses_the_world_and_codebook_so_its_datasets_still_match(tmp_path):
  """A second `make demo` must not rewrite the corpus or the codebook: the TFDS
  datasets' fingerprints include their file times, and rewritten ones made the rerun
  refuse its own datasets."""
  first = demo.synthesize_world(str(tmp_path), 3, 4, 16, seed=2)
  index = os.path.join(first["corpus_dir"], "videos.jsonl")
  stamp = os.stat(index).st_mtime_ns
  again = demo.synthesize_world(str(tmp_path), 3, 4, 16, seed=2)
  assert os.stat(index).st_mtime_ns == stamp and again["reused"]
  assert again["corpus_dir"] == first["corpus_dir"]
  assert again["youcook_dir"] == first["youcook_dir"]
  assert again["videos"] == first["videos"] == 3
  # The codebook too (the video datasets' fingerprints include its file time).
  book = str(tmp_path / "codebook.npz")
  fitted = demo.fit_codebook(first["corpus_dir"], book, 1, 4, seed=0)
  book_stamp = os.stat(book).st_mtime_ns
  assert demo.fit_codebook(first["corpus_dir"], book, 1, 4, seed=0)["reused"]
  assert os.stat(book).st_mtime_ns == book_stamp
  assert "reused" not in demo.fit_codebook(first["corpus_dir"], book, 1, 3, seed=0)
  assert fitted["num_words"] == 4
  # Other arguments synthesize afresh, and the codebook of the old world is refitted.
  other = demo.synthesize_world(str(tmp_path), 3, 4, 16, seed=3)
  assert "reused" not in other and other["seed"] == 3
  assert "reused" not in demo.fit_codebook(other["corpus_dir"], book, 1, 3, seed=0)
