"""How much validation alignment a synthetic world allows: two references.

``python -m videobert_jax.synthetic.alignment_ceiling --world W --workdir RUN``

Validation alignment accuracy (``eval/alignment/accuracy``) has no natural scale:
some speech says nothing of the picture ("let me know in the comments"), speech
leads or lags its step, and a negative video may show the step the text names. On a
synthetic world the latent steps of every clip are known (``W/latents.jsonl``), so
two references say how far a model could go on the very pairs it is scored on:

* **perfect perception**: a classifier that sees, for each clip of the span, the
  true step (verb, noun) or "idle", and what the text names (label verbs, their
  gerunds and translations, label nouns): about the most any model can reach, since
  a span's steps are all its visual words can tell of the text.
* **visual words with a supervised map**: the same classifier, but the video side
  is the span's visual words read through p(verb | visual word), p(noun | visual
  word) and p(idle | visual word), counted on the training split's clips with their
  latent labels, which a pretrained model never sees. A yardstick, not a bound: the
  trees see summary features of single visual words, a model their order and
  context too (``tiny`` at 3,000 steps matched it on one world).

Both are gradient-boosted trees (scikit-learn) fitted on training-split pairs and
scored on validation pairs, each pair built as the validation task builds them:
the next sentence (and its clips) appended with probability ``concat_rate``, the
visual words subsampled (rate 1..``max_subsample``, at least ``min_video_tokens``
kept), each text once with its own span and once with a span of another video.
Pairs are redrawn ``draws`` times (seeded) and the mean and standard deviation
reported. Results: ``RUN/eval/alignment_ceiling.json`` and a summary on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys

import numpy as np

_WORD = re.compile(r"\w+")
IDLE = -1  # the latent label of a clip between steps


class TooFewVideos(ValueError):
  """A split whose sentences come from fewer than two videos (no negatives)."""


@dataclasses.dataclass(frozen=True)
class Sentence:
  """One video-text example: its text, clips ``[first, last)`` and visual words."""

  video_id: str
  text: str
  first: int
  last: int
  visual_words: np.ndarray


class World:
  """The latent steps of a synthetic world's videos and its label words."""

  def __init__(self, world_dir: str):
    from videobert_jax.synthetic import world as world_lib  # pylint: disable=g-import-not-at-top
    path = os.path.join(world_dir, "world.json")
    try:
      with open(path, encoding="utf-8") as f:
        info = json.load(f)
      with open(os.path.join(world_dir, "latents.jsonl"), encoding="utf-8") as f:
        latents = [json.loads(line) for line in f if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
      raise ValueError(f"{world_dir}: not a synthetic world folder "
                       f"(python -m videobert_jax.corpus synthesize writes one): {e}") from e
    self.verbs = {v: i for i, v in enumerate(info["verbs"])}
    self.nouns = {n: i for i, n in enumerate(info["nouns"])}
    self.clip_seconds = float(info["clip_seconds"])
    self.verb_words = {row[i]: row[0] for row in world_lib.VERBS if row[0] in self.verbs
                       for i in (0, 1)}  # the verb and its gerund
    self.noun_words = dict((n, n) for n in self.nouns)
    for table in info.get("translations", {}).values():
      for key, words in (("verbs", self.verb_words), ("nouns", self.noun_words)):
        for label, word in table.get(key, {}).items():
          words.update((token, label) for token in _WORD.findall(word.lower()))
    self.steps = {r["video_id"]: r["steps"] for r in latents}

  def clip_labels(self, video_id: str, first: int, last: int) -> list[tuple[int, int]]:
    """``(verb, noun)`` index of each clip in ``[first, last)``; ``(IDLE, IDLE)`` between."""
    out = []
    for clip in range(first, last):
      step = next((s for s in self.steps.get(video_id, ())
                   if s["start_clip"] <= clip < s["end_clip"]), None)
      out.append((self.verbs[step["verb"]], self.nouns[step["noun"]]) if step
                 else (IDLE, IDLE))
    return out

  def named(self, text: str) -> tuple[set[int], set[int]]:
    """The label verbs and nouns a text names."""
    tokens = _WORD.findall(text.lower())
    return ({self.verbs[self.verb_words[t]] for t in tokens if t in self.verb_words},
            {self.nouns[self.noun_words[t]] for t in tokens if t in self.noun_words})


def load_sentences(builder, split: str, clip_seconds: float) -> dict[str, list[Sentence]]:
  """``{video_id: its sentences in order}`` of a built ``videobert_video_text`` split."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from videobert_jax.datasets import segments  # pylint: disable=g-import-not-at-top
  rows = []
  for ex in tfds.as_numpy(builder.as_dataset(split=split)):
    words = np.asarray(ex["visual_words"], np.int64)
    # The example holds words[first:last] of its video; only ``first`` is needed here
    # (the clip count bounds ``last``, which the visual words already give).
    first = segments.clip_range(float(ex["start"]), float(ex["end"]), clip_seconds,
                                10**9)[0]
    rows.append((int(ex["sentence_index"]), Sentence(
        ex["video_id"].decode(), ex["text"].decode(), first, first + words.size, words)))
  videos: dict[str, list] = {}
  for index, sentence in sorted(rows, key=lambda r: (r[1].video_id, r[0])):
    videos.setdefault(sentence.video_id, []).append(sentence)
  return videos


def draw_pairs(videos: dict[str, list[Sentence]], rng: np.random.Generator, *,
               concat_rate: float, max_subsample: int, min_video_tokens: int) -> list:
  """``(text, video_id, clips, visual_words, label)`` pairs, built like validation's."""
  items = []
  for video_id, sentences in videos.items():
    for i, s in enumerate(sentences):
      text, clips, words = s.text, list(range(s.first, s.last)), s.visual_words
      if i + 1 < len(sentences) and rng.random() < concat_rate:
        n = sentences[i + 1]
        text, clips = f"{text} {n.text}", clips + list(range(n.first, n.last))
        words = np.concatenate([words, n.visual_words])
      rate = int(rng.integers(1, max_subsample + 1))
      while rate > 1 and len(words[::rate]) < min(min_video_tokens, len(words)):
        rate -= 1
      items.append((video_id, text, clips[::rate], words[::rate]))
  if len(videos) < 2:
    raise TooFewVideos(f"alignment pairs need sentences of at least two videos, the split "
                       f"has {len(videos)} (hold out more videos: "
                       "config.data.validation_percent)")
  pairs = []
  for video_id, text, clips, words in items:
    other = items[int(rng.integers(len(items)))]
    while other[0] == video_id:
      other = items[int(rng.integers(len(items)))]
    pairs.append((text, video_id, clips, words, 1))
    pairs.append((text, other[0], other[2], other[3], 0))
  return pairs


def _latent_features(world: World, text: str, video_id: str, clips: list[int]) -> list:
  """What the text names against the true steps of the clips."""
  verbs, nouns = world.named(text)
  labels = [world.clip_labels(video_id, c, c + 1)[0] for c in clips] or [(IDLE, IDLE)]
  seen_verbs, seen_nouns = {v for v, _ in labels}, {n for _, n in labels}
  both = any((v, n) in labels for v in verbs for n in nouns)
  idle = np.mean([v == IDLE for v, _ in labels])
  return [len(verbs & seen_verbs), len(verbs - seen_verbs), len(nouns & seen_nouns),
          len(nouns - seen_nouns), float(both), float(not verbs and not nouns), idle,
          len(set(labels) - {(IDLE, IDLE)})]


class VisualWordMap:
  """p(verb | visual word), p(noun | visual word), last column "idle", from labelled clips."""

  def __init__(self, world: World, videos: dict[str, list[Sentence]], num_words: int):
    verbs = np.ones((num_words, len(world.verbs) + 1))  # add-one smoothing
    nouns = np.ones((num_words, len(world.nouns) + 1))
    for video_id, sentences in videos.items():
      for s in sentences:
        for word, (v, n) in zip(s.visual_words, world.clip_labels(video_id, s.first, s.last)):
          verbs[word, v] += 1  # IDLE = -1 is the last column
          nouns[word, n] += 1
    self.verbs = verbs / verbs.sum(1, keepdims=True)
    self.nouns = nouns / nouns.sum(1, keepdims=True)

  def features(self, world: World, text: str, words: np.ndarray) -> list:
    """How well the visual words match what the text names."""
    verbs, nouns = world.named(text)
    words = words if words.size else np.zeros([1], np.int64)
    out = []
    for named, table in ((verbs, self.verbs), (nouns, self.nouns)):
      p = table[words][:, sorted(named)] if named else None
      out += [p.max(), p.mean()] if named else [-1.0, -1.0]
    return out + [float(not verbs and not nouns), self.verbs[words, -1].mean(), words.size]


def measure(world: World, train: dict, validation: dict, *, concat_rate: float = 0.5,
            max_subsample: int = 5, min_video_tokens: int = 4, draws: int = 20,
            seed: int = 0) -> dict:
  """Validation accuracy of both references (mean and std over ``draws``)."""
  from sklearn import ensemble  # pylint: disable=g-import-not-at-top
  num_words = 1 + max(int(s.visual_words.max()) for v in (train, validation)
                      for ss in v.values() for s in ss if s.visual_words.size)
  word_map = VisualWordMap(world, train, num_words)
  featurize = {
      "perfect_perception": lambda p: _latent_features(world, p[0], p[1], p[2]),
      "visual_words_supervised": lambda p: word_map.features(world, p[0], p[3]),
  }
  kwargs = dict(concat_rate=concat_rate, max_subsample=max_subsample,
                min_video_tokens=min_video_tokens)
  rng = np.random.default_rng(seed)
  fit_pairs = [p for _ in range(3) for p in draw_pairs(train, rng, **kwargs)]
  scored = [draw_pairs(validation, np.random.default_rng([seed, d]), **kwargs)
            for d in range(draws)]
  out = {"validation_pairs": len(scored[0]), "training_pairs": len(fit_pairs),
         "draws": draws}
  for name, fn in featurize.items():
    model = ensemble.HistGradientBoostingClassifier(max_iter=200, random_state=seed)
    model.fit(np.array([fn(p) for p in fit_pairs]), [p[4] for p in fit_pairs])
    accs = [float(np.mean(model.predict(np.array([fn(p) for p in pairs]))
                          == [p[4] for p in pairs])) for pairs in scored]
    out[name] = {"mean": float(np.mean(accs)), "std": float(np.std(accs))}
  return out


def references(world: World, data_config, *, draws: int = 20) -> dict:
  """Both references on the video-text dataset of ``data_config`` (built if missing)."""
  from videobert_jax.tasks import pipeline  # pylint: disable=g-import-not-at-top
  pipeline.ensure_datasets(data_config, kinds=("video_text",))
  builder = pipeline.builder(data_config, "video_text")
  return measure(world, load_sentences(builder, "train", world.clip_seconds),
                 load_sentences(builder, "validation", world.clip_seconds),
                 concat_rate=float(data_config.concat_rate),
                 max_subsample=int(data_config.max_subsample),
                 min_video_tokens=int(data_config.min_video_tokens), draws=draws)


def run(world_dir: str, workdir: str, *, draws: int = 20, write: bool = True) -> dict:
  """Both references for the run in ``workdir``, on the world in ``world_dir``."""
  from videobert_jax import fileio  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import restore  # pylint: disable=g-import-not-at-top
  result = references(World(world_dir), restore.load_config(workdir).data, draws=draws)
  result.update(world=os.path.abspath(world_dir), workdir=os.path.abspath(workdir),
                model=_model_accuracy(workdir))
  result["table"] = format_result(result)
  if write:
    result["path"] = os.path.join(workdir, "eval", "alignment_ceiling.json")
    fileio.write_json(result["path"], {k: v for k, v in result.items() if k != "path"})
  return result


def _model_accuracy(workdir: str) -> float | None:
  """The run's validation alignment accuracy (``final_metrics.json``), if it has one."""
  try:
    with open(os.path.join(workdir, "final_metrics.json"), encoding="utf-8") as f:
      value = json.load(f).get("eval/alignment/accuracy")
  except (OSError, json.JSONDecodeError):
    return None
  return None if value is None else float(value)


def format_result(result: dict) -> str:
  """The human-readable summary (the model's own figure where the run has one)."""
  lines = [f"Validation alignment accuracy in %: the model against what the data allows "
           f"({result['validation_pairs']} pairs x {result['draws']} draws; references "
           f"fitted on {result['training_pairs']} training pairs)"]
  if result.get("model") is not None:
    lines.append(f"  {'the model (trainer eval)':34}{100 * result['model']:6.1f}")
  for name, label in (("perfect_perception", "perfect perception of the steps"),
                      ("visual_words_supervised", "visual words, supervised map")):
    lines.append(f"  {label:34}{100 * result[name]['mean']:6.1f} "
                 f"+- {100 * result[name]['std']:.1f}")
  return "\n".join(lines)


def main(argv=None) -> int:
  """The command line (see the module docstring)."""
  parser = argparse.ArgumentParser(prog="python -m videobert_jax.synthetic.alignment_ceiling",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--world", required=True, help="a synthesized world folder")
  parser.add_argument("--workdir", required=True, help="a pretraining run on its corpus")
  parser.add_argument("--draws", type=int, default=20, help="validation pair redraws")
  args = parser.parse_args(argv)
  try:
    result = run(args.world, args.workdir, draws=args.draws)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(result["table"])
  print(f"written: {result['path']}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
