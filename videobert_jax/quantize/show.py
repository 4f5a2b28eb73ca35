"""What a visual word means: the clips nearest to chosen leaf centroids.

Writes ``OUT/index.html`` (a table per token: video id, clip, time span,
distance, and a frame thumbnail when one can be decoded), ``OUT/show.json``
(the same data) and, when at least one frame was decoded, ``OUT/grid.png`` (one
row per token, one column per clip, as in the paper's figures).

Frames: a ``videos.jsonl`` line may carry an optional ``video`` field, a path
(relative to the corpus) of the source video. The corpus reader does not parse
it, so it is read here from the raw JSON line. The frame at the clip's midpoint
is decoded with PyAV (``pip install av``); without PyAV or a ``video`` field the
page is a table of video ids and times.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os

import numpy as np

from videobert_jax import fileio
from videobert_jax.corpus import reader
from videobert_jax.quantize.codebook import Codebook

THUMB_SIZE = (160, 120)


def most_frequent_tokens(corpus_dir, codebook: Codebook, count: int,
                         progress: bool = False) -> list[int]:
  """The ``count`` most frequent visual words of the corpus (tree descent)."""
  from tqdm.auto import tqdm
  histogram = np.zeros(codebook.num_words, np.int64)
  for record in tqdm(reader.iter_videos(corpus_dir), desc="count tokens", unit="video",
                     disable=not progress):
    np.add.at(histogram, codebook.assign(_features(record, codebook)), 1)
  order = np.argsort(-histogram, kind="stable")
  return [int(t) for t in order[:count] if histogram[t] > 0]


def nearest_clips(corpus_dir, codebook: Codebook, tokens: list[int], per_token: int,
                  progress: bool = False) -> dict[int, list[dict]]:
  """For each token, the ``per_token`` clips nearest its leaf centroid (one pass)."""
  from tqdm.auto import tqdm
  centroids = codebook.leaves[tokens]  # [T, D]
  c_sq = np.sum(centroids * centroids, axis=1)
  best_d = np.full((len(tokens), 0), np.inf)
  best_ref: list[list] = [[] for _ in tokens]
  for record in tqdm(reader.iter_videos(corpus_dir), desc="nearest clips", unit="video",
                     disable=not progress):
    feats = _features(record, codebook)
    d = np.maximum(np.sum(feats * feats, 1)[None, :] - 2.0 * centroids @ feats.T
                   + c_sq[:, None], 0.0)  # [T, n]
    refs = [(record, i) for i in range(feats.shape[0])]
    merged_d = np.concatenate([best_d, d], axis=1)
    order = np.argsort(merged_d, axis=1, kind="stable")[:, :per_token]
    best_ref = [[(best_ref[t] + refs)[j] for j in order[t]] for t in range(len(tokens))]
    best_d = np.take_along_axis(merged_d, order, axis=1)
  result = {}
  for t, token in enumerate(tokens):
    result[token] = []
    for (record, clip), dist in zip(best_ref[t], best_d[t]):
      start, end = record.clip_span(clip)
      result[token].append({"video_id": record.video_id, "clip": clip, "start": start,
                            "end": end, "distance": float(np.sqrt(dist)),
                            "line": record.line})
  return result


def video_paths(corpus_dir) -> dict[int, str]:
  """Line number -> absolute path of the optional ``video`` field of ``videos.jsonl``."""
  paths = {}
  with open(reader.index_path(corpus_dir), encoding="utf-8") as f:
    for line_no, text in enumerate(f, start=1):
      try:
        obj = json.loads(text) if text.strip() else None
      except json.JSONDecodeError:
        continue
      if isinstance(obj, dict) and isinstance(obj.get("video"), str) and obj["video"]:
        paths[line_no] = os.path.normpath(os.path.join(os.fspath(corpus_dir), obj["video"]))
  return paths


def decode_frame(path: str, seconds: float):
  """The frame of video ``path`` at ``seconds`` as a PIL image, or None if it cannot be."""
  try:
    import av
  except ImportError:
    return None
  try:
    with av.open(path) as container:
      stream = container.streams.video[0]
      base = stream.time_base or 1
      container.seek(int(seconds / base), stream=stream, backward=True)
      chosen = None
      for frame in container.decode(stream):
        chosen = frame
        if frame.time is not None and frame.time >= seconds:
          break
      return None if chosen is None else chosen.to_image()
  except (av.FFmpegError, OSError, IndexError, ValueError):
    return None


def show(codebook: Codebook, corpus_dir, out_dir, tokens: list[int] | None = None,
         top: int = 8, per_token: int = 8, progress: bool = False) -> dict:
  """Writes the HTML page, JSON and (with frames) PNG grid; returns the JSON dict."""
  out_dir = os.fspath(out_dir)
  if not tokens:
    tokens = most_frequent_tokens(corpus_dir, codebook, top, progress)
  bad = [t for t in tokens if not 0 <= t < codebook.num_words]
  if bad:
    raise ValueError(f"tokens {bad} are outside the codebook's 0..{codebook.num_words - 1}")
  clips = nearest_clips(corpus_dir, codebook, tokens, per_token, progress)
  videos = video_paths(corpus_dir)
  frames = {}
  for token, entries in clips.items():
    for j, entry in enumerate(entries):
      path = videos.get(entry["line"])
      entry["video"] = path
      image = decode_frame(path, (entry["start"] + entry["end"]) / 2) if path else None
      if image is not None:
        frames[(token, j)] = image.convert("RGB").resize(THUMB_SIZE)
  result = {"tokens": tokens, "clips": {str(t): c for t, c in clips.items()},
            "frames_decoded": len(frames)}
  fileio.write_text(os.path.join(out_dir, "index.html"), _html(clips, frames))
  if frames:
    _save_grid(os.path.join(out_dir, "grid.png"), clips, frames, per_token)
    result["grid"] = "grid.png"
  fileio.write_json(os.path.join(out_dir, "show.json"), result)
  return result


def _features(record, codebook: Codebook) -> np.ndarray:
  feats = reader.load_features(record)
  if feats.shape[1] != codebook.feature_dim:
    raise reader.CorpusError(record.features_path, f"features of video {record.video_id!r} "
                             f"are {feats.shape[1]}-d, the codebook is "
                             f"{codebook.feature_dim}-d", video_id=record.video_id)
  return feats


def _html(clips: dict, frames: dict) -> str:
  parts = ["<!doctype html><meta charset='utf-8'><title>visual words</title>",
           "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}"
           "</style><h1>Clips nearest to each visual word</h1>"]
  for token, entries in clips.items():
    parts.append(f"<h2>v{token}</h2><table><tr><th>#</th><th>frame</th><th>video</th>"
                 "<th>clip</th><th>time (s)</th><th>distance</th></tr>")
    for j, e in enumerate(entries):
      image = frames.get((token, j))
      cell = ""
      if image is not None:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        cell = f"<img src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"
      parts.append(f"<tr><td>{j + 1}</td><td>{cell}</td><td>{html.escape(e['video_id'])}"
                   f"</td><td>{e['clip']}</td><td>{e['start']:.1f}-{e['end']:.1f}</td>"
                   f"<td>{e['distance']:.4g}</td></tr>")
    parts.append("</table>")
  return "\n".join(parts) + "\n"


def _save_grid(path: str, clips: dict, frames: dict, per_token: int) -> None:
  from PIL import Image
  w, h = THUMB_SIZE
  grid = Image.new("RGB", (w * per_token, h * len(clips)), "white")
  for row, token in enumerate(clips):
    for col in range(per_token):
      if (token, col) in frames:
        grid.paste(frames[(token, col)], (col * w, row * h))
  with fileio.atomic_open(path, "wb") as f:
    grid.save(f, format="PNG")
