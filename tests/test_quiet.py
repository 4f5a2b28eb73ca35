"""Known third-party chatter stays off stderr; anything else still reaches it."""

import os
import subprocess
import sys

import pytest

from videobert_jax import quiet

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_fresh_tensorflow_import_prints_none_of_its_startup_lines():
  code = ("import sys; from videobert_jax import quiet; tf = quiet.import_tensorflow(); "
          "print(tf.constant(2).numpy() + 1); print('after', file=sys.stderr)")
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=REPO, env=env, timeout=300, check=True)
  assert out.stdout.strip() == "3"
  assert "InitializeLog" not in out.stderr and "port.cc" not in out.stderr
  assert "after" in out.stderr


def test_filtered_stderr_drops_only_matching_lines_from_child_processes(capfd):
  with pytest.raises(subprocess.CalledProcessError):
    with quiet.filtered_stderr(quiet.PTB_TOKENIZER_SPEED):
      subprocess.run(["sh", "-c", "echo 'PTBTokenizer tokenized 300 tokens at 6400.80 tokens "
                      "per second.' >&2; echo 'Exception in thread main' >&2; exit 3"],
                     check=True)
  err = capfd.readouterr().err
  assert "Exception in thread main" in err  # passed on, also when the block raises
  assert "PTBTokenizer" not in err


def test_tensorflow_pattern_keeps_warnings_and_errors():
  assert quiet.TF_STARTUP.match("I0000 00:00:1796050439.615246   29775 port.cc:153] oneDNN")
  assert quiet.TF_STARTUP.match("WARNING: All log messages before absl::InitializeLog() is "
                                "called are written to STDERR")
  assert not quiet.TF_STARTUP.match("E0000 00:00:1796050439.615246   29775 cuda.cc:1] failed")
  assert not quiet.TF_STARTUP.match("W1130 12:00:00.000000   1 op.cc:1] deprecated")


LOG_RUN = """
import logging, os, sys
from videobert_jax import quiet
path = sys.argv[1]
other = logging.getLogger("some.library")
with quiet.info_to_file(path):
  assert not os.path.exists(path)  # opened at the first line: a run logging nothing leaves none
  other.info("restored step 3")
  other.warning("disk almost full")
other.info("after the block")
with quiet.info_to_file(path, info_on_terminal=True):  # --verbose / --verbosity=0
  other.info("shown too")
"""


def test_a_log_file_takes_info_lines_and_the_terminal_keeps_warnings(tmp_path):
  path = quiet.run_log_path(tmp_path, "train")
  assert path == str(tmp_path / "logs" / "train.log")
  assert quiet.run_log_path("gs://bucket/run", "train") is None
  # A fresh process: no handler on the root logger, as in the argparse commands.
  out = subprocess.run([sys.executable, "-c", LOG_RUN, path], capture_output=True,
                       text=True, cwd=REPO, timeout=300, check=True)
  assert out.stderr.splitlines() == ["WARNING: disk almost full", "INFO: shown too"]
  with open(path, encoding="utf-8") as f:
    lines = f.read().splitlines()
  headers = [line for line in lines if line.startswith("==== ")]
  assert len(headers) == 2 and " pid " in headers[0]  # appended, one header per run
  text = "\n".join(line for line in lines if line not in headers)
  assert "INFO some.library: restored step 3" in text
  assert "WARNING some.library: disk almost full" in text and "after the block" not in text
