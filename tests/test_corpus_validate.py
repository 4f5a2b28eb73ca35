"""Tests of `python -m videobert_jax.corpus validate` on hand-written corpora.

Each defect of the corpus format is written into an otherwise good corpus; the
command must exit 1 with exactly one problem line naming the bad file (and the
videos.jsonl line for index problems), and must not flag the good videos.
"""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import videobert_jax.synthetic as synthetic_package
from videobert_jax.corpus import __main__ as cli
from videobert_jax.corpus import validate

DIM = 8

JSON_TRANSCRIPT = json.dumps([
    {"start": 0.0, "end": 2.5, "text": "first we chop the onions"},
    {"start": 2.5, "end": 6.0, "text": "then we fry them"},
])
VTT_TRANSCRIPT = """WEBVTT
Kind: captions
Language: de

00:00:00.000 --> 00:00:03.000 align:start position:0%
 
zuerst<00:00:00.900><c> die</c><00:00:01.500><c> zwiebeln</c>

00:00:03.000 --> 00:00:07.500 align:start position:0%
zuerst die zwiebeln
dann<00:00:04.100><c> anbraten</c>
"""
SRT_TRANSCRIPT = """1
00:00:00,000 --> 00:00:02,000
add the salt

2
00:00:02,000 --> 00:00:05,000
and stir
"""


def features(num_clips, dim=DIM, dtype=np.float32, seed=0):
  """Non-negative random features, like pooled ReLU activations."""
  return np.random.default_rng(seed).random((num_clips, dim)).astype(dtype)


def video(video_id, feats=None, asr=None, transcript=None, **fields):
  """A video spec for write_corpus.

  Args:
    video_id: the id (None leaves the field out).
    feats: the array written to features/<id>.npy (None: the file is not written).
    asr: transcript file name under asr/ (None: no 'asr' field).
    transcript: the transcript text written there (None: the file is not written).
    **fields: more videos.jsonl fields (language, clip_seconds, ...).
  """
  return {"video_id": video_id, "feats": feats, "asr": asr, "transcript": transcript,
          "fields": fields}


