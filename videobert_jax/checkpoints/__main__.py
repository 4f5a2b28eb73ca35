"""``python -m videobert_jax.checkpoints`` is now ``python -m videobert_jax.pretrained``
(kept as an alias for one release)."""

import sys

from videobert_jax.pretrained import __main__ as pretrained_main

if __name__ == "__main__":
  print("note: videobert_jax.checkpoints is now videobert_jax.pretrained",
        file=sys.stderr)
  sys.exit(pretrained_main.main())
