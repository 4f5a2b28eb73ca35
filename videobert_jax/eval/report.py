"""Plain-text tables and result files of the evaluation tasks."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from videobert_jax import fileio


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]],
                 name_key: str = "name", percent: bool = True) -> str:
  """A fixed-width table: one line per row, ``columns`` as ``(key, header)``.

  Numbers are printed as percentages with one decimal when ``percent``; a
  missing value prints as ``-``.
  """
  def cell(value):
    if value is None:
      return "-"
    if isinstance(value, float):
      return f"{100 * value:.1f}" if percent else f"{value:.2f}"
    return str(value)

  header = ["", *(h for _, h in columns)]
  body = [[str(r[name_key]), *(cell(r.get(k)) for k, _ in columns)] for r in rows]
  widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
  def line(cells):
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                     for i, (c, w) in enumerate(zip(cells, widths)))
  rule = "-" * len(line(header))
  return "\n".join([line(header), rule, *(line(b) for b in body)])


def results_dir(workdir: str | os.PathLike) -> str:
  """``WORKDIR/eval``, where the tasks write their JSON and pages."""
  return os.path.join(os.fspath(workdir), "eval")


def write_results(workdir: str | os.PathLike, name: str, results: Mapping[str, Any]) -> str:
  """Writes ``WORKDIR/eval/<name>.json`` atomically; returns its path."""
  path = os.path.join(results_dir(workdir), f"{name}.json")
  fileio.write_json(path, dict(results))
  return path
