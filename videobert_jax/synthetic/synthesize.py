"""A synthetic cooking world: a pretraining corpus and a YouCook II style eval set.

``python -m videobert_jax.corpus synthesize --out DIR`` writes::

  DIR/corpus/videos.jsonl, features/<id>.npy, asr/<id>.{vtt,json,srt}
  DIR/youcook/youcookii_annotations_trainval.json, features/<id>.npy
  DIR/world.json      the world's vocabulary, recipes, joint, settings and counts
  DIR/latents.jsonl   the latent steps of every video (for analysis and tests)

It is the bundled default data of ``make demo`` and the fixture of many tests.
The point of the world: **verbs and nouns can be classified from video only by a
model that learned the link between what is seen and what is said.**

The generative model (vocabulary and samplers in ``corpus/world.py``):

1. Vocabulary. V verbs and N nouns (default 12 and 20; prefixes of curated
   lists), real cooking words that are single bert-base-uncased WordPieces and
   frequent in real YouCook II captions (add, cut, mix, pour, fry, ...; onion,
   egg, oil, salt, ...). Nouns have categories (liquid, produce, protein, ...)
   and verbs accept some categories; a pair outside them ("pour the bread") gets
   prior weight 0.05 instead of 1, a mild compatibility structure.
2. Balanced joint. The weight matrix is Sinkhorn-scaled to a joint P(verb, noun)
   whose marginals are uniform: every verb (noun) is equally frequent, so the
   language prior over a masked verb or noun is flat and a text-only model
   guesses at chance.
3. Recipes. R recipe types (default 16, ids "101", "102", ... as in YouCook
   II) are fixed sequences of 5-8 (verb, noun) steps, drawn from P by systematic
   sampling so the pooled steps keep the uniform marginals.
4. Video timeline. A video follows a recipe (cycled over videos); each step is
   kept with probability 0.85, else replaced by a fresh pair from P. Steps last
   3-8 clips of 1.5 s; 0-2 idle clips separate them; 2-4 idle intro clips and
   1-3 outro clips surround them.
5. Clip features. In a latent space of dimension r=32, clip t has
   ``z_t = smooth(c_t) + s + d_t + e_t``: content ``c_t`` is the verb prototype
   plus the noun prototype of the step covering t (an "idle" prototype between
   steps), smoothed over neighbouring clips with weights (0.2, 0.6, 0.2) so
   actions blend; ``s`` is a per-video style offset (kitchen, camera); ``d_t``
   an AR(1) drift (rho 0.85) that varies slowly across neighbouring clips;
   ``e_t`` independent noise. Features are ``relu(z_t W + b + noise)`` with a
   fixed random ``W`` (r x feature_dim): non-negative like pooled ReLU
   activations, with about half the entries zero. The information is in the
   latent, so difficulty hardly grows with the dimension (a small dimension is
   somewhat harder: the ReLU discards more of the latent). Prototype, style,
   drift and noise scales are set so that a linear classifier on a step's
   average-pooled features finds its verb most of the time while single clips
   and k-means visual words carry the verb and noun only partly (measured
   numbers in docs/synthetic_world.md).
6. Speech. Each step is narrated with probability 0.85 by a sentence naming its
   verb and noun in one of many templates ("now we cut the onion", "cut some
   onion in the pan", "now i'm cutting the onion", ...) whose onset leads or lags
   the step's start by a Gaussian of 1.5 s (a clip or two); with probability
   0.35 a second sentence names only the noun or verb again, or another noun
   ("you can also use garlic here"); off-topic chatter ("don't forget to
   subscribe") follows a step with probability 0.2; an intro ("today we are
   making fried rice") and an outro frame the video. Sentences never overlap.
7. Corpus transcripts. About 8% of videos have no ASR, 5% are German and 5%
   Spanish (translated verbs, nouns and templates), the rest English. English
   transcripts are WebVTT in YouTube automatic-caption style (lowercase, no
   punctuation, rolling two-line cues with inline ``<00:00:01.234><c>`` word
   timings and 10 ms transition cues; lines cut by length, not by sentence),
   ``.json`` (one unpunctuated ``{"start", "end", "text"}`` per sentence) or
   SRT (sentence case and full stops). With 7 or more videos every kind occurs.
8. Evaluation set. Disjoint videos (own 11-character ids) from the same world,
   about 75% "training" and 25% "validation"; each step becomes an annotation
   whose segment (integer seconds, a little annotator jitter) covers its clips
   and whose caption names its verb and noun ("cut the onion", "add some salt",
   "fry the egg gently", ...). The features follow the same clip convention.

Everything is deterministic given the arguments (same bytes for the same
arguments). Random streams are split by purpose, so the world's latent structure
and the speech do not depend on ``feature_dim``, and video i is the same whatever
the number of videos. Files are written atomically; ``videos.jsonl`` and the
annotation file come after the files they name.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from typing import Any

import numpy as np

from videobert_jax import fileio
from videobert_jax.synthetic import world as world_lib

CLIP_SECONDS = 1.5
ANNOTATIONS_NAME = "youcookii_annotations_trainval.json"
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
VTT_LINE_CHARS = 32  # YouTube automatic captions break lines at about this length
SRT_LINE_CHARS = 42

# Streams of randomness (the second SeedSequence entry), one per purpose.
_STREAM_CORPUS, _STREAM_EVAL, _STREAM_IDS, _STREAM_KINDS = 1, 2, 3, 4


def video_ids(rng: np.random.Generator, count: int) -> list[str]:
  """``count`` distinct YouTube-like 11-character ids (none starts with '-')."""
  ids, seen = [], set()
  while len(ids) < count:
    chars = rng.integers(0, len(ID_ALPHABET), 11)
    if chars[0] == ID_ALPHABET.index("-"):
      continue  # an id starting with '-' reads as a flag on command lines
    video_id = "".join(ID_ALPHABET[c] for c in chars)
    if video_id not in seen:
      seen.add(video_id)
      ids.append(video_id)
  return ids


def _clock(seconds: float, decimal: str) -> str:
  """``HH:MM:SS<decimal>mmm`` from seconds."""
  ms = int(round(seconds * 1000))
  return (f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}"
          f"{decimal}{ms % 1000:03d}")


def to_json_transcript(sentences: list[world_lib.Sentence]) -> str:
  """A ``.json`` transcript: one unpunctuated entry per sentence."""
  entries = [{"start": s.start, "end": s.end, "text": s.text} for s in sentences]
  return json.dumps(entries, ensure_ascii=False, indent=1) + "\n"


def to_srt(sentences: list[world_lib.Sentence]) -> str:
  """An SRT transcript: one cue per sentence, sentence case, wrapped at 42 chars."""
  blocks = []
  for i, s in enumerate(sentences, start=1):
    text = s.text[0].upper() + s.text[1:] + "."
    lines, line = [], ""
    for word in text.split():
      if line and len(line) + 1 + len(word) > SRT_LINE_CHARS:
        lines.append(line)
        line = word
      else:
        line = f"{line} {word}" if line else word
    lines.append(line)
    blocks.append(f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n"
                  + "\n".join(lines) + "\n")
  return "\n".join(blocks)


def to_youtube_vtt(sentences: list[world_lib.Sentence], language: str) -> str:
  """A WebVTT transcript as YouTube's automatic captions are written.

  The word stream is cut into lines of at most ``VTT_LINE_CHARS`` characters
  (lines run across sentence boundaries: auto captions carry no punctuation).
  Line k is shown in a cue whose first row repeats line k-1 (rolling captions)
  and whose second row times each word inline; a 10 ms transition cue then
  shows line k alone before line k+1 starts.
  """
  words = [(w, start, end) for s in sentences
           for w, start, end in zip(s.words, s.starts, s.ends)]
  lines: list[list[tuple[str, float, float]]] = []
  for word in words:
    if lines:
      last = lines[-1]
      chars = sum(len(w) + 1 for w, _, _ in last) + len(word[0])
      if chars <= VTT_LINE_CHARS and word[1] - last[-1][2] < 3.0:
        last.append(word)
        continue
    lines.append([word])
  header = f"WEBVTT\nKind: captions\nLanguage: {language}\n"
  cues = []
  opts = " align:start position:0%"
  for k, line in enumerate(lines):
    start = line[0][1]
    end = lines[k + 1][0][1] - 0.01 if k + 1 < len(lines) else line[-1][2] + 0.5
    above = " ".join(w for w, _, _ in lines[k - 1]) if k else " "
    timed = line[0][0] + "".join(f"<{_clock(t, '.')}><c> {w}</c>" for w, t, _ in line[1:])
    plain = " ".join(w for w, _, _ in line)
    cues.append(f"{_clock(start, '.')} --> {_clock(end, '.')}{opts}\n{above}\n{timed}\n")
    cues.append(f"{_clock(end, '.')} --> {_clock(end + 0.01, '.')}{opts}\n{plain}\n \n")
  return header + "\n" + "\n".join(cues)


_WRITERS = {"vtt": lambda s, lang: to_youtube_vtt(s, lang),
            "json": lambda s, lang: to_json_transcript(s),
            "srt": lambda s, lang: to_srt(s)}


def assign_kinds(rng: np.random.Generator, count: int) -> list[tuple[str | None, str | None]]:
  """(language, transcript format) per corpus video; (None, None) for no ASR.

  With ``count >= 7`` every kind occurs: English in each format, German,
  Spanish, and videos without ASR.
  """
  priority = [("en", "vtt"), ("en", "json"), ("en", "srt"), (None, None),
              ("de", "vtt"), ("es", "srt"), ("en", "vtt")]
  if count < len(priority):
    kinds = priority[:count]
  else:
    no_asr = max(1, round(0.08 * count))
    german = max(1, round(0.05 * count))
    spanish = max(1, round(0.05 * count))
    english = count - no_asr - german - spanish
    srt = max(1, round(0.2 * english))
    js = max(1, round(0.3 * english))
    formats = ("vtt", "json", "srt")
    kinds = ([(None, None)] * no_asr
             + [("de", formats[int(rng.integers(3))]) for _ in range(german)]
             + [("es", formats[int(rng.integers(3))]) for _ in range(spanish)]
             + [("en", "srt")] * srt + [("en", "json")] * js
             + [("en", "vtt")] * (english - srt - js))
  order = rng.permutation(len(kinds))
  return [kinds[i] for i in order]


def _rngs(seed: int, stream: int, index: int) -> tuple[np.random.Generator, ...]:
  """Independent generators for a video's plan, features and speech."""
  children = np.random.SeedSequence([seed, stream, index]).spawn(3)
  return tuple(np.random.default_rng(c) for c in children)


