"""What a user sees when things are not as planned: quiet output, builds that recover."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from videobert_jax import configs
from videobert_jax import quiet
from videobert_jax.tasks import pipeline
from videobert_jax.testing import workdirs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(*args, cwd=None):
  """Runs ``python ARGS`` as a user would (one CPU device) and returns the result."""
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                        cwd=cwd or ROOT, env=env, timeout=300, check=False)


def test_tensorflow_and_jax_start_without_cuda_or_info_lines_on_a_cpu_machine():
  result = _python("-c", "from videobert_jax import quiet; tf = quiet.import_tensorflow(); "
                   "tf.constant(1); import jax; jax.devices(); print('ok')")
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == "ok"
  assert "cuInit" not in result.stderr
  assert not [line for line in result.stderr.splitlines() if line.startswith(("I0000", "E0000"))]


def test_a_command_that_imports_tensorflow_late_prints_none_of_its_lines(tmp_path):
  # text sentences reaches TensorFlow through the WordPiece tokenizer, not a quiet entry.
  transcript = tmp_path / "a.srt"
  transcript.write_text("1\n00:00:00,000 --> 00:00:02,000\nadd the salt.\n", encoding="utf-8")
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "TF_CPP_MIN_LOG_LEVEL")}
  result = subprocess.run([sys.executable, "-m", "videobert_jax.text", "sentences",
                           str(transcript)], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300, check=False)
  assert result.returncode == 0, result.stderr
  assert "add the salt" in result.stdout
  assert result.stderr == ""


def test_eval_keeps_orbax_info_lines_in_its_log_file(tmp_path):
  world = workdirs.synthetic_world(str(tmp_path / "world"), num_videos=2, num_eval_videos=4)
  codebook = str(tmp_path / "codebook.npz")
  book = workdirs.fit_codebook(world["eval_features_dir"], codebook)
  workdir = workdirs.untrained_workdir(str(tmp_path / "run"),
                                       workdirs.tiny_config(codebook, book.num_words))
  result = _python("-m", "videobert_jax.eval", "--task=zeroshot", f"--workdir={workdir}",
                   f"--youcook={world['annotations']}",
                   f"--features={world['eval_features_dir']}", cwd=str(tmp_path))
  assert result.returncode == 0, result.stderr
  assert "verb top-1" in result.stdout
  chatter = [line for line in result.stderr.splitlines()
             if "checkpoint" in line.lower() or line.startswith(("I1", "I0", "E0"))]
  assert not chatter, chatter
  with open(os.path.join(workdir, "logs", "eval.log"), encoding="utf-8") as f:
    assert "checkpoint" in f.read().lower()  # Orbax's restore lines, kept for debugging


@pytest.fixture
def absl_app_logging():
  """Python logging as under ``app.run``: absl's handler on the root logger, on stderr."""
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  root = logging.getLogger()
  handler = absl_logging.get_absl_handler()
  saved = (root.level, absl_logging.get_verbosity(), handler in root.handlers)
  absl_logging.use_absl_handler()
  yield
  if not saved[2]:
    root.removeHandler(handler)
  absl_logging.set_verbosity(saved[1])
  root.setLevel(saved[0])


def test_train_keeps_orbax_info_lines_in_its_log_file(tmp_path, capfd, absl_app_logging):
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  from test_train import random_batches, tiny_config  # pylint: disable=import-error
  from videobert_jax.train import loop as train_lib  # pylint: disable=import-outside-toplevel
  del absl_app_logging
  quiet.import_tensorflow()  # as the command does first (its start-up lines are not ours)
  log = tmp_path / "logs" / "train.log"
  # What `python -m videobert_jax.train` does once it knows its process index.
  undo = quiet.log_to_file(quiet.run_log_path(tmp_path, "train"))
  try:
    train_lib.train(tiny_config(), str(tmp_path), batch_source=random_batches)
    absl_logging.warning("warnings still reach the terminal")
    written = log.read_bytes()
    # A rerun with nothing to do logs nothing: the file (and workdir) stay as they were.
    train_lib.train(tiny_config(), str(tmp_path), batch_source=random_batches)
  finally:
    undo()
  err = capfd.readouterr().err
  assert "warnings still reach the terminal" in err
  chatter = [line for line in err.splitlines()
             if "checkpoint" in line.lower() or line.startswith(("I0", "I1"))]
  assert not chatter, chatter
  text = written.decode("utf-8")
  assert text.startswith("==== ") and " pid " in text.splitlines()[0]
  assert "CheckpointManager" in text and "INFO absl" in text  # Orbax's lines
  assert "warnings still reach the terminal" in text
  assert log.read_bytes() == written


