"""``python -m videobert_jax.export --workdir W --out BUNDLE [--step N]``.

Writes the bundle of a training workdir's checkpoint (``bundle.py`` lists its
files): parameters only, config, codebook, vocabulary, label lists, model card and
``bundle.json`` with the sha256 of every file. ``--out`` may be ``gs://...``.
Bad input exits 1 with one line naming the file. Orbax's INFO lines go to
``WORKDIR/logs/export.log`` (``--verbose``: the terminal too).
"""

from __future__ import annotations

import argparse
import sys

from videobert_jax import quiet


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="python -m videobert_jax.export",
                              description="Export a trained VideoBERT as a bundle.")
  p.add_argument("--workdir", required=True, help="training workdir (config.json, checkpoints/)")
  p.add_argument("--out", required=True, help="bundle folder to write (local or gs://)")
  p.add_argument("--step", type=int, help="checkpoint step (default: the newest)")
  p.add_argument("--verbs", help="verb label list (default: the shipped YouCook II list)")
  p.add_argument("--nouns", help="noun label list (default: the shipped YouCook II list)")
  p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
  quiet.add_verbose_flag(p)
  return p


def main(argv=None) -> int:
  """Exports one bundle and prints where it went; 1 on bad input."""
  args = _parser().parse_args(argv)
  if "://" in args.out or "://" in args.workdir:
    quiet.import_tensorflow()  # only gs:// copies need it; minus its start-up lines
  from videobert_jax.export import bundle  # pylint: disable=g-import-not-at-top
  try:
    # Orbax's restore lines go to the run's log, WORKDIR/logs/export.log: the
    # bundle folder holds only the files its manifest lists.
    with quiet.info_to_file(quiet.run_log_path(args.workdir, "export"),
                            info_on_terminal=args.verbose):
      manifest = bundle.export_bundle(args.workdir, args.out, args.step,
                                      verbs_path=args.verbs, nouns_path=args.nouns,
                                      overwrite=args.overwrite)
  except (ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"wrote {manifest['path']}: {bundle.describe(manifest)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
