"""Text-to-video, measured: does the generated visual word match the segment's video?

The paper shows text-to-video only as pictures. Here each validation segment's
caption is given to the model as text followed by one masked video slot
(``[CLS] caption [>] [MASK] [SEP]``), and the k visual words it ranks highest there
are compared with the visual words of the segment's own clips. recall@k is the
share of segments whose clips hold at least one of those k words.

The same figure for a text-blind frequency prior (the k visual words most frequent
in the training segments' clips, the same k words for every segment) says how much
of that is the text: a model that ignores its input can reach the prior, no more.
"""

from __future__ import annotations

import collections
from typing import Sequence

import numpy as np

from videobert_jax.eval import generation
from videobert_jax.eval import segments as segments_lib

# Caption words kept: enough for every YouCook II caption seen, and always room left
# for the video slot in a 64-token tiny sequence.
MAX_CAPTION_WORDS = 32


def recall_at_k(predicted: Sequence[Sequence[int]],
                segment_words: Sequence[np.ndarray]) -> float | None:
  """Share of segments whose visual words include one of their predicted words."""
  if not predicted:
    return None
  hits = sum(bool(set(int(w) for w in p) & set(int(w) for w in words))
             for p, words in zip(predicted, segment_words))
  return hits / len(predicted)


def frequency_prior(segment_words: Sequence[np.ndarray], k: int) -> list[int]:
  """The ``k`` most frequent visual words (ties: the smaller id)."""
  counts = collections.Counter(int(w) for words in segment_words for w in words)
  return [w for w, _ in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))[:k]]


def measure(masked_model, layout, validation: Sequence[segments_lib.SegmentInput],
            training: Sequence[segments_lib.SegmentInput], k: int = 5,
            vocab_path: str | None = None) -> dict:
  """recall@k of the model and of the frequency prior on ``validation`` segments."""
  captions = [" ".join(s.segment.sentence.split()[:MAX_CAPTION_WORDS]) for s in validation]
  generated = generation.text_to_video(masked_model, layout, captions, num_video_tokens=1,
                                       top_k=k, vocab_path=vocab_path)
  predicted = [g["slots"][0]["top"] for g in generated]
  truth = [s.visual_words for s in validation]
  prior = frequency_prior([s.visual_words for s in training], k)
  model_recall = recall_at_k(predicted, truth)
  prior_recall = recall_at_k([prior] * len(validation), truth)
  return {"k": k, "segments": len(validation), "model_recall": model_recall,
          "prior_recall": prior_recall, "prior_words": prior,
          "ratio": (model_recall / prior_recall if prior_recall else None),
          "distinct_first_words": len({p[0] for p in predicted})}


def run_recall(run, annotations: str, features_dir: str, book, *, k: int = 5,
               batch_size: int = 32, skip_missing: bool = False,
               progress: bool = True) -> dict:
  """``measure`` on a YouCook II style set: validation segments, prior from training."""
  validation, skipped = segments_lib.load_segment_inputs(
      annotations, features_dir, book, subsets=("validation",), skip_missing=skip_missing,
      progress=progress)
  training, skipped_training = segments_lib.load_segment_inputs(
      annotations, features_dir, book, subsets=("training",), skip_missing=skip_missing,
      progress=progress)
  if not validation or not training:
    raise ValueError(f"{annotations}: text-to-video recall needs training and validation "
                     f"segments (found {len(training)} and {len(validation)})")
  recall = measure(generation.masked_model_for(run, batch_size), run.layout, validation,
                   training, k, run.config.data.get("vocab_path"))
  recall["skipped_videos"] = skipped + skipped_training  # listed, as the other tasks do
  return recall


def format_recall(recall: dict) -> str:
  """One line for a summary."""
  ratio = f"{recall['ratio']:.2f}x" if recall.get("ratio") is not None else "n/a"
  return (f"text-to-video recall@{recall['k']} over {recall['segments']} validation "
          f"segments: model {100 * recall['model_recall']:.1f}%, text-blind frequency "
          f"prior {100 * recall['prior_recall']:.1f}% ({ratio})")
