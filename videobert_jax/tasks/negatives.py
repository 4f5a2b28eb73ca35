"""Alignment pairs for the video-text objective: which pairs train alignment, and their negatives.

Step 4 of the preprocessing chain (``videobert_jax.tasks.preprocessors``). A
running pool of recent examples' videos supplies negatives from *another* video;
``SequenceSpec.alignment_rate`` decides which pairs train alignment,
``negative_rate`` how many of those get another video, and
``paired_negatives`` shows each alignment text with both videos. The validation
task of alignment (``paired=True``) scores every sentence both ways.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import seqio
import tensorflow as tf

if TYPE_CHECKING:
  from videobert_jax.tasks.preprocessors import SequenceSpec

NEGATIVE_POOL = 16  # recent videos an alignment negative is drawn from


@seqio.map_over_dataset(num_seeds=1)
def _draw_negative(ex, seed, spec: SequenceSpec):
  draws = tf.random.stateless_uniform([2], seed)
  role = tf.random.stateless_uniform(
      [], tf.random.experimental.stateless_fold_in(seed, 1))
  negative_share = spec.alignment_rate * spec.negative_rate
  out = dict(ex)
  out["_make_negative"] = draws[0] < negative_share
  out["_pick"] = draws[1]
  out["_draws_alignment"] = draws[0] < spec.alignment_rate  # paired_negatives
  # Among the aligned pairs, the share that trains alignment too, so that an
  # alignment pair is negative with probability negative_rate.
  positive_share = (spec.alignment_rate - negative_share) / max(1.0 - negative_share, 1e-9)
  out["_alignment_positive"] = role < positive_share
  return out


def alignment_negatives(dataset: tf.data.Dataset, spec: SequenceSpec,
                        paired: bool = False) -> tf.data.Dataset:
  """Makes about ``negative_rate`` of the pairs negative with another video's tokens.

  A running pool of the last ``NEGATIVE_POOL`` examples' videos is kept; a
  negative takes a random pooled video whose ``video_id`` differs from its own,
  so it truly comes from another video. An example for which no such video is
  pooled yet stays positive. Adds ``alignment_label`` (1 aligned, 0 negative)
  and ``video_source_id`` (the video the tokens came from).

  ``paired`` (the validation of alignment): every example for which another
  video is pooled comes out twice, aligned and negative, both alignment pairs
  with no masked-token loss; the others are dropped. Exactly half the pairs are
  negatives, and every sentence is scored both ways.

  ``spec.paired_negatives`` (training): each example drawn for alignment
  (``alignment_rate``) for which another video is pooled comes out twice, aligned
  (its masked-token loss kept) and negative; the other examples come out once,
  aligned and outside alignment.
  """
  dataset = _draw_negative(dataset, spec=spec)
  width = spec.max_video_tokens  # assembly never keeps more than this
  initial = (tf.zeros([NEGATIVE_POOL, width], tf.int32),
             tf.zeros([NEGATIVE_POOL], tf.int32),
             tf.fill([NEGATIVE_POOL], ""),
             tf.constant(0, tf.int64))

  def step(state, ex):
    pool, lengths, pool_ids, count = state
    video = ex["video_ids"][:width]
    usable = (lengths > 0) & tf.not_equal(pool_ids, ex["video_id"])
    num_usable = tf.reduce_sum(tf.cast(usable, tf.int32))
    negative = ex["_make_negative"] & (num_usable > 0)
    choice = tf.minimum(tf.cast(ex["_pick"] * tf.cast(num_usable, tf.float32), tf.int32),
                        tf.maximum(num_usable - 1, 0))
    usable_slots = tf.reshape(tf.where(usable), [-1])
    slot = tf.cond(num_usable > 0,
                   lambda: tf.cast(tf.gather(usable_slots, choice), tf.int32),
                   lambda: tf.constant(0, tf.int32))
    out = {k: v for k, v in ex.items() if not k.startswith("_")}
    if paired or spec.paired_negatives:
      out["_other_video_ids"] = pool[slot, :lengths[slot]]
      out["_other_source_id"] = pool_ids[slot]
      out["_has_other"] = num_usable > 0
      out["_is_alignment"] = ex["_draws_alignment"]
    else:
      out["video_ids"] = tf.cond(negative, lambda: pool[slot, :lengths[slot]],
                                 lambda: ex["video_ids"])
      out["video_source_id"] = tf.where(negative, pool_ids[slot], ex["video_id"])
      out["alignment_label"] = tf.cast(tf.logical_not(negative), tf.int32)
      # A pair drawn negative with no other video pooled yet stays out of
      # alignment unless its positive draw says otherwise: the classes keep
      # their shares.
      out["alignment_example"] = negative | ex["_alignment_positive"]
    # The pool keeps the example's own (aligned) video.
    write = tf.cast(count % NEGATIVE_POOL, tf.int32)
    padded = tf.pad(video, [[0, width - tf.size(video)]])
    pool = tf.tensor_scatter_nd_update(pool, [[write]], padded[None])
    lengths = tf.tensor_scatter_nd_update(lengths, [[write]], [tf.size(video)])
    pool_ids = tf.tensor_scatter_nd_update(pool_ids, [[write]], [ex["video_id"]])
    return (pool, lengths, pool_ids, count + 1), out

  dataset = dataset.scan(initial, step)
  if paired:
    return _both_ways(dataset.filter(lambda ex: ex["_has_other"]), validation=True)
  return _both_ways(dataset, validation=False) if spec.paired_negatives else dataset


def _both_ways(dataset: tf.data.Dataset, validation: bool) -> tf.data.Dataset:
  """Each alignment draw as an aligned and a negative pair; other examples once.

  ``validation``: every example (all have another video pooled) comes out both
  ways, alignment only (no masked-token loss). Training: examples drawn for
  alignment with another video pooled come out both ways; the aligned copy's
  masked-token loss is then ``alignment_pairs_mlm``'s to keep (``assemble``),
  and the other examples come out once, aligned and outside alignment.
  """

  def split(ex):
    base = {k: v for k, v in ex.items() if not k.startswith("_")}
    if validation:
      both = tf.constant(True)
      base["alignment_only"] = tf.constant(True)
    else:
      both = ex["_is_alignment"] & ex["_has_other"]
    aligned = {**base, "video_source_id": ex["video_id"],
               "alignment_label": tf.constant(1, tf.int32), "alignment_example": both}
    negative = {**base, "video_ids": ex["_other_video_ids"],
                "video_source_id": ex["_other_source_id"],
                "alignment_label": tf.constant(0, tf.int32),
                "alignment_example": tf.constant(True)}
    pairs = tf.data.Dataset.from_tensors(aligned).concatenate(
        tf.data.Dataset.from_tensors(negative))
    return pairs.take(tf.where(both, tf.constant(2, tf.int64), tf.constant(1, tf.int64)))

  return dataset.flat_map(split)
