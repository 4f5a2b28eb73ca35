"""Corpus-level caption metrics with the COCO caption evaluation code (pycocoevalcap).

BLEU-3, BLEU-4, METEOR, ROUGE-L and CIDEr (the paper's Table 3), computed as
``pycocoevalcap`` computes them: both references and predictions go through its
Stanford PTB tokenizer (Java) first; METEOR runs ``meteor-1.5.jar`` (Java).
Install with ``pip install pycocoevalcap==1.2``; Java 8+ must be on PATH.
"""

from __future__ import annotations

import shutil
from typing import Mapping, Sequence

from videobert_jax import quiet

METRICS = ("BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")


class MetricsUnavailableError(RuntimeError):
  """pycocoevalcap or Java is missing; ``str()`` says how to install it."""


def check_available() -> None:
  """Raises MetricsUnavailableError unless pycocoevalcap and java can be used."""
  try:
    import pycocoevalcap  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    raise MetricsUnavailableError(
        "caption metrics need pycocoevalcap: pip install pycocoevalcap==1.2") from None
  if shutil.which("java") is None:
    raise MetricsUnavailableError(
        "caption metrics need Java on PATH (pycocoevalcap's PTB tokenizer and METEOR "
        "run java), e.g. apt-get install default-jre-headless")


def score_captions(references: Mapping[str, Sequence[str]],
                   predictions: Mapping[str, str],
                   metrics: Sequence[str] = METRICS) -> dict[str, float]:
  """Corpus-level scores of ``predictions`` against ``references``.

  Args:
    references: item id -> one or more reference captions.
    predictions: item id -> the predicted caption; the same ids as ``references``.
    metrics: which of ``METRICS`` to compute (METEOR is the slowest).

  Returns:
    ``{metric: score}`` on pycocoevalcap's scale (BLEU, METEOR, ROUGE-L in
    [0, 1]; CIDEr unbounded, usually < 10).
  """
  check_available()
  from pycocoevalcap.bleu.bleu import Bleu  # pylint: disable=g-import-not-at-top
  from pycocoevalcap.cider.cider import Cider  # pylint: disable=g-import-not-at-top
  from pycocoevalcap.meteor.meteor import Meteor  # pylint: disable=g-import-not-at-top
  from pycocoevalcap.rouge.rouge import Rouge  # pylint: disable=g-import-not-at-top
  from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer  # pylint: disable=g-import-not-at-top
  unknown = set(metrics) - set(METRICS)
  if unknown:
    raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {METRICS}")
  if set(references) != set(predictions):
    missing = sorted(set(references) ^ set(predictions))[:3]
    raise ValueError(f"references and predictions cover different ids, e.g. {missing}")
  if not references:
    raise ValueError("no captions to score")
  # Keys as strings: the tokenizer groups lines by key.
  gts = {str(k): [{"caption": c} for c in refs] for k, refs in references.items()}
  res = {str(k): [{"caption": predictions[k]}] for k in references}
  tokenizer = PTBTokenizer()
  with quiet.filtered_stderr(quiet.PTB_TOKENIZER_SPEED):
    gts, res = tokenizer.tokenize(gts), tokenizer.tokenize(res)
  scores: dict[str, float] = {}
  if {"BLEU-3", "BLEU-4"} & set(metrics):
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores.update({"BLEU-3": float(bleu[2]), "BLEU-4": float(bleu[3])})
  if "METEOR" in metrics:
    meteor = Meteor()
    try:
      scores["METEOR"] = float(meteor.compute_score(gts, res)[0])
    finally:
      _close_meteor(meteor)
  if "ROUGE-L" in metrics:
    scores["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
  if "CIDEr" in metrics:
    scores["CIDEr"] = float(Cider().compute_score(gts, res)[0])
  return {m: scores[m] for m in metrics}


def _close_meteor(meteor) -> None:
  """Ends the METEOR Java process now rather than at garbage collection."""
  with meteor.lock:
    meteor.meteor_p.stdin.close()
    meteor.meteor_p.kill()
    meteor.meteor_p.wait()
