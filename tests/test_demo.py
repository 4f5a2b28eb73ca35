"""The main job end to end on a very small synthetic world (kept short)."""

import json
import os

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
  assert results["results"]["fit the codebook (8^1 visual words)"]["num_words"] == 8