def _segment(step: world_lib.Step, rng: np.random.Generator,
             duration: float) -> list[int]:
  """An annotator's [start, end] in integer seconds around a step's clips."""
  start = step.start_clip * CLIP_SECONDS + rng.normal(0.0, 0.5)
  end = step.end_clip * CLIP_SECONDS + rng.normal(0.0, 0.5)
  start = int(min(max(round(start), 0), int(duration) - 1))
  end = int(min(max(round(end), start + 1), int(duration)))
  return [start, end]


def _latent_record(world: world_lib.World, video_id: str, split: str,
                   plan: world_lib.VideoPlan, **extra: Any) -> str:
  """One ``latents.jsonl`` line."""
  steps = [{"verb": world.verbs[s.verb][0], "noun": world.nouns[s.noun][0],
            "start_clip": s.start_clip, "end_clip": s.end_clip} for s in plan.steps]
  return json.dumps({"video_id": video_id, "split": split,
                     "recipe_type": plan.recipe.recipe_type, "num_clips": plan.num_clips,
                     **extra, "steps": steps}, ensure_ascii=False)


def synthesize(out_dir: str | os.PathLike, num_videos: int = 200,
               num_eval_videos: int = 40, feature_dim: int = 1024, seed: int = 0,
               num_verbs: int = 12, num_nouns: int = 20, dtype: str = "float16",
               progress: bool = True) -> dict[str, Any]:
  """Writes the synthetic world (corpus, eval set, world.json, latents.jsonl).

  Args:
    out_dir: output folder; ``corpus/`` and ``youcook/`` are created in it.
      Existing files of the same names are replaced.
    num_videos: pretraining corpus videos (at least 1; 7 or more to get every
      transcript kind).
    num_eval_videos: evaluation videos (at least 2: one training, one validation).
    feature_dim: dimension of a clip feature (S3D's is 1024).
    seed: the seed; the same arguments give the same bytes.
    num_verbs: verbs in the world (2 to len(world.VERBS)).
    num_nouns: nouns in the world (2 to len(world.NOUNS)).
    dtype: ``float16`` or ``float32`` for the feature files.
    progress: show tqdm progress bars (stderr).

  Returns:
    A summary: paths (absolute) and counts.

  Raises:
    ValueError: for arguments out of range.
  """
  _check_arguments(num_videos, num_eval_videos, dtype)
  config = world_lib.WorldConfig(num_verbs=num_verbs, num_nouns=num_nouns)
  world = world_lib.World(config, feature_dim, seed)
  out_dir = os.path.abspath(os.fspath(out_dir))
  corpus_dir = os.path.join(out_dir, "corpus")
  youcook_dir = os.path.join(out_dir, "youcook")
  ids = video_ids(np.random.default_rng([seed, _STREAM_IDS]),
                  num_videos + num_eval_videos)
  latents: list[str] = []
  corpus = _write_corpus(world, corpus_dir, ids[:num_videos], seed, dtype, progress,
                         latents)
  annotations_path, num_validation, num_segments = _write_eval_set(
      world, youcook_dir, ids[num_videos:], seed, dtype, progress, latents)
  fileio.write_text(os.path.join(out_dir, "latents.jsonl"), "\n".join(latents) + "\n")

  num_clips, formats, languages = corpus
  counts = {
      "videos": num_videos, "clips": num_clips,
      "hours": round(num_clips * CLIP_SECONDS / 3600.0, 4),
      "transcripts": dict(sorted(formats.items())),
      "languages": dict(sorted(languages.items())),
      "videos_without_asr": num_videos - sum(formats.values()),
      "eval_videos": num_eval_videos,
      "eval_training_videos": num_eval_videos - num_validation,
      "eval_validation_videos": num_validation, "eval_segments": num_segments,
  }
  world_path = _write_description(world, out_dir, seed, feature_dim, dtype, counts)
  return {"out_dir": out_dir, "corpus_dir": corpus_dir, "youcook_dir": youcook_dir,
          "annotations": annotations_path,
          "eval_features_dir": os.path.join(youcook_dir, "features"),
          "world": world_path, "latents": os.path.join(out_dir, "latents.jsonl"),
          "seed": seed, "feature_dim": feature_dim, "dtype": dtype,
          "verbs": [v[0] for v in world.verbs], "nouns": [n[0] for n in world.nouns],
          **counts}


