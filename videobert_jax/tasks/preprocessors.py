"""seqio preprocessors of VideoBERT pretraining (tf.data, deterministic for a seed).

The three tasks (``videobert_jax.tasks.registry``) chain these steps on the TFDS examples
(``videobert_jax.datasets``):

1. ``select_features``: visual words -> token ids (``tokens.TokenLayout``), keep
   what the later steps need.
2. ``concat_neighbours``: with probability ``concat_rate`` append the next
   sentence (text, video, or both together) of the same video.
3. ``subsample_video``: keep every r-th visual word, r uniform in 1..5, from a
   random offset (robustness to speed, longer horizons; the paper's recipe),
   never leaving fewer than ``min_video_tokens`` of a span that had them.
4. ``negatives.alignment_negatives`` (video-text only): with probability ``negative_rate``
   replace the video by one of a *different* video seen recently (label 0).
5. ``assemble``: ``[CLS] text [SEP]``, ``[CLS] [>] video [SEP]`` or
   ``[CLS] text [>] video [SEP]``, truncated to the configured lengths, with
   token-type ids (0 up to ``[>]``, 1 from ``[>]`` on). A negative pair's
   masked-token predictions get weight 0 unless ``mlm_on_negatives``: its text
   and video are unrelated, so predicting one from the other would teach the
   model that video says nothing about speech (UNITER and LXMERT likewise apply
   masked modelling to matched pairs only).
6. ``mask_tokens``: BERT masking of ``mask_rate`` (``video_text_mask_rate`` in
   video-text examples) of the word/visual positions (never specials), at most
   ``max_predictions``; of those 80% become ``[MASK]``, 10% a random token *of the
   same modality*, 10% stay. In ``action_mask_rate`` of the video-text examples
   whose text has verb-object pairs (``text.actions``), the pairs are masked
   instead, verbs and objects together, always as ``[MASK]``, and nothing else.

``VideoBertFeatureConverter`` then pads to the model batch of
``videobert_jax.batch``.
"""

from __future__ import annotations

import dataclasses

import seqio
import tensorflow as tf

from videobert_jax import batch as batch_lib
from videobert_jax import tokens

@dataclasses.dataclass(frozen=True)
class SequenceSpec:
  """Lengths, rates and token layout shared by all preprocessors."""

  layout: tokens.TokenLayout
  max_seq_len: int = 128  # T
  max_text_tokens: int = 48  # text budget of a video-text example
  max_video_tokens: int = 48  # video budget of a video-text example
  max_predictions: int = 20  # P
  mask_rate: float = 0.15
  # Masking rate of video-text examples (None: mask_rate). Higher rates hide the
  # speech's other content words more often, so the masked ones must be read off
  # the video, as in zero-shot classification where verb and noun are both masked.
  video_text_mask_rate: float | None = None
  # Share of video-text examples (with verb-object pairs) that mask the pairs,
  # verbs and objects together, instead of random positions. Random masking almost
  # never hides both, so the model can guess each from the other and ignore the
  # video; zero-shot classification asks for both at once.
  action_mask_rate: float = 0.0
  # Share of the other video-text examples (aligned, outside alignment) that mask
  # every visual word instead, always as [MASK] (action masking takes the rest): text-to-video
  # generation asks for visual words with no video to copy from, which random
  # masking (a visual word's neighbours stay visible) never teaches.
  video_mask_rate: float = 0.0
  concat_rate: float = 0.5  # probability of appending the next sentence/segment
  max_subsample: int = 5  # video subsampling rate drawn from 1..max_subsample
  min_video_tokens: int = 4  # subsampling keeps at least this many (if there were)
  # Share of video-text pairs that train alignment; half of those (negative_rate)
  # get another video. The rest stay aligned and are masked for the masked-token
  # objectives, action masking included; alignment pairs are only ever masked at
  # random, so the alignment head sees the verbs and nouns it must match.
  alignment_rate: float = 1.0
  negative_rate: float = 0.5  # share of alignment pairs made negative
  mlm_on_negatives: bool = False  # masked-token loss on negative pairs too
  # Every alignment text comes twice, once with its own video and once with
  # another's (negative_rate is then 0.5 by construction): the two labels differ
  # only in the video, so the head cannot fit the text's own traits.
  paired_negatives: bool = False
  # Masked-token loss on the aligned pairs that train alignment (False: those pairs
  # train alignment alone; the masked-token objectives then see only the others).
  alignment_pairs_mlm: bool = True
  # BERT masking on the pairs that train alignment. When those pairs carry no
  # masked-token loss (alignment_pairs_mlm and mlm_on_negatives off), masking them
  # hides evidence (often the verb or noun the head must match to the video) and
  # adds input noise. False leaves them whole, in training and validation: a
  # measured lever, not the default (docs/training.md, "Alignment on whole pairs").
  mask_alignment_pairs: bool = True
  # Random text replacements are drawn from [first_word_id, text_vocab_size):
  # the ordinary WordPieces, past [PAD], [unusedN] and the specials.
  first_word_id: int = tokens.MASK_ID + 1

  def __post_init__(self):
    if self.max_seq_len < 4:
      raise ValueError(f"max_seq_len must be >= 4, got {self.max_seq_len}")
    for name in ("mask_rate", "video_text_mask_rate"):
      rate = getattr(self, name)
      if rate is not None and not 0 < rate < 1:
        raise ValueError(f"{name} must be in (0, 1), got {rate}")
    if self.max_predictions < 1:
      raise ValueError(f"max_predictions must be >= 1, got {self.max_predictions}")
    for name in ("action_mask_rate", "video_mask_rate", "alignment_rate", "negative_rate"):
      if not 0 <= getattr(self, name) <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
    if not self.mask_alignment_pairs and (self.alignment_pairs_mlm
                                          or self.mlm_on_negatives):
      raise ValueError("mask_alignment_pairs=False leaves the alignment pairs without "
                       "masked tokens, so they cannot carry a masked-token loss: set "
                       "alignment_pairs_mlm=False and mlm_on_negatives=False")
    if not tokens.MASK_ID < self.first_word_id < self.layout.text_vocab_size:
      raise ValueError(f"first_word_id {self.first_word_id} outside the WordPieces")


