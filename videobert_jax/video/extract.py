"""The extractor: videos -> clips -> S3D features -> corpus, resumable.

Decoding runs in ``decode_workers`` threads (FFmpeg releases the GIL), each
taking whole videos and putting their clips on one bounded queue. The main
thread packs clips from any video into fixed-size batches for the
``ClipEncoder`` (keeping one batch in flight while it packs the next), collects
each video's features by clip index, and hands a video to the ``CorpusWriter``
once all its clips are back. A video that cannot be decoded, or that yields no
clip, is recorded as failed and the others go on.
"""

from __future__ import annotations

import collections
import dataclasses
import queue
import threading
import time
from typing import Callable

import numpy as np

from videobert_jax.video import corpus_writer as writer_lib
from videobert_jax.video import decode
from videobert_jax.video.encoder import ClipEncoder

_CLIP, _END, _ERROR = "clip", "end", "error"


@dataclasses.dataclass
class ExtractReport:
  """What one extraction run did."""

  videos_listed: int = 0  # videos named by --videos
  already_done: int = 0  # skipped: already in videos.jsonl
  extracted: int = 0  # written in this run
  clips: int = 0  # clips extracted in this run
  failed: list[dict] = dataclasses.field(default_factory=list)  # {"video", "error"}
  seconds: float = 0.0  # wall time of the extraction
  info: dict = dataclasses.field(default_factory=dict)  # weights, devices, sizes

  @property
  def clips_per_second(self) -> float:
    """Throughput over the whole run (decoding included)."""
    return self.clips / self.seconds if self.seconds > 0 else 0.0

  def to_dict(self) -> dict:
    """JSON-serialisable form."""
    d = dataclasses.asdict(self)
    d["clips_per_second"] = round(self.clips_per_second, 3)
    d["seconds"] = round(self.seconds, 3)
    return d

  def summary_lines(self) -> list[str]:
    """A short human-readable summary; failed videos one per line."""
    lines = [
        f"videos listed    {self.videos_listed}",
        f"already done     {self.already_done}",
        f"extracted        {self.extracted}",
        f"clips            {self.clips} ({self.clips_per_second:.2f} clips/s over "
        f"{self.seconds:.1f} s)",
        f"failed           {len(self.failed)}",
    ]
    lines += [f"  {f['error']}" for f in self.failed]
    return lines


class _Pending:
  """Features of one video as they come back, by clip index."""

  def __init__(self, path: str):
    self.path = path
    self.rows: dict[int, np.ndarray] = {}
    self.total: int | None = None  # known once decoding has finished

  @property
  def complete(self) -> bool:
    return self.total is not None and len(self.rows) == self.total


def _decode_worker(jobs: queue.Queue, out: queue.Queue, spec: decode.ClipSpec,
                   stop: threading.Event) -> None:
  """Decodes whole videos from ``jobs``; puts their clips, then an end or error."""

  def put(item):
    while not stop.is_set():
      try:
        out.put(item, timeout=0.2)
        return True
      except queue.Full:
        continue
    return False

  while not stop.is_set():
    try:
      key, path = jobs.get_nowait()
    except queue.Empty:
      return
    count = 0
    try:
      for clip in decode.iter_clips(path, spec):
        if not put((_CLIP, key, count, clip)):
          return
        count += 1
    except Exception as e:  # pylint: disable=broad-except
      # Any failure of one video (FFmpeg, a bad header, memory) must not stop the
      # run; it is reported with the video's path.
      message = str(e) if isinstance(e, decode.VideoDecodeError) else f"{path}: {e!r}"
      put((_ERROR, key, message, None))
      continue
    put((_END, key, count, None))


