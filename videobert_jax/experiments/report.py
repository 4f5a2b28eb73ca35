"""``W/report.json``, ``W/report.html`` and ``W/table2.png`` of ``experiments paper``.

Every number is in the paper's units (accuracy in percent; BLEU, METEOR, ROUGE-L
x100; CIDEr as is) so our rows read directly against ``paper_numbers``. Table 3
rows are the mean over captioner seeds with the sample standard deviation beside
each metric (``<metric>_std``).
"""

from __future__ import annotations

import html
import os
from typing import Any, Mapping, Sequence

import numpy as np

from videobert_jax import fileio
from videobert_jax.experiments import paper_numbers as paper

UNITS = ("accuracy in percent; BLEU-3, BLEU-4, METEOR, ROUGE-L x100; CIDEr as is "
         "(the paper's units)")
CROSS_MODAL_ROW = "VideoBERT cross-modal"
PROTOCOL_TITLES = {"open_vocabulary": "open vocabulary (the paper's protocol)",
                   "label_lists": "label lists (closed vocabulary)"}
TABLE3_SOURCES = (("Features only (pooled)", "full", "features"),
                  ("VideoBERT (video only)", "video_only", "videobert"),
                  ("VideoBERT", "full", "videobert"),
                  ("VideoBERT + features", "full", "videobert_features"))


def _percent(row: Mapping[str, Any], columns: Sequence[str]) -> dict:
  """``row`` with ``columns`` (fractions) in percent; missing values stay None."""
  return {**row, **{c: None if row.get(c) is None else 100.0 * row[c] for c in columns}}


def table1_rows(zero_shot: Mapping[str, Any]) -> list[dict]:
  """Table 1: every zero-shot row of the full model, both protocols."""
  return [_percent(r, paper.ZEROSHOT_COLUMNS) for r in zero_shot["rows"]]


def table2_rows(subsets: Sequence[Mapping[str, Any]]) -> list[dict]:
  """Table 2: the cross-modal row of each subset run, per protocol, smallest first."""
  out = []
  for subset in sorted(subsets, key=lambda s: s["fraction"]):
    for row in subset["rows"]:
      if row["name"] != CROSS_MODAL_ROW:
        continue
      out.append({**_percent(row, paper.ZEROSHOT_COLUMNS),
                  "name": f"{100 * subset['fraction']:g}% ({subset['num_videos']} videos)",
                  "fraction": subset["fraction"], "num_videos": subset["num_videos"],
                  "steps": subset["steps"]})
  return out


def seed_summary(name: str, per_seed: Sequence[Mapping[str, Any]]) -> dict:
  """Mean and sample standard deviation (0 for one seed) of each caption metric."""
  row: dict[str, Any] = {"name": name, "seeds": [r["seed"] for r in per_seed]}
  for metric in paper.CAPTION_COLUMNS:
    scale = 1.0 if metric == "CIDEr" else 100.0
    values = np.asarray([scale * r[metric] for r in per_seed], np.float64)
    row[metric] = float(values.mean())
    row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
  return row


