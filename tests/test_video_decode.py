"""Decoding rules: 20 fps by timestamps from any rate, 1.5 s clips, the short last clip."""

import math
import os

import numpy as np
import pytest

from videobert_jax.video import decode
from videobert_jax.testing import videos as synthetic

PANCAKE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "videos",
                       "flipping_a_pancake.mkv")
if not os.path.isfile(PANCAKE):
  PANCAKE = "/work/shared/data/videos/flipping_a_pancake.mkv"


def expected_source_indices(fps: float, num_frames: int) -> list[int]:
  """The documented rule: output i shows the last source frame at or before i/20 s."""
  count = math.ceil(num_frames / fps * 20 - 1e-9)
  return [math.floor(i * fps / 20 + 1e-9) for i in range(count)]


@pytest.mark.parametrize("fps,num_frames,suffix,codec", [
    (25, 50, ".mkv", "libx264"),  # 2.0 s, every 1.25th frame
    (30, 90, ".mkv", "libx264"),  # millisecond timestamps: 33, 67, 100 ...
    (60, 150, ".mp4", "libx264"),  # every third frame
    (30, 100, ".mp4", "mpeg4"),  # 3.33 s: the end is not on a 1/20 s boundary
    (10, 25, ".mkv", "ffv1"),  # upsampling: each frame twice
    (24, 37, ".webm", "libvpx-vp9"),
])
def test_resampling_picks_frames_by_timestamp(tmp_path, fps, num_frames, suffix, codec):
  path = synthetic.write_striped_video(str(tmp_path / f"v{suffix}"), fps, num_frames,
                                       codec=codec)
  frames = list(decode.iter_resampled_frames(path, 20.0, size=None))
  assert [synthetic.stripe_index(f) for f in frames] == expected_source_indices(
      fps, num_frames)


def test_frames_are_resized_and_centre_cropped(tmp_path):
  # 128x48 frames, 8 stripes of 16 px: short side 48 -> 24 gives 64x24, whose
  # centre 24x24 crop keeps the middle of the picture (stripes 3 and 4 of 8).
  path = synthetic.write_striped_video(str(tmp_path / "wide.mkv"), 20, 4, width=128,
                                       height=48, codec="ffv1")
  frames = list(decode.iter_resampled_frames(path, 20.0, size=24))
  assert len(frames) == 4 and frames[0].shape == (24, 24, 3)
  assert frames[0].dtype == np.uint8
  # Frame 24 = 0b00011000: stripes 3 and 4 (0-based) white. Resized, stripes are
  # 8 px wide and the crop starts at column 20, so columns 4..20 of the crop are
  # white and its 4 columns on either side black.
  path = synthetic.write_striped_video(str(tmp_path / "wide24.mkv"), 20, 25, width=128,
                                       height=48, codec="ffv1")
  last = list(decode.iter_resampled_frames(path, 20.0, size=24))[-1]
  assert last[:, 6:18].mean() > 240
  assert last[:, :3].mean() < 15 and last[:, 21:].mean() < 15
  first = list(decode.iter_resampled_frames(path, 20.0, size=24))[0]
  assert first.mean() < 30


@pytest.mark.parametrize("num_frames,expected", [
    (0, 0), (14, 0), (15, 1), (29, 1), (30, 1), (44, 1), (45, 2), (60, 2), (207, 7)])
def test_short_last_clip_rule(num_frames, expected):
  assert decode.ClipSpec().num_clips(num_frames) == expected


@pytest.mark.parametrize("seconds,expected", [
    (10.0, 7), (10.333, 7), (9.7, 6), (0.7, 0), (0.75, 1), (1.5, 1), (2.25, 2), (3.0, 2)])
def test_clip_count_is_duration_over_1_5_rounded(seconds, expected):
  assert decode.ClipSpec().expected_num_clips(seconds) == expected


def test_clips_pad_the_short_last_clip_by_repeating_its_last_frame(tmp_path):
  # 3.0 s at 20 fps after resampling = 60 frames = 2 clips; 2.5 s = 50 frames =
  # 1 full clip + 20 frames (>= 15, kept and padded with 10 copies of frame 49).
  path = synthetic.write_striped_video(str(tmp_path / "v.mkv"), 20, 50, codec="ffv1")
  spec = decode.ClipSpec(size=16)
  clips = decode.read_clips(path, spec)
  assert clips.shape == (2, 30, 16, 16, 3)
  for j in range(20, 30):
    np.testing.assert_array_equal(clips[1, j], clips[1, 19])
  # 2.2 s = 44 frames: the 14-frame remainder is dropped.
  path = synthetic.write_striped_video(str(tmp_path / "w.mkv"), 20, 44, codec="ffv1")
  assert decode.read_clips(path, spec).shape[0] == 1


def test_real_clip_gives_seven_clips():
  # flipping_a_pancake.mkv: 310 frames at 30 fps = 10.33 s -> 207 frames at 20 fps
  # -> 6 full clips + 27 frames (kept) = 7 clips, each [30, 224, 224, 3] uint8.
  info = decode.probe(PANCAKE)
  assert info.average_fps == 30 and (info.width, info.height) == (426, 240)
  clips = decode.read_clips(PANCAKE)
  assert clips.shape == (7, 30, 224, 224, 3) and clips.dtype == np.uint8
  assert clips.std() > 10  # real pictures, not a blank frame
  np.testing.assert_array_equal(clips[6, 27], clips[6, 26])  # padded tail
  assert decode.ClipSpec().expected_num_clips(310 / 30) == 7


def test_unreadable_files_raise_one_line_errors(tmp_path):
  garbage = tmp_path / "broken.mp4"
  garbage.write_bytes(b"this is not a video" * 100)
  empty = tmp_path / "empty.mkv"
  empty.write_bytes(b"")
  for path in (garbage, empty, tmp_path / "missing.mp4"):
    with pytest.raises(decode.VideoDecodeError) as e:
      list(decode.iter_clips(str(path)))
    assert str(e.value).startswith(str(path) + ": ")
    assert "\n" not in str(e.value)


def test_list_videos_from_folder_file_and_list(tmp_path):
  for name in ("b.mp4", "a.MKV", "notes.txt", "c.webm"):
    (tmp_path / name).write_bytes(b"x")
  (tmp_path / "sub").mkdir()
  (tmp_path / "sub" / "d.mp4").write_bytes(b"x")
  assert [os.path.basename(p) for p in decode.list_videos(tmp_path)] == [
      "a.MKV", "b.mp4", "c.webm"]
  assert decode.list_videos(tmp_path / "b.mp4") == [str(tmp_path / "b.mp4")]
  listing = tmp_path / "list.txt"
  listing.write_text("# my videos\nsub/d.mp4\n\n/abs/e.mp4\n")
  assert decode.list_videos(listing) == [str(tmp_path / "sub" / "d.mp4"), "/abs/e.mp4"]
  with pytest.raises(decode.VideoDecodeError):
    decode.list_videos(tmp_path / "nope")


def test_clip_spec_rejects_bad_values():
  with pytest.raises(ValueError):
    decode.ClipSpec(min_last_clip_frames=31)
  with pytest.raises(ValueError):
    decode.ClipSpec(fps=0)
  assert decode.ClipSpec().clip_seconds == 1.5