def run_extraction(paths: list[str], writer: writer_lib.CorpusWriter,
                   encoder: ClipEncoder, spec: decode.ClipSpec = decode.ClipSpec(),
                   decode_workers: int = 2, progress: bool = True,
                   on_video_written: Callable[[dict], None] | None = None
                   ) -> ExtractReport:
  """Extracts every video of ``paths`` not yet in the corpus; see the module doc.

  Args:
    paths: video files; the id of each is its file stem.
    writer: the corpus being written (it knows which ids are done).
    encoder: the S3D encoder (its batch size sets the batches).
    spec: decoding and clip rules.
    decode_workers: decoding threads.
    progress: show a tqdm bar over clips (estimated from the headers).
    on_video_written: called with each new index line (tests use it).
  """
  report = ExtractReport(videos_listed=len(paths))
  todo: list[tuple[str, str]] = []
  seen: dict[str, str] = {}
  for path in paths:
    video_id = writer_lib.video_id_of(path)
    if writer.has(video_id):
      report.already_done += 1
    elif video_id in seen:
      report.failed.append({"video": path, "error": f"{path}: duplicate video id "
                            f"{video_id!r} (same file stem as {seen[video_id]})"})
    else:
      seen[video_id] = path
      todo.append((video_id, path))
  start = time.time()
  bar = _progress_bar(todo, spec) if progress and todo else None
  jobs: queue.Queue = queue.Queue()
  for job in todo:
    jobs.put(job)
  clips_q: queue.Queue = queue.Queue(maxsize=2 * encoder.batch_size)
  stop = threading.Event()
  threads = [threading.Thread(target=_decode_worker, args=(jobs, clips_q, spec, stop),
                              daemon=True)
             for _ in range(max(1, min(decode_workers, len(todo))))]
  for t in threads:
    t.start()

  pending = {key: _Pending(path) for key, path in todo}
  open_videos = len(todo)
  shape = (encoder.batch_size, spec.frames_per_clip, spec.size, spec.size, 3)
  batch = np.empty(shape, np.uint8)
  slots: list[tuple[str, int]] = []
  in_flight: collections.deque = collections.deque()

  def finish(key):
    nonlocal open_videos
    item = pending.pop(key)
    open_videos -= 1
    if item.total == 0:
      report.failed.append({"video": item.path, "error": f"{item.path}: no clip (no "
                            f"frame decoded, or shorter than "
                            f"{spec.min_last_clip_frames / spec.fps:.2f} s)"})
    else:
      features = np.stack([item.rows[i] for i in range(item.total)])
      line = writer.write_video(key, features, item.path, spec.clip_seconds)
      report.extracted += 1
      report.clips += item.total
      if on_video_written is not None:
        on_video_written(line)
    if bar is not None:
      bar.set_postfix(videos=f"{report.extracted}/{len(todo)}",
                      failed=len(report.failed), refresh=False)

  def drain(keep: int):
    while len(in_flight) > keep:
      handle, batch_slots = in_flight.popleft()
      rows = encoder.fetch(handle)
      for (key, index), row in zip(batch_slots, rows):
        if key in pending:  # absent: the video failed after these clips were sent
          pending[key].rows[index] = row
      if bar is not None:
        bar.update(len(batch_slots))
      for key in dict.fromkeys(k for k, _ in batch_slots):
        if key in pending and pending[key].complete:
          finish(key)

  def flush():
    nonlocal slots, batch
    if slots:
      in_flight.append((encoder.submit(batch[:len(slots)]), slots))
      # A new buffer: on CPU, device_put may alias the one still being computed on.
      batch, slots = np.empty(shape, np.uint8), []
      drain(keep=1)  # one batch on the devices while the next is packed

  try:
    while open_videos > 0:
      try:
        kind, key, value, clip = clips_q.get(timeout=0.5)
      except queue.Empty:
        if any(t.is_alive() for t in threads) or not clips_q.empty():
          continue
        if slots:
          flush()
        drain(keep=0)
        if open_videos > 0 and not any(t.is_alive() for t in threads):
          raise RuntimeError("decoding threads stopped with videos unfinished")
        continue
      if kind == _CLIP:
        batch[len(slots)] = clip
        slots.append((key, value))
        if len(slots) == encoder.batch_size:
          flush()
      elif kind == _END:
        pending[key].total = value
        if pending[key].complete:
          finish(key)
      else:  # _ERROR: forget the video; rows of its clips still queued are dropped
        report.failed.append({"video": pending.pop(key).path, "error": value})
        open_videos -= 1
      # When every decoder is done, push out the last partial batch.
      if clips_q.empty() and not any(t.is_alive() for t in threads):
        if slots:
          flush()
        drain(keep=0)
  finally:
    stop.set()
    if bar is not None:
      bar.close()
  report.seconds = time.time() - start
  return report


def _progress_bar(todo: list[tuple[str, str]], spec: decode.ClipSpec):
  """A tqdm bar over the clips expected from the headers (a fast estimate)."""
  import tqdm  # pylint: disable=g-import-not-at-top
  total = 0
  for _, path in todo:
    try:
      info = decode.probe(path)
    except decode.VideoDecodeError:
      continue
    if info.duration:
      total += spec.expected_num_clips(info.duration)
  return tqdm.tqdm(total=total or None, unit="clip", desc="extract", dynamic_ncols=True,
                   postfix={"videos": f"0/{len(todo)}", "failed": 0})


def extract_video_features(path: str, encoder: ClipEncoder,
                           spec: decode.ClipSpec = decode.ClipSpec()) -> np.ndarray:
  """Features ``[num_clips, 1024]`` of one video, streamed (one batch in memory).

  Raises:
    decode.VideoDecodeError: the video cannot be decoded.
  """
  rows, batch, in_flight = [], [], None
  for clip in decode.iter_clips(path, spec):
    batch.append(clip)
    if len(batch) == encoder.batch_size:
      handle = encoder.submit(np.stack(batch))
      if in_flight is not None:
        rows.append(encoder.fetch(in_flight))
      in_flight, batch = handle, []
  if batch:
    handle = encoder.submit(np.stack(batch))
    if in_flight is not None:
      rows.append(encoder.fetch(in_flight))
    in_flight = handle
  if in_flight is not None:
    rows.append(encoder.fetch(in_flight))
  if not rows:
    return np.zeros((0, 1024), np.float32)
  return np.concatenate(rows)
