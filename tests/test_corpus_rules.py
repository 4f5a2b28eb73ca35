"""The corpus rules shared by every stage (issue #14): paths stay inside the corpus,
empty transcripts are no ASR, a BOM and blank lines in videos.jsonl are fine, and a
bad or truncated .npy is one line naming the file and the videos.jsonl line.
"""

import json
import os

import numpy as np
import pytest

from videobert_jax.corpus import __main__ as cli
from videobert_jax.corpus import reader
from videobert_jax.corpus import validate
from videobert_jax.corpus.reader import CorpusError

DIM = 8

SRT = "1\n00:00:00,000 --> 00:00:03,000\nadd the salt\n\n2\n00:00:03,000 --> 00:00:06,000\nand stir\n"


def feats(num_clips=6, dim=DIM, seed=0):
  return np.random.default_rng(seed).random((num_clips, dim)).astype(np.float32)


def write_corpus(root, lines, files=(), encoding="utf-8", raw=None):
  """videos.jsonl from ``lines`` (dicts, or str written as is) and ``files``.

  ``files`` maps a path relative to ``root`` to an array (saved as .npy), bytes or
  text. Returns the corpus folder as str.
  """
  root = str(root)
  os.makedirs(root, exist_ok=True)
  for rel, content in dict(files).items():
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(content, np.ndarray):
      np.save(path, content)
    else:
      with open(path, "wb") as f:
        f.write(content if isinstance(content, bytes) else content.encode("utf-8"))
  text = "".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines)
  with open(os.path.join(root, "videos.jsonl"), "w", encoding=encoding) as f:
    f.write(raw if raw is not None else text)
  return root


def good(video_id, asr=None):
  line = {"video_id": video_id, "features": f"features/{video_id}.npy"}
  if asr:
    line["asr"] = f"asr/{asr}"
  return line


def run_cli(capsys, *args):
  code = cli.main(["validate", *map(str, args), "--no-progress"])
  return code, capsys.readouterr().out.splitlines()


def index(corpus):
  return os.path.join(corpus, "videos.jsonl")


# ------------------------------------------------------------ paths stay inside


OUTSIDE = {
    "dotdot": "../outside/x.npy",
    "dotdot_after_folder": "features/../../outside/x.npy",
    "absolute": None,  # filled with the absolute path of outside/x.npy
    "url": "gs://bucket/x.npy",
}


@pytest.mark.parametrize("kind", sorted(OUTSIDE))
def test_feature_path_outside_the_corpus_is_rejected(tmp_path, capsys, kind):
  np.save(tmp_path / "x.npy", feats())
  (tmp_path / "outside").mkdir()
  np.save(tmp_path / "outside" / "x.npy", feats())
  value = OUTSIDE[kind] or str(tmp_path / "outside" / "x.npy")
  corpus = write_corpus(tmp_path / "corpus",
                        [good("a"), {"video_id": "b", "features": value}],
                        {"features/a.npy": feats()})
  code, lines = run_cli(capsys, corpus)
  assert code == 1
  problems = [l for l in lines if l.startswith(corpus)]
  assert len(problems) == 1, lines
  assert problems[0].startswith(f"{index(corpus)}:2: ")
  assert "'features'" in problems[0] and "--allow-outside-paths" in problems[0]
  with pytest.raises(CorpusError) as e:
    list(reader.iter_videos(corpus))
  assert e.value.path == index(corpus) and e.value.line == 2
  assert "\n" not in str(e.value)


def test_transcript_path_outside_the_corpus_is_rejected(tmp_path, capsys):
  corpus = write_corpus(tmp_path / "corpus",
                        [good("a"), {**good("b"), "asr": "../b.srt"}],
                        {"features/a.npy": feats(), "features/b.npy": feats()})
  (tmp_path / "b.srt").write_text(SRT)
  code, lines = run_cli(capsys, corpus)
  assert code == 1
  (problem,) = [l for l in lines if l.startswith(corpus)]
  assert problem.startswith(f"{index(corpus)}:2: ") and "'asr'" in problem