def test_tfds_build_keeps_its_info_lines_in_build_log(tmp_path):
  pytest.importorskip("mlcroissant", reason="the tfds CLI imports mlcroissant")
  world = workdirs.synthetic_world(str(tmp_path / "world"), num_videos=6, num_eval_videos=2)
  data_dir = tmp_path / "tfds"
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
  result = subprocess.run(
      [os.path.join(os.path.dirname(sys.executable), "tfds"), "build",
       "videobert_text/eval_ids=none,validation_percent=40", "--imports",
       "videobert_jax.datasets", "--manual_dir", world["corpus_dir"],
       "--data_dir", str(data_dir)],
      capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  out = result.stdout.splitlines()
  # TFDS logs one line before our builder is constructed; then only our line and
  # the DatasetInfo `tfds build` prints at its end.
  assert [line for line in out if line.startswith(("INFO[", "WARNING["))] == [
      "INFO[build.py]: Loading dataset videobert_text/eval_ids=none,validation_percent=40 "
      "from imports: videobert_jax.datasets.pretraining"]
  assert not [line for line in out if "Downloading and preparing" in line]
  (built,) = [line for line in out if line.startswith("built videobert_text: ")]
  assert built.endswith(f"INFO lines in {data_dir / 'build.log'}")
  assert "Generating dataset" not in result.stderr and "Done writing" not in result.stderr
  log = (data_dir / "build.log").read_text(encoding="utf-8")
  assert log.startswith("==== ")
  for line in ("download_and_prepare for dataset", "Generating dataset videobert_text",
               "Done writing", "Downloading and preparing dataset"):
    assert line in log, line


def test_on_demand_build_says_what_it_builds_and_clears_a_killed_build(tmp_path, capsys):
  world = workdirs.synthetic_world(str(tmp_path / "world"), num_videos=3, num_eval_videos=2)
  data = configs.load("pretrain:tiny").data
  data.corpus_dir = world["corpus_dir"]
  data.tfds_data_dir = str(tmp_path / "tfds")
  # What kill -9 during a TFDS build leaves behind: a half-written version folder.
  leftover = tmp_path / "tfds" / "videobert_text" / "incomplete.AB12CD_1.1.0"
  leftover.mkdir(parents=True)
  (leftover / "videobert_text-train.tfrecord-00000-of-00001").write_bytes(b"half")
  meta = pipeline.ensure_datasets(data, kinds=("text",))
  assert meta["text"]["corpus_dir"]
  assert not leftover.exists()
  err = capsys.readouterr().err
  assert "building dataset videobert_text" in err and "built videobert_text:" in err
  assert "train" in err.split("built videobert_text:")[1]
  # A second call finds it built and says nothing.
  pipeline.ensure_datasets(data, kinds=("text",))
  assert "building" not in capsys.readouterr().err


def _train_command(world, codebook, workdir, tfds_dir):
  """The README's step 4 on a small world: 40 steps, a checkpoint every 10."""
  return ["-m", "videobert_jax.train", "--config=pretrain:tiny", f"--workdir={workdir}",
          f"--config.data.corpus_dir={world['corpus_dir']}",
          f"--config.data.codebook={codebook}", f"--config.data.tfds_data_dir={tfds_dir}",
          "--config.train.num_steps=40", "--config.train.checkpoint_every=10",
          "--config.train.eval_every=40", "--config.train.batch_size=8"]


@pytest.mark.slow
def test_kill_9_mid_run_resumes_at_the_checkpoint_with_the_same_final_metrics(tmp_path):
  world = workdirs.synthetic_world(str(tmp_path / "world"), num_videos=12, num_eval_videos=2)
  codebook = str(tmp_path / "codebook.npz")
  workdirs.fit_codebook(os.path.join(world["corpus_dir"], "features"), codebook)
  tfds_dir = str(tmp_path / "tfds")
  straight = _python(*_train_command(world, codebook, tmp_path / "straight", tfds_dir))
  assert straight.returncode == 0, straight.stderr
  # The command itself: Orbax's lines in the run's log, none on the terminal.
  assert "CheckpointManager" not in straight.stderr
  log = (tmp_path / "straight" / "logs" / "train.log").read_text(encoding="utf-8")
  assert "CheckpointManager" in log
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  workdir = tmp_path / "killed"
  process = subprocess.Popen(  # pylint: disable=consider-using-with
      [sys.executable, *_train_command(world, codebook, workdir, tfds_dir)], cwd=ROOT,
      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 240
  while not (workdir / "checkpoints" / "20").is_dir() and process.poll() is None:
    assert time.time() < deadline, "no checkpoint at step 20"
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert not (workdir / "final_metrics.json").exists(), "killed too late to test a resume"
  resumed = _python(*_train_command(world, codebook, workdir, tfds_dir))
  assert resumed.returncode == 0, resumed.stderr
  with open(tmp_path / "straight" / "final_metrics.json", encoding="utf-8") as f:
    expected = json.load(f)
  with open(workdir / "final_metrics.json", encoding="utf-8") as f:
    got = json.load(f)
  assert got["step"] == expected["step"] == 40
  for key in ("train/loss", "eval/loss"):
    assert got[key] == pytest.approx(expected[key], rel=1e-5), key


def _captioning_command(run, workdir, seed):
  """Captioning with a few captioner steps (dropout on: its key is seeded too)."""
  return ["-m", "videobert_jax.eval", "--task=captioning", f"--workdir={workdir}",
          f"--youcook={run['world']['annotations']}",
          f"--features={run['world']['eval_features_dir']}", "--captioner.num_steps=20",
          "--captioner.batch_size=8", "--captioner.dropout_rate=0.1",
          f"--captioner.seed={seed}"]


@pytest.mark.slow
def test_captioning_gives_identical_numbers_in_two_fresh_processes(tmp_path):
  import shutil
  run = workdirs.untrained_eval_run(str(tmp_path), num_videos=2, num_eval_videos=4)
  second = str(tmp_path / "run_again")
  shutil.copytree(run["workdir"], second)
  outputs = []
  for workdir, hash_seed in ((run["workdir"], "1"), (second, "2")):
    # Another hash seed: nothing may depend on the order of a set of strings.
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONHASHSEED"] = hash_seed
    result = subprocess.run([sys.executable, *_captioning_command(run, workdir, 0)],
                            capture_output=True, text=True, cwd=ROOT, env=env,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    files = {}
    for name in ("captioning", "captions_features", "captions_videobert",
                 "captions_videobert_features"):
      with open(os.path.join(workdir, "eval", f"{name}.json"), encoding="utf-8") as f:
        files[name] = json.load(f)
    outputs.append(files)
  first, again = outputs
  assert first["captioning"]["rows"] == again["captioning"]["rows"]  # every digit
  for name in ("captions_features", "captions_videobert", "captions_videobert_features"):
    assert first[name] == again[name], name
