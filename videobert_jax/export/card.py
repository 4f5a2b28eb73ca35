"""The bundle's ``README.md``: a model card written from what the workdir knows.

Sections: how to load it, the model's shape, the pretraining corpus (counted
from its ``videos.jsonl`` when readable at export time), the recipe (config and
final training metrics), the zero-shot and captioning tables of the exported
step (from ``WORKDIR/eval/*.json`` when they are of that step), and where this
checkpoint's recipe departs from the paper (read off its config, with a link to
``docs/departures.md`` for the full list).
"""

from __future__ import annotations

import collections
import json
import os
from typing import Any, Sequence

DEPARTURES_URL = "docs/departures.md"  # in the videobert_jax repository
PAPER_VISUAL_WORDS = 12**4
PAPER_STEPS = 500_000


def _read_json(path: str) -> Any:
  """The JSON at ``path``, or None when it is missing or unreadable."""
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def eval_results(workdir: str, step: int, names: Sequence[str]) -> dict[str, dict]:
  """``name -> {"path", "data"}`` of the ``WORKDIR/eval/<name>.json`` of ``step``.

  Results of another step describe another checkpoint and are left out.
  """
  out = {}
  for name in names:
    path = os.path.join(workdir, "eval", f"{name}.json")
    data = _read_json(path)
    if isinstance(data, dict) and data.get("step") == step:
      out[name] = {"path": path, "data": data}
  return out


def count_params(params) -> int:
  """Number of parameters in a tree of arrays."""
  import jax  # pylint: disable=g-import-not-at-top
  return int(sum(int(x.size) for x in jax.tree.leaves(params)))


def corpus_summary(corpus_dir: str | None) -> dict | None:
  """Videos, videos with ASR and languages of a corpus's ``videos.jsonl``, or None."""
  if not corpus_dir:
    return None
  path = os.path.join(corpus_dir, "videos.jsonl")
  try:
    with open(path, encoding="utf-8-sig") as f:
      lines = [json.loads(line) for line in f if line.strip()]
  except (OSError, ValueError):
    return None
  languages = collections.Counter(str(v.get("language", "unknown")) for v in lines)
  return {"videos": len(lines), "with_asr": sum(1 for v in lines if v.get("asr")),
          "languages": dict(languages.most_common()), "path": corpus_dir}


def _table(rows: Sequence[dict], columns: Sequence[tuple[str, str]], percent: bool) -> str:
  """A Markdown table of result rows (``percent``: values x100, one decimal)."""
  def cell(value):
    if not isinstance(value, (int, float)) or isinstance(value, bool):
      return "-" if value is None else str(value)
    return f"{100 * value:.1f}" if percent else f"{value:.3f}"
  lines = ["| | " + " | ".join(h for _, h in columns) + " |",
           "| --- |" + " --- |" * len(columns)]
  lines += ["| " + " | ".join([str(r.get("name")), *(cell(r.get(k)) for k, _ in columns)])
            + " |" for r in rows]
  return "\n".join(lines)


def _results_section(results: dict[str, dict], step: int) -> list[str]:
  """The zero-shot (per protocol) and captioning tables, or a line saying why not."""
  from videobert_jax.eval import caption_metrics  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import zeroshot  # pylint: disable=g-import-not-at-top
  lines = ["## Results of this checkpoint", ""]
  if "zeroshot" in results:
    data = results["zeroshot"]["data"]
    lines.append(f"Zero-shot verb and noun classification (the paper's Table 1), "
                 f"{data.get('num_segments')} validation segments, accuracy in %:")
    for protocol in zeroshot.PROTOCOLS:
      rows = [r for r in data.get("rows", []) if r.get("protocol") == protocol]
      if rows:
        lines += ["", f"Protocol `{protocol}`:", "", _table(rows, zeroshot.COLUMNS, True)]
    lines.append("")
  if "captioning" in results:
    data = results["captioning"]["data"]
    shown = [{**r, **{m: r.get(m) * (1 if m == "CIDEr" else 100)
                      for m in caption_metrics.METRICS if r.get(m) is not None}}
             for r in data.get("rows", [])]
    lines += [f"Captioning (the paper's Table 3), {data.get('num_validation_segments')} "
              "validation segments (BLEU, METEOR, ROUGE-L x100; CIDEr as is):", "",
              _table(shown, [(m, m) for m in caption_metrics.METRICS], False), ""]
  if not results:
    lines += [f"The workdir had no evaluation results of step {step} at export time "
              "(`python -m videobert_jax.eval --task=zeroshot --bundle BUNDLE ...` "
              "computes them).", ""]
  return lines