def test_outside_paths_are_accepted_when_allowed(tmp_path, capsys):
  (tmp_path / "outside").mkdir()
  np.save(tmp_path / "outside" / "b.npy", feats())
  np.save(tmp_path / "outside" / "c.npy", feats())
  (tmp_path / "outside" / "c.srt").write_text(SRT)
  corpus = write_corpus(tmp_path / "corpus", [
      good("a"),
      {"video_id": "b", "features": "../outside/b.npy"},
      {"video_id": "c", "features": str(tmp_path / "outside" / "c.npy"),
       "asr": str(tmp_path / "outside" / "c.srt")},
  ], {"features/a.npy": feats()})
  code, lines = run_cli(capsys, corpus, "--allow-outside-paths")
  assert code == 0, lines
  assert lines[-1] == "OK"
  records = list(reader.iter_videos(corpus, allow_outside_paths=True))
  assert records[1].features_path == str(tmp_path / "outside" / "b.npy")
  assert validate.validate_corpus(corpus, allow_outside_paths=True).ok
  # The underscore spelling of the flag works too.
  assert run_cli(capsys, corpus, "--allow_outside_paths")[0] == 0


def test_url_kept_verbatim_when_allowed(tmp_path):
  corpus = write_corpus(tmp_path, [{"video_id": "a", "features": "gs://bucket/a.npy"}])
  (record,) = reader.iter_videos(corpus, allow_outside_paths=True)
  assert record.features_path == "gs://bucket/a.npy"


def test_paths_inside_the_corpus_and_symlinks_are_fine(tmp_path, capsys):
  (tmp_path / "elsewhere.srt").write_text(SRT)
  corpus = write_corpus(tmp_path / "corpus", [
      {"video_id": "a", "features": "features/../features/a.npy"},
      {"video_id": "b", "features": "./features/b.npy", "asr": "asr/b.srt"},
  ], {"features/a.npy": feats(), "features/b.npy": feats()})
  os.makedirs(os.path.join(corpus, "asr"))
  # Extraction links transcripts to files elsewhere: the path as written counts.
  os.symlink(tmp_path / "elsewhere.srt", os.path.join(corpus, "asr", "b.srt"))
  code, lines = run_cli(capsys, corpus)
  assert code == 0, lines


# -------------------------------------------------------------- empty transcripts


EMPTY_TRANSCRIPTS = {
    "b.vtt": "",
    "c.vtt": "WEBVTT\nKind: captions\nLanguage: en\n\n",
    "d.srt": "",
    "e.json": "[]",
    "f.json": '[{"start": 0.0, "end": 1.0, "text": "  "}]',
    "g.vtt": "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n \n\n",
    "h.srt": "1\n00:00:00,000 --> 00:00:02,000\n[Music]\n",
    "i.json": "",
}


def empty_corpus(root):
  files = {"features/a.npy": feats(), "asr/a.srt": SRT}
  lines = [good("a", "a.srt")]
  for name, text in EMPTY_TRANSCRIPTS.items():
    vid = name.split(".")[0]
    files[f"features/{vid}.npy"] = feats()
    files[f"asr/{name}"] = text
    lines.append(good(vid, name))
  return write_corpus(root, lines, files)


def test_empty_transcripts_are_a_warning_and_no_asr(tmp_path, capsys):
  corpus = empty_corpus(tmp_path)
  n = len(EMPTY_TRANSCRIPTS)
  code, lines = run_cli(capsys, corpus)
  assert code == 0, lines
  assert f"videos with ASR  1 of {n + 1} ({100 / (n + 1):.1f}%)" in lines
  assert (f"warning          {n} videos with an empty transcript: treated as no ASR"
          in lines)
  assert "ASR languages    unspecified: 1" in lines
  report = validate.validate_corpus(corpus)
  assert report.ok and not report.problems
  assert len(report.empty_transcripts) == n
  assert report.to_dict()["empty_transcripts"] == n


def test_one_empty_transcript_is_singular(tmp_path, capsys):
  corpus = write_corpus(tmp_path, [good("a", "a.vtt")],
                        {"features/a.npy": feats(), "asr/a.vtt": ""})
  _, lines = run_cli(capsys, corpus)
  assert "warning          1 video with an empty transcript: treated as no ASR" in lines


