"""HTML pages that show visual words by their nearest clips (Figures 1 and 2).

A visual word (a codebook leaf) is shown by the clip whose feature is nearest to
its centroid among the clips of a features folder (``<video_id>.npy``, the corpus
clip convention). When a frames folder is given and holds
``FRAMES_DIR/<video_id>/<clip_index>.jpg`` (or ``.png``), the page embeds that
frame; otherwise it names the clip's video id and time span.
"""

from __future__ import annotations

import dataclasses
import glob
import html
import os
from typing import Iterable, Sequence

import numpy as np

from videobert_jax import fileio
from videobert_jax.corpus import reader


@dataclasses.dataclass(frozen=True)
class Clip:
  """The nearest clip of a visual word."""

  video_id: str
  index: int  # row of the video's feature file
  start: float  # seconds
  end: float
  distance: float  # Euclidean distance to the centroid
  frame: str | None = None  # path of a frame image, when one exists


def nearest_clips(leaves: np.ndarray, words: Iterable[int], features_dir: str,
                  clip_seconds: float = reader.DEFAULT_CLIP_SECONDS,
                  frames_dir: str | None = None) -> dict[int, Clip]:
  """For each visual word, the clip of ``features_dir`` nearest to its centroid."""
  words = sorted(set(int(w) for w in words))
  if not words:
    return {}
  centroids = np.asarray(leaves, np.float32)[words]
  best = {w: (np.inf, None, -1) for w in words}
  for path in sorted(glob.glob(os.path.join(features_dir, "*.npy"))):
    features = np.asarray(np.load(path, mmap_mode="r"), np.float32)
    if features.ndim != 2 or features.shape[1] != centroids.shape[1]:
      # Silently skipping would print "no clip found" for every word and exit 0.
      raise ValueError(f"{path}: features of shape {list(features.shape)}, but the "
                       f"codebook's visual words are {centroids.shape[1]}-d; pass the "
                       "features the codebook was fit on")
    # |f - c|^2 = |f|^2 - 2 f.c + |c|^2, without an [n, m, D] intermediate.
    distances = np.maximum(
        (features ** 2).sum(1)[:, None] - 2 * features @ centroids.T
        + (centroids ** 2).sum(1)[None], 0.0)
    rows = distances.argmin(0)
    video_id = os.path.splitext(os.path.basename(path))[0]
    for j, w in enumerate(words):
      d = float(distances[rows[j], j])
      if d < best[w][0]:
        best[w] = (d, video_id, int(rows[j]))
  out = {}
  for w, (d, video_id, row) in best.items():
    if video_id is None:
      continue
    frame = None
    if frames_dir:
      for ext in (".jpg", ".png"):
        candidate = os.path.join(frames_dir, video_id, f"{row}{ext}")
        if os.path.exists(candidate):
          frame = os.path.abspath(candidate)
          break
    out[w] = Clip(video_id, row, row * clip_seconds, (row + 1) * clip_seconds,
                  float(np.sqrt(d)), frame)
  return out


def _word_cell(word: int, clips: dict[int, Clip], prob: float | None = None) -> str:
  """One visual word: its frame or clip reference, id and probability."""
  clip = clips.get(word)
  label = f"v{word}" + (f" ({prob:.0%})" if prob is not None else "")
  if clip is None:
    body = "<i>no clip found</i>"
  elif clip.frame:
    body = f'<img src="file://{html.escape(clip.frame)}" width="160">'
  else:
    body = (f"{html.escape(clip.video_id)}<br>{clip.start:.1f}-{clip.end:.1f} s")
  return f'<td><div class="w">{html.escape(label)}</div>{body}</td>'


def _page(title: str, sections: Sequence[str]) -> str:
  style = ("body{font-family:sans-serif}td{border:1px solid #ccc;padding:4px;"
           "text-align:center;vertical-align:top}.w{font-weight:bold}")
  return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
          f"</title><style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
          + "\n".join(sections) + "</body></html>\n")


def text_to_video_page(path: str, results: Sequence[dict], clips: dict[int, Clip]) -> None:
  """Writes the text-to-video page: per sentence, per slot, the top visual words."""
  sections = []
  for r in results:
    rows = "".join(
        "<tr><th>slot %d</th>%s</tr>" % (i + 1, "".join(
            _word_cell(w, clips, p) for w, p in zip(slot["top"], slot["probs"])))
        for i, slot in enumerate(r["slots"]))
    sections.append(f"<h2>{html.escape(r['sentence'])}</h2><table>{rows}</table>")
  fileio.write_text(path, _page("VideoBERT text to video", sections))


def forecast_page(path: str, results: Sequence[dict], clips: dict[int, Clip]) -> None:
  """Writes the forecast page: the context, then the top words per horizon."""
  sections = []
  for r in results:
    context = "".join(_word_cell(w, clips) for w in r["visual_words"])
    rows = []
    for i, h in enumerate(r["horizons"]):
      observed = (_word_cell(r["observed"][h["steps"] - 1], clips)
                  if len(r["observed"]) >= h["steps"] else "<td>-</td>")
      cells = "".join(_word_cell(w, clips, p) for w, p in zip(h["top"], h["probs"]))
      rows.append(f"<tr><th>+{h['steps']} step(s)</th>{cells}<th>observed</th>"
                  f"{observed}</tr>")
    sections.append(f"<h2>{html.escape(r['context'])}</h2><p>context:</p>"
                    f"<table><tr>{context}</tr></table><p>forecast:</p>"
                    f"<table>{''.join(rows)}</table>")
  fileio.write_text(path, _page("VideoBERT forecasting", sections))


def words_on(results: Sequence[dict]) -> set[int]:
  """Every visual word a result list shows."""
  words = set()
  for r in results:
    words.update(r.get("visual_words", []))
    words.update(r.get("observed", []))
    for part in r.get("slots", []) + r.get("horizons", []):
      words.update(part["top"])
  return words
