"""``python -m videobert_jax.experiments paper``: subsets, the report, the whole command."""

import json
import os

import numpy as np
import pytest

from videobert_jax.experiments import budgets
from videobert_jax.experiments import paper_numbers
from videobert_jax.experiments import report as report_lib
from videobert_jax.experiments import subsets
from videobert_jax.testing import workdirs


def test_subsets_are_nested_seeded_prefixes_of_at_least_two_videos():
  ids = [f"v{i:02d}" for i in range(40)]
  chosen = subsets.nested_subsets(ids, (0.01, 0.1, 0.25, 0.5, 1.0), seed=3)
  sizes = [len(chosen[f]) for f in (0.01, 0.1, 0.25, 0.5, 1.0)]
  assert sizes == [2, 4, 10, 20, 40]
  assert chosen[0.1] == chosen[0.25][:4] == chosen[1.0][:4]
  assert sorted(chosen[1.0]) == ids
  assert chosen == subsets.nested_subsets(ids, (0.01, 0.1, 0.25, 0.5, 1.0), seed=3)
  assert chosen[0.5] != subsets.nested_subsets(ids, (0.5,), seed=4)[0.5]
  with pytest.raises(ValueError, match="in \\(0, 1\\]"):
    subsets.nested_subsets(ids, (1.5,))


def test_subset_steps_keep_the_epochs_and_a_floor():
  assert budgets.subset_steps(2000, 20, 200, min_steps=100) == 200
  assert budgets.subset_steps(2000, 5, 200, min_steps=100) == 100
  with pytest.raises(ValueError, match="unknown budget 'huge'"):
    budgets.get("huge")


def test_a_subset_corpus_reads_as_a_corpus_of_only_its_videos(tmp_path):
  from videobert_jax.corpus import reader
  world = workdirs.synthetic_world(str(tmp_path / "world"), num_videos=5,
                                   num_eval_videos=2, seed=5)
  ids = subsets.corpus_video_ids(world["corpus_dir"])
  out = subsets.write_subset_corpus(world["corpus_dir"], ids[1:3], str(tmp_path / "sub"))
  assert subsets.corpus_video_ids(out) == ids[1:3]
  records = list(reader.iter_videos(out))
  assert [r.video_id for r in records] == ids[1:3]
  original = {r.video_id: r for r in reader.iter_videos(world["corpus_dir"])}
  for record in records:  # the linked feature files read as the originals
    np.testing.assert_array_equal(reader.load_features(record),
                                  reader.load_features(original[record.video_id]))
  # Rewriting the same subset changes no file (built datasets stamp the index's
  # mtime); an unknown id is an error naming the index.
  index = os.path.join(out, "videos.jsonl")
  os.utime(index, (1, 1))
  assert subsets.write_subset_corpus(world["corpus_dir"], ids[1:3], out) == out
  assert os.stat(index).st_mtime == 1
  with pytest.raises(ValueError, match="videos.jsonl: no videos \\['nope'\\]"):
    subsets.write_subset_corpus(world["corpus_dir"], ["nope"], str(tmp_path / "bad"))


def test_a_stage_is_redone_only_when_its_key_changes_or_its_output_is_gone(tmp_path):
  from videobert_jax.experiments import paper
  from videobert_jax.stages import Stages
  calls = []
  out = tmp_path / "out.txt"

  def stage():
    calls.append(1)
    out.write_text("x")
    return {"n": len(calls)}

  cache = paper.StageCache(str(tmp_path), Stages())
  assert cache.run("fit", [1], stage, outputs=[str(out)]) == {"n": 1}
  seconds = cache.stages.seconds["fit"]
  again = paper.StageCache(str(tmp_path), Stages())  # a rerun, in a new process
  assert again.run("fit", [1], stage, outputs=[str(out)]) == {"n": 1}
  assert len(calls) == 1 and again.stages.seconds["fit"] == seconds
  out.unlink()
  assert cache.run("fit", [1], stage, outputs=[str(out)]) == {"n": 2}
  assert cache.run("fit", [2], stage, outputs=[str(out)]) == {"n": 3}


def _zero_shot_rows(scale):
  return [{"name": name, "protocol": protocol, "verb_top1": 0.1 * scale,
           "verb_top5": 0.5 * scale, "noun_top1": 0.2 * scale, "noun_top5": None}
          for protocol in ("label_lists", "open_vocabulary")
          for name in ("VideoBERT language prior (no video)", "VideoBERT cross-modal")]


def _captions(base):
  return [{"seed": s, "BLEU-3": base + 0.01 * s, "BLEU-4": base, "METEOR": base,
           "ROUGE-L": base, "CIDEr": 10 * base} for s in range(3)]


