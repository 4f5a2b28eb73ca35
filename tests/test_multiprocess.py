"""Several JAX processes on this machine, as the hosts of a pod (issue 18, item 1).

Each process gets its own CPU devices (``--xla_force_host_platform_device_count``),
``jax.distributed`` runs on a localhost coordinator and the collectives cross the
processes through gloo: the multi-host branches of the trainer and of k-means run
here as they do on a pod. The processes are started by ``launch/local.sh
--processes N`` (training; ``--module videobert_jax.quantize`` for ``assign``,
``--module videobert_jax.eval`` for zero-shot) or ``common.sh``'s ``run_processes``
(k-means).
"""

import glob
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from videobert_jax.testing import workdirs
from videobert_jax.train import distributed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCAL = os.path.join(ROOT, "launch", "local.sh")
COMMON = os.path.join(ROOT, "launch", "common.sh")
STEPS, EVERY = 12, 4  # training steps, and steps between checkpoints


def _env():
  """This environment minus the test-wide device count (the launchers set their own)."""
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("XLA_FLAGS", "JAX_COORDINATOR", "JAX_NUM_PROC", "JAX_PROC"))}
  return dict(env, JAX_PLATFORMS="cpu", PYTHON=sys.executable)


def _run_processes(n, command, timeout=300):
  """``common.sh``'s run_processes N over ``command`` (a list), as the launchers call it."""
  script = f"source {shlex.quote(COMMON)}; run_processes {n} {shlex.join(command)}"
  return subprocess.run(["bash", "-c", script], cwd=ROOT, env=_env(), capture_output=True,
                        text=True, timeout=timeout, check=False)


# --------------------------------------------------------------------------------- fast


def test_two_processes_sum_across_processes_with_gloo():
  program = (
      "import jax, jax.numpy as jnp, numpy as np\n"
      "from videobert_jax.train import distributed\n"
      "assert distributed.initialize('auto')\n"
      "from jax.sharding import Mesh, NamedSharding, PartitionSpec as P\n"
      "mesh = Mesh(np.array(jax.devices()), ('d',))\n"
      "local = np.full(jax.local_device_count(), jax.process_index() + 1, np.float32)\n"
      "x = jax.make_array_from_process_local_data(NamedSharding(mesh, P('d')), local,\n"
      "                                           (jax.device_count(),))\n"
      "total = jax.jit(jnp.sum, out_shardings=NamedSharding(mesh, P()))(x)\n"
      # One string, one write: both processes share the pipe, and print's separate
      # writes of its pieces interleaved there (seen once in a full run).
      "import sys\n"
      "sys.stdout.write(f'result {jax.process_index()} {jax.process_count()} '\n"
      "                 f'{jax.device_count()} {float(total)}\\n')\n"
      "sys.stdout.flush()\n")
  started = time.perf_counter()
  result = _run_processes(2, ["env", "XLA_FLAGS=--xla_force_host_platform_device_count=2",
                              sys.executable, "-c", program], timeout=120)
  assert result.returncode == 0, result.stderr
  lines = sorted(line for line in result.stdout.splitlines() if line.startswith("result"))
  # 2 devices holding 1 on process 0 and 2 devices holding 2 on process 1.
  assert lines == ["result 0 2 4 6.0", "result 1 2 4 6.0"]
  assert time.perf_counter() - started < 60


def test_one_failing_process_stops_the_others_and_its_status_is_returned():
  job = ('if [ "$JAX_PROCESS_ID" = 1 ]; then sleep 0.5; exit 3; fi; '
         'echo "$$" > "$PIDS.$JAX_PROCESS_ID"; exec sleep 60')
  pids = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"vb_run_processes_{os.getpid()}")
  started = time.perf_counter()
  result = _run_processes(3, ["env", f"PIDS={pids}", "bash", "-c", job], timeout=60)
  assert result.returncode == 3
  assert time.perf_counter() - started < 30  # the sleepers were killed, not waited for
  assert "process 1 (pid" in result.stderr and "stopping the other 2" in result.stderr
  for i in (0, 2):
    with open(f"{pids}.{i}", encoding="utf-8") as f:
      pid = int(f.read())
    os.unlink(f"{pids}.{i}")
    with pytest.raises(ProcessLookupError):
      os.kill(pid, 0)


