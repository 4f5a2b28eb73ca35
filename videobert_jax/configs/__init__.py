"""ml_collections configs, installed with the package, loaded one way everywhere.

A config is named ``NAME[:ARG]``: ``pretrain:tiny`` is ``get_config("tiny")`` of
``videobert_jax/configs/pretrain.py``, ``captioner`` is ``captioner.py``'s
``get_config()``. A path to a Python file (``my_configs/run.py:large``) works too,
from any folder. Commands take ``--config=NAME`` and field overrides such as
``--config.train.batch_size=8`` (absl ``config_flags``); ``resolve_flag_argv``
turns names into file paths before absl parses them, and ``check_overrides``
rejects a mistyped field in one line.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import sys
from typing import Sequence

CONFIG_DIR = os.path.dirname(os.path.abspath(__file__))
NAMES = ("pretrain", "captioner")


class ConfigError(ValueError):
  """A config name, file or override that cannot be used."""


def config_path(spec: str) -> str:
  """``pretrain:tiny`` -> ``/.../videobert_jax/configs/pretrain.py:tiny``; paths unchanged."""
  path, sep, arg = spec.partition(":")
  if path in NAMES:
    path = os.path.join(CONFIG_DIR, path + ".py")
  elif not path.endswith(".py"):
    raise ConfigError(f"--config={spec}: not a config name ({', '.join(NAMES)}) "
                      "nor a .py file")
  elif not os.path.exists(path):
    raise ConfigError(f"{path}: no such config file")
  return path + sep + arg


def load(spec: str):
  """The ``ConfigDict`` that ``spec`` (``NAME[:ARG]`` or ``FILE.py[:ARG]``) names."""
  path, _, arg = config_path(spec).partition(":")
  module_spec = importlib.util.spec_from_file_location(
      "_videobert_config_" + os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ConfigError(f"{path}: defines no get_config()")
  return module.get_config(arg) if arg else module.get_config()


def resolve_flag_argv(argv: Sequence[str], flag: str = "config") -> list[str]:
  """``argv`` with ``--FLAG=NAME[:ARG]`` (or ``--FLAG NAME``) turned into a file path."""
  out, argv = [], list(argv)
  i = 0
  while i < len(argv):
    arg = argv[i]
    if arg == f"--{flag}" and i + 1 < len(argv):
      out += [arg, config_path(argv[i + 1])]
      i += 2
      continue
    if arg.startswith(f"--{flag}="):
      arg = f"--{flag}=" + config_path(arg.split("=", 1)[1])
    out.append(arg)
    i += 1
  return out


def _fields(config, prefix: str = "") -> list[str]:
  names = []
  for key, value in config.items():
    names.append(prefix + key)
    if hasattr(value, "items"):
      names += _fields(value, prefix + key + ".")
  return names


def check_overrides(argv: Sequence[str], flag: str = "config",
                    default: str | None = None) -> None:
  """Raises ConfigError naming the first ``--FLAG.a.b=`` override that is no field.

  The error names the closest real field, e.g. ``--config.train.batchsize: no such
  field; did you mean train.batch_size?``.
  """
  spec = default
  for i, arg in enumerate(argv):
    if arg.startswith(f"--{flag}="):
      spec = arg.split("=", 1)[1]
    elif arg == f"--{flag}" and i + 1 < len(argv):
      spec = argv[i + 1]
  if spec is None:
    return
  known = set(_fields(load(spec)))
  pattern = re.compile(rf"^--(?:no)?{re.escape(flag)}\.([\w.]+)(?:=|$)")
  for arg in argv:
    match = pattern.match(arg)
    if match and match.group(1) not in known:
      close = difflib.get_close_matches(match.group(1), sorted(known), n=1, cutoff=0.5)
      hint = f"; did you mean {close[0]}?" if close else ""
      raise ConfigError(f"--{flag}.{match.group(1)}: no such field in {spec}{hint}")


def command_argv(argv: Sequence[str], flag: str = "config",
                 default: str | None = None) -> list[str]:
  """``argv`` ready for absl: the ``--FLAG`` name resolved, overrides checked.

  A bad name or a mistyped override exits 1 with one line on stderr.
  """
  try:
    argv = resolve_flag_argv(argv, flag)
    check_overrides(argv, flag, default)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  return argv