def test_the_report_has_the_three_tables_in_paper_units_beside_the_paper(tmp_path):
  table1 = {"rows": _zero_shot_rows(1.0), "num_segments": 12, "step": 40}
  table2 = [{"fraction": f, "num_videos": n, "steps": n, "rows": _zero_shot_rows(f)}
            for f, n in ((1.0, 40), (0.25, 10))]
  report = report_lib.build_report(
      budget="demo", full={"train/loss": 1.0}, table1=table1, table2=table2,
      captions_full={"features": _captions(0.1), "videobert": _captions(0.2),
                     "videobert_features": _captions(0.3)},
      captions_video_only=_captions(0.05), seconds={"a": 1.0})
  written = report_lib.write_report(str(tmp_path), report)
  on_disk = json.loads((tmp_path / "report.json").read_text())
  assert on_disk == json.loads(json.dumps(written))
  assert {r["protocol"] for r in on_disk["table1"]} == {"label_lists", "open_vocabulary"}
  assert on_disk["table1"][1]["verb_top5"] == pytest.approx(50.0)
  assert on_disk["table1"][1]["noun_top5"] is None
  # Table 2: the cross-modal row per subset and protocol, smallest subset first.
  assert [(r["num_videos"], r["protocol"]) for r in on_disk["table2"]] == [
      (10, "label_lists"), (10, "open_vocabulary"), (40, "label_lists"),
      (40, "open_vocabulary")]
  assert on_disk["table2"][0]["verb_top5"] == pytest.approx(12.5)
  rows = {r["name"]: r for r in on_disk["table3"]}
  assert list(rows) == list(paper_numbers.TABLE3_MATCH)
  video_only = rows["VideoBERT (video only)"]
  assert video_only["BLEU-3"] == pytest.approx(100 * np.mean([0.05, 0.06, 0.07]))
  assert video_only["BLEU-3_std"] == pytest.approx(100 * np.std([0.05, 0.06, 0.07], ddof=1))
  assert video_only["CIDEr"] == pytest.approx(0.5) and video_only["BLEU-4_std"] == 0
  assert on_disk["paper"]["table3"][-1]["CIDEr"] == 0.55
  page = (tmp_path / "report.html").read_text()
  for text in ("Table 1", "Table 2", "Table 3", "table2.png", "43.30", "VideoBERT + S3D",
               "&plusmn;"):
    assert text in page
  from PIL import Image
  with Image.open(tmp_path / "table2.png") as image:
    assert image.format == "PNG" and image.size[0] > 500
  summary = report_lib.format_summary(on_disk)
  assert "[open_vocabulary] VideoBERT cross-modal" in summary


@pytest.mark.slow
def test_experiments_paper_writes_all_three_tables_and_resumes(tmp_path, capsys):
  """The whole command on a world seed no recipe was tuned on, at a toy budget."""
  from videobert_jax.experiments import __main__ as cli
  world = workdirs.synthetic_world(str(tmp_path / "world"), num_videos=10,
                                   num_eval_videos=6, seed=7)
  corpus, youcook = world["corpus_dir"], world["youcook_dir"]
  workdirs.fit_codebook(os.path.join(corpus, "features"), str(tmp_path / "cb.npz"),
                        levels=1, clusters=8)
  argv = ["paper", "--corpus", corpus, "--youcook", youcook, "--workdir",
          str(tmp_path / "w"), "--codebook", str(tmp_path / "cb.npz"), "--steps", "4",
          "--min-steps", "2", "--caption-steps", "3", "--fractions", "25,50,100"]
  assert cli.main(argv) == 0
  report = json.loads((tmp_path / "w" / "report.json").read_text())
  assert {r["protocol"] for r in report["table1"]} == {"label_lists", "open_vocabulary"}
  assert {r["name"] for r in report["table1"]} >= set(paper_numbers.TABLE1_MATCH)
  assert sorted({r["fraction"] for r in report["table2"]}) == [0.25, 0.5, 1.0]
  assert [r["name"] for r in report["table3"]] == list(paper_numbers.TABLE3_MATCH)
  for row in report["table3"]:
    assert row["seeds"] == [0, 1, 2] and row["METEOR_std"] >= 0
  video_only = json.loads((tmp_path / "w" / "runs" / "video_only" / "config.json")
                          .read_text())["data"]["mixture_rates"]
  assert video_only["video"] > 0 and video_only["text"] == video_only["video_text"] == 0
  assert os.path.isfile(tmp_path / "w" / "report.html")
  assert os.path.isfile(tmp_path / "w" / "table2.png")
  first = capsys.readouterr().out
  stages = first.split("== report")[0].count("\n== ")
  # A rerun finds every stage done (nothing retrained) and rewrites the same report.
  assert cli.main(argv) == 0
  out = capsys.readouterr().out
  assert out.split("== report")[0].count("\n== ") == stages
  assert out.count("done earlier") == stages
  again = json.loads((tmp_path / "w" / "report.json").read_text())
  assert again["table3"] == report["table3"] and again["table2"] == report["table2"]


def test_sweep_variants_parse_apply_and_refuse_unknown_fields():
  from videobert_jax import configs
  from videobert_jax.experiments import sweep
  variant = sweep.parse_variant("lr2e-3:train.learning_rate=2e-3,data.alignment_rate=1.0")
  assert variant.overrides == (("train.learning_rate", 2e-3), ("data.alignment_rate", 1.0))
  config = sweep.apply_overrides(configs.load("pretrain:tiny"), variant.overrides)
  assert config.train.learning_rate == 2e-3 and config.data.alignment_rate == 1.0
  assert sweep.parse_variant("base").overrides == ()
  with pytest.raises(ValueError, match="no field 'train.learnin_rate'"):
    sweep.apply_overrides(config, [("train.learnin_rate", 1.0)])
  with pytest.raises(ValueError, match="is not FIELD=VALUE"):
    sweep.parse_variant("x:train.seed")


def test_sweep_summary_is_mean_and_sample_spread_per_column():
  from videobert_jax.experiments import sweep
  runs = [{"seed": s, **{c: None for c in sweep.COLUMNS}, "verb_top1": v,
           "eval_alignment": a} for s, v, a in ((0, 40.0, 0.6), (1, 50.0, 0.7), (2, 60.0, 0.8))]
  summary = sweep.summarise(runs)
  assert summary["seeds"] == [0, 1, 2]
  assert summary["verb_top1"] == pytest.approx(50.0)
  assert summary["verb_top1_std"] == pytest.approx(10.0)
  assert summary["noun_top1"] is None and summary["noun_top1_std"] is None
  table = sweep.format_sweep({"seeds": [0, 1, 2], "cooccurrence": None,
                              "variants": [{"name": "base", **summary}]})
  assert "50.0+-10.0" in table and "0.700+-0.100" in table