def _check_arguments(num_videos: int, num_eval_videos: int, dtype: str) -> None:
  """Raises ValueError for arguments ``synthesize`` cannot honour."""
  if num_videos < 1:
    raise ValueError(f"num_videos must be at least 1, got {num_videos}")
  if num_eval_videos < 2:
    raise ValueError(f"num_eval_videos must be at least 2 (training and validation), "
                     f"got {num_eval_videos}")
  if dtype not in ("float16", "float32"):
    raise ValueError(f"dtype must be float16 or float32, got {dtype!r}")


def _write_corpus(world: world_lib.World, corpus_dir: str, ids: list[str], seed: int,
                  dtype: str, progress: bool,
                  latents: list[str]) -> tuple[int, collections.Counter,
                                               collections.Counter]:
  """Writes the pretraining corpus of videos ``ids``, appending their latents.

  Returns ``(clips, transcripts per format, transcripts per language)``.
  """
  import tqdm  # pylint: disable=g-import-not-at-top
  num_videos = len(ids)
  kinds = assign_kinds(np.random.default_rng([seed, _STREAM_KINDS]), num_videos)
  recipe_order = np.random.default_rng([seed, _STREAM_CORPUS]).permutation(
      len(world.recipes))
  index_lines, num_clips = [], 0
  formats, languages = collections.Counter(), collections.Counter()
  for i in tqdm.trange(num_videos, desc="corpus videos", unit="video",
                       disable=not progress, leave=False):
    video_id, (language, fmt) = ids[i], kinds[i]
    plan_rng, feature_rng, speech_rng = _rngs(seed, _STREAM_CORPUS, i)
    recipe = world.recipes[recipe_order[i % len(world.recipes)]]
    plan = world_lib.plan_video(world, plan_rng, recipe)
    features = world_lib.render_features(world, plan, feature_rng)
    fileio.save_npy(os.path.join(corpus_dir, "features", f"{video_id}.npy"),
                    features.astype(dtype))
    entry = {"video_id": video_id, "features": f"features/{video_id}.npy",
             "clip_seconds": CLIP_SECONDS}
    if fmt is not None:
      sentences = world_lib.narrate(world, plan, speech_rng, language, CLIP_SECONDS)
      entry["asr"] = f"asr/{video_id}.{fmt}"
      entry["language"] = language
      fileio.write_text(os.path.join(corpus_dir, entry["asr"]),
                        _WRITERS[fmt](sentences, language))
      formats[fmt] += 1
      languages[language] += 1
    index_lines.append(json.dumps(entry))
    latents.append(_latent_record(world, video_id, "corpus", plan, language=language))
    num_clips += plan.num_clips
  fileio.write_text(os.path.join(corpus_dir, "videos.jsonl"),
                    "\n".join(index_lines) + "\n")
  return num_clips, formats, languages


