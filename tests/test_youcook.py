"""Tests of the YouCook II annotation reader and clip ranges."""

import collections
import json
import os

import numpy as np
import pytest

from videobert_jax.corpus import youcook
from videobert_jax.corpus.reader import CorpusError

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The official trainval annotations: a copy beside the checkout (../shared/data,
# as DESIGN.md says), or wherever VIDEOBERT_YOUCOOK2_DIR points.
_YOUCOOK_DIRS = [os.environ.get("VIDEOBERT_YOUCOOK2_DIR", ""),
                 os.path.join(_REPO, "data", "youcook2"),
                 os.path.join(_REPO, "..", "shared", "data", "youcook2")]
_FOUND = [d for d in _YOUCOOK_DIRS
          if d and os.path.isfile(os.path.join(d, "youcookii_annotations_trainval.json"))]
REAL_DIR = os.path.normpath(_FOUND[0]) if _FOUND else None
requires_real = pytest.mark.skipif(
    REAL_DIR is None, reason="youcookii_annotations_trainval.json not found; set "
                             "VIDEOBERT_YOUCOOK2_DIR")


def real_path():
  return os.path.join(REAL_DIR, "youcookii_annotations_trainval.json")


@requires_real
def test_real_annotation_counts():
  segments = youcook.load_annotations(real_path())
  assert len(segments) == 13829
  assert len({s.video_id for s in segments}) == 1790
  videos = {s.video_id: s.subset for s in segments}
  assert collections.Counter(videos.values()) == {"training": 1333, "validation": 457}
  assert collections.Counter(s.subset for s in segments) == {"training": 10337,
                                                             "validation": 3492}
  first = segments[0]
  assert first == youcook.Segment(
      video_id="GLd3aX16zBg", segment_index=0, start=90.0, end=102.0,
      sentence="spread margarine on two slices of white bread", subset="training",
      recipe_type="113", duration=241.62)
  assert all(0 <= s.start <= s.end and s.sentence for s in segments)
  # Segments come in annotation order within each video.
  by_video = collections.defaultdict(list)
  for s in segments:
    by_video[s.video_id].append(s.segment_index)
  assert all(ids == list(range(len(ids))) for ids in by_video.values())


@requires_real
def test_real_subsets_match_official_split_lists():
  val = youcook.load_annotations(real_path(), subsets=["validation"])
  assert len(val) == 3492 and {s.subset for s in val} == {"validation"}
  for subset, list_name in (("training", "train_list.txt"), ("validation",
                                                             "val_list.txt")):
    ids = youcook.video_ids(real_path(), subsets=[subset])
    list_path = os.path.join(REAL_DIR, list_name)
    if os.path.isfile(list_path):
      with open(list_path) as f:  # lines are "RECIPE_TYPE/VIDEO_ID"
        listed = {line.strip().split("/")[-1] for line in f if line.strip()}
      assert set(ids) == listed
    assert len(ids) == {"training": 1333, "validation": 457}[subset]
  assert len(youcook.video_ids(real_path())) == 1790


def write_annotations(tmp_path, database, name="ann.json"):
  path = tmp_path / name
  path.write_text(json.dumps({"database": database}))
  return str(path)


def entry(**overrides):
  base = {"duration": 30.0, "subset": "training", "recipe_type": "101",
          "video_url": "https://www.youtube.com/watch?v=x",
          "annotations": [{"id": 0, "segment": [1, 4], "sentence": "crack the eggs"},
                          {"id": 1, "segment": [5, 9], "sentence": "whisk them"}]}
  base.update(overrides)
  return base


def test_small_file_and_subset_filter(tmp_path):
  path = write_annotations(tmp_path, {"v1": entry(),
                                      "v2": entry(subset="validation", recipe_type=7)})
  segments = youcook.load_annotations(path)
  assert [(s.video_id, s.segment_index, s.start, s.end) for s in segments] == [
      ("v1", 0, 1.0, 4.0), ("v1", 1, 5.0, 9.0), ("v2", 0, 1.0, 4.0),
      ("v2", 1, 5.0, 9.0)]
  assert segments[2].recipe_type == "7"
  assert youcook.video_ids(path, subsets=["validation"]) == ["v2"]
  with pytest.raises(ValueError, match="unknown subsets"):
    youcook.load_annotations(path, subsets=["train"])


def test_testing_subset_may_lack_sentences(tmp_path):
  path = write_annotations(tmp_path, {"t": entry(subset="testing", annotations=[
      {"id": 0, "segment": [2, 3]}])})
  (segment,) = youcook.load_annotations(path)
  assert segment.sentence == "" and segment.subset == "testing"


MALFORMED = {
    "bad_subset": ({"v": entry(subset="train")}, "video 'v': 'subset' must be one of"),
    "bad_duration": ({"v": entry(duration="long")}, "'duration' must be a positive"),
    "no_annotations": ({"v": entry(annotations=None)}, "'annotations' must be a list"),
    "segment_not_pair": ({"v": entry(annotations=[{"id": 0, "segment": [1],
                                                   "sentence": "x"}])},
                         "annotation 0: 'segment' must be [start, end]"),
    "end_before_start": ({"v": entry(annotations=[{"id": 0, "segment": [9, 2],
                                                   "sentence": "x"}])},
                         "0 <= start <= end"),
    "missing_sentence": ({"v": entry(annotations=[{"id": 0, "segment": [1, 2]}])},
                         "'sentence' must be a non-empty string"),
    "bad_id": ({"v": entry(annotations=[{"id": "a", "segment": [1, 2],
                                        "sentence": "x"}])}, "'id' must be"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_entries_name_the_file(tmp_path, name):
  database, words = MALFORMED[name]
  path = write_annotations(tmp_path, database)
  for read in (youcook.load_annotations, youcook.video_ids):
    with pytest.raises(CorpusError) as info:
      read(path)
    assert str(info.value).startswith(path + ": ")
    assert words in str(info.value)


def test_malformed_files_name_the_file(tmp_path):
  missing = str(tmp_path / "nope.json")
  with pytest.raises(CorpusError, match="annotation file is missing") as info:
    youcook.load_annotations(missing)
  assert info.value.path == missing
  broken = tmp_path / "broken.json"
  broken.write_text('{"database": {\n"v": {"duration": 3,,}}}')
  with pytest.raises(CorpusError, match=r"broken\.json:2: not valid JSON"):
    youcook.load_annotations(str(broken))
  no_db = tmp_path / "nodb.json"
  no_db.write_text('{"videos": {}}')
  with pytest.raises(CorpusError, match=r'nodb\.json: expected .* "database"'):
    youcook.load_annotations(str(no_db))
  duplicate = tmp_path / "dup.json"
  duplicate.write_text('{"database": {"v": %s, "v": %s}}'
                       % (json.dumps(entry()), json.dumps(entry())))
  with pytest.raises(CorpusError, match=r"dup\.json: .*duplicate key 'v'"):
    youcook.load_annotations(str(duplicate))


def span(start, end):
  return youcook.Segment("v", 0, start, end, "x", "training", "1", 100.0)


@pytest.mark.parametrize("start,end,num_clips,expected", [
    (0.0, 1.5, 10, (0, 1)),  # exactly clip 0; clip 1 only touches the end
    (1.0, 2.0, 10, (0, 2)),  # straddles clips 0 and 1
    (3.0, 3.0, 10, (2, 3)),  # zero length on an edge: the clip starting there
    (3.1, 3.2, 10, (2, 3)),  # inside one clip
    (90.0, 102.0, 161, (60, 68)),  # the first real YouCook II segment
    (10.0, 40.0, 12, (6, 12)),  # runs past the features: clipped
    (40.0, 45.0, 12, (11, 12)),  # starts after the features: the last clip
])
def test_segment_clip_range(start, end, num_clips, expected):
  assert youcook.segment_clip_range(span(start, end), 1.5, num_clips) == expected


def test_segment_clip_range_float_edges():
  # 0.3 / 0.1 is 2.9999999999999996 in floating point; the edge stays an edge.
  assert youcook.segment_clip_range(span(0.3, 0.6), 0.1, 100) == (3, 6)
  with pytest.raises(ValueError):
    youcook.segment_clip_range(span(0.0, 1.0), 0.0, 10)
  with pytest.raises(ValueError):
    youcook.segment_clip_range(span(0.0, 1.0), 1.5, 0)


def test_features_lookup(tmp_path):
  with pytest.raises(CorpusError) as info:
    youcook.features_path(tmp_path, "abc")
  assert info.value.path == str(tmp_path / "abc.npy")
  assert "abc.npy: feature file of YouCook II video 'abc' is missing" in str(info.value)
  np.save(tmp_path / "abc.npy", np.ones((4, 3), np.float16))
  assert youcook.features_path(tmp_path, "abc") == str(tmp_path / "abc.npy")
  feats = youcook.load_video_features(tmp_path, "abc")
  assert feats.shape == (4, 3) and feats.dtype == np.float32
  bad = np.ones((4, 3), np.float32)
  bad[2, 1] = np.nan
  np.save(tmp_path / "nan.npy", bad)
  with pytest.raises(CorpusError, match=r"nan\.npy: .*NaN or Inf"):
    youcook.load_video_features(tmp_path, "nan")