def _departures(config) -> list[str]:
  """Where this checkpoint's recipe differs from the paper's, read off its config."""
  model, data, train = config.model, config.data, config.train
  points = []
  if (model.num_layers, model.hidden_size) != (24, 1024):
    points.append(f"model {model.num_layers} x {model.hidden_size} (paper: BERT-large, "
                  "24 x 1024)")
  if not config.init.get("checkpoint"):
    points.append("trained from scratch (paper: initialised from text-pretrained BERT)")
  if model.num_visual_words != PAPER_VISUAL_WORDS:
    points.append(f"{model.num_visual_words} visual words (paper: 12^4 = 20,736)")
  if float(data.get("action_mask_rate", 0.0)) > 0:
    points.append(f"action masking of verb-object pairs in {data.action_mask_rate:.0%} of "
                  "video-text examples (paper: BERT's random masking)")
  if not data.get("mask_alignment_pairs", True):
    points.append("alignment pairs left unmasked and trained on the alignment loss alone "
                  "(paper: not said; BERT's next-sentence pairs are masked)")
  if int(train.num_steps) != PAPER_STEPS:
    points.append(f"{train.num_steps} steps at batch {train.batch_size}, lr "
                  f"{train.learning_rate:g} (paper: 500K at 128, lr 1e-5)")
  if not model.get("freeze_embeddings", True):
    points.append("embedding tables trained (paper: frozen at BERT's)")
  return points


def _recipe(config, facts: dict) -> list[str]:
  """The config's recipe and the run's final metrics."""
  model, data, train = config.model, config.data, config.train
  final = _read_json(os.path.join(facts["trained_from"]["workdir"], "final_metrics.json"))
  lines = ["## Recipe", "",
           f"- config size `{config.get('size', '?')}`: {model.num_layers} layers x "
           f"{model.hidden_size} hidden, {model.num_heads} heads, MLP {model.mlp_dim}, "
           f"{facts['num_params']:,} parameters, compute dtype {model.dtype}",
           f"- {facts['step']} of {train.num_steps} steps, batch {train.batch_size}, "
           f"learning rate {train.learning_rate:g}, warm-up {train.get('warmup_steps')}, "
           f"seeds {train.seed} (model) / {data.seed} (data)",
           f"- sequences of {data.max_seq_len} tokens, at most {data.max_video_tokens} "
           f"visual words, objective weights {dict(train.objective_weights)}",
           f"- text initialisation: {config.init.get('checkpoint') or 'none (from scratch)'}"]
  if final:
    shown = {k: round(v, 4) for k, v in final.items()
             if isinstance(v, float) and k.endswith(("loss", "accuracy"))}
    lines.append(f"- final metrics at step {final.get('step')}: "
                 + ", ".join(f"{k} {v}" for k, v in sorted(shown.items())))
  return lines + [""]


def model_card(facts: dict, out: str) -> str:
  """The Markdown model card of a bundle (``bundle._write_contents``'s facts)."""
  config, step = facts["config"], facts["step"]
  name = os.path.basename(out.rstrip("/"))
  corpus = corpus_summary(facts["trained_from"].get("corpus_dir"))
  lines = [f"# VideoBERT (videobert_jax), {config.get('size', '')} config, step {step}", "",
           "A VideoBERT (Sun et al., ICCV 2019) trained with videobert_jax, exported as a "
           "self-contained bundle (format v1): parameters (Orbax and `model.safetensors`), "
           "config, codebook, WordPiece vocabulary and zero-shot label lists. "
           "`bundle.json` holds the sha256 of every file.", "",
           "```python", "import videobert_jax",
           f'model = videobert_jax.load("{name}")',
           "model.zero_shot(features)  # features: [clips, D] of one segment",
           "```", "", "## Pretraining corpus", ""]
  if corpus:
    langs = ", ".join(f"{k} {v}" for k, v in corpus["languages"].items())
    lines.append(f"{corpus['videos']} videos ({corpus['with_asr']} with ASR; languages: "
                 f"{langs}), from `{corpus['path']}`.")
  elif facts["trained_from"].get("corpus_dir"):
    lines.append(f"Not readable at export time (`{facts['trained_from']['corpus_dir']}`).")
  else:
    lines.append("Not recorded: the training config has no `data.corpus_dir`.")
  lines += ["", *_recipe(config, facts), *_results_section(facts["results"], step),
            "## Departures from the paper", ""]
  lines += [f"- {p}" for p in _departures(config)] or ["- none found in the config"]
  lines += ["", f"Every departure of the code, with reasons and measured effects: "
            f"{DEPARTURES_URL} in the videobert_jax repository.", ""]
  return "\n".join(lines)