def test_empty_transcripts_give_no_sentences_and_chunked_video(tmp_path):
  from videobert_jax.datasets import segments
  from videobert_jax.text import dedup, sentences, transcripts
  corpus = empty_corpus(tmp_path)
  records = list(reader.iter_videos(corpus))
  for record in records[1:]:
    assert dedup.is_empty(transcripts.read_transcript(record.asr_path))
    assert sentences.load_sentences(record.asr_path) == []
    assert segments.load_sentences(record) == []
    assert segments.examples_for_video(record, segments.BuildSpec(kind=segments.TEXT)) == []
  assert not dedup.is_empty(transcripts.read_transcript(records[0].asr_path))
  book = make_codebook(tmp_path / "book.npz")
  spec = segments.BuildSpec(kind=segments.VIDEO, codebook_path=book, chunk_tokens=4)
  examples = segments.examples_for_video(records[1], spec)
  assert {e["source"] for _, e in examples} == {segments.SOURCE_CHUNK}


# ----------------------------------------------------------- BOM and blank lines


def test_videos_jsonl_with_a_bom_is_accepted(tmp_path, capsys):
  corpus = write_corpus(tmp_path, [good("a"), good("b")],
                        {"features/a.npy": feats(), "features/b.npy": feats()},
                        encoding="utf-8-sig")
  with open(index(corpus), "rb") as f:
    assert f.read(3) == b"\xef\xbb\xbf"
  assert [r.video_id for r in reader.iter_videos(corpus)] == ["a", "b"]
  code, lines = run_cli(capsys, corpus)
  assert code == 0, lines


def test_blank_lines_are_allowed_and_line_numbers_kept(tmp_path, capsys):
  corpus = write_corpus(tmp_path, [good("a"), "", "   ", "\t", good("b"), "",
                                   '{"video_id": "c"}'],
                        {"features/a.npy": feats(), "features/b.npy": feats()})
  records = list(reader.iter_videos(corpus, skip_bad=True))
  assert [(r.video_id, r.line) for r in records] == [("a", 1), ("b", 5)]
  code, lines = run_cli(capsys, corpus)
  assert code == 1
  (problem,) = [l for l in lines if l.startswith(corpus)]
  assert problem.startswith(f"{index(corpus)}:7: ")


def test_crlf_blank_lines_are_allowed(tmp_path, capsys):
  raw = (json.dumps(good("a")) + "\r\n\r\n" + json.dumps(good("b")) + "\r\n\r\n")
  corpus = write_corpus(tmp_path, [], {"features/a.npy": feats(),
                                       "features/b.npy": feats()}, raw=raw)
  assert run_cli(capsys, corpus)[0] == 0


# ------------------------------------------------------- bad or truncated .npy


def npy_bytes(array):
  import io
  buf = io.BytesIO()
  np.save(buf, array)
  return buf.getvalue()


FULL = npy_bytes(feats(10))
BAD_NPY = {
    "truncated_data": (FULL[:200], "truncated .npy"),
    "truncated_header": (FULL[:60], "truncated"),
    "truncated_magic": (FULL[:5], "no NumPy header"),
    "empty_file": (b"", "empty (0 bytes)"),
    "not_npy": (b"hello, this is not an array\n" * 10, "no NumPy header"),
}


def bad_npy_corpus(root, content):
  return write_corpus(root, [good("a"), "", good("bad")],
                      {"features/a.npy": feats(), "features/bad.npy": content})


def assert_one_line(error, corpus, words):
  text = str(error)
  assert "\n" not in text and "Traceback" not in text
  assert text.startswith(os.path.join(corpus, "features", "bad.npy") + ": ")
  assert f"(listed on line 3 of {index(corpus)})" in text
  assert words in text


@pytest.mark.parametrize("name", sorted(BAD_NPY))
def test_bad_npy_in_validate(tmp_path, capsys, name):
  content, words = BAD_NPY[name]
  corpus = bad_npy_corpus(tmp_path, content)
  code, lines = run_cli(capsys, corpus)
  assert code == 1
  (problem,) = [l for l in lines if l.startswith(corpus)]
  assert_one_line(problem, corpus, words)


@pytest.mark.parametrize("name", sorted(BAD_NPY))
def test_bad_npy_in_load_features(tmp_path, name):
  content, words = BAD_NPY[name]
  corpus = bad_npy_corpus(tmp_path, content)
  record = list(reader.iter_videos(corpus))[1]
  for mmap in (True, False):
    with pytest.raises(CorpusError) as e:
      reader.load_features(record, mmap=mmap)
    assert_one_line(e.value, corpus, words)