def _empty_ids():
  return tf.zeros([0], tf.int32)


@seqio.map_over_dataset
def select_features(ex, spec: SequenceSpec):
  """Keeps the fields later steps need; visual words become token ids."""
  offset = spec.layout.visual_offset
  out = {"video_id": ex["video_id"]}
  if "text_ids" in ex:
    out["text_ids"] = tf.cast(ex["text_ids"], tf.int32)
    out["next_text_ids"] = tf.cast(ex["next_text_ids"], tf.int32)
  if "visual_words" in ex:
    out["video_ids"] = tf.cast(ex["visual_words"], tf.int32) + offset
    out["next_video_ids"] = tf.cast(ex["next_visual_words"], tf.int32) + offset
  if "action_groups" in ex:
    out["action_groups"] = tf.cast(ex["action_groups"], tf.int32)
    out["next_action_groups"] = tf.cast(ex["next_action_groups"], tf.int32)
  return out


@seqio.map_over_dataset(num_seeds=1)
def concat_neighbours(ex, seed, spec: SequenceSpec):
  """Appends the next sentence (text and/or video, with one coin) at random.

  The next sentence's action groups are renumbered after this one's, so each
  verb-object pair keeps its own id.
  """
  has_next = tf.constant(False)
  for key in ("text_ids", "video_ids"):
    if key in ex:
      has_next = has_next | (tf.size(ex["next_" + key]) > 0)
  join = (tf.random.stateless_uniform([], seed) < spec.concat_rate) & has_next
  following = dict(ex)
  if "action_groups" in ex:
    shift = tf.reduce_max(tf.concat([ex["action_groups"], [0]], 0))
    nxt = ex["next_action_groups"]
    following["next_action_groups"] = tf.where(nxt > 0, nxt + shift, 0)
  out = dict(ex)
  for key in ("text_ids", "video_ids", "action_groups"):
    if key in ex:
      out[key] = tf.cond(join, lambda k=key: tf.concat([ex[k], following["next_" + k]], 0),
                         lambda k=key: ex[k])
      del out["next_" + key]
  return out


