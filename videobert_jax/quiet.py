"""Keeping known third-party chatter off stderr, and INFO lines in the run's log file.

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

Library INFO lines (Orbax's saves and restores, TFDS's builds, absl's) are for
debugging, not for the terminal: ``start_log_file`` (``info_to_file``,
``log_to_file``) sends them to the command's log file, ``run_log_path``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shlex
import sys
import tempfile
import time
from typing import Callable

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


class DropMissingInfoWarning(logging.Filter):
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
  warning_filter = DropMissingInfoWarning()
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


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run_log_path(folder: str | os.PathLike, command: str) -> str | None:
  """``FOLDER/logs/COMMAND.log``, where a command keeps its INFO lines; None for gs://.

  A log file is appended to line by line, which object stores do not offer; a
  command on a gs:// folder keeps warnings on the terminal and drops INFO lines.
  """
  folder = os.fspath(folder)
  if "://" in folder:
    return None
  return os.path.join(os.path.abspath(os.path.expanduser(folder)), "logs", f"{command}.log")


class RunLog(logging.FileHandler):
  """A command's log file: appended to, each run starting with a line naming it.

  The file (and its folder) is opened at the first record, so a run that logs
  nothing (a rerun with nothing to do, a config refused before anything is
  written) leaves the folder as it was.
  """

  def __init__(self, path: str):
    super().__init__(path, mode="a", encoding="utf-8", delay=True)
    self.setFormatter(logging.Formatter(LOG_FORMAT))

  def _open(self):
    try:
      os.makedirs(os.path.dirname(self.baseFilename), exist_ok=True)
      stream = super()._open()
    except OSError as e:  # a read-only folder: the run goes on, its INFO lines do not
      sys.stderr.write(f"warning: cannot write {self.baseFilename} ({e}); "
                       "INFO lines are dropped\n")
      return open(os.devnull, "w", encoding="utf-8")  # pylint: disable=consider-using-with
    command = " ".join(shlex.quote(a) for a in getattr(sys, "orig_argv", sys.argv))
    command = " ".join(command.split())  # one line, whatever the arguments hold
    stream.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}: "
                 f"{command}\n")
    return stream


def start_log_file(path: str | os.PathLike | None, *,
                   info_on_terminal: bool = False) -> Callable[[], None]:
  """Sends INFO lines (absl's, so Orbax's and TFDS's, and Python loggers') to ``path``.

  Warnings and errors still reach the terminal, through the handlers already
  there (absl's under ``app.run``, TFDS's under ``tfds build``) or a plain stderr
  one added where there are none; ``info_on_terminal`` lets INFO lines through
  too. ``path`` None: INFO lines are dropped. Works with and without absl's
  flags, so every command (absl or argparse) and ``tfds build`` share it.
  Returns the function that undoes it.
  """
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  root = logging.getLogger()
  saved = (root.level, absl_logging.get_verbosity(),
           [(handler, handler.level) for handler in root.handlers])
  floor = logging.INFO if info_on_terminal else logging.WARNING
  for handler, level in saved[2]:
    handler.setLevel(max(level, floor))
  added = []
  if not saved[2]:  # no handler yet: warnings would otherwise print bare
    terminal = logging.StreamHandler(sys.stderr)
    terminal.setLevel(floor)
    terminal.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    added.append(terminal)
  if path is not None:
    added.append(RunLog(os.path.abspath(os.fspath(path))))
  for handler in added:
    root.addHandler(handler)
  absl_logging.set_verbosity(max(saved[1], absl_logging.INFO))  # --verbosity=1 stays
  root.setLevel(min(root.level, logging.INFO))

  def undo():
    for handler in added:
      root.removeHandler(handler)
      handler.close()
    for handler, level in saved[2]:
      handler.setLevel(level)
    absl_logging.set_verbosity(saved[1])
    root.setLevel(saved[0])
  return undo


@contextlib.contextmanager
def info_to_file(path: str | os.PathLike | None, *, info_on_terminal: bool = False):
  """``start_log_file`` for the block: INFO lines to ``path``, restored after."""
  undo = start_log_file(path, info_on_terminal=info_on_terminal)
  try:
    yield path
  finally:
    undo()


def log_to_file(path: str | os.PathLike | None) -> Callable[[], None]:
  """``start_log_file`` for an absl command (``app.run``); returns its undo.

  ``--verbosity=0`` (or ``--logtostderr`` / ``--alsologtostderr``) puts INFO
  lines on the terminal as well; the file keeps them either way.
  """
  from absl import flags  # pylint: disable=import-outside-toplevel
  flag_values = flags.FLAGS
  verbosity = flag_values["verbosity"]
  return start_log_file(path, info_on_terminal=(
      flag_values["logtostderr"].value or flag_values["alsologtostderr"].value
      or (verbosity.present and verbosity.value >= 0)))


def add_verbose_flag(parser) -> None:
  """``--verbose`` for the argparse commands: their ``--verbosity=0``."""
  parser.add_argument("--verbose", action="store_true",
                      help="also print the INFO lines of Orbax, TFDS and absl on the "
                           "terminal (they always go to the log file)")
