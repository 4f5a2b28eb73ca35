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
  todo = _videos_to_do(paths, writer, report)
  start = time.time()
  bar = _progress_bar(todo, spec) if progress and todo else None
  clips_q: queue.Queue = queue.Queue(maxsize=2 * encoder.batch_size)
  stop = threading.Event()
  threads = _start_decoders(todo, clips_q, spec, stop, decode_workers)
  collector = _Collector(todo, writer, encoder, spec, report, bar, on_video_written)
  try:
    collector.run(clips_q, threads)
  finally:
    stop.set()
    if bar is not None:
      bar.close()
  report.seconds = time.time() - start
  return report


def _videos_to_do(paths: list[str], writer: writer_lib.CorpusWriter,
                  report: ExtractReport) -> list[tuple[str, str]]:
  """``(video id, path)`` of the videos to extract, in order; counts those already
  in the corpus and fails duplicate ids (two files would write one entry)."""
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
  return todo


def _start_decoders(todo: list[tuple[str, str]], clips_q: queue.Queue,
                    spec: decode.ClipSpec, stop: threading.Event,
                    decode_workers: int) -> list[threading.Thread]:
  """Starts the decoding threads, which share the ``todo`` videos between them."""
  jobs: queue.Queue = queue.Queue()
  for job in todo:
    jobs.put(job)
  threads = [threading.Thread(target=_decode_worker, args=(jobs, clips_q, spec, stop),
                              daemon=True)
             for _ in range(max(1, min(decode_workers, len(todo))))]
  for t in threads:
    t.start()
  return threads


class _Collector:
  """The main thread's side: packs decoded clips into encoder batches and writes
  each video once all its features are back."""

  def __init__(self, todo: list[tuple[str, str]], writer: writer_lib.CorpusWriter,
               encoder: ClipEncoder, spec: decode.ClipSpec, report: ExtractReport,
               bar, on_video_written: Callable[[dict], None] | None):
    self.writer, self.encoder, self.spec = writer, encoder, spec
    self.report, self.bar, self.on_video_written = report, bar, on_video_written
    self.num_videos = len(todo)
    self.pending = {key: _Pending(path) for key, path in todo}
    self.open_videos = len(todo)
    self.shape = (encoder.batch_size, spec.frames_per_clip, spec.size, spec.size, 3)
    self.batch = np.empty(self.shape, np.uint8)
    self.slots: list[tuple[str, int]] = []
    self.in_flight: collections.deque = collections.deque()

  def run(self, clips_q: queue.Queue, threads: list[threading.Thread]) -> None:
    """Consumes ``clips_q`` until every video is written or failed."""
    while self.open_videos > 0:
      try:
        kind, key, value, clip = clips_q.get(timeout=0.5)
      except queue.Empty:
        if any(t.is_alive() for t in threads) or not clips_q.empty():
          continue
        if self.slots:
          self.flush()
        self.drain(keep=0)
        if self.open_videos > 0 and not any(t.is_alive() for t in threads):
          raise RuntimeError("decoding threads stopped with videos unfinished")
        continue
      if kind == _CLIP:
        self.batch[len(self.slots)] = clip
        self.slots.append((key, value))
        if len(self.slots) == self.encoder.batch_size:
          self.flush()
      elif kind == _END:
        self.pending[key].total = value
        if self.pending[key].complete:
          self.finish(key)
      else:  # _ERROR: forget the video; rows of its clips still queued are dropped
        self.report.failed.append({"video": self.pending.pop(key).path, "error": value})
        self.open_videos -= 1
      # When every decoder is done, push out the last partial batch.
      if clips_q.empty() and not any(t.is_alive() for t in threads):
        if self.slots:
          self.flush()
        self.drain(keep=0)

  def finish(self, key: str) -> None:
    """Writes video ``key`` (all its clips are back), or fails it if it had none."""
    item = self.pending.pop(key)
    self.open_videos -= 1
    report, spec = self.report, self.spec
    if item.total == 0:
      report.failed.append({"video": item.path, "error": f"{item.path}: no clip (no "
                            f"frame decoded, or shorter than "
                            f"{spec.min_last_clip_frames / spec.fps:.2f} s)"})
    else:
      features = np.stack([item.rows[i] for i in range(item.total)])
      line = self.writer.write_video(key, features, item.path, spec.clip_seconds)
      report.extracted += 1
      report.clips += item.total
      if self.on_video_written is not None:
        self.on_video_written(line)
    if self.bar is not None:
      self.bar.set_postfix(videos=f"{report.extracted}/{self.num_videos}",
                           failed=len(report.failed), refresh=False)

  def drain(self, keep: int) -> None:
    """Fetches batches until at most ``keep`` are still on the devices."""
    while len(self.in_flight) > keep:
      handle, batch_slots = self.in_flight.popleft()
      rows = self.encoder.fetch(handle)
      for (key, index), row in zip(batch_slots, rows):
        if key in self.pending:  # absent: the video failed after these clips were sent
          self.pending[key].rows[index] = row
      if self.bar is not None:
        self.bar.update(len(batch_slots))
      for key in dict.fromkeys(k for k, _ in batch_slots):
        if key in self.pending and self.pending[key].complete:
          self.finish(key)

  def flush(self) -> None:
    """Submits the packed clips as one batch."""
    if self.slots:
      self.in_flight.append((self.encoder.submit(self.batch[:len(self.slots)]),
                             self.slots))
      # A new buffer: on CPU, device_put may alias the one still being computed on.
      self.batch, self.slots = np.empty(self.shape, np.uint8), []
      self.drain(keep=1)  # one batch on the devices while the next is packed


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
