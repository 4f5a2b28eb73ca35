"""What a training workdir already holds, checked before a run writes anything into it.

A workdir belongs to one run: its ``config.json`` names the model and the data
that its checkpoints were trained with. A later command in the same workdir may
change how training goes on (more steps, a new learning rate, another mesh), but
not what the parameters are or what data they see, unless it says so with
``--config.train.allow_config_change=True``; and a command with nothing left to
do changes nothing.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

# Config sections whose fields shape the parameter tree or the data stream.
LOCKED_SECTIONS = ("model", "data")
# Fields whose values are paths: made absolute so the workdir works from any folder.
PATH_FIELDS = (("data", "corpus_dir"), ("data", "codebook"), ("data", "tfds_data_dir"),
               ("data", "vocab_path"), ("data", "eval_video_ids"), ("init", "checkpoint"))
# Fields added after workdirs were written without them, with the value that does
# what those runs did: a workdir lacking the field matches a config that has it.
ADDED_FIELDS = {"model.mlm_vocab": "full", "model.mlm_vocab_ids": None,
                "data.mask_alignment_pairs": True}


class ConfigMismatchError(ValueError):
  """The config differs from the workdir's in fields that its checkpoints depend on."""


def absolute_paths(config):
  """A copy of ``config`` whose path fields are absolute (``gs://`` and URIs kept)."""
  config = config.copy_and_resolve_references()
  for section, field in PATH_FIELDS:
    holder = config.get(section)
    value = holder.get(field) if holder is not None else None
    if value and "://" not in value:
      holder[field] = os.path.abspath(os.path.expanduser(value))
  return config


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, Mapping):
      flat.update(_flatten(value, name + "."))
    else:
      flat[name] = value
  return flat


def _read_json(path: str) -> dict | None:
  """The JSON object at ``path`` (local or remote), or None when there is no file."""
  if "://" in path:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if not tf.io.gfile.exists(path):
      return None
    with tf.io.gfile.GFile(path) as f:
      return json.load(f)
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def config_differences(saved: Mapping[str, Any], config) -> list[str]:
  """``field=saved vs config`` for every locked field whose value differs."""
  old = _flatten({k: saved.get(k, {}) for k in LOCKED_SECTIONS})
  new = _flatten({k: json.loads(config[k].to_json_best_effort()) for k in LOCKED_SECTIONS})
  for name, value in ADDED_FIELDS.items():
    old.setdefault(name, value)
  return [f"{name}={_short(old.get(name))} in the workdir, {_short(new.get(name))} in "
          "the config" for name in sorted(set(old) | set(new))
          if old.get(name) != new.get(name)]


def _short(value: Any, limit: int = 60) -> str:
  """``repr(value)``, long lists (``model.mlm_vocab_ids``) cut to ``limit`` characters."""
  text = repr(value)
  if len(text) <= limit:
    return text
  size = f", {len(value)} items" if isinstance(value, (list, tuple)) else ""
  return f"{text[:limit]}...{size}"


def check_workdir(config, workdir: str) -> None:
  """Raises ConfigMismatchError when ``config`` cannot go on in ``workdir``.

  A workdir without ``config.json`` or without checkpoints accepts any config.
  """
  saved = _read_json(os.path.join(workdir, "config.json"))
  has_checkpoints = _exists(os.path.join(workdir, "checkpoints"))
  if saved is None or not has_checkpoints:
    return
  differences = config_differences(saved, config)
  if differences and not config.train.get("allow_config_change", False):
    shown = "; ".join(differences[:4])
    more = f" (and {len(differences) - 4} more)" if len(differences) > 4 else ""
    raise ConfigMismatchError(
        f"{workdir}: its checkpoints were trained with another config: {shown}{more}. "
        "Use another --workdir, or --config.train.allow_config_change=True if the "
        "change is deliberate.")


def finished_metrics(workdir: str, num_steps: int) -> dict | None:
  """The final metrics of a run in ``workdir`` that reached ``num_steps``, else None."""
  final = _read_json(os.path.join(workdir, "final_metrics.json"))
  if final is None or int(final.get("step", -1)) < num_steps:
    return None
  return final


def _exists(path: str) -> bool:
  if "://" in path:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.io.gfile.exists(path)
  return os.path.isdir(path) and bool(os.listdir(path))