def test_cluster_arguments_come_from_the_environment_or_name_what_is_missing():
  env = {"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1234", "JAX_NUM_PROCESSES": "2",
         "JAX_PROCESS_ID": "1"}
  assert distributed.cluster_arguments(env) == {
      "coordinator_address": "127.0.0.1:1234", "num_processes": 2, "process_id": 1}
  assert distributed.cluster_arguments({}) == {}  # TPU / SLURM: JAX detects the cluster
  with pytest.raises(ValueError, match="JAX_PROCESS_ID is not"):
    distributed.cluster_arguments({**env, "JAX_PROCESS_ID": ""})
  with pytest.raises(ValueError, match="outside 0..1"):
    distributed.cluster_arguments({**env, "JAX_PROCESS_ID": "2"})
  assert distributed.multihost_environment({"TPU_WORKER_HOSTNAMES": "a,b"})
  assert not distributed.multihost_environment({"TPU_WORKER_HOSTNAMES": "a"})
  assert not distributed.initialize("auto", env={})
  with pytest.raises(ValueError, match="must be one of"):
    distributed.initialize("yes", env={})


def test_eval_shares_are_whole_batches_and_merge_back_in_segment_order(tmp_path):
  from videobert_jax.eval import shards  # pylint: disable=import-outside-toplevel
  # 11 segments in batches of 3: batches 0 and 2 to process 0, 1 and 3 to process 1.
  assert shards.share(11, 3, 0, 2).tolist() == [0, 1, 2, 6, 7, 8]
  assert shards.share(11, 3, 1, 2).tolist() == [3, 4, 5, 9, 10]
  for count in (1, 2, 3, 5):
    mine = [shards.share(11, 3, i, count).tolist() for i in range(count)]
    assert sorted(sum(mine, [])) == list(range(11))
  assert shards.share(2, 3, 1, 2).tolist() == []  # fewer batches than processes
  with pytest.raises(ValueError, match="process 2 of 2"):
    shards.share(11, 3, 2, 2)

  def values(indices):  # float rows and string rows (zero-shot's ranked words)
    return {"features": np.arange(22, dtype=np.float32).reshape(11, 2)[indices],
            "words": np.array([[f"w{i}", "x" * i] for i in indices])}

  everything = values(np.arange(11))
  for num_items, count in ((11, 2), (2, 3)):  # the second has an empty share
    folder = tmp_path / f"{num_items}-{count}"
    expected = {k: v[:num_items] for k, v in everything.items()}
    # Processes in reverse, with a barrier that does nothing: every part is
    # written before process 0 reads them, as a real barrier makes sure.
    for index in reversed(range(count)):
      procs = shards.Processes(index, count, barrier=lambda name: None)
      got = shards.map_shared(values, list(range(num_items)), 3, procs, str(folder),
                              "test")
      assert (got is None) == (index != 0)
    for key, array in expected.items():
      np.testing.assert_array_equal(got[key], array)
    assert got["words"].tolist()[1] == ["w1", "x"]
    assert not list(folder.iterdir())  # process 0 removed the parts
  one = shards.map_shared(values, list(range(4)), 3, shards.Processes(), str(tmp_path), "one")
  np.testing.assert_array_equal(one["features"], everything["features"][:4])
  with pytest.raises(ValueError, match="part 1 of 2 has 1 rows"):
    shards.merge([values([0, 1, 2]), values([3])], 5, 3)


# --------------------------------------------------------------------------------- slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
  """A small corpus, its codebook and a TFDS folder shared by the training tests."""
  root = tmp_path_factory.mktemp("multiprocess")
  synthetic = workdirs.synthetic_world(str(root / "world"), num_videos=12,
                                       num_eval_videos=2)
  codebook = str(root / "codebook.npz")
  workdirs.fit_codebook(os.path.join(synthetic["corpus_dir"], "features"), codebook)
  return {"root": root, "corpus": synthetic["corpus_dir"], "codebook": codebook,
          "tfds": str(root / "tfds"), "annotations": synthetic["annotations"],
          "eval_features": synthetic["eval_features_dir"]}


