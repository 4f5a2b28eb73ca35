"""Where the alignment head errs, and what counting gets on the same pairs.

``python -m videobert_jax.eval --task=alignment --workdir=RUN`` scores the run's
validation alignment pairs (task ``videobert_video_text_alignment_pairs``: every
validation sentence with its own video and with another's, half negatives), the
pairs the trainer's ``eval/alignment/accuracy`` counts, and reports:

* **accuracy split by what the text names**: pairs whose text holds a word of the
  verb or noun label lists (``eval.labels``; the YouCook II lists by default)
  against the rest (greetings, chatter). Errors on the first kind mean the model
  has not matched actions to visual words; errors on the second are about speech
  that says nothing of the picture.
* **a counting reference** on the very same pairs: pointwise mutual information of
  WordPiece x visual word, counted over the training split of the video-text
  dataset (every (visual word, WordPiece) pair of an example counts once, add-one
  smoothing), each pair scored by the mean PMI over its text x video pairs, with
  the threshold that is best on training pairs (each training example with its
  own video and with a random other video's, seeded). It needs no training, so it
  says how much of the task plain counting solves on held-out pairs.

Results: ``WORKDIR/eval/alignment.json`` and a summary on stdout.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

ALPHA = 1.0  # add-one smoothing of the PMI counts
_TRAIN_PAIR_SEED = 0  # seed of the training pairs that pick the threshold


@dataclasses.dataclass(frozen=True)
class Pair:
  """One validation alignment pair as the model saw it."""

  text_ids: np.ndarray  # ordinary WordPieces of the text (masked ones excluded)
  visual_words: np.ndarray  # codebook indices of the video part
  label: int  # 1 aligned, 0 negative
  predicted: int  # the model's argmax
  names_label_word: bool  # the text holds a verb or noun of the label lists


def _unpacked(config):
  """``config`` with one example per row (the per-example fields stay [B])."""
  config = config.copy_and_resolve_references()
  config.data.pack = False  # an existing field: allowed on a locked config
  return config


def validation_pairs(run, vocabulary, batch_size: int = 32) -> list[Pair]:
  """Every validation alignment pair of ``run`` with the model's prediction."""
  import jax  # pylint: disable=g-import-not-at-top
  from videobert_jax.models import partitioning  # pylint: disable=g-import-not-at-top
  from videobert_jax.tasks import pipeline  # pylint: disable=g-import-not-at-top
  from videobert_jax.tasks import registry  # pylint: disable=g-import-not-at-top
  from videobert_jax.text import wordpiece  # pylint: disable=g-import-not-at-top
  config = _unpacked(run.config)
  vocab_path = config.data.get("vocab_path")
  first_word = registry.first_ordinary_word_id(vocab_path)
  layout = run.layout
  data = run.mesh.shape[partitioning.DATA_AXIS]
  batch_size = -(-batch_size // data) * data
  sharding = jax.sharding.NamedSharding(run.mesh,
                                        jax.sharding.PartitionSpec(partitioning.DATA_AXIS))
  forward = jax.jit(lambda params, batch: run.model.apply(
      {"params": params}, batch, deterministic=True)["alignment_logits"])
  pairs = []
  for batch in pipeline.pretrain_batches(config, batch_size=batch_size, split="validation"):
    with partitioning.activate(run.mesh):
      logits = np.asarray(forward(run.params, {k: jax.device_put(v, sharding)
                                               for k, v in batch.items()}))
    for row in np.nonzero(batch["alignment_weight"] > 0)[0]:
      ids = batch["input_ids"][row]
      text = ids[(ids >= first_word) & (ids < layout.text_vocab_size)]
      verbs, nouns = vocabulary.labels(wordpiece.decode(text.tolist(), vocab_path))
      pairs.append(Pair(text_ids=text.astype(np.int64),
                        visual_words=layout.visual_words(ids[layout.is_visual(ids)]),
                        label=int(batch["alignment_label"][row]),
                        predicted=int(logits[row].argmax()),
                        names_label_word=bool(verbs or nouns)))
  return pairs


def training_examples(config) -> list[tuple[np.ndarray, np.ndarray, str]]:
  """``(text_ids, visual_words, video_id)`` of the video-text training split."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from videobert_jax.tasks import pipeline  # pylint: disable=g-import-not-at-top
  pipeline.ensure_datasets(config.data, kinds=("video_text",))
  builder = pipeline.builder(config.data, "video_text")
  return [(np.asarray(ex["text_ids"], np.int64), np.asarray(ex["visual_words"], np.int64),
           ex["video_id"]) for ex in tfds.as_numpy(builder.as_dataset(split="train"))]


class PmiScorer:
  """Mean WordPiece x visual-word PMI of a pair, from counted examples."""

  def __init__(self, examples, num_visual_words: int, text_vocab_size: int):
    counts = np.zeros((num_visual_words, text_vocab_size))
    for text, visual, _ in examples:
      if text.size and visual.size:
        np.add.at(counts, (np.repeat(visual, text.size), np.tile(text, visual.size)), 1.0)
    total = counts.sum() + ALPHA * counts.size
    p_word_given_visual = ((counts + ALPHA)
                           / (counts.sum(1, keepdims=True) + ALPHA * text_vocab_size))
    p_word = (counts.sum(0) + ALPHA * num_visual_words) / total
    self.pmi = np.log(p_word_given_visual) - np.log(p_word)[None]

  def score(self, text_ids: np.ndarray, visual_words: np.ndarray) -> float:
    """Mean PMI over the pair's (visual word, WordPiece) pairs; 0 when one is empty."""
    if not text_ids.size or not visual_words.size:
      return 0.0
    return float(self.pmi[np.ix_(visual_words, text_ids)].mean())


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
  """The threshold (predict aligned above it) with the best accuracy on these pairs."""
  order = np.argsort(scores)
  scores, labels = scores[order], labels[order]
  # Threshold below the i-th score: pairs i.. are called aligned.
  negatives_below = np.concatenate([[0], np.cumsum(labels == 0)])
  positives_above = np.concatenate([np.cumsum((labels == 1)[::-1])[::-1], [0]])
  best = int(np.argmax(negatives_below + positives_above))
  if best == 0:
    return float(scores[0]) - 1.0
  return float(scores[best - 1])


def training_pairs(examples, rng: np.random.Generator):
  """Each training example with its own video and with another video's."""
  texts, videos, labels = [], [], []
  for text, visual, video_id in examples:
    other = rng.integers(len(examples))
    for _ in range(100):  # another video, when the split has one
      if examples[other][2] != video_id:
        break
      other = rng.integers(len(examples))
    texts += [text, text]
    videos += [visual, examples[other][1]]
    labels += [1, 0]
  return texts, videos, np.asarray(labels)


def measure(pairs: list[Pair], examples, num_visual_words: int,
            text_vocab_size: int) -> dict:
  """The split accuracies and the counting reference (see the module docstring)."""
  if not pairs:
    raise ValueError("no validation alignment pairs: the video-text validation split is "
                     "empty (see data.validation_percent)")
  labels = np.array([p.label for p in pairs])
  correct = np.array([p.predicted == p.label for p in pairs])
  named = np.array([p.names_label_word for p in pairs])

  def share(mask):
    return float(correct[mask].mean()) if mask.any() else None

  scorer = PmiScorer(examples, num_visual_words, text_vocab_size)
  texts, videos, train_labels = training_pairs(examples, np.random.default_rng(
      _TRAIN_PAIR_SEED))
  threshold = best_threshold(
      np.array([scorer.score(t, v) for t, v in zip(texts, videos)]), train_labels)
  scores = np.array([scorer.score(p.text_ids, p.visual_words) for p in pairs])
  counted = (scores > threshold) == (labels == 1)
  return {
      "pairs": len(pairs), "negatives": int((labels == 0).sum()),
      "model_accuracy": float(correct.mean()),
      "names_label_word": {"pairs": int(named.sum()), "model_accuracy": share(named),
                           "counting_accuracy": (float(counted[named].mean())
                                                 if named.any() else None)},
      "names_no_label_word": {"pairs": int((~named).sum()), "model_accuracy": share(~named),
                              "counting_accuracy": (float(counted[~named].mean())
                                                    if (~named).any() else None)},
      "counting_accuracy": float(counted.mean()),
      "counting_auc": _auc(scores, labels),
      "counting": {"training_examples": len(examples), "threshold": threshold,
                   "smoothing": f"add-{ALPHA:g}"},
  }


def _auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
  """Area under the ROC curve (ties count half); None without both labels."""
  if np.unique(labels).size < 2:
    return None  # roc_auc_score raises on one class; the report says "no AUC"
  from sklearn import metrics  # pylint: disable=g-import-not-at-top
  return float(metrics.roc_auc_score(labels, scores))


def run_alignment(workdir: str, *, step: int | None = None, batch_size: int = 32,
                  verbs_path: str | None = None, nouns_path: str | None = None,
                  run=None, write: bool = True) -> dict:
  """Measures a run's validation alignment pairs; writes ``eval/alignment.json``."""
  from videobert_jax import fileio  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import labels as labels_lib  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import restore  # pylint: disable=g-import-not-at-top
  run = run or restore.load_run(workdir, step)
  vocabulary = labels_lib.load_vocabulary(verbs_path, nouns_path)
  pairs = validation_pairs(run, vocabulary, batch_size)
  result = measure(pairs, training_examples(_unpacked(run.config)),
                   run.layout.num_visual_words, run.layout.text_vocab_size)
  result.update(workdir=os.path.abspath(workdir), step=run.step)
  result["table"] = format_alignment(result)
  if write:
    result["path"] = os.path.join(workdir, "eval", "alignment.json")
    fileio.write_json(result["path"], {k: v for k, v in result.items() if k != "path"})
  return result


def format_alignment(result: dict) -> str:
  """The human-readable summary."""

  def pct(value):
    return "n/a" if value is None else f"{100 * value:.1f}"

  named, other = result["names_label_word"], result["names_no_label_word"]
  auc = result["counting_auc"]
  return "\n".join([
      f"Alignment, {result['pairs']} validation pairs ({result['negatives']} negatives), "
      "accuracy in %",
      f"{'':34}{'pairs':>7}{'model':>8}{'counting':>10}",
      f"{'all pairs':34}{result['pairs']:>7}{pct(result['model_accuracy']):>8}"
      f"{pct(result['counting_accuracy']):>10}",
      f"{'text names a label verb or noun':34}{named['pairs']:>7}"
      f"{pct(named['model_accuracy']):>8}{pct(named['counting_accuracy']):>10}",
      f"{'text names none':34}{other['pairs']:>7}{pct(other['model_accuracy']):>8}"
      f"{pct(other['counting_accuracy']):>10}",
      f"counting: WordPiece x visual-word PMI from {result['counting']['training_examples']} "
      f"training examples, AUC {'n/a' if auc is None else f'{auc:.3f}'}",
  ])
