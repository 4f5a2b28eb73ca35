"""Text-to-video generation and future forecasting (the paper's Figures 1 and 2).

Text to video: for a sentence, the input is ``[CLS] sentence [>] [MASK] x n [SEP]``;
the video slots are filled left to right, each with the most likely visual word
(argmax over visual words only), and the top-k of every slot are reported.

Forecasting: the context is a single visual word or the visual words of a video
up to a time (the last ``context`` clips); for each horizon h (in steps of one
clip), the input is ``[CLS] [>] context [MASK] x h [SEP]`` and the top-k visual
words of the h-th slot are the forecast h steps ahead. For a video, the page also
shows the visual word actually observed there.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np

from videobert_jax import tokens
from videobert_jax.eval import sequences


def _visual_candidates(layout: tokens.TokenLayout) -> np.ndarray:
  """Token ids of every visual word, in visual-word order."""
  return layout.visual_ids(np.arange(layout.num_visual_words)).astype(np.int32)


def _top_k(logits: np.ndarray, k: int) -> tuple[list[int], list[float]]:
  """Indices and softmax probabilities (over the candidates) of the k best."""
  order = np.argsort(-logits, kind="stable")[:k]
  probs = np.exp(logits - logits.max())
  probs /= probs.sum()
  return [int(i) for i in order], [float(probs[i]) for i in order]


def text_to_video(masked_model, layout: tokens.TokenLayout, sentences: Sequence[str],
                  num_video_tokens: int = 3, top_k: int = 3,
                  vocab_path: str | None = None) -> list[dict]:
  """Visual words for each sentence; see the module docstring.

  Returns:
    Per sentence ``{"sentence", "slots": [{"top": [word...], "probs": [...]}]}``,
    ``top[0]`` being the word filled in before predicting the next slot.
  """
  from videobert_jax.text import wordpiece  # pylint: disable=g-import-not-at-top
  if num_video_tokens < 1:
    raise ValueError(f"num_video_tokens must be >= 1, got {num_video_tokens}")
  candidates = _visual_candidates(layout)
  examples = []
  for sentence in sentences:
    text = wordpiece.encode(sentence, vocab_path)
    examples.append(sequences.assemble(text, [tokens.MASK_ID] * num_video_tokens,
                                       layout, masked_model.seq_len))
  for sentence, example in zip(sentences, examples):
    if len(example.video_positions) != num_video_tokens:
      raise ValueError(f"sentence {sentence[:40]!r} leaves no room for "
                       f"{num_video_tokens} video slots in {masked_model.seq_len} tokens")
  results = [{"sentence": s, "slots": []} for s in sentences]
  for slot in range(num_video_tokens):
    positions = [[e.video_positions[slot]] for e in examples]
    logits = masked_model.run(examples, positions, candidates)["logits"][:, 0]
    for i, example in enumerate(examples):
      top, probs = _top_k(logits[i], top_k)
      results[i]["slots"].append({"top": top, "probs": probs})
      example.input_ids[positions[i][0]] = layout.visual_ids([top[0]])[0]
  return results


@dataclasses.dataclass(frozen=True)
class ForecastContext:
  """What a forecast starts from."""

  name: str  # e.g. "video abc at 12.0 s" or "visual word 17"
  visual_words: tuple[int, ...]  # the context, oldest first
  future: tuple[int, ...] = ()  # observed next visual words (videos only)


def video_context(words: np.ndarray, clip_seconds: float, seconds: float,
                  context: int, horizons: int, video_id: str) -> ForecastContext:
  """The last ``context`` visual words of a video up to ``seconds`` (and what followed)."""
  end = min(len(words), max(1, int(seconds / clip_seconds) + 1))
  past = words[max(0, end - context):end]
  future = words[end:end + horizons]
  return ForecastContext(f"video {video_id} at {seconds:g} s",
                         tuple(int(w) for w in past), tuple(int(w) for w in future))


def forecast(masked_model, layout: tokens.TokenLayout,
             contexts: Sequence[ForecastContext], horizons: Sequence[int] = (1, 2, 3),
             top_k: int = 3) -> list[dict]:
  """Top-k future visual words at each horizon; see the module docstring."""
  if not horizons or min(horizons) < 1:
    raise ValueError(f"horizons must be positive, got {list(horizons)}")
  candidates = _visual_candidates(layout)
  results = [{"context": c.name, "visual_words": list(c.visual_words),
              "observed": list(c.future), "horizons": []} for c in contexts]
  for h in horizons:
    room = masked_model.seq_len - 3 - h  # [CLS] [>] context masks [SEP]
    if room < 1:
      raise ValueError(f"horizon {h} does not fit a sequence of {masked_model.seq_len}")
    examples = [sequences.assemble(
        [], [*layout.visual_ids(list(c.visual_words[-room:])).tolist(),
             *[tokens.MASK_ID] * h], layout, masked_model.seq_len) for c in contexts]
    positions = [[e.video_positions[-1]] for e in examples]
    logits = masked_model.run(examples, positions, candidates)["logits"][:, 0]
    for i in range(len(contexts)):
      top, probs = _top_k(logits[i], top_k)
      results[i]["horizons"].append({"steps": int(h), "top": top, "probs": probs})
  return results


def masked_model_for(run, batch_size: int):
  """The masked-model runner of a restored run (``eval.restore.load_run``)."""
  from videobert_jax.eval import runner  # pylint: disable=g-import-not-at-top
  return runner.MaskedModel(run.model, run.params, run.mesh,
                            int(run.config.data.max_seq_len), batch_size)


def codebook_for(run, codebook: str | None):
  """The codebook of ``--codebook`` or of the run's config, checked against the model."""
  from videobert_jax.quantize import codebook as codebook_lib  # pylint: disable=g-import-not-at-top
  path = codebook or run.config.data.codebook
  if not path:
    raise ValueError("no codebook: pass --codebook (the model's training config has none)")
  book = codebook_lib.load_codebook(path)
  if book.num_words != run.layout.num_visual_words:
    raise ValueError(f"{path}: codebook has {book.num_words} visual words, the model "
                     f"{run.layout.num_visual_words}")
  return book


