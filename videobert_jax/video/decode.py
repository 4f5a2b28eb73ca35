"""Video decoding: any source frame rate to 20 fps, cut into 30-frame (1.5 s) clips.

Decoding uses PyAV (FFmpeg in its wheel) and streams: a video is never held in
memory whole, only the clip being filled.

The rules, which every later stage relies on (row i of a feature file covers
``[i * 1.5, (i + 1) * 1.5)`` seconds):

* **Time zero** is the timestamp of the first decoded frame, so an offset start
  time in the container does not shift the clips.
* **Resampling by timestamps.** Output frame ``i`` stands for time ``t_i = i / fps``
  and is the last decoded frame whose time is ``<= t_i`` (with a tolerance of half
  a time-base tick, as container timestamps are rounded). A 30 fps source thus
  gives frames 0, 1 (at 1/30 <= 1/20), 3, 4, 6, ...; a 60 fps source every third
  frame; a 10 fps source each frame twice. Variable frame rates need no special case.
* **The end** of a video is the time of its last frame plus that frame's duration;
  output frames are produced for every ``t_i`` before it, so a video of ``D``
  seconds gives ``ceil(D * fps)`` frames.
* **Clips** are consecutive runs of ``frames_per_clip`` output frames without
  overlap. A short last clip is kept when it has at least ``min_last_clip_frames``
  frames (default 15, half a clip), padded by repeating its last frame; otherwise it
  is dropped. The clip count is therefore ``D / 1.5`` rounded to the nearest whole
  number (halves up), e.g. 10.33 s -> 7 clips, 10.0 s -> 7, 9.7 s -> 6.
* **Pixels.** Each kept frame is converted to RGB, resized (bilinear) so its short
  side is ``size``, and centre-cropped to ``size x size``; clips are ``uint8``
  ``[frames, size, size, 3]``. Normalisation happens on the accelerator (see
  ``s3d.normalize``), so the host moves four times fewer bytes.
"""

from __future__ import annotations

import dataclasses
import fractions
import math
import os
from typing import Iterator

import numpy as np

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg",
                  ".mpeg", ".ts", ".wmv", ".3gp", ".ogv")


class VideoDecodeError(ValueError):
  """A video that cannot be read; ``str()`` is one line naming the file."""

  def __init__(self, path: str, message: str):
    self.path = path
    self.message = message
    super().__init__(f"{path}: {message}")


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """How a video becomes clips (the paper's values are the defaults)."""

  fps: float = 20.0  # output frame rate
  frames_per_clip: int = 30  # 30 frames at 20 fps = 1.5 s
  min_last_clip_frames: int = 15  # a shorter last clip is dropped
  size: int = 224  # short side after resizing, and the square crop (S3D's input)

  def __post_init__(self):
    if not self.fps > 0:
      raise ValueError(f"fps must be positive, got {self.fps}")
    if self.frames_per_clip < 1:
      raise ValueError(f"frames_per_clip must be >= 1, got {self.frames_per_clip}")
    if not 1 <= self.min_last_clip_frames <= self.frames_per_clip:
      raise ValueError("min_last_clip_frames must be in [1, frames_per_clip], got "
                       f"{self.min_last_clip_frames}")
    if self.size < 1:
      raise ValueError(f"size must be >= 1, got {self.size}")

  @property
  def clip_seconds(self) -> float:
    """Seconds covered by one clip (1.5 by default)."""
    return self.frames_per_clip / self.fps

  def num_clips(self, num_frames: int) -> int:
    """Clips made from ``num_frames`` output frames, by the short-last-clip rule."""
    full, rest = divmod(num_frames, self.frames_per_clip)
    return full + (1 if rest >= self.min_last_clip_frames else 0)

  def expected_num_clips(self, duration_seconds: float) -> int:
    """Clips of a video lasting ``duration_seconds`` (last frame end minus first)."""
    # A tiny epsilon: 10.0 s at 20 fps is exactly 200 frames, not 201.
    return self.num_clips(max(0, math.ceil(duration_seconds * self.fps - 1e-9)))


@dataclasses.dataclass(frozen=True)
class VideoInfo:
  """What the container header says about a video (no frame is decoded)."""

  path: str
  duration: float | None  # seconds, None when the container does not say
  average_fps: float | None
  width: int
  height: int


def _open(path: str):
  """Opens a container with PyAV, turning every failure into VideoDecodeError."""
  import av  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(path):
    raise VideoDecodeError(path, "no such file")
  try:
    container = av.open(path)
  except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
    raise VideoDecodeError(path, f"cannot open as a video ({e})") from None
  if not container.streams.video:
    container.close()
    raise VideoDecodeError(path, "has no video stream")
  return container


def probe(path: str | os.PathLike) -> VideoInfo:
  """Reads the header of a video: duration, frame rate and size."""
  path = os.fspath(path)
  container = _open(path)
  try:
    stream = container.streams.video[0]
    duration = None
    if stream.duration is not None and stream.time_base is not None:
      duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
      duration = container.duration / 1_000_000  # in AV_TIME_BASE units
    rate = stream.average_rate
    return VideoInfo(path=path, duration=duration,
                     average_fps=float(rate) if rate else None,
                     width=stream.codec_context.width,
                     height=stream.codec_context.height)
  finally:
    container.close()


def _frame_seconds(frame, time_base: fractions.Fraction | None, index: int,
                   rate: fractions.Fraction | None) -> fractions.Fraction:
  """A frame's time as an exact fraction (index / rate when it has no timestamp)."""
  if frame.pts is not None and time_base is not None:
    return frame.pts * time_base
  if rate:
    return fractions.Fraction(index) / rate
  raise ValueError("frame has neither a timestamp nor a known frame rate")


