"""The bundle (#17): export, load in one call, the same answers as eval, trust, format v1."""

import doctest
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from videobert_jax.export import bundle as bundle_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO, "tests", "fixtures", "bundle_v1")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """An (untrained) tiny workdir with its zero-shot eval, exported as a bundle."""
  from videobert_jax.eval import zeroshot
  from videobert_jax.testing import workdirs as testing
  root = str(tmp_path_factory.mktemp("bundle"))
  run = testing.untrained_eval_run(root, num_videos=4, num_eval_videos=8)
  workdir, world = run["workdir"], run["world"]
  zeroshot.run_zeroshot(workdir, world["annotations"], world["eval_features_dir"],
                        supervised=False, cooccurrence=False, progress=False)
  out = os.path.join(root, "bundle")
  manifest = bundle_lib.export_bundle(workdir, out)
  return {"root": root, "workdir": workdir, "world": world, "bundle": out,
          "manifest": manifest}


def _copy(path, tmp_path):
  target = str(tmp_path / "copy")
  shutil.copytree(path, target)
  return target


def test_export_writes_a_self_contained_bundle(exported):
  out, manifest = exported["bundle"], exported["manifest"]
  files = manifest["files"]
  for name in ("config.json", "codebook.npz", "vocab.txt", "labels/verbs.txt",
               "labels/nouns.txt", "model.safetensors", "README.md",
               "results/zeroshot.json"):
    assert name in files, name
  assert any(f.startswith("checkpoints/0/") for f in files)
  assert manifest["format_version"] == bundle_lib.FORMAT_VERSION and manifest["step"] == 0
  for rel, entry in files.items():
    assert bundle_lib.sha256_file(os.path.join(out, rel)) == entry["sha256"]
  config = json.load(open(os.path.join(out, "config.json")))
  assert (config["data"]["codebook"], config["data"]["vocab_path"]) == (
      "codebook.npz", "vocab.txt")
  # Written atomically: nothing but the bundle is left beside it.
  assert sorted(os.listdir(os.path.dirname(out))) == ["bundle", "cb.npz", "run", "world"]
  card = open(os.path.join(out, "README.md")).read()
  assert "Protocol `open_vocabulary`" in card and "VideoBERT cross-modal" in card
  assert "docs/departures.md" in card and "trained from scratch" in card


def test_parameters_only_and_safetensors_equal_orbax(exported):
  from safetensors import numpy as safetensors_np
  import jax
  import videobert_jax
  params, model_config = videobert_jax.load_params(exported["bundle"])
  assert model_config.num_layers == 2 and model_config.num_visual_words == 16
  flat = {".".join(str(k.key) for k in path): np.asarray(leaf)
          for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}
  tensors = safetensors_np.load_file(os.path.join(exported["bundle"], "model.safetensors"))
  assert sorted(tensors) == sorted(flat)
  for name, value in flat.items():
    np.testing.assert_array_equal(tensors[name], value)
  # No optimizer state: the Orbax checkpoint is the parameters' size, not three times it
  # (parameters + Adam's two moments).
  files = exported["manifest"]["files"]
  orbax_bytes = sum(e["bytes"] for f, e in files.items() if f.startswith("checkpoints/"))
  assert orbax_bytes < 1.3 * files["model.safetensors"]["bytes"]


def _segment_features(world):
  """Each validation segment's clip features, as eval cuts them."""
  from videobert_jax.corpus import youcook
  segments = youcook.load_annotations(world["annotations"], subsets=("validation",))
  out = []
  for seg in segments:
    features = youcook.load_video_features(world["eval_features_dir"], seg.video_id,
                                           1.5, mmap=False)
    first, last = youcook.segment_clip_range(seg, 1.5, len(features))
    out.append(np.asarray(features[first:last], np.float32))
  return out


ZERO_SHOT_SCRIPT = """
import json, sys
import numpy as np
import videobert_jax
model = videobert_jax.load(sys.argv[1])
data = np.load(sys.argv[2])
segments = [data[f"s{i}"] for i in range(len(data.files))]
out = {p: model.zero_shot(segments, protocol=p) for p in ("label_lists", "open_vocabulary")}
# One segment a call (smaller padded batches) ranks the same.
out["single"] = [model.zero_shot(s, protocol="label_lists") for s in segments[:3]]
print(json.dumps(out))
"""