@seqio.map_over_dataset(num_seeds=1)
def subsample_video(ex, seed, spec: SequenceSpec):
  """Keeps every r-th visual token from a random offset, r uniform in 1..max_subsample.

  r is capped so that at least ``min_video_tokens`` survive: a sentence spans
  only a few 1.5 s clips, and thinning those to one token would leave nothing
  for the text to be grounded in.
  """
  seeds = tf.random.experimental.stateless_split(seed, 2)
  video = ex["video_ids"]
  cap = tf.clip_by_value(tf.size(video) // max(spec.min_video_tokens, 1), 1,
                         spec.max_subsample)
  draw = tf.random.stateless_uniform([], seeds[0])
  rate = tf.minimum(tf.cast(draw * tf.cast(cap, tf.float32), tf.int32) + 1, cap)
  # The offset stays inside the video, so at least one token survives.
  span = tf.maximum(tf.minimum(rate, tf.size(video)), 1)
  offset = tf.random.stateless_uniform([], seeds[1], 0, span, tf.int32)
  out = dict(ex)
  out["video_ids"] = video[offset::rate]
  out["subsample_rate"] = rate  # what the recipe drew (tasks/recipe_stats.py)
  return out


@seqio.map_over_dataset
def assemble(ex, spec: SequenceSpec, objective: int):
  """``[CLS] text [>] video [SEP]`` (or one modality) with token-type ids, truncated."""
  lay, t = spec.layout, spec.max_seq_len
  cls = tf.constant([lay.cls_id], tf.int32)
  sep = tf.constant([lay.sep_id], tf.int32)
  vsep = tf.constant([lay.video_sep_id], tf.int32)
  if objective == batch_lib.TEXT:
    text = ex["text_ids"][:t - 2]
    ids = tf.concat([cls, text, sep], 0)
    types = tf.zeros_like(ids)
  elif objective == batch_lib.VIDEO:
    video = ex["video_ids"][:t - 3]
    ids = tf.concat([cls, vsep, video, sep], 0)
    types = tf.concat([[0], tf.ones([tf.size(video) + 2], tf.int32)], 0)
  else:
    text = ex["text_ids"][:min(spec.max_text_tokens, t - 4)]
    video_budget = tf.minimum(spec.max_video_tokens, t - 3 - tf.size(text))
    video = ex["video_ids"][:video_budget]
    ids = tf.concat([cls, text, vsep, video, sep], 0)
    types = tf.concat([tf.zeros([tf.size(text) + 1], tf.int32),
                       tf.ones([tf.size(video) + 2], tf.int32)], 0)
  label = tf.cast(ex.get("alignment_label", 1), tf.int32)
  mlm_weight = 1.0 if spec.mlm_on_negatives else tf.cast(label, tf.float32)
  is_alignment = tf.cast(ex.get("alignment_example", True), tf.float32)
  if "alignment_only" in ex:
    mlm_weight = tf.constant(0.0)
  elif objective == batch_lib.VIDEO_TEXT and not spec.alignment_pairs_mlm:
    mlm_weight = tf.cast(mlm_weight, tf.float32) * (1.0 - is_alignment)
  out = {"input_ids": ids, "token_type_ids": types,
         "objective": tf.constant(objective, tf.int32),
         "mlm_weight": tf.cast(mlm_weight, tf.float32),
         "alignment_label": label,
         "alignment_weight": is_alignment if objective == batch_lib.VIDEO_TEXT
                             else tf.constant(0.0, tf.float32)}
  for key in ("video_id", "video_source_id", "subsample_rate"):
    if key in ex:
      out[key] = ex[key]
  if objective == batch_lib.VIDEO_TEXT and "action_groups" in ex:
    # Aligned with input_ids: the text's groups after [CLS], zeros elsewhere.
    out["action_groups"] = tf.concat(
        [[0], ex["action_groups"][:tf.size(text)],
         tf.zeros([tf.size(ids) - 1 - tf.size(text)], tf.int32)], 0)
  return out


def maskable(ids: tf.Tensor, spec: SequenceSpec) -> tf.Tensor:
  """True at ordinary WordPieces and visual words (never specials or ``[>]``)."""
  lay = spec.layout
  is_word = (ids >= spec.first_word_id) & (ids < lay.text_vocab_size)
  return is_word | ((ids >= lay.visual_offset) & (ids < lay.num_used_ids))


