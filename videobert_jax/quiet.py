"""Keeping known third-party chatter off stderr, and nothing else.

* TensorFlow 2.21 logs INFO lines at import (oneDNN custom operations, CUDA
  probing on a machine without a GPU) through absl before absl's log is
  initialised, where ``TF_CPP_MIN_LOG_LEVEL`` does not reach them.
* pycocoevalcap's PTB tokenizer (a Java process) reports its speed on stderr at
  every call: twice per captioning evaluation.
* TFDS prints "Downloading and preparing dataset Unknown size ..." for every
  build of our builders, which download nothing.

The first two write to file descriptor 2 from C++ or a child process, so
redirecting ``sys.stderr`` does not catch them; ``filtered_stderr`` captures the
descriptor and passes on every line that is not the named chatter.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile

# absl's pre-initialisation notice and INFO lines ("I" + month and day).
# The second line of its CPU-feature notice; the CUDA probe's error on a machine
# without a GPU (TensorFlow's wheel always probes, JAX never needs it to).
TF_STARTUP = re.compile(
    r"^(I\d{4} .*|WARNING: All log messages before absl::InitializeLog\(\) is called "
    r"are written to STDERR"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate "
    r"compiler flags\."
    r"|E\d{4} .*failed call to cuInit: .*)$")
PTB_TOKENIZER_SPEED = re.compile(
    r"^PTBTokenizer tokenized \d+ tokens at [\d.]+ tokens per second\.$")


@contextlib.contextmanager
def filtered_stderr(drop: re.Pattern):
  """Captures file descriptor 2 for the block and then passes on the lines ``drop`` misses.

  The lines come out when the block ends, also when it raises.
  """
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      for line in captured.read().decode("utf-8", "replace").splitlines():
        if not drop.match(line):
          sys.stderr.write(line + "\n")


def import_tensorflow():
  """Imports and returns ``tensorflow`` without its C++ start-up lines.

  TensorFlow only feeds the input pipeline here, so it is kept off every GPU
  (as the Flax examples do): JAX owns the accelerators, and TensorFlow would
  otherwise reserve their memory. Hiding them initialises TensorFlow's devices
  inside the filter, which is where its CUDA probe reports "failed call to
  cuInit" on a machine without a GPU.
  """
  if "tensorflow" in sys.modules:
    return sys.modules["tensorflow"]
  with filtered_stderr(TF_STARTUP):
    import tensorflow  # pylint: disable=import-outside-toplevel
    tensorflow.config.set_visible_devices([], "GPU")
  return tensorflow


class _DropMissingInfoWarning(logging.Filter):
  """Drops TFDS's warning about the version folder it is about to fill."""

  def filter(self, record: logging.LogRecord) -> bool:
    return "has no dataset_info.json" not in record.getMessage()


@contextlib.contextmanager
def tfds_build_messages_to_log():
  """Routes TFDS's build chatter to the log instead of stdout.

  TFDS prints "Downloading and preparing dataset Unknown size ..." and a done
  line to stdout for every build, though nothing is downloaded; those lines go
  to ``logging.info``. Its progress bars stay on a terminal and are off when
  stderr is a file (a pod job's log), where they are only carriage returns.
  """
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  buffer = io.StringIO()
  absl_logger = logging.getLogger("absl")
  warning_filter = _DropMissingInfoWarning()
  absl_logger.addFilter(warning_filter)
  tfds.display_progress_bar(sys.stderr.isatty())
  try:
    with contextlib.redirect_stdout(buffer):
      yield
  finally:
    tfds.display_progress_bar(True)
    absl_logger.removeFilter(warning_filter)
    for line in buffer.getvalue().splitlines():
      if line.strip():
        logging.info("tfds: %s", line.strip())


def log_to_file(path: str | os.PathLike) -> str | None:
  """Sends absl's log (Orbax's and TFDS's INFO lines) to ``path``, warnings still to stderr.

  A command calls this once its flags are parsed. ``--logtostderr`` or
  ``--alsologtostderr`` keep everything on the terminal as absl normally does;
  ``--stderrthreshold`` still chooses what also reaches it (default: warnings).
  Returns the log's path, or None when the user asked for the terminal.
  """
  from absl import flags  # pylint: disable=import-outside-toplevel
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  flag_values = flags.FLAGS
  if flag_values["logtostderr"].value or flag_values["alsologtostderr"].value:
    return None
  path = os.path.abspath(os.fspath(path))
  os.makedirs(os.path.dirname(path), exist_ok=True)
  stream = open(path, "a", encoding="utf-8")  # pylint: disable=consider-using-with
  absl_logging.get_absl_handler().python_handler.setStream(stream)
  if not flag_values["stderrthreshold"].present:
    flag_values.stderrthreshold = "warning"
  if not flag_values["verbosity"].present:
    absl_logging.set_verbosity(absl_logging.INFO)
  return path


@contextlib.contextmanager
def info_to_file(path: str | os.PathLike):
  """For commands without absl flags: INFO lines to ``path``, warnings still to stderr.

  TFDS logs through absl, which (without ``app.run``) hands its records to
  Python's root logger; the block sends them, and Orbax's and our own INFO
  lines, to ``path`` while stderr keeps warnings and errors. Restored after.
  """
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  path = os.path.abspath(os.fspath(path))
  os.makedirs(os.path.dirname(path), exist_ok=True)
  root = logging.getLogger()
  saved = (root.level, absl_logging.get_verbosity(),
           [(handler, handler.level) for handler in root.handlers])
  log_file = logging.FileHandler(path, encoding="utf-8")
  log_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
  for handler, level in saved[2]:
    handler.setLevel(max(level, logging.WARNING))
  if not saved[2]:  # no handler yet: warnings would otherwise print bare
    terminal = logging.StreamHandler(sys.stderr)
    terminal.setLevel(logging.WARNING)
    terminal.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.addHandler(terminal)
  root.addHandler(log_file)
  root.setLevel(logging.INFO)
  absl_logging.set_verbosity(absl_logging.INFO)
  try:
    yield path
  finally:
    root.removeHandler(log_file)
    log_file.close()
    if not saved[2]:
      root.removeHandler(terminal)
    for handler, level in saved[2]:
      handler.setLevel(level)
    root.setLevel(saved[0])
    absl_logging.set_verbosity(saved[1])