def test_zero_shot_in_a_fresh_process_equals_eval(exported, tmp_path):
  segments = _segment_features(exported["world"])
  np.savez(tmp_path / "segments.npz", **{f"s{i}": s for i, s in enumerate(segments)})
  done = subprocess.run([sys.executable, "-c", ZERO_SHOT_SCRIPT, exported["bundle"],
                         str(tmp_path / "segments.npz")],
                        capture_output=True, text=True, check=True, cwd=REPO)
  got = json.loads(done.stdout.strip().splitlines()[-1])
  lines = [json.loads(l) for l in open(os.path.join(
      exported["workdir"], "eval", "zeroshot_predictions.jsonl"))]
  assert len(lines) == len(segments) > 10
  for key, protocol in (("cross_modal", "label_lists"),
                        ("cross_modal_open_vocabulary", "open_vocabulary")):
    for line, result in zip(lines, got[protocol]):
      assert result["verbs"] == line[f"{key}_verbs"]
      assert result["nouns"] == line[f"{key}_nouns"]
  assert got["single"] == got["label_lists"][:3]


def test_fill_masks_gives_one_top_k_list_per_mask(exported):
  import videobert_jax
  model = videobert_jax.load(exported["bundle"])
  features = _segment_features(exported["world"])[0]
  slots = model.fill_masks("now let me [MASK] you how to [MASK] the [MASK] .", features)
  assert len(slots) == 3 and all(len(s) == 5 for s in slots)
  for slot in slots:
    probs = [p for _, p in slot]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
  assert len(model.fill_masks("cut the [MASK]", top_k=2)[0]) == 2
  with pytest.raises(ValueError, match="no \\[MASK\\]"):
    model.fill_masks("no mask here")
  with pytest.raises(ValueError, match="features must be"):
    model.visual_words(np.zeros((3, 5), np.float32))


def _one_line_error(path):
  import videobert_jax
  with pytest.raises(bundle_lib.BundleError) as info:
    videobert_jax.load(path)
  message = str(info.value)
  assert "\n" not in message
  return message