def _write_eval_set(world: world_lib.World, youcook_dir: str, ids: list[str], seed: int,
                    dtype: str, progress: bool,
                    latents: list[str]) -> tuple[str, int, int]:
  """Writes the YouCook II style evaluation set of videos ``ids``, appending latents.

  Returns ``(annotations path, validation videos, annotated segments)``.
  """
  import tqdm  # pylint: disable=g-import-not-at-top
  num_eval_videos = len(ids)
  eval_rng = np.random.default_rng([seed, _STREAM_EVAL])
  eval_recipes = eval_rng.permutation(len(world.recipes))
  num_validation = max(1, round(0.25 * num_eval_videos))
  validation = set(eval_rng.permutation(num_eval_videos)[:num_validation].tolist())
  database, num_segments = {}, 0
  for j in tqdm.trange(num_eval_videos, desc="eval videos", unit="video",
                       disable=not progress, leave=False):
    video_id = ids[j]
    plan_rng, feature_rng, label_rng = _rngs(seed, _STREAM_EVAL, j)
    recipe = world.recipes[eval_recipes[j % len(world.recipes)]]
    plan = world_lib.plan_video(world, plan_rng, recipe)
    features = world_lib.render_features(world, plan, feature_rng)
    fileio.save_npy(os.path.join(youcook_dir, "features", f"{video_id}.npy"),
                    features.astype(dtype))
    # The features cover whole clips; the video runs on into a partial clip.
    duration = round(plan.num_clips * CLIP_SECONDS + float(label_rng.uniform(0, 1.4)), 2)
    annotations = [{"segment": _segment(step, label_rng, duration), "id": k,
                    "sentence": world_lib.caption(world, step, label_rng)}
                   for k, step in enumerate(plan.steps)]
    subset = "validation" if j in validation else "training"
    database[video_id] = {"duration": duration, "subset": subset,
                          "recipe_type": recipe.recipe_type, "annotations": annotations,
                          "video_url": f"https://www.youtube.com/watch?v={video_id}"}
    latents.append(_latent_record(world, video_id, subset, plan))
    num_segments += len(annotations)
  annotations_path = os.path.join(youcook_dir, ANNOTATIONS_NAME)
  fileio.write_json(annotations_path, {"database": database}, indent=None)
  return annotations_path, num_validation, num_segments