def _check_forecast_input(path: str, features: np.ndarray, book, seconds: float,
                          clip_seconds: float) -> None:
  """One clear error for a video whose features or time do not fit the forecast."""
  if features.shape[1] != book.leaves.shape[1]:
    raise ValueError(f"{path}: {features.shape[1]}-d features, but the codebook's visual "
                     f"words are {book.leaves.shape[1]}-d")
  length = len(features) * clip_seconds
  if not 0 <= seconds <= length:
    raise ValueError(f"{path}: --time={seconds:g} s is outside the video, which is "
                     f"{length:g} s long ({len(features)} clips of {clip_seconds:g} s)")


def run_text_to_video(workdir: str, sentences: Sequence[str], features_dir: str,
                      codebook: str | None = None, *, step: int | None = None,
                      num_video_tokens: int = 3, top_k: int = 3,
                      frames_dir: str | None = None, batch_size: int = 32,
                      write: bool = True, run=None, recall: dict | None = None) -> dict:
  """Text-to-video for ``sentences``; writes ``WORKDIR/eval/text_to_video.{json,html}``.

  ``features_dir`` holds the clips shown as the visual words' nearest clips.
  ``recall`` (from ``eval.text_to_video_recall.run_recall``) is written with the
  results; ``sentences`` may then be empty.
  """
  from videobert_jax.eval import restore as checkpoint_lib  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import pages  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import report  # pylint: disable=g-import-not-at-top
  if not sentences and not recall:
    raise ValueError("no sentences given (--sentence, or --youcook to measure recall)")
  run = run or checkpoint_lib.load_run(workdir, step, codebook)
  book = codebook_for(run, codebook)
  results = (text_to_video(masked_model_for(run, batch_size), run.layout, sentences,
                           num_video_tokens, top_k, run.config.data.get("vocab_path"))
             if sentences else [])
  clips = pages.nearest_clips(book.leaves, pages.words_on(results), features_dir,
                              frames_dir=frames_dir)
  out = {"task": "text_to_video", "step": run.step, "results": results,
         "clips": {str(w): dataclasses.asdict(c) for w, c in clips.items()}}
  if recall:
    out["recall"] = recall
  if write:
    out["html"] = os.path.join(report.results_dir(workdir), "text_to_video.html")
    pages.text_to_video_page(out["html"], results, clips)
    out["path"] = report.write_results(workdir, "text_to_video", out)
  return out


def run_forecast(workdir: str, features_dir: str, codebook: str | None = None, *,
                 video_ids: Sequence[str] = (), seconds: float = 0.0,
                 visual_words: Sequence[int] = (), step: int | None = None,
                 context: int = 8, horizons: Sequence[int] = (1, 2, 3), top_k: int = 3,
                 clip_seconds: float = 1.5, frames_dir: str | None = None,
                 batch_size: int = 32, write: bool = True, run=None) -> dict:
  """Forecasts from videos (at ``seconds``) and/or single visual words.

  Writes ``WORKDIR/eval/forecast.{json,html}``. Videos are read from
  ``features_dir/<video_id>.npy`` and quantised with the codebook.
  """
  from videobert_jax.corpus import youcook  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import restore as checkpoint_lib  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import pages  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import report  # pylint: disable=g-import-not-at-top
  if not video_ids and not visual_words:
    raise ValueError("give a video (--video) or a visual word (--visual_word) to forecast from")
  run = run or checkpoint_lib.load_run(workdir, step, codebook)
  book = codebook_for(run, codebook)
  contexts = []
  for video_id in video_ids:
    features = youcook.load_video_features(features_dir, video_id, clip_seconds, mmap=False)
    _check_forecast_input(youcook.features_path(features_dir, video_id), features, book,
                          seconds, clip_seconds)
    contexts.append(video_context(book.assign(features), clip_seconds, seconds, context,
                                  max(horizons), video_id))
  for word in visual_words:
    if not 0 <= int(word) < book.num_words:
      raise ValueError(f"visual word {word} out of range [0, {book.num_words})")
    contexts.append(ForecastContext(f"visual word v{int(word)}", (int(word),)))
  results = forecast(masked_model_for(run, batch_size), run.layout, contexts, horizons, top_k)
  clips = pages.nearest_clips(book.leaves, pages.words_on(results), features_dir,
                              clip_seconds, frames_dir)
  out = {"task": "forecast", "step": run.step, "results": results,
         "clips": {str(w): dataclasses.asdict(c) for w, c in clips.items()}}
  if write:
    out["html"] = os.path.join(report.results_dir(workdir), "forecast.html")
    pages.forecast_page(out["html"], results, clips)
    out["path"] = report.write_results(workdir, "forecast", out)
  return out


def format_results(results: Sequence[dict]) -> str:
  """One line per sentence slot or forecast horizon: the top visual words."""
  words = lambda part: " ".join(f"v{w}({p:.0%})" for w, p in zip(part["top"], part["probs"]))
  lines = []
  for r in results:
    if "sentence" in r:
      lines.append(f"{r['sentence']!r}: " + " | ".join(
          f"slot {i + 1}: {words(s)}" for i, s in enumerate(r["slots"])))
    else:
      lines.append(f"{r['context']} (context {' '.join(f'v{w}' for w in r['visual_words'])}): "
                   + " | ".join(f"+{h['steps']}: {words(h)}" for h in r["horizons"]))
  return "\n".join(lines)