def _to_rgb_square(frame, size: int) -> np.ndarray:
  """Resizes a frame (short side = size, bilinear) and centre-crops it, as RGB."""
  width, height = frame.width, frame.height
  if width <= height:
    new_w, new_h = size, max(size, round(height * size / width))
  else:
    new_w, new_h = max(size, round(width * size / height)), size
  rgb = frame.reformat(width=new_w, height=new_h, format="rgb24",
                       interpolation="BILINEAR").to_ndarray()
  top, left = (new_h - size) // 2, (new_w - size) // 2
  return rgb[top:top + size, left:left + size]


def iter_resampled_frames(path: str | os.PathLike, fps: float = 20.0,
                          size: int | None = 224) -> Iterator[np.ndarray]:
  """Yields the frames of a video resampled to ``fps`` by timestamps (module rules).

  Args:
    path: the video file.
    fps: output frame rate.
    size: short side and square crop of the yielded RGB frames; None yields the
      source frames as decoded (RGB, full size), for tests.

  Raises:
    VideoDecodeError: the file cannot be opened or decoding fails part way.
  """
  import av  # pylint: disable=g-import-not-at-top
  path = os.fspath(path)
  container = _open(path)
  step = fractions.Fraction(fps).limit_denominator(1_000_000)
  try:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame and slice threads inside FFmpeg
    time_base = stream.time_base
    rate = stream.average_rate or stream.guessed_rate
    tolerance = time_base / 2 if time_base else fractions.Fraction(0)
    start = None  # time of the first frame = time zero
    prev, prev_rgb = None, None  # last decoded frame, and its converted pixels
    prev_time = None
    last_duration = None
    out_index = 0

    def emit():
      nonlocal prev_rgb
      if prev_rgb is None:
        prev_rgb = (_to_rgb_square(prev, size) if size is not None
                    else prev.to_ndarray(format="rgb24"))
      return prev_rgb

    for index, frame in enumerate(container.decode(stream)):
      ftime = _frame_seconds(frame, time_base, index, rate)
      if start is None:
        start = ftime
      ftime -= start
      if prev_time is not None and ftime <= prev_time:
        continue  # a repeated or out-of-order timestamp adds no new moment
      # Every output time strictly before this frame (beyond the tolerance) is
      # covered by the previous frame.
      while prev is not None and out_index / step + tolerance < ftime:
        yield emit()
        out_index += 1
      if prev is not None:
        last_duration = ftime - prev_time
      prev, prev_rgb, prev_time = frame, None, ftime
      if frame.duration and time_base:
        last_duration = frame.duration * time_base
    if prev is None:
      return
    if not last_duration:
      last_duration = 1 / rate if rate else 1 / step
    end = prev_time + last_duration
    while out_index / step + tolerance < end:
      yield emit()
      out_index += 1
  except av.error.FFmpegError as e:
    raise VideoDecodeError(path, f"decoding failed ({e})") from None
  finally:
    container.close()


def iter_clips(path: str | os.PathLike, spec: ClipSpec = ClipSpec()
               ) -> Iterator[np.ndarray]:
  """Yields the clips of a video, uint8 ``[frames_per_clip, size, size, 3]``.

  Clip ``i`` covers ``[i * spec.clip_seconds, (i + 1) * spec.clip_seconds)``; the
  short last clip follows ``ClipSpec.min_last_clip_frames`` (module docstring).

  Raises:
    VideoDecodeError: the file cannot be opened or decoding fails part way.
  """
  clip = np.empty((spec.frames_per_clip, spec.size, spec.size, 3), np.uint8)
  filled = 0
  for frame in iter_resampled_frames(path, spec.fps, spec.size):
    clip[filled] = frame
    filled += 1
    if filled == spec.frames_per_clip:
      yield clip.copy()
      filled = 0
  if filled >= spec.min_last_clip_frames:
    clip[filled:] = clip[filled - 1]  # pad by repeating the last frame
    yield clip.copy()


def read_clips(path: str | os.PathLike, spec: ClipSpec = ClipSpec()) -> np.ndarray:
  """All clips of a (short) video as one array ``[num_clips, frames, size, size, 3]``."""
  clips = list(iter_clips(path, spec))
  if not clips:
    return np.zeros((0, spec.frames_per_clip, spec.size, spec.size, 3), np.uint8)
  return np.stack(clips)


def list_videos(source: str | os.PathLike) -> list[str]:
  """The videos named by ``source``: a folder, a video file, or a list file.

  * a folder: its files (not sub-folders) with a video suffix
    (``VIDEO_SUFFIXES``), sorted by name;
  * a file with a video suffix: that one video;
  * any other file: a list, one path per line (relative paths are relative to the
    list's folder; blank lines and lines starting with ``#`` are skipped).

  Raises:
    VideoDecodeError: ``source`` does not exist.
  """
  source = os.fspath(source)
  if os.path.isdir(source):
    names = sorted(n for n in os.listdir(source)
                   if n.lower().endswith(VIDEO_SUFFIXES)
                   and os.path.isfile(os.path.join(source, n)))
    return [os.path.join(source, n) for n in names]
  if not os.path.isfile(source):
    raise VideoDecodeError(source, "no such folder, video or list file")
  if source.lower().endswith(VIDEO_SUFFIXES):
    return [source]
  base = os.path.dirname(os.path.abspath(source))
  paths = []
  with open(source, encoding="utf-8") as f:
    for text in f:
      text = text.strip()
      if text and not text.startswith("#"):
        paths.append(text if os.path.isabs(text) else os.path.join(base, text))
  return paths