def table3_rows(captions: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> list[dict]:
  """Table 3's four rows from ``{model: {captioning row: [metrics per seed]}}``."""
  return [seed_summary(name, captions[model][row]) for name, model, row in TABLE3_SOURCES]


def build_report(*, budget: str, full: Mapping[str, Any], table1: Mapping[str, Any],
                 table2: Sequence[Mapping[str, Any]],
                 captions_full: Mapping[str, Sequence[Mapping[str, Any]]],
                 captions_video_only: Sequence[Mapping[str, Any]],
                 seconds: Mapping[str, float]) -> dict:
  """The report as a JSON-able dict (see the module docstring for units)."""
  return {
      "budget": budget,
      "units": UNITS,
      "zeroshot_segments": table1["num_segments"],
      "full_model_step": table1["step"],
      "full_model_metrics": dict(full),
      "table1": table1_rows(table1),
      "table2": table2_rows(table2),
      "table3": table3_rows({"full": captions_full,
                             "video_only": {"videobert": captions_video_only}}),
      "paper": {"table1": paper.TABLE1, "table2": paper.TABLE2, "table3": paper.TABLE3},
      "seconds": dict(seconds),  # per stage, when it ran (earlier runs included)
      "seconds_total": round(sum(seconds.values()), 1),
  }


def plot_table2(rows: Sequence[Mapping[str, Any]], path: str) -> None:
  """``path`` (PNG): accuracy vs pretraining videos, one line per column, per protocol."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")  # files only; never a display
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  protocols = [p for p in PROTOCOL_TITLES if any(r["protocol"] == p for r in rows)]
  fig, axes = plt.subplots(1, len(protocols), figsize=(5.5 * len(protocols), 4),
                           squeeze=False)
  for ax, protocol in zip(axes[0], protocols):
    mine = [r for r in rows if r["protocol"] == protocol]
    for column in paper.ZEROSHOT_COLUMNS:
      ax.plot([r["num_videos"] for r in mine], [r[column] for r in mine], marker="o",
              label=column.replace("_", " "))
    ax.set(title=PROTOCOL_TITLES[protocol], xlabel="pretraining videos",
           ylabel="zero-shot accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
  fig.suptitle("Table 2: VideoBERT cross-modal zero-shot accuracy vs data size")
  fig.tight_layout()
  with fileio.atomic_open(path, "wb") as f:
    fig.savefig(f, format="png", dpi=100)
  plt.close(fig)


def _cell(row: Mapping[str, Any], column: str) -> str:
  value = row.get(column)
  if value is None:
    return "-"
  if not isinstance(value, float):
    return html.escape(str(value))
  digits = 2
  text = f"{value:.{digits}f}"
  std = row.get(f"{column}_std")
  return text if std is None else f"{text} &plusmn; {std:.{digits}f}"


def html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
  """One ``<table>``: a name column, then ``columns``."""
  head = "".join(f"<th>{html.escape(c)}</th>" for c in ("", *columns))
  body = "".join("<tr><td>" + html.escape(str(r["name"])) + "</td>"
                 + "".join(f"<td>{_cell(r, c)}</td>" for c in columns) + "</tr>"
                 for r in rows)
  return f"<table><tr>{head}</tr>{body}</table>"


def _side_by_side(title: str, ours: str, theirs: str) -> str:
  return (f"<h3>{html.escape(title)}</h3><div class='pair'><div><h4>This run</h4>{ours}"
          f"</div><div><h4>The paper</h4>{theirs}</div></div>")


def render_html(report: Mapping[str, Any]) -> str:
  """The three tables beside the paper's, and the Table 2 plot."""
  zs = paper.ZEROSHOT_COLUMNS
  parts = [f"<h1>VideoBERT: the paper's experiments (budget {report['budget']})</h1>",
           f"<p>Units: {html.escape(report['units'])}. The paper's figures are "
           "transcribed by hand: check them against the PDF before quoting them. "
           "Our corpus is not the paper's 312K videos; compare shapes, not levels.</p>",
           f"<h2>Table 1: zero-shot action classification "
           f"({report['zeroshot_segments']} validation segments)</h2>"]
  for protocol, title in PROTOCOL_TITLES.items():
    rows = [r for r in report["table1"] if r["protocol"] == protocol]
    theirs = (html_table(report["paper"]["table1"], zs) if protocol == "open_vocabulary"
              else "<p>(the paper reports the open-vocabulary protocol only)</p>")
    parts.append(_side_by_side(title, html_table(rows, zs), theirs))
  parts.append("<h2>Table 2: pretraining data size (VideoBERT cross-modal)</h2>")
  for protocol, title in PROTOCOL_TITLES.items():
    rows = [r for r in report["table2"] if r["protocol"] == protocol]
    theirs = (html_table(report["paper"]["table2"], zs) if protocol == "open_vocabulary"
              else "")
    parts.append(_side_by_side(title, html_table(rows, ("steps", *zs)), theirs))
  parts.append("<p><img src='table2.png' alt='Table 2 plot'></p>")
  seeds = len(report["table3"][0]["seeds"]) if report["table3"] else 0
  parts.append(f"<h2>Table 3: captioning (mean &plusmn; std over {seeds} captioner "
               "seeds)</h2>")
  parts.append(_side_by_side("", html_table(report["table3"], paper.CAPTION_COLUMNS),
                             html_table(report["paper"]["table3"], paper.CAPTION_COLUMNS)))
  style = ("body{font-family:sans-serif;max-width:1200px;margin:auto}"
           "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;"
           "text-align:right}td:first-child{text-align:left}"
           ".pair{display:flex;gap:2em;align-items:flex-start}")
  return ("<!doctype html><html><head><meta charset='utf-8'><title>VideoBERT report"
          f"</title><style>{style}</style></head><body>" + "".join(parts)
          + "</body></html>\n")


def format_summary(report: Mapping[str, Any]) -> str:
  """The short printed summary: each table's headline rows."""
  def four(r):
    return " ".join(f"{r[c]:5.1f}" if r.get(c) is not None else "    -"
                    for c in paper.ZEROSHOT_COLUMNS)
  lines = ["Table 1 (verb top1 top5, noun top1 top5, %):"]
  lines += [f"  [{r['protocol']}] {r['name']}: {four(r)}" for r in report["table1"]]
  lines.append("Table 2 (VideoBERT cross-modal):")
  lines += [f"  [{r['protocol']}] {r['name']}: {four(r)}" for r in report["table2"]]
  lines.append("Table 3 (BLEU-4, METEOR, CIDEr; mean +- std over seeds):")
  lines += [f"  {r['name']}: " + ", ".join(
      f"{r[m]:.2f}+-{r[m + '_std']:.2f}" for m in ("BLEU-4", "METEOR", "CIDEr"))
            for r in report["table3"]]
  return "\n".join(lines)


def write_report(workdir: str, report: Mapping[str, Any]) -> dict:
  """Writes ``report.json``, ``table2.png`` and ``report.html`` into ``workdir``."""
  plot_table2(report["table2"], os.path.join(workdir, "table2.png"))
  fileio.write_json(os.path.join(workdir, "report.json"), dict(report))
  fileio.write_text(os.path.join(workdir, "report.html"), render_html(report))
  return dict(report)
