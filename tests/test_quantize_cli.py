"""The quantize CLI end to end on a small hand-written corpus (not the generator's)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from videobert_jax.quantize import __main__ as cli
from videobert_jax.quantize import assign
from videobert_jax.quantize.codebook import load_codebook


def _corpus(root, num_videos=12, dim=8, seed=0, bad_dim_video=False):
  rng = np.random.default_rng(seed)
  centres = rng.standard_normal((6, dim)).astype(np.float32) * 5
  (root / "features").mkdir(parents=True)
  lines = []
  for v in range(num_videos):
    n = int(rng.integers(3, 30))
    feats = centres[rng.integers(0, 6, n)] + rng.standard_normal((n, dim)) * 0.2
    width = dim + 1 if bad_dim_video and v == 3 else dim
    np.save(root / "features" / f"{v}.npy", feats[:, :width].astype(np.float16)
            if width <= dim else np.zeros((n, width), np.float16))
    lines.append(json.dumps({"video_id": f"cook/{v}", "features": f"features/{v}.npy"}))
  (root / "videos.jsonl").write_text("\n".join(lines) + "\n")
  return root


def test_fit_assign_show(tmp_path, capsys):
  corpus = _corpus(tmp_path / "corpus")
  cb_path = tmp_path / "cb.npz"
  assert cli.main(["fit", "--corpus", str(corpus), "--levels", "2", "--clusters", "3",
                   "--sample", "100", "--out", str(cb_path)]) == 0
  summary = json.loads((tmp_path / "cb.json").read_text())
  assert summary["num_words"] == 9 and summary["sample_rows"] == 100
  codebook = load_codebook(cb_path, feature_dim=8)

  out = tmp_path / "tokens"
  assert cli.main(["assign", "--corpus", str(corpus), "--codebook", str(cb_path),
                   "--out", str(out)]) == 0
  tokens = assign.read_tokens(out)
  assert len(tokens) == 12
  for v in range(12):  # every clip of every video, same as assign_video
    feats = np.load(corpus / "features" / f"{v}.npy").astype(np.float32)
    np.testing.assert_array_equal(tokens[f"cook/{v}"], assign.assign_video(codebook, feats))
  result = json.loads((out / "summary.json").read_text())
  assert result["clips"] == sum(t.size for t in tokens.values())

  show_dir = tmp_path / "show"
  assert cli.main(["show", "--codebook", str(cb_path), "--corpus", str(corpus),
                   "--out", str(show_dir), "--top", "2", "--per-token", "3"]) == 0
  shown = json.loads((show_dir / "show.json").read_text())
  assert len(shown["tokens"]) == 2
  for token, clips in shown["clips"].items():
    assert len(clips) == 3
    assert clips[0]["distance"] <= clips[-1]["distance"]
  assert "cook/" in (show_dir / "index.html").read_text()


def test_show_decodes_frames_from_the_video_field(tmp_path):
  av = pytest.importorskip("av")
  corpus = _corpus(tmp_path / "corpus", num_videos=2)
  with av.open(str(corpus / "v.mp4"), "w") as container:
    stream = container.add_stream("mpeg4", rate=20)
    stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
    for i in range(20 * 50):
      frame = np.full((32, 32, 3), (i // 4) % 255, np.uint8)
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  lines = (corpus / "videos.jsonl").read_text().splitlines()
  lines = [json.dumps({**json.loads(line), "video": "v.mp4"}) for line in lines]
  (corpus / "videos.jsonl").write_text("\n".join(lines) + "\n")
  cb = tmp_path / "cb.npz"
  assert cli.main(["fit", "--corpus", str(corpus), "--levels", "1", "--clusters", "2",
                   "--out", str(cb)]) == 0
  assert cli.main(["show", "--codebook", str(cb), "--corpus", str(corpus), "--out",
                   str(tmp_path / "show"), "--tokens", "0,1", "--per-token", "2"]) == 0
  shown = json.loads((tmp_path / "show" / "show.json").read_text())
  assert shown["frames_decoded"] == 4
  assert (tmp_path / "show" / "grid.png").stat().st_size > 0


def test_bad_input_is_one_line_exit_1(tmp_path, capsys):
  corpus = _corpus(tmp_path / "corpus", bad_dim_video=True)
  cb = tmp_path / "cb.npz"
  assert cli.main(["fit", "--corpus", str(corpus), "--levels", "1", "--clusters", "2",
                   "--out", str(cb)]) == 1
  errors = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and "3.npy" in errors[0] and "9-d" in errors[0]
  (tmp_path / "junk.npz").write_bytes(b"junk")
  assert cli.main(["assign", "--corpus", str(corpus), "--codebook",
                   str(tmp_path / "junk.npz"), "--out", str(tmp_path / "t")]) == 1
  assert "junk.npz" in capsys.readouterr().err
  # With --skip-bad, assign lists the bad video and assigns the rest.
  good = tmp_path / "good"
  _corpus(good, bad_dim_video=False)
  assert cli.main(["fit", "--corpus", str(good), "--levels", "1", "--clusters", "2",
                   "--out", str(cb)]) == 0
  out = tmp_path / "t2"
  assert cli.main(["assign", "--corpus", str(corpus), "--codebook", str(cb), "--out",
                   str(out), "--skip-bad"]) == 0
  summary = json.loads((out / "summary.json").read_text())
  assert summary["videos"] == 11 and len(summary["skipped"]) == 1
  assert "3.npy" in summary["skipped"][0]


def test_assign_shared_by_processes_writes_the_one_process_bytes(tmp_path):
  corpus = _corpus(tmp_path / "corpus", bad_dim_video=True)
  with open(corpus / "videos.jsonl", "a", encoding="utf-8") as f:
    f.write("{not json\n")  # a bad index line, which every process reads
  book = _book(tmp_path)
  one = assign.assign_corpus(corpus, book, tmp_path / "one", skip_bad=True)
  # Two "processes" one after the other: process 1 leaves its part, process 0
  # (last to reach the barrier) merges both.
  calls = []
  for index in (1, 0):
    result = assign.assign_corpus(corpus, book, tmp_path / "two", skip_bad=True,
                                  process_index=index, process_count=2,
                                  barrier=lambda: calls.append(1))
    assert (result is None) == (index == 1)
  assert len(calls) == 2 and len(one["skipped"]) == 2
  assert {k: v for k, v in result.items() if k != "seconds"} == {
      k: v for k, v in one.items() if k != "seconds"}
  files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*"))
  assert files == sorted(p.relative_to(tmp_path / "two")
                         for p in (tmp_path / "two").rglob("*"))  # no parts left
  compared = 0
  for name in files:
    if (tmp_path / "one" / name).is_file() and name.name != "summary.json":
      assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
      compared += 1
  assert compared == 12  # tokens.jsonl and the 11 good videos' token files


def _book(tmp_path):
  """A 2x2 codebook fitted on a clean corpus of the same feature size."""
  good = _corpus(tmp_path / "good")
  assert cli.main(["fit", "--corpus", str(good), "--levels", "2", "--clusters", "2",
                   "--out", str(tmp_path / "cb.npz")]) == 0
  return load_codebook(tmp_path / "cb.npz")


def test_help_is_fast_and_lists_commands():
  out = subprocess.run([sys.executable, "-m", "videobert_jax.quantize", "--help"],
                       capture_output=True, text=True, env=dict(os.environ), check=True)
  assert "fit" in out.stdout and "assign" in out.stdout and "show" in out.stdout