def _launch(world, workdir, processes, devices, wait=True, host_input="slice", steps=STEPS):
  """``launch/local.sh`` training the tiny config: ``steps`` steps, a checkpoint every EVERY."""
  command = ["bash", LOCAL, "--processes", str(processes), "--devices-per-process",
             str(devices), "--workdir", str(workdir), "--corpus", world["corpus"],
             "--codebook", world["codebook"], "--", f"--host_input={host_input}",
             f"--config.data.tfds_data_dir={world['tfds']}",
             f"--config.train.num_steps={steps}", f"--config.train.checkpoint_every={EVERY}",
             "--config.train.log_every=1", f"--config.train.eval_every={steps}",
             "--config.train.batch_size=8"]
  if not wait:
    return subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,  # pylint: disable=consider-using-with
                            stderr=subprocess.STDOUT, text=True)
  return subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True,
                        timeout=900, check=False)


def _losses(workdir) -> dict[int, float]:
  """``train/loss`` of every step in the run's TensorBoard events (the last write wins)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  losses = {}
  for path in sorted(glob.glob(os.path.join(str(workdir), "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == "train/loss":
          losses[event.step] = float(tf.make_ndarray(value.tensor))
  return losses


def _logged_losses(workdir, process: int) -> dict[int, float]:
  """``train/loss`` of every step as one process logged it (``[step] ... train/loss=X``)."""
  pattern = re.compile(r"\[(\d+)\] .*\btrain/loss=([-+0-9.eE]+|nan|inf)")
  losses = {}
  for path in glob.glob(os.path.join(str(workdir), "logs", f"*process-{process}*")):
    with open(path, encoding="utf-8") as f:
      for match in filter(None, map(pattern.search, f)):
        losses[int(match.group(1))] = float(match.group(2))
  return losses


def _params(workdir, step: int) -> dict:
  """The parameters of a checkpoint as numpy arrays, keyed by their path."""
  import jax  # pylint: disable=import-outside-toplevel
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  path = os.path.join(str(workdir), "checkpoints", str(step), "state")
  checkpointer = ocp.PyTreeCheckpointer()
  tree = checkpointer.metadata(path).item_metadata.tree
  restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
  params = checkpointer.restore(path, restore_args=restore_args)["params"]
  return {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(params)}


@pytest.fixture(scope="module")
def two_process_run(world):
  """The tiny config trained by 2 processes x 2 CPU devices (a 4-device mesh)."""
  workdir = world["root"] / "two_processes"
  result = _launch(world, workdir, processes=2, devices=2)
  assert result.returncode == 0, result.stdout + result.stderr
  return workdir


@pytest.mark.slow
def test_two_processes_train_as_one_process_with_four_devices(world, two_process_run):
  one = world["root"] / "one_process"
  result = _launch(world, one, processes=1, devices=4)
  assert result.returncode == 0, result.stderr
  expected, got = _losses(one), _losses(two_process_run)
  assert sorted(got) == sorted(expected) == list(range(1, STEPS + 1))
  for step in expected:
    assert got[step] == pytest.approx(expected[step], abs=1e-5), step
  expected_params, got_params = _params(one, STEPS), _params(two_process_run, STEPS)
  assert sorted(got_params) == sorted(expected_params)
  for name, value in expected_params.items():
    np.testing.assert_allclose(got_params[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
  # One process writes what is written once; every process wrote its checkpoint shards.
  assert len(glob.glob(str(two_process_run / "events.out.tfevents.*"))) == 1
  with open(two_process_run / "config.json", encoding="utf-8") as f:
    assert json.load(f)["train"]["num_steps"] == STEPS
  state = two_process_run / "checkpoints" / str(STEPS) / "state"
  assert sorted(p.name for p in state.glob("ocdbt.process_*")) == ["ocdbt.process_0",
                                                                   "ocdbt.process_1"]
  with open(two_process_run / "final_metrics.json", encoding="utf-8") as f:
    final = json.load(f)
  with open(one / "final_metrics.json", encoding="utf-8") as f:
    assert final["eval/loss"] == pytest.approx(json.load(f)["eval/loss"], abs=1e-5)


@pytest.mark.slow
def test_two_processes_train_on_sharded_input(world):
  # --host_input=shard (the default): each host reads its own examples, so the
  # batches, hence losses, differ from 1 x 4's; what holds is one finite loss that
  # falls. The splits have one TFDS file each, fewer than the 2 hosts (seqio's
  # example-level sharding; tasks.pipeline.host_sharding).
  workdir = world["root"] / "sharded"
  result = _launch(world, workdir, processes=2, devices=2, host_input="shard")
  output = result.stdout + result.stderr
  assert result.returncode == 0, output
  assert output.count("each host reads them whole") == 4, output  # 2 splits x 2 hosts
  losses = _losses(workdir)
  assert sorted(losses) == list(range(1, STEPS + 1))
  assert all(np.isfinite(v) for v in losses.values())
  first, last = np.mean([losses[s] for s in (1, 2, 3)]), np.mean(
      [losses[s] for s in (STEPS - 2, STEPS - 1, STEPS)])
  assert last < first, losses
  # Process 1 computed the same (replicated) loss at every step as process 0 wrote.
  logged = _logged_losses(workdir, 1)
  assert sorted(logged) == sorted(losses), logged
  for step, loss in losses.items():
    assert logged[step] == pytest.approx(loss, rel=2e-5), step  # logged to 6 digits
  state = workdir / "checkpoints" / str(STEPS) / "state"
  assert sorted(p.name for p in state.glob("ocdbt.process_*")) == ["ocdbt.process_0",
                                                                   "ocdbt.process_1"]
  with open(workdir / "final_metrics.json", encoding="utf-8") as f:
    assert np.isfinite(json.load(f)["eval/loss"])


def _children(pid: int) -> list[int]:
  with open(f"/proc/{pid}/task/{pid}/children", encoding="utf-8") as f:
    return [int(p) for p in f.read().split()]


def _process_id(pid: int) -> str | None:
  """JAX_PROCESS_ID in a process's environment."""
  with open(f"/proc/{pid}/environ", "rb") as f:
    for entry in f.read().split(b"\0"):
      if entry.startswith(b"JAX_PROCESS_ID="):
        return entry.split(b"=", 1)[1].decode()
  return None


