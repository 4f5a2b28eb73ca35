"""The main job on the bundled data: ``python -m videobert_jax.demo --workdir DIR``.

Stages are added as the pipeline grows; each prints what it did.
"""

import argparse
import json
import os

from videobert_jax import tokens


def main(argv=None):
  """Runs the demo pipeline and prints a summary."""
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--workdir", default="runs/demo", help="where outputs go")
  args = parser.parse_args(argv)
  os.makedirs(args.workdir, exist_ok=True)
  layout = tokens.TokenLayout()
  print("token layout:", json.dumps(layout.to_dict()))


if __name__ == "__main__":
  main()
