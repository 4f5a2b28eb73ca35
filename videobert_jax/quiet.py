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
TF_STARTUP = re.compile(
    r"^(I\d{4} .*|WARNING: All log messages before absl::InitializeLog\(\) is called "
    r"are written to STDERR)$")
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
  """Imports and returns ``tensorflow`` without its C++ INFO start-up lines."""
  if "tensorflow" in sys.modules:
    return sys.modules["tensorflow"]
  with filtered_stderr(TF_STARTUP):
    import tensorflow  # pylint: disable=import-outside-toplevel
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