@seqio.map_over_dataset(num_seeds=1)
def mask_tokens(ex, seed, spec: SequenceSpec):
  """BERT masking: picks positions, replaces 80/10/10 (action pairs: [MASK]), records targets.

  Adds ``masked_positions`` (ascending) and ``masked_ids`` (original ids), at
  most ``max_predictions`` of them, and rewrites ``input_ids``.
  """
  lay = spec.layout
  ids = ex["input_ids"]
  seeds = tf.random.experimental.stateless_split(seed, 4)
  candidates = maskable(ids, spec)
  num_candidates = tf.reduce_sum(tf.cast(candidates, tf.int32))
  wanted = tf.cast(tf.round(tf.cast(num_candidates, tf.float32) * spec.mask_rate),
                   tf.int32)
  count = tf.minimum(tf.minimum(tf.maximum(wanted, 1), num_candidates),
                     spec.max_predictions)
  if not spec.mask_alignment_pairs:
    # An alignment pair keeps every token (no predictions): see SequenceSpec.
    count = tf.where(ex["alignment_weight"] > 0, 0, count)
  video_masked = tf.constant(False)
  if spec.video_mask_rate > 0:
    candidates, count, video_masked = _video_choice(
        ids, candidates, count, seed, spec, allowed=ex["alignment_weight"] <= 0)
  actions_masked = tf.constant(False)
  if spec.action_mask_rate > 0 and "action_groups" in ex:
    candidates, count, actions_masked = _action_choice(
        ex["action_groups"], candidates, count, seed, spec,
        allowed=(ex["alignment_weight"] <= 0) & tf.logical_not(video_masked))
  # Random order of the candidates: non-candidates get a score above any candidate.
  scores = tf.random.stateless_uniform(tf.shape(ids), seeds[0])
  scores = tf.where(candidates, scores, 2.0)
  positions = tf.sort(tf.argsort(scores)[:count])
  positions = tf.cast(positions, tf.int32)
  targets = tf.gather(ids, positions)
  action = tf.random.stateless_uniform(tf.shape(positions), seeds[1])
  random_text = tf.random.stateless_uniform(
      tf.shape(positions), seeds[2], spec.first_word_id, lay.text_vocab_size, tf.int32)
  random_visual = tf.random.stateless_uniform(
      tf.shape(positions), seeds[3], lay.visual_offset, lay.num_used_ids, tf.int32)
  is_visual = (targets >= lay.visual_offset) & (targets < lay.num_used_ids)
  random_same_modality = tf.where(is_visual, random_visual, random_text)
  # Masked verb-object pairs are always [MASK]: left visible (or swapped) 20% of
  # the time, they teach copying the word instead of reading the video (a tiny
  # model on the bundled world's template: verb top-1 25% with [MASK] only, 15%
  # with 80/10/10, majority 10%).
  becomes_mask = (action < 0.8) | actions_masked | video_masked
  replacement = tf.where(becomes_mask, tf.fill(tf.shape(targets), lay.mask_id),
                         tf.where(action < 0.9, random_same_modality, targets))
  out = {k: v for k, v in ex.items() if k != "action_groups"}
  out["input_ids"] = tf.tensor_scatter_nd_update(ids, positions[:, None], replacement)
  out["masked_positions"] = positions
  out["masked_ids"] = targets
  out["maskable_count"] = num_candidates  # for the masked share (tasks/recipe_stats.py)
  out["actions_masked"] = tf.cast(actions_masked, tf.int32)
  out["video_masked"] = tf.cast(video_masked, tf.int32)
  return out


def _video_choice(ids, candidates, count, seed, spec: SequenceSpec, allowed=True):
  """With probability ``video_mask_rate``: every visual-word position (text-to-video).

  Returns ``(candidates, count, used)`` like ``_action_choice``; at most
  ``max_predictions`` of them are masked (a random subset when there are more).
  """
  lay = spec.layout
  draw = tf.random.stateless_uniform(
      [], tf.random.experimental.stateless_fold_in(seed, 2))
  chosen = candidates & (ids >= lay.visual_offset) & (ids < lay.num_used_ids)
  num_chosen = tf.reduce_sum(tf.cast(chosen, tf.int32))
  use = (draw < spec.video_mask_rate) & (num_chosen > 0) & allowed
  return (tf.where(use, chosen, candidates),
          tf.where(use, tf.minimum(num_chosen, spec.max_predictions), count), use)


