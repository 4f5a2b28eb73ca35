"""``python -m videobert_jax.quantize {fit,assign,show}``."""

import sys

from videobert_jax.quantize.cli import main

if __name__ == "__main__":
  sys.exit(main())