def test_truncated_npy_in_quantize_assign(tmp_path):
  from videobert_jax.quantize import assign
  from videobert_jax.quantize.codebook import load_codebook
  corpus = bad_npy_corpus(tmp_path / "corpus", FULL[:200])
  book = load_codebook(make_codebook(tmp_path / "book.npz"))
  with pytest.raises(CorpusError) as e:
    assign.assign_corpus(corpus, book, tmp_path / "tokens")
  assert_one_line(e.value, corpus, "truncated .npy")


def test_truncated_npy_in_quantize_fit(tmp_path):
  from videobert_jax.quantize import fit_corpus
  corpus = bad_npy_corpus(tmp_path / "corpus", FULL[:200])
  with pytest.raises(CorpusError) as e:
    fit_corpus.fit_corpus_codebook(corpus, str(tmp_path / "book.npz"), levels=1,
                                   clusters=2, sample=10)
  assert_one_line(e.value, corpus, "truncated .npy")


@pytest.mark.parametrize("kind", ["video", "video_text"])
def test_truncated_npy_in_tfds_example_generation(tmp_path, kind):
  from videobert_jax.datasets import corpus_builder
  from videobert_jax.datasets import segments
  corpus = bad_npy_corpus(tmp_path / "corpus", FULL[:200])
  records = list(reader.iter_videos(corpus))
  spec = segments.BuildSpec(kind=kind, codebook_path=make_codebook(tmp_path / "b.npz"))
  # The plain (non-Beam) generator of the builders; Beam maps the same function.
  with pytest.raises(CorpusError) as e:
    list(corpus_builder._iterate(records, spec))  # pylint: disable=protected-access
  assert_one_line(e.value, corpus, "truncated .npy")
  skipping = segments.BuildSpec(kind=kind, codebook_path=spec.codebook_path,
                                skip_bad=True)
  assert segments.examples_for_video(records[1], skipping) == []


def test_bad_transcript_in_tfds_example_generation_names_the_index_line(tmp_path):
  from videobert_jax.datasets import segments
  corpus = write_corpus(tmp_path, [good("a", "a.srt")],
                        {"features/a.npy": feats(),
                         "asr/a.srt": "1\n00:00:05,000 --> 00:00:04,000\nx\n"})
  (record,) = reader.iter_videos(corpus)
  with pytest.raises(CorpusError) as e:
    segments.examples_for_video(record, segments.BuildSpec(kind=segments.TEXT))
  text = str(e.value)
  assert text.startswith(os.path.join(corpus, "asr", "a.srt") + ":2: ")
  assert f"(listed on line 1 of {index(corpus)})" in text and "\n" not in text


def test_builder_passes_allow_outside_paths(tmp_path):
  import videobert_jax.datasets  # pylint: disable=unused-import
  import tensorflow_datasets as tfds
  (tmp_path / "outside").mkdir()
  lines = []
  for vid in ("a", "b"):  # two: a build needs a video for each split
    np.save(tmp_path / "outside" / f"{vid}.npy", feats())
    lines.append({"video_id": vid, "features": f"../outside/{vid}.npy"})
  corpus = write_corpus(tmp_path / "corpus", lines)
  kwargs = dict(data_dir=str(tmp_path / "tfds"), corpus_dir=corpus,
                codebook=make_codebook(tmp_path / "b.npz"), eval_ids="none")
  strict = tfds.builder("videobert_video", **kwargs)
  with pytest.raises(CorpusError, match="'features' path"):
    strict._split_generators(None)  # pylint: disable=protected-access
  loose = tfds.builder("videobert_video", allow_outside_paths=True, **kwargs)
  splits = loose._split_generators(None)  # pylint: disable=protected-access
  examples = list(splits["train"]) + list(splits["validation"])
  assert len(examples) == 2


def make_codebook(path, feature_dim=DIM, seed=0):
  """A 2-level, 2-way codebook (4 visual words) with random centroids."""
  from videobert_jax.quantize.codebook import Codebook
  rng = np.random.default_rng(seed)
  Codebook(levels=2, clusters=2, feature_dim=feature_dim, seed=seed, sample_size=0,
           level_centroids=[rng.random((2, feature_dim)), rng.random((4, feature_dim))]
           ).save(path)
  return str(path)