def write_corpus(root, videos, raw_lines=None):
  """Writes videos.jsonl, features/*.npy and asr/* under root; returns root as str.

  raw_lines maps a 1-based line number to a literal line inserted there (for lines
  that are not JSON or lack fields).
  """
  root = str(root)
  os.makedirs(os.path.join(root, "features"), exist_ok=True)
  os.makedirs(os.path.join(root, "asr"), exist_ok=True)
  lines = []
  for i, spec in enumerate(videos):
    name = spec["video_id"] or f"anonymous{i}"
    line = {"features": f"features/{name}.npy", **spec["fields"]}
    if spec["video_id"] is not None:
      line = {"video_id": spec["video_id"], **line}
    if spec["feats"] is not None:
      np.save(os.path.join(root, "features", f"{name}.npy"), spec["feats"])
    if spec["asr"] is not None:
      line["asr"] = f"asr/{spec['asr']}"
      if spec["transcript"] is not None:
        with open(os.path.join(root, "asr", spec["asr"]), "w", encoding="utf-8") as f:
          f.write(spec["transcript"])
    lines.append(json.dumps(line))
  for line_no, text in sorted((raw_lines or {}).items()):
    lines.insert(line_no - 1, text)
  with open(os.path.join(root, "videos.jsonl"), "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  return root


def good_videos():
  """Four good videos: JSON, WebVTT and SRT transcripts and one without ASR."""
  return [
      video("a", features(10), "a.json", JSON_TRANSCRIPT, language="en"),
      video("b", features(20, dtype=np.float16), "b.vtt", VTT_TRANSCRIPT,
            language="de", clip_seconds=1.0),
      video("c", features(4), "c.srt", SRT_TRANSCRIPT, language="en"),
      video("d", features(6)),
  ]


def run_validate(capsys, *argv):
  """Runs the CLI in-process; returns (exit code, stdout lines)."""
  code = cli.main(["validate", "--no-progress", *map(str, argv)])
  return code, capsys.readouterr().out.splitlines()


def problem_lines(lines, corpus):
  """The output lines that are problems (they start with a path in the corpus)."""
  return [l for l in lines if l.startswith(corpus)]


def test_good_corpus_summary(tmp_path, capsys):
  corpus = write_corpus(tmp_path, good_videos())
  out_json = tmp_path / "report.json"
  code, lines = run_validate(capsys, corpus, "--json", out_json)
  assert code == 0, lines
  assert problem_lines(lines, corpus) == []
  text = "\n".join(lines)
  assert "videos           4" in lines
  assert "clips            40" in text
  # 10*1.5 + 20*1.0 + 4*1.5 + 6*1.5 = 50 s
  assert "hours of video   0.01 (50.0 s)" in text
  assert "feature dim      8" in text
  assert "videos with ASR  3 of 4 (75.0%)" in text
  assert "en: 2, de: 1" in text
  assert lines[-1] == "OK"
  report = json.loads(out_json.read_text())
  assert report["ok"] is True
  assert (report["videos"], report["clips"], report["feature_dim"]) == (4, 40, 8)
  assert report["hours"] == pytest.approx(50 / 3600)
  assert report["asr_share"] == pytest.approx(0.75)
  assert report["languages"] == {"en": 2, "de": 1}
  assert report["feature_dtypes"] == {"float16": 1, "float32": 3}
  assert report["problems"] == [] and report["skipped"] == []


def test_report_api_matches_cli(tmp_path):
  corpus = write_corpus(tmp_path, good_videos())
  report = validate.validate_corpus(corpus)
  assert report.ok and report.num_videos == 4 and report.num_clips == 40
  assert report.seconds == pytest.approx(50.0)
  assert report.videos_with_asr == 3
  # Transcripts can be left unparsed for a fast check; a broken one then passes.
  with open(os.path.join(corpus, "asr", "c.srt"), "w") as f:
    f.write("1\nnot a timing line\n")
  assert not validate.validate_corpus(corpus).ok
  assert validate.validate_corpus(corpus, check_transcripts=False).ok


def test_transcript_past_last_clip_is_fine(tmp_path, capsys):
  late = json.dumps([{"start": 0.0, "end": 500.0, "text": "a long talk"}])
  corpus = write_corpus(tmp_path, [video("a", features(3), "a.json", late)])
  code, lines = run_validate(capsys, corpus)
  assert code == 0, lines


# Each case: (videos, raw lines, expected file under the corpus, expected line,
# words the message must contain). The good videos a-d are always present too.
INDEX_DEFECTS = {
    "not_json": ({2: '{"video_id": "x", "features": '}, 2, "not valid JSON"),
    "missing_video_id": ({3: '{"features": "features/a.npy"}'}, 3, "video_id"),
    "empty_video_id": ({1: '{"video_id": "", "features": "features/a.npy"}'}, 1,
                       "video_id"),
    "duplicate_video_id": ({5: '{"video_id": "b", "features": "features/b.npy"}'}, 5,
                           "duplicate video_id 'b'"),
}


@pytest.mark.parametrize("name", sorted(INDEX_DEFECTS))
def test_index_defect_names_file_and_line(tmp_path, capsys, name):
  raw, line, words = INDEX_DEFECTS[name]
  corpus = write_corpus(tmp_path, good_videos(), raw_lines=raw)
  code, lines = run_validate(capsys, corpus)
  assert code == 1
  problems = problem_lines(lines, corpus)
  assert problems == [problems[0]], lines
  assert problems[0].startswith(os.path.join(corpus, "videos.jsonl") + f":{line}: ")
  assert words in problems[0]
  # The good ones are still counted, the bad line is not.
  assert "videos           4 (1 bad video(s) or line(s) not counted)" in lines
  assert lines[-1].startswith("FAILED: 1 problem")


def nan_features():
  feats = features(5)
  feats[3, 2] = np.nan
  return feats


def inf_features():
  feats = features(5, dtype=np.float16)
  feats[1, 0] = np.inf
  return feats


# Each case: the bad video "bad" (listed on line 5), the file the problem must
# name (relative to the corpus), and words of the message.
BAD_VIDEO_DEFECTS = {
    "missing_feature_file": (video("bad", None), "features/bad.npy", "is missing"),
    "not_2d": (video("bad", np.zeros((5,), np.float32)), "features/bad.npy", "2-D"),
    "not_2d_3d": (video("bad", np.zeros((5, 2, 4), np.float32)), "features/bad.npy",
                  "2-D"),
    "dimension_mismatch": (video("bad", features(5, dim=6)), "features/bad.npy",
                           "dimension 6, but"),
    "nan": (video("bad", nan_features()), "features/bad.npy", "NaN or Inf (first in "
            "clip 3)"),
    "inf": (video("bad", inf_features()), "features/bad.npy", "NaN or Inf (first in "
            "clip 1)"),
    "zero_clips": (video("bad", np.zeros((0, DIM), np.float32)), "features/bad.npy",
                   "zero clips"),
    "integer_features": (video("bad", np.ones((5, DIM), np.int32)), "features/bad.npy",
                         "float16 or float32"),
    "missing_transcript": (video("bad", features(5), "bad.vtt", None),
                           "asr/bad.vtt", "transcript of video 'bad' is missing"),
    "unparsable_timestamp_vtt": (
        video("bad", features(5), "bad.vtt",
              "WEBVTT\n\n00:00:01.000 --> 00:00:0x.000\nhello\n"),
        "asr/bad.vtt:3", "unparsable timestamp"),
    "unparsable_timestamp_srt": (
        video("bad", features(5), "bad.srt",
              "1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\n00:01:99,000 --> "
              "00:02:00,000\nthere\n"),
        "asr/bad.srt:6", "unparsable timestamp"),
    "end_before_start_srt": (
        video("bad", features(5), "bad.srt",
              "1\n00:00:05,000 --> 00:00:04,000\nhello\n"),
        "asr/bad.srt:2", "before start"),
    "end_before_start_vtt": (
        video("bad", features(5), "bad.vtt",
              "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nok\n\n"
              "00:00:09.000 --> 00:00:08.500\nbad\n"),
        "asr/bad.vtt:6", "before start"),
    "end_before_start_json": (
        video("bad", features(5), "bad.json",
              '[{"start": 1.0, "end": 2.0, "text": "ok"},\n'
              ' {"start": 3.0, "end": 2.0, "text": "bad"}]'),
        "asr/bad.json:2", "before start"),
}


@pytest.mark.parametrize("name", sorted(BAD_VIDEO_DEFECTS))
def test_video_defect_names_file(tmp_path, capsys, name):
  bad, where, words = BAD_VIDEO_DEFECTS[name]
  corpus = write_corpus(tmp_path, good_videos() + [bad])
  code, lines = run_validate(capsys, corpus)
  assert code == 1
  problems = problem_lines(lines, corpus)
  assert len(problems) == 1, lines
  assert problems[0].startswith(os.path.join(corpus, where) + ":"), problems
  assert words in problems[0]
  # Feature and transcript problems also say where the video is listed.
  assert f"line 5 of {os.path.join(corpus, 'videos.jsonl')}" in problems[0]
  assert "videos           4 (1 bad video(s) or line(s) not counted)" in lines


def test_dimension_mismatch_names_reference(tmp_path, capsys):
  corpus = write_corpus(tmp_path, good_videos() + [video("bad", features(5, dim=6))])
  _, lines = run_validate(capsys, corpus)
  (problem,) = problem_lines(lines, corpus)
  assert f"{os.path.join(corpus, 'features', 'a.npy')} (the first good video) has 8" in problem


def test_odd_first_dimension_is_pointed_out(tmp_path, capsys):
  videos = [video("odd", features(3, dim=6))] + good_videos()
  corpus = write_corpus(tmp_path, videos)
  code, lines = run_validate(capsys, corpus)
  assert code == 1
  problems = problem_lines(lines, corpus)
  assert len(problems) == 5  # a-d against the first, then the note on the first
  assert problems[-1].startswith(os.path.join(corpus, "features", "odd.npy") + ": ")
  assert "4 of 5 feature files have dimension 8" in problems[-1]


def test_all_defects_reported_in_one_run(tmp_path, capsys):
  videos = good_videos() + [
      video("nan", nan_features()),
      video("late", features(5), "late.srt", "1\n00:00:03,000 --> 00:00:01,000\nx\n"),
      video("both", None, "both.json", None),
  ]
  corpus = write_corpus(tmp_path, videos, raw_lines={2: "not json"})
  code, lines = run_validate(capsys, corpus)
  assert code == 1
  problems = problem_lines(lines, corpus)
  # In index order; a video with two bad files gets two lines.
  assert [p.split(": ")[0] for p in problems] == [
      os.path.join(corpus, "videos.jsonl") + ":2",
      os.path.join(corpus, "features", "nan.npy"),
      os.path.join(corpus, "asr", "late.srt") + ":2",
      os.path.join(corpus, "features", "both.npy"),
      os.path.join(corpus, "asr", "both.json"),
  ]
  assert lines[-1].startswith("FAILED: 5 problem(s)")


def test_skip_bad_lists_what_it_skipped(tmp_path, capsys):
  videos = good_videos() + [
      video("nan", nan_features()),
      video("both", None, "both.json", None),
  ]
  corpus = write_corpus(tmp_path, videos, raw_lines={1: "{oops"})
  out_json = tmp_path / "r.json"
  code, lines = run_validate(capsys, corpus, "--skip-bad", "--json", out_json)
  assert code == 0, lines
  text = "\n".join(lines)
  assert "videos           4 (3 bad video(s) or line(s) not counted)" in lines
  assert "clips            40" in lines
  assert "skipped          3 bad video(s) or line(s):" in text
  skipped = [l.strip() for l in lines if l.startswith("  ")]
  assert [s.split(": ")[0] for s in skipped] == [
      os.path.join(corpus, "videos.jsonl") + ":1",
      os.path.join(corpus, "features", "nan.npy"),
      os.path.join(corpus, "features", "both.npy"),  # first problem of that video
  ]
  assert lines[-1] == "OK with 3 bad video(s) skipped"
  report = json.loads(out_json.read_text())
  assert report["ok"] and report["videos"] == 4 and report["bad"] == 3
  assert len(report["skipped"]) == 3 and len(report["problems"]) == 4
  assert report["skipped"][0]["line"] == 1


def test_skip_bad_fails_when_nothing_is_left(tmp_path, capsys):
  corpus = write_corpus(tmp_path, [video("nan", nan_features())],
                        raw_lines={1: "[]"})
  code, lines = run_validate(capsys, corpus, "--skip-bad")
  assert code == 1
  assert "skipped          2 bad video(s) or line(s):" in "\n".join(lines)
  assert lines[-1] == "FAILED: no good video in the corpus"


def test_missing_folder_and_index(tmp_path, capsys):
  code, lines = run_validate(capsys, tmp_path / "nowhere")
  assert code == 1
  assert f"{tmp_path / 'nowhere'}: corpus folder does not exist" in lines
  code, lines = run_validate(capsys, tmp_path)
  assert code == 1
  assert any(l.startswith(str(tmp_path / "videos.jsonl") + ": missing") for l in lines)


def test_empty_index(tmp_path, capsys):
  (tmp_path / "videos.jsonl").write_text("\n\n")
  code, lines = run_validate(capsys, tmp_path)
  assert code == 1
  assert f"{tmp_path / 'videos.jsonl'}: the corpus lists no videos" in lines


def test_subprocess_bad_and_good(tmp_path):
  bad = write_corpus(tmp_path / "bad", good_videos() + [video("bad", None)])
  good = write_corpus(tmp_path / "good", good_videos())
  command = [sys.executable, "-m", "videobert_jax.corpus", "validate"]
  env = dict(os.environ)
  result = subprocess.run(command + [bad], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
  assert result.returncode == 1, result.stderr
  assert f"{os.path.join(bad, 'features', 'bad.npy')}: feature file of video 'bad' " \
         "is missing" in result.stdout
  assert "Traceback" not in result.stdout + result.stderr
  result = subprocess.run(command + [good], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
  assert result.returncode == 0, result.stdout + result.stderr
  assert "videos with ASR  3 of 4 (75.0%)" in result.stdout


def test_synthesize_is_wired_to_its_module(tmp_path, monkeypatch):
  calls = []

  def add_arguments(parser):
    parser.add_argument("--out", required=True)
    parser.add_argument("--videos", type=int, default=3)

  def run(args):
    calls.append((args.out, args.videos))
    return 7

  fake = types.ModuleType("videobert_jax.synthetic.synthesize")
  fake.add_arguments, fake.run = add_arguments, run
  monkeypatch.setitem(sys.modules, "videobert_jax.synthetic.synthesize", fake)
  monkeypatch.setattr(synthetic_package, "synthesize", fake, raising=False)
  assert cli.main(["synthesize", "--out", str(tmp_path), "--videos", "5"]) == 7
  assert calls == [(str(tmp_path), 5)]
