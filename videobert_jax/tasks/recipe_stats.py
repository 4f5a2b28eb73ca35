"""What a recipe does to the examples, measured: masked share, subsampling, pairing.

A recipe (``config.recipe``: ``paper`` or ``actions``) is a handful of rates whose
effect on real examples is easy to misjudge: a subsampling rate drawn from 1..5 is
capped on short spans, action masking only applies to sentences with a verb-object
pair, alignment pairs are a share of a share. ``recipe_statistics`` draws examples
from each objective's seqio task (after every preprocessor, before batching) and
counts what happened; the trainer writes the result to ``WORKDIR/recipe_stats.json``
and to TensorBoard as ``recipe/<objective>/<name>`` at the first step.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

DEFAULT_EXAMPLES = 256  # per objective: enough for shares to about +-3%


def _objective_stats(examples: list[dict], max_subsample: int) -> dict[str, float]:
  """The shares of one objective's examples (see ``recipe_statistics``)."""
  masked = sum(int(np.size(ex["masked_positions"])) for ex in examples)
  maskable = sum(int(ex["maskable_count"]) for ex in examples)
  tokens = sum(int(np.size(ex["input_ids"])) for ex in examples)
  out = {"examples": float(len(examples)),
         "masked_share": masked / max(maskable, 1),  # of the maskable tokens
         "masked_per_example": masked / max(len(examples), 1),
         "tokens_per_example": tokens / max(len(examples), 1),
         "action_masked_share": float(np.mean([int(ex["actions_masked"])
                                               for ex in examples])),
         "video_masked_share": float(np.mean([int(ex.get("video_masked", 0))
                                              for ex in examples]))}
  rates = [int(ex["subsample_rate"]) for ex in examples if "subsample_rate" in ex]
  if rates:
    counts = collections.Counter(rates)
    out["subsample_rate_mean"] = float(np.mean(rates))
    for rate in range(1, max_subsample + 1):
      out[f"subsample_rate_{rate}_share"] = counts.get(rate, 0) / len(rates)
  weights = np.asarray([float(ex["alignment_weight"]) for ex in examples])
  if weights.any():
    labels = np.asarray([int(ex["alignment_label"]) for ex in examples])
    out["alignment_share"] = float((weights > 0).mean())
    out["negative_share_of_alignment"] = float((labels[weights > 0] == 0).mean())
    out["whole_share_of_alignment"] = float(np.mean(
        [np.size(ex["masked_positions"]) == 0 for ex, w in zip(examples, weights) if w > 0]))
  return out


def recipe_statistics(config, num_examples: int = DEFAULT_EXAMPLES,
                      split: str = "train") -> dict[str, dict[str, float]]:
  """``{objective: {statistic: value}}`` over ``num_examples`` examples each.

  Statistics: ``masked_share`` (masked tokens / maskable tokens),
  ``masked_per_example``, ``tokens_per_example``, ``action_masked_share``,
  ``video_masked_share``
  (examples whose verb-object pairs were masked), ``subsample_rate_mean`` and
  ``subsample_rate_<r>_share`` (video objectives), ``alignment_share`` and
  ``negative_share_of_alignment`` and ``whole_share_of_alignment`` (alignment
  pairs with no masked token: ``data.mask_alignment_pairs`` False) (video-text).
  """
  import seqio  # pylint: disable=import-outside-toplevel
  from videobert_jax.tasks import pipeline  # pylint: disable=import-outside-toplevel
  from videobert_jax.tasks import preprocessors  # pylint: disable=import-outside-toplevel
  from videobert_jax.tasks import registry  # pylint: disable=import-outside-toplevel
  data = config.data
  rates = registry.mixture_rates(data)
  metadata = pipeline.ensure_datasets(data, kinds=tuple(rates))
  layout, first_word_id = pipeline.token_layout(config, metadata)
  registry.register(data, layout, first_word_id)
  spec = registry.sequence_spec(data, layout, first_word_id)
  lengths = preprocessors.task_feature_lengths(spec)
  out = {}
  for kind in rates:
    task = seqio.get_mixture_or_task(registry.TASKS[kind][0])
    # Unshuffled: the first examples are as good a sample of the rates as any, and
    # this skips filling the shuffle buffer.
    ds = task.get_dataset(lengths, split=split, shuffle=False, seed=int(data.seed),
                          num_epochs=None).take(num_examples)
    out[kind] = _objective_stats(list(ds.as_numpy_iterator()), int(spec.max_subsample))
  return out


def as_scalars(stats: dict[str, dict[str, float]]) -> dict[str, Any]:
  """``recipe/<objective>/<statistic>`` -> value, for metric writers."""
  return {f"recipe/{kind}/{name}": value for kind, values in stats.items()
          for name, value in values.items()}


def describe(stats: dict[str, dict[str, float]]) -> str:
  """One line per objective: masked share, action masking, rates, alignment."""
  lines = []
  for kind, s in stats.items():
    parts = [f"{100 * s['masked_share']:.0f}% of maskable tokens masked"]
    if s.get("action_masked_share"):
      parts.append(f"{100 * s['action_masked_share']:.0f}% action-masked")
    if s.get("video_masked_share"):
      parts.append(f"{100 * s['video_masked_share']:.0f}% video-masked")
    if "subsample_rate_mean" in s:
      shares = [s[k] for k in sorted(s) if k.startswith("subsample_rate_")
                and k.endswith("_share")]
      parts.append("subsampling rate 1..%d drawn %s" % (
          len(shares), "/".join(f"{100 * v:.0f}%" for v in shares)))
    if "alignment_share" in s:
      whole = s.get("whole_share_of_alignment", 0.0)
      parts.append(f"{100 * s['alignment_share']:.0f}% train alignment "
                   f"({100 * s['negative_share_of_alignment']:.0f}% of those negative"
                   + (f", {100 * whole:.0f}% left unmasked)" if whole else ")"))
    lines.append(f"recipe, {kind}: " + ", ".join(parts))
  return "\n".join(lines)