def _write_description(world: world_lib.World, out_dir: str, seed: int, feature_dim: int,
                       dtype: str, counts: dict) -> str:
  """Writes ``world.json`` (settings, paths, counts and the world); returns its path."""
  description = {
      "generator": "videobert_jax.synthetic.synthesize", "seed": seed,
      "feature_dim": feature_dim, "dtype": dtype, "clip_seconds": CLIP_SECONDS,
      "paths": {"corpus": "corpus", "annotations": f"youcook/{ANNOTATIONS_NAME}",
                "eval_features": "youcook/features", "latents": "latents.jsonl"},
      "counts": counts, **world.describe()}
  world_path = os.path.join(out_dir, "world.json")
  fileio.write_json(world_path, description)
  return world_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds the ``synthesize`` flags to ``parser``."""
  parser.add_argument("--out", required=True, metavar="DIR",
                      help="output folder; corpus/, youcook/, world.json and "
                           "latents.jsonl are written in it")
  parser.add_argument("--videos", type=int, default=200, metavar="N",
                      help="pretraining corpus videos (default 200)")
  parser.add_argument("--eval-videos", type=int, default=40, metavar="M",
                      help="YouCook II style evaluation videos, about 75%% training "
                           "and 25%% validation (default 40, at least 2)")
  parser.add_argument("--dim", type=int, default=1024, metavar="D",
                      help="clip feature dimension (default 1024, as S3D)")
  parser.add_argument("--seed", type=int, default=0, metavar="S",
                      help="random seed; the same flags write the same bytes (default 0)")
  parser.add_argument("--verbs", type=int, default=12, metavar="V",
                      help=f"verbs in the world, 2 to {len(world_lib.VERBS)} (default 12)")
  parser.add_argument("--nouns", type=int, default=20, metavar="N",
                      help=f"nouns in the world, 2 to {len(world_lib.NOUNS)} (default 20)")
  parser.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                      help="dtype of the feature files (default float16)")
  parser.add_argument("--no-progress", dest="progress", action="store_false",
                      help="hide the progress bars")


def run(args: argparse.Namespace) -> int:
  """Runs ``synthesize`` from parsed flags; prints a summary; returns the exit code."""
  try:
    summary = synthesize(args.out, num_videos=args.videos,
                         num_eval_videos=args.eval_videos, feature_dim=args.dim,
                         seed=args.seed, num_verbs=args.verbs, num_nouns=args.nouns,
                         dtype=args.dtype, progress=args.progress)
  except (ValueError, OSError) as e:
    print(f"synthesize: error: {e}", file=sys.stderr)
    return 1
  s = summary
  fmt = ", ".join(f"{k} {v}" for k, v in s["transcripts"].items())
  langs = ", ".join(f"{k} {v}" for k, v in s["languages"].items())
  print(f"synthetic cooking world (seed {s['seed']}) written to {s['out_dir']}")
  print(f"corpus           {s['corpus_dir']}: {s['videos']:,} videos, {s['clips']:,} "
        f"clips ({s['hours']:.2f} h), dim {s['feature_dim']} {s['dtype']}")
  print(f"transcripts      {fmt or '-'}; languages {langs or '-'}; "
        f"{s['videos_without_asr']} without ASR")
  print(f"evaluation set   {s['annotations']}: {s['eval_videos']} videos "
        f"({s['eval_training_videos']} training, {s['eval_validation_videos']} "
        f"validation), {s['eval_segments']} segments")
  print(f"vocabulary       {len(s['verbs'])} verbs ({', '.join(s['verbs'])}), "
        f"{len(s['nouns'])} nouns")
  print(f"world            {s['world']}")
  return 0
