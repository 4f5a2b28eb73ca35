"""Command line of the trainer: ``python -m videobert_jax.train --config=... --workdir=...``.

Example::

  python -m videobert_jax.train --config=pretrain:tiny --workdir=runs/tiny \\
      --config.data.corpus_dir=CORPUS --config.data.codebook=CODEBOOK \\
      --config.train.batch_size=8

``--config`` is a config name (``pretrain:SIZE[,paper|actions]``, SIZE one of
``tiny|small|base|large``) or a path to a
config file (``my.py:arg``); ``--show_config`` prints every field and exits. Run
the same command on every host of a pod; ``--distributed`` (auto by default)
calls ``jax.distributed.initialize()`` first.
"""

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from videobert_jax import configs
from videobert_jax.train import distributed

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, TensorBoard events and "
                    "final metrics (local or gs://). Resumes from its latest checkpoint.")
flags.DEFINE_enum("distributed", "auto", list(distributed.MODES),
                  "Call jax.distributed.initialize() (multi-host): 'auto' does so when the "
                  "environment names a coordinator (JAX_COORDINATOR_ADDRESS with "
                  "JAX_NUM_PROCESSES and JAX_PROCESS_ID) or several TPU/SLURM workers.")
flags.DEFINE_enum("host_input", "shard", ["shard", "slice"],
                  "How the processes share the input: 'shard' (each reads its own part of "
                  "the data; scales) or 'slice' (each reads the global batch and keeps its "
                  "rows; the run is then the same for any process count).")
flags.DEFINE_bool("show_config", False, "Print every field of the config (with the "
                  "overrides applied) and exit.")
config_flags.DEFINE_config_file(
    "config", None, "Training config: pretrain:tiny|small|base|large[,paper|actions] "
    "(installed with the package; large defaults to the paper's recipe) or FILE.py[:ARG]. Override any field with --config.train.batch_size=8 "
    "and the like; --show_config lists them all.", lock_config=True)

# Kept here for callers of the old name; the logic lives in train/distributed.py.
multihost_environment = distributed.multihost_environment


def main(argv):
  """Initialises multi-host JAX if needed and runs ``train.loop.train``."""
  del argv
  if FLAGS.config is None:
    raise app.UsageError("--config is required, e.g. --config=pretrain:tiny")
  if FLAGS.show_config:
    print(FLAGS.config)
    return
  if FLAGS.workdir is None:
    raise app.UsageError("--workdir is required")
  from videobert_jax import quiet  # pylint: disable=g-import-not-at-top
  # Orbax logs every save and restore at INFO, which would bury the progress bar
  # and the summary: they go to WORKDIR/logs/train.log (--verbosity=0: the terminal
  # too), once the process knows its index; until then INFO lines are dropped.
  undo = quiet.log_to_file(None)
  quiet.import_tensorflow()  # for the input pipeline, minus its start-up lines
  try:
    distributed.initialize(FLAGS.distributed)  # before any device is touched
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  name = _log_name()
  undo()
  quiet.log_to_file(quiet.run_log_path(FLAGS.workdir, name))
  from videobert_jax.train import loop  # pylint: disable=g-import-not-at-top
  from videobert_jax.train import preemption  # pylint: disable=g-import-not-at-top
  try:
    loop.train(FLAGS.config, FLAGS.workdir, host_input=FLAGS.host_input)
  except preemption.Preempted as e:
    print(e, file=sys.stderr)
    sys.exit(preemption.EXIT_CODE)  # launch/*.sh rerun the command on this status
  except (ValueError, FileNotFoundError, FloatingPointError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)


def _log_name() -> str:
  """``train``, or ``train.process-N`` on the other processes of a multi-host run."""
  import jax  # pylint: disable=g-import-not-at-top
  index = jax.process_index()
  return "train" if index == 0 else f"train.process-{index}"


def run(argv=None):
  """Entry point: config names resolved and overrides checked before absl parses."""
  argv = list(sys.argv if argv is None else argv)
  app.run(main, argv=configs.command_argv(argv))


if __name__ == "__main__":
  run()