def _action_choice(groups, candidates, count, seed, spec: SequenceSpec, allowed=True):
  """With probability ``action_mask_rate``: the positions of every verb-object pair.

  Returns ``(candidates, count, used)``. All pairs go at once: a sentence and
  its appended neighbour often name the same object ("chop the onion ... slice
  the onion"), and one pair masked alone is then copied from the other. When
  the text has no pair (or truncation cut them all), or the coin says no,
  ``candidates`` and ``count`` come back unchanged and ``used`` is False. Never
  in an alignment pair (``allowed`` False): with its verb and object hidden it
  has nothing left to match against the video.
  """
  draw = tf.random.stateless_uniform(
      [], tf.random.experimental.stateless_fold_in(seed, 1))
  chosen = candidates & (groups > 0)
  num_chosen = tf.reduce_sum(tf.cast(chosen, tf.int32))
  use = (draw < spec.action_mask_rate) & (num_chosen > 0) & allowed
  return (tf.where(use, chosen, candidates),
          tf.where(use, tf.minimum(num_chosen, spec.max_predictions), count), use)


def for_objective(spec: SequenceSpec, objective: int) -> SequenceSpec:
  """``spec`` with the masking of ``objective``: its rate, action masking or not."""
  if objective != batch_lib.VIDEO_TEXT:
    return dataclasses.replace(spec, action_mask_rate=0.0, video_mask_rate=0.0)
  if spec.video_text_mask_rate is not None:
    return dataclasses.replace(spec, mask_rate=spec.video_text_mask_rate)
  return spec


class VideoBertFeatureConverter(seqio.FeatureConverter):
  """Pads task features to the model batch of ``videobert_jax.batch``.

  Task feature lengths: ``input_ids``/``token_type_ids`` -> T,
  ``masked_positions``/``masked_ids`` -> P; the scalar features take None.
  Adds ``attention_mask`` (1 for real tokens) and ``masked_weights`` (the
  example's ``mlm_weight`` for real predictions, 0 for padding).
  """

  TASK_FEATURES = {
      "input_ids": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
      "token_type_ids": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
      "masked_positions": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
      "masked_ids": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
      "alignment_label": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32, rank=0),
      "alignment_weight": seqio.FeatureConverter.FeatureSpec(dtype=tf.float32, rank=0),
      "objective": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32, rank=0),
      "mlm_weight": seqio.FeatureConverter.FeatureSpec(dtype=tf.float32, rank=0),
  }
  MODEL_FEATURES = {
      **{k: v for k, v in TASK_FEATURES.items() if k != "mlm_weight"},
      "attention_mask": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
      "masked_weights": seqio.FeatureConverter.FeatureSpec(dtype=tf.float32),
  }
  PACKING_FEATURE_DTYPES = {}

  def __init__(self, **kwargs):
    """Creates the converter; VideoBERT examples are never packed."""
    super().__init__(pack=False, **kwargs)

  def _convert_features(self, ds, task_feature_lengths):
    t = task_feature_lengths["input_ids"]
    p = task_feature_lengths["masked_positions"]

    def pad(x, n):
      return tf.pad(x, [[0, n - tf.size(x)]])

    def convert(ex):
      n_tokens, n_masked = tf.size(ex["input_ids"]), tf.size(ex["masked_positions"])
      return {
          "input_ids": pad(ex["input_ids"], t),
          "token_type_ids": pad(ex["token_type_ids"], t),
          "attention_mask": pad(tf.ones([n_tokens], tf.int32), t),
          "masked_positions": pad(ex["masked_positions"], p),
          "masked_ids": pad(ex["masked_ids"], p),
          "masked_weights": pad(tf.fill([n_masked], ex["mlm_weight"]), p),
          "alignment_label": ex["alignment_label"],
          "alignment_weight": ex["alignment_weight"],
          "objective": ex["objective"],
      }

    return ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)

  def get_model_feature_lengths(self, task_feature_lengths):
    t = task_feature_lengths["input_ids"]
    p = task_feature_lengths["masked_positions"]
    return {"input_ids": t, "token_type_ids": t, "attention_mask": t,
            "masked_positions": p, "masked_ids": p, "masked_weights": p,
            "alignment_label": None, "alignment_weight": None, "objective": None}


def task_feature_lengths(spec: SequenceSpec) -> dict:
  """The seqio ``sequence_length`` of the tasks (None for scalar features)."""
  t, p = spec.max_seq_len, spec.max_predictions
  return {"input_ids": t, "token_type_ids": t, "masked_positions": p, "masked_ids": p,
          "alignment_label": None, "alignment_weight": None, "objective": None,
          "mlm_weight": None}