@pytest.mark.slow
def test_kill_9_of_one_process_stops_the_others_and_a_rerun_resumes_on_both(
    world, two_process_run):
  workdir = world["root"] / "killed"
  launcher = _launch(world, workdir, processes=2, devices=2, wait=False)
  deadline = time.time() + 600
  while not (workdir / "checkpoints" / str(EVERY)).is_dir():
    assert launcher.poll() is None, launcher.stdout.read()
    assert time.time() < deadline, f"no checkpoint at step {EVERY}"
    time.sleep(0.05)
  trainers = {_process_id(pid): pid for pid in _children(launcher.pid)}
  assert sorted(trainers) == ["0", "1"], trainers
  os.kill(trainers["1"], signal.SIGKILL)
  output = launcher.communicate(timeout=120)[0]
  assert launcher.returncode == 128 + signal.SIGKILL, output
  assert "process 1 (pid" in output and "stopping the other 1" in output
  with pytest.raises(ProcessLookupError):
    os.kill(trainers["0"], 0)
  assert not (workdir / "final_metrics.json").exists(), "killed too late to test a resume"

  resumed = _launch(world, workdir, processes=2, devices=2)
  assert resumed.returncode == 0, resumed.stdout + resumed.stderr
  start = int(resumed.stdout.split("resumed from step ")[1].split()[0])
  assert EVERY <= start < STEPS and start % EVERY == 0
  # Both processes restored the state and skipped to the same data position: every
  # later step's loss is the uninterrupted run's.
  expected, got = _losses(two_process_run), _losses(workdir)
  for step in range(start + 1, STEPS + 1):
    assert got[step] == pytest.approx(expected[step], abs=1e-5), step
  with open(workdir / "checkpoints" / str(STEPS) / "meta" / "metadata", encoding="utf-8") as f:
    assert json.load(f)["batches_consumed"] == STEPS