def test_an_edited_byte_fails_naming_the_file(exported, tmp_path):
  copy = _copy(exported["bundle"], tmp_path)
  target = os.path.join(copy, "model.safetensors")
  data = bytearray(open(target, "rb").read())
  data[len(data) // 2] ^= 1
  open(target, "wb").write(bytes(data))
  message = _one_line_error(copy)
  assert target in message and "sha256" in message
  os.remove(os.path.join(copy, "codebook.npz"))
  assert "codebook.npz: missing" in _one_line_error(copy)


def test_a_newer_format_version_fails_naming_the_version(exported, tmp_path):
  copy = _copy(exported["bundle"], tmp_path)
  path = os.path.join(copy, "bundle.json")
  manifest = json.load(open(path))
  manifest["format_version"] = bundle_lib.FORMAT_VERSION + 1
  json.dump(manifest, open(path, "w"))
  message = _one_line_error(copy)
  assert f"format version {bundle_lib.FORMAT_VERSION + 1} is newer" in message
  manifest["format_version"] = 1
  manifest["files"]["../outside.txt"] = {"sha256": "0" * 64, "bytes": 1}
  json.dump(manifest, open(path, "w"))
  assert "points outside the bundle" in _one_line_error(copy)
  os.remove(path)
  assert "bundle.json: missing" in _one_line_error(copy)


def test_export_refuses_an_existing_out_and_leaves_nothing_on_failure(exported, tmp_path):
  from videobert_jax.train.checkpointing import CheckpointError
  with pytest.raises(bundle_lib.BundleError, match="already exists"):
    bundle_lib.export_bundle(exported["workdir"], exported["bundle"])
  empty = tmp_path / "empty"
  empty.mkdir()
  shutil.copy(os.path.join(exported["workdir"], "config.json"), empty)
  with pytest.raises(CheckpointError, match="no checkpoint"):
    bundle_lib.export_bundle(str(empty), str(tmp_path / "out"))
  assert sorted(os.listdir(tmp_path)) == ["empty"]


def test_export_and_eval_commands_take_a_bundle(exported, tmp_path, capsys):
  from videobert_jax.export import __main__ as export_cli
  world, out = exported["world"], str(tmp_path / "cli_bundle")
  env = {**os.environ, "PYTHONPATH": REPO}
  # The command's own main (argparse, no global flags), as `python -m` runs it.
  assert export_cli.main(["--workdir", exported["workdir"], "--out", out]) == 0
  assert capsys.readouterr().out.startswith(f"wrote {out}: bundle format v1, step 0")
  assert export_cli.main(["--workdir", exported["workdir"], "--out", out]) == 1
  error = capsys.readouterr().err
  assert error.startswith(f"error: {out}: already exists") and error.count("\n") == 1
  evaluate = subprocess.run(
      [sys.executable, "-m", "videobert_jax.eval", "--task=zeroshot", f"--bundle={out}",
       f"--youcook={world['annotations']}", f"--features={world['eval_features_dir']}",
       "--nosupervised", "--nocooccurrence"], capture_output=True, text=True, env=env)
  assert evaluate.returncode == 0, evaluate.stderr
  ours = json.load(open(os.path.join(out, "eval", "zeroshot.json")))["rows"]
  trained = json.load(open(os.path.join(exported["workdir"], "eval", "zeroshot.json")))
  assert ours == trained["rows"]
  # The bundle's own files are untouched by the results written beside them.
  bundle_lib.verify_bundle(out)


def test_a_uri_destination_round_trips(exported, tmp_path, monkeypatch):
  """gs:// goes through tf.io.gfile; TF's in-memory ram:// filesystem takes the same path."""
  import tensorflow as tf
  import videobert_jax
  uri = f"ram://bundles/{tmp_path.name}/bundle"
  bundle_lib.export_bundle(exported["workdir"], uri)
  remote = sorted(tf.io.gfile.listdir(uri))
  assert "bundle.json" in remote and "model.safetensors" in remote
  monkeypatch.setenv("VIDEOBERT_JAX_CACHE", str(tmp_path / "cache"))
  local = bundle_lib.local_bundle(uri)
  assert local.startswith(str(tmp_path / "cache"))
  assert bundle_lib.local_bundle(uri) == local  # copied once, then reused
  manifest = bundle_lib.verify_bundle(local)  # every listed file came, hashes equal
  # (Orbax names its data files at random, so only the other names are compared.)
  named = lambda files: {f for f in files if not f.startswith("checkpoints/")}
  assert named(manifest["files"]) == named(exported["manifest"]["files"])
  features = np.random.default_rng(0).normal(size=(6, 32)).astype(np.float32)
  assert (videobert_jax.load(uri).zero_shot(features)
          == videobert_jax.load(exported["bundle"]).zero_shot(features))
  with pytest.raises(bundle_lib.BundleError, match="already exists"):
    bundle_lib.export_bundle(exported["workdir"], uri)
  with pytest.raises(bundle_lib.BundleError, match="bundle.json: missing"):
    bundle_lib.local_bundle(f"ram://bundles/{tmp_path.name}/nothing")


def test_committed_v1_fixture_still_loads():
  import videobert_jax
  model = videobert_jax.load(FIXTURE)
  assert model.manifest["format_version"] == 1
  features = np.random.default_rng(1).normal(size=(5, 8)).astype(np.float32)
  assert model.visual_words(features).shape == (5,)
  for protocol in ("open_vocabulary", "label_lists"):
    result = model.zero_shot(features, protocol=protocol)
    assert len(result["verbs"]) == len(result["nouns"]) == 5
  assert model.embed(features=features)["captioning"].shape == (64,)


def test_import_stays_light():
  code = ("import sys, videobert_jax; videobert_jax.load; videobert_jax.load_params; "
          "print(sorted(m for m in ('jax', 'tensorflow', 'flax', 'orbax') "
          "if m in sys.modules))")
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        check=True, cwd=REPO)
  assert done.stdout.strip() == "[]"
  usage = subprocess.run([sys.executable, "-m", "videobert_jax.export", "--help"],
                         capture_output=True, text=True, check=True, cwd=REPO)
  assert "--workdir" in usage.stdout and "--step" in usage.stdout


def test_docs_api_examples_run_on_the_fixture(monkeypatch):
  monkeypatch.chdir(REPO)  # the examples name tests/fixtures/bundle_v1
  text = open(os.path.join(REPO, "docs", "api.md"), encoding="utf-8").read()
  blocks = re.findall(r"```python\n(.*?)```", text, re.S)
  assert len(blocks) >= 6
  parser = doctest.DocTestParser()
  runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
  globs = {}
  for i, block in enumerate(blocks):
    test = parser.get_doctest(block, globs, f"docs/api.md[{i}]", "docs/api.md", 0)
    runner.run(test, clear_globs=False)
    globs = test.globs
  result = runner.summarize(verbose=False)
  assert result.failed == 0 and result.attempted >= 15
