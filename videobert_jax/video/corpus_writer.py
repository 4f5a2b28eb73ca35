"""Writes (or extends) a corpus folder, one finished video at a time, crash-safe.

For each video: ``features/<video_id>.npy`` is written atomically (a temporary file
renamed into place), its transcript is copied or linked into ``asr/``, and only
then is its line appended to ``videos.jsonl`` (one ``write`` of a whole line,
flushed and synced). A run killed at any moment therefore leaves every listed
video complete; an unlisted feature file is simply rewritten by the next run.
On opening, ``CorpusWriter`` reads the ids already listed (a re-run skips them),
removes temporary files a killed run left, and drops a torn last line.

The lines carry the corpus fields (``docs/corpus.md``) plus ``video``, the
absolute path of the source video at extraction time, for stages that want frames.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys

import numpy as np

from videobert_jax import fileio
from videobert_jax.corpus import reader

FEATURES_DIR = "features"
ASR_DIR = "asr"
_FLOAT16_MAX = float(np.finfo(np.float16).max)
# "<stem>.<lang>.vtt" as yt-dlp names YouTube captions: en, en-US, pt-BR, ...
_LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def index_transcripts(asr_dir: str) -> dict[str, list[tuple[str, str | None]]]:
  """Maps a file stem to its transcripts in ``asr_dir``: ``[(path, language)]``.

  ``clip.vtt`` is listed under ``clip`` with no language; ``clip.en.vtt`` under
  ``clip`` with language ``en`` (and under ``clip.en`` with none).
  """
  found: dict[str, list[tuple[str, str | None]]] = {}
  for name in sorted(os.listdir(asr_dir)):
    path = os.path.join(asr_dir, name)
    suffix = next((s for s in reader.TRANSCRIPT_SUFFIXES if name.lower().endswith(s)),
                  None)
    if suffix is None or not os.path.isfile(path):
      continue
    base = name[:-len(suffix)]
    found.setdefault(base, []).append((path, None))
    if "." in base:
      stem, language = base.rsplit(".", 1)
      if _LANGUAGE_RE.match(language):
        found.setdefault(stem, []).append((path, language))
  return found


def pick_transcript(candidates: list[tuple[str, str | None]]
                    ) -> tuple[str, str | None] | None:
  """The transcript to use: an exact stem match first, then English, then the first."""
  if not candidates:
    return None
  exact = [c for c in candidates if c[1] is None]
  if exact:
    return exact[0]
  english = [c for c in candidates if c[1].lower().split("-")[0] == "en"]
  return (english or candidates)[0]


class CorpusWriter:
  """Appends finished videos to a corpus folder; see the module docstring.

  Args:
    out_dir: the corpus folder (created if needed).
    asr_dir: a folder of transcripts matched to videos by file stem, or None.
    asr_mode: ``"copy"`` (the corpus stands alone) or ``"symlink"``.
    language: the ``language`` field of videos whose transcript name carries none.
    feature_dtype: ``"float16"`` (default; a video whose features overflow it is
      stored as float32) or ``"float32"``.
    resume_scan: read the ids already listed and remove a killed run's temporary
      files (the single writer of a run does; Beam workers, which only write
      feature files while other workers may be writing theirs, do not).
  """

  def __init__(self, out_dir: str | os.PathLike, asr_dir: str | None = None,
               asr_mode: str = "copy", language: str | None = None,
               feature_dtype: str = "float16", resume_scan: bool = True):
    if asr_mode not in ("copy", "symlink"):
      raise ValueError(f"asr_mode must be 'copy' or 'symlink', got {asr_mode!r}")
    if feature_dtype not in ("float16", "float32"):
      raise ValueError(f"feature_dtype must be float16 or float32, got {feature_dtype!r}")
    self.out_dir = os.fspath(out_dir)
    self.index_path = reader.index_path(self.out_dir)
    self.asr_mode = asr_mode
    self.language = language
    self.feature_dtype = feature_dtype
    self.transcripts = index_transcripts(asr_dir) if asr_dir else {}
    os.makedirs(os.path.join(self.out_dir, FEATURES_DIR), exist_ok=True)
    self.done_ids: set[str] = set()
    if resume_scan:
      self._remove_stale_temporaries()
      self.done_ids = self._read_done_ids()

  def _remove_stale_temporaries(self) -> None:
    """Deletes the ``.NAME.*.tmp`` files (fileio's) that a killed run left."""
    for sub in (FEATURES_DIR, ASR_DIR, ""):
      folder = os.path.join(self.out_dir, sub)
      if not os.path.isdir(folder):
        continue
      for name in os.listdir(folder):
        if name.startswith(".") and name.endswith(".tmp"):
          os.remove(os.path.join(folder, name))

  def _read_done_ids(self) -> set[str]:
    """Ids already in ``videos.jsonl``; a torn last line (killed mid-write) is dropped."""
    if not os.path.isfile(self.index_path):
      return set()
    with open(self.index_path, encoding="utf-8") as f:
      text = f.read()
    if text and not text.endswith("\n"):
      head, _, last = text.rpartition("\n")
      try:
        json.loads(last)
        text += "\n"  # complete but unterminated: keep it
      except json.JSONDecodeError:
        print(f"{self.index_path}: dropping a torn last line left by an interrupted "
              "run", file=sys.stderr)
        text = head + "\n" if head else ""
      fileio.write_text(self.index_path, text)
    done = set()
    for item in reader.read_index(self.out_dir):
      if isinstance(item, reader.CorpusError):
        raise item  # a foreign, broken index: do not append to it
      done.add(item.video_id)
    return done

  def has(self, video_id: str) -> bool:
    """True when ``video_id`` is already listed in the corpus."""
    return video_id in self.done_ids

  def write_features(self, video_id: str, features: np.ndarray) -> str:
    """Writes ``features/<video_id>.npy`` atomically; returns its relative path."""
    features = np.asarray(features, np.float32)
    dtype = np.float16
    if self.feature_dtype == "float32" or np.abs(features).max() > _FLOAT16_MAX:
      dtype = np.float32
    relpath = f"{FEATURES_DIR}/{video_id}.npy"
    fileio.save_npy(os.path.join(self.out_dir, relpath), features.astype(dtype))
    return relpath

  def add_transcript(self, video_id: str, stem: str) -> tuple[str, str | None] | None:
    """Copies or links the transcript matching ``stem``; ``(relpath, language)``."""
    chosen = pick_transcript(self.transcripts.get(stem, []))
    if chosen is None:
      return None
    source, language = chosen
    suffix = next(s for s in reader.TRANSCRIPT_SUFFIXES if source.lower().endswith(s))
    relpath = f"{ASR_DIR}/{video_id}{suffix}"
    target = os.path.join(self.out_dir, relpath)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if self.asr_mode == "copy":
      with open(source, "rb") as src, fileio.atomic_open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    else:
      tmp = target + ".link.tmp"
      if os.path.lexists(tmp):
        os.remove(tmp)
      os.symlink(os.path.abspath(source), tmp)
      os.replace(tmp, target)
    return relpath, language or self.language

  def make_line(self, video_id: str, features_relpath: str, clip_seconds: float,
                video_path: str, transcript: tuple[str, str | None] | None) -> dict:
    """The ``videos.jsonl`` object of one video."""
    line = {"video_id": video_id, "features": features_relpath,
            "clip_seconds": clip_seconds}
    if transcript is not None:
      line["asr"] = transcript[0]
      if transcript[1]:
        line["language"] = transcript[1]
    line["video"] = os.path.abspath(video_path)
    return line

  def append_lines(self, lines: list[dict]) -> None:
    """Appends whole lines to ``videos.jsonl`` in one write, flushed and synced."""
    if not lines:
      return
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    with open(self.index_path, "a", encoding="utf-8") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    self.done_ids.update(line["video_id"] for line in lines)

  def write_video(self, video_id: str, features: np.ndarray, video_path: str,
                  clip_seconds: float) -> dict:
    """Features, transcript, then the index line, in that order; returns the line."""
    relpath = self.write_features(video_id, features)
    stem = os.path.splitext(os.path.basename(video_path))[0]
    transcript = self.add_transcript(video_id, stem)
    line = self.make_line(video_id, relpath, clip_seconds, video_path, transcript)
    self.append_lines([line])
    return line


def video_id_of(path: str) -> str:
  """A video's id: its file name without the suffix."""
  return os.path.splitext(os.path.basename(path))[0]