@pytest.mark.slow
def test_quantize_fit_on_two_processes_writes_the_one_process_codebook(tmp_path):
  # About 1,900 clips: two global batches of k-means, so the shares interleave.
  synthetic = workdirs.synthetic_world(str(tmp_path / "world"), num_videos=40,
                                       num_eval_videos=2, seed=5)
  fit = [sys.executable, "-m", "videobert_jax.quantize", "fit", "--corpus",
         synthetic["corpus_dir"], "--levels", "3", "--clusters", "3"]
  one = subprocess.run(["env", "XLA_FLAGS=--xla_force_host_platform_device_count=4", *fit,
                        "--out", str(tmp_path / "one.npz")], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=300, check=False)
  assert one.returncode == 0, one.stderr
  two = _run_processes(2, ["env", "XLA_FLAGS=--xla_force_host_platform_device_count=2",
                           *fit, "--out", str(tmp_path / "two.npz"), "--distributed=on"])
  assert two.returncode == 0, two.stderr
  assert (tmp_path / "two.npz").read_bytes() == (tmp_path / "one.npz").read_bytes()
  assert two.stdout.count("codebook: 27 visual words") == 1  # process 0 reports


@pytest.mark.slow
def test_quantize_assign_on_two_processes_writes_the_one_process_files(world, tmp_path):
  def assign(processes, out):
    return subprocess.run(
        ["bash", LOCAL, "--processes", str(processes), "--devices-per-process", "1",
         "--module", "videobert_jax.quantize", "--", "assign", "--corpus",
         world["corpus"], "--codebook", world["codebook"], "--out", str(out)],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300, check=False)

  one, two = assign(1, tmp_path / "one"), assign(2, tmp_path / "two")
  assert one.returncode == 0, one.stderr
  assert two.returncode == 0, two.stderr
  assert two.stdout.count("assigned ") == 1  # process 0 reports for both
  files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*"))
  assert len(files) == 12 + 2  # a token file per video, tokens.jsonl, summary.json
  assert files == sorted(p.relative_to(tmp_path / "two")
                         for p in (tmp_path / "two").rglob("*.*"))
  for name in files:
    if name.name != "summary.json":  # it holds the seconds taken
      assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
  summaries = [json.loads((tmp_path / d / "summary.json").read_text()) for d in ("one", "two")]
  for summary in summaries:
    summary.pop("seconds")
  assert summaries[0] == summaries[1]


@pytest.mark.slow
def test_eval_zeroshot_on_two_processes_writes_the_one_process_results(world):
  # A 4-step tiny pretraining, then zero-shot on 1 process and on 2 x 1 device: the
  # validation segments in batches of 2, batches shared round-robin.
  workdir = world["root"] / "eval_run"
  trained = _launch(world, workdir, processes=1, devices=1, steps=EVERY)
  assert trained.returncode == 0, trained.stdout + trained.stderr
  outputs = [workdir / "eval" / name for name in ("zeroshot.json",
                                                  "zeroshot_predictions.jsonl")]

  def evaluate(processes):
    started = time.perf_counter()
    result = subprocess.run(
        ["bash", LOCAL, "--processes", str(processes), "--devices-per-process", "1",
         "--module", "videobert_jax.eval", "--", "--task=zeroshot", f"--workdir={workdir}",
         f"--youcook={world['annotations']}", f"--features={world['eval_features']}",
         "--batch_size=2"], cwd=ROOT, env=_env(), capture_output=True, text=True,
        timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    print(f"eval zeroshot on {processes} process(es): {time.perf_counter() - started:.1f} s")
    assert result.stdout.count("Zero-shot classification,") == 1  # process 0 reports
    return result, [path.read_bytes() for path in outputs]

  _, one = evaluate(1)
  _, two = evaluate(2)
  assert two == one
  results = json.loads(one[0])
  assert results["num_segments"] > 2  # more batches than processes: both had a share
  rows = [r["name"] for r in results["rows"]]
  assert "VideoBERT cross-modal" in rows
  assert "Co-occurrence (visual words x speech)" in rows  # process 0's alone
  assert not list((workdir / "eval").glob(".*part*"))  # process 0 removed the parts
