"""Tests of the launchers in launch/ against a fake ``gcloud`` that logs its argv.

The fake is first on PATH; ``describe`` prints FAKE_TPU_STATE, or fails like
gcloud does for a missing TPU when that is empty. Nothing reaches a cloud.
"""

import json
import os
import shlex
import stat
import subprocess
import sys
import tarfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TPU_POD = os.path.join(REPO, "launch", "tpu_pod.sh")
GPU = os.path.join(REPO, "launch", "gpu.sh")
LOCAL = os.path.join(REPO, "launch", "local.sh")

FAKE_GCLOUD = """#!{python}
import json, os, shutil, sys
with open(os.environ["GCLOUD_LOG"], "a") as log:
  log.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:5] == ["compute", "tpus", "tpu-vm", "describe"]:
  state = os.environ.get("FAKE_TPU_STATE", "")
  if not state:
    sys.stderr.write("ERROR: (gcloud.compute.tpus.tpu-vm.describe) NOT_FOUND\\n")
    sys.exit(1)
  print(state)
if sys.argv[1:5] == ["compute", "tpus", "tpu-vm", "scp"]:  # keep what would be copied
  shutil.copy(sys.argv[5], os.environ["GCLOUD_LOG"] + ".copied.tar.gz")
"""


@pytest.fixture
def fake(tmp_path):
  """Environment with the fake gcloud first on PATH, and a reader of its log."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  gcloud = bin_dir / "gcloud"
  gcloud.write_text(FAKE_GCLOUD.format(python=sys.executable))
  gcloud.chmod(gcloud.stat().st_mode | stat.S_IEXEC)
  source = tmp_path / "source"  # a small stand-in for the repository to copy
  (source / "videobert_jax").mkdir(parents=True)
  (source / "videobert_jax" / "__init__.py").write_text("")
  log = tmp_path / "gcloud.log"
  env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
             GCLOUD_LOG=str(log), TMPDIR=str(tmp_path))
  for name in ("TPU_NAME", "TPU_ZONE", "TPU_PROJECT", "WORKDIR", "CONFIG", "DRY_RUN"):
    env.pop(name, None)

  def calls():
    if not log.exists():
      return []
    return [json.loads(line) for line in log.read_text().splitlines()]

  return env, calls, str(source)


def launch(script, args, env):
  return subprocess.run(["bash", script, *args], env=env, capture_output=True, text=True,
                        timeout=60, check=False)


def pod_args(source, *extra):
  return ["--name", "vb", "--zone", "us-central2-b", "--project", "my-proj",
          "--accelerator-type", "v5p-16", "--runtime-version", "v2-alpha-tpuv5",
          "--workdir", "gs://bucket/run1", "--source", source, *extra]


def find(calls, *words):
  """The gcloud calls whose argv starts with ``words``."""
  return [c for c in calls if c[:len(words)] == list(words)]


def flag(argv, name):
  """The value after ``name`` in argv."""
  return argv[argv.index(name) + 1]


def test_creates_missing_tpu_installs_and_trains_on_all_workers(fake, tmp_path):
  env, calls, source = fake
  result = launch(TPU_POD, pod_args(source, "--", "--config.train.batch_size=8"), env)
  assert result.returncode == 0, result.stderr
  log = calls()
  assert [c[3] for c in log] == ["describe", "create", "scp", "ssh", "ssh"]
  create = find(log, "compute", "tpus", "tpu-vm", "create")[0]
  assert create[4] == "vb"
  assert flag(create, "--zone") == "us-central2-b" and flag(create, "--project") == "my-proj"
  assert flag(create, "--accelerator-type") == "v5p-16"
  assert flag(create, "--version") == "v2-alpha-tpuv5"

  scp = find(log, "compute", "tpus", "tpu-vm", "scp")[0]
  assert "--worker=all" in scp and scp[5] == "vb:videobert_jax.tar.gz"
  with tarfile.open(str(tmp_path / "gcloud.log.copied.tar.gz")) as copied:
    assert "./videobert_jax/__init__.py" in copied.getnames()
  assert not os.path.exists(scp[4])  # the local tarball is removed once copied
  install, train = find(log, "compute", "tpus", "tpu-vm", "ssh")
  for ssh in (install, train):
    assert ssh[4] == "vb" and "--worker=all" in ssh
    assert flag(ssh, "--zone") == "us-central2-b" and flag(ssh, "--project") == "my-proj"
  assert "'jax[tpu]'" in flag(install, "--command")
  assert "-c constraints.txt" in flag(install, "--command")
  assert flag(train, "--command") == (
      "cd ~/videobert_jax && .venv/bin/python -m videobert_jax.train "
      "--config=pretrain:large --workdir=gs://bucket/run1 "
      "--config.train.batch_size=8")


def test_reuses_a_ready_tpu(fake):
  env, calls, source = fake
  env["FAKE_TPU_STATE"] = "READY"
  result = launch(TPU_POD, pod_args(source, "--config", "pretrain:base"), env)
  assert result.returncode == 0, result.stderr
  log = calls()
  assert not find(log, "compute", "tpus", "tpu-vm", "create")
  assert "reusing TPU vb" in result.stderr
  train = find(log, "compute", "tpus", "tpu-vm", "ssh")[-1]
  assert "--config=pretrain:base" in flag(train, "--command")


def test_a_tpu_in_another_state_is_not_used(fake):
  env, calls, source = fake
  env["FAKE_TPU_STATE"] = "PREEMPTED"
  result = launch(TPU_POD, pod_args(source), env)
  assert result.returncode == 1
  assert "TPU vb is in state PREEMPTED" in result.stderr
  assert [c[3] for c in calls()] == ["describe"]


def test_env_vars_skip_install_and_detach(fake):
  env, calls, source = fake
  env.update(TPU_NAME="envtpu", TPU_ZONE="europe-west4-a", WORKDIR="gs://b/r",
             FAKE_TPU_STATE="READY")
  result = launch(TPU_POD, ["--skip-install", "--detach", "--source", source], env)
  assert result.returncode == 0, result.stderr
  log = calls()
  assert [c[3] for c in log] == ["describe", "ssh"]
  command = flag(log[-1], "--command")
  assert log[-1][4] == "envtpu" and flag(log[-1], "--zone") == "europe-west4-a"
  assert "--project" not in log[-1]
  assert command.startswith("cd ~/videobert_jax && nohup .venv/bin/python -m videobert_jax")
  assert command.endswith("> train.log 2>&1 &")


def test_dry_run_prints_every_command_and_runs_none(fake):
  env, calls, source = fake
  result = launch(TPU_POD, pod_args(source, "--dry-run", "--", "--config.x=a b"), env)
  assert result.returncode == 0, result.stderr
  assert calls() == []
  lines = result.stdout.splitlines()
  assert sum(line.startswith("+ gcloud compute tpus tpu-vm ") for line in lines) == 5
  assert lines[0].startswith("+ gcloud compute tpus tpu-vm describe vb")
  assert any(" --worker=all --command " in line and "videobert_jax.train" in line
             and "'--config.x=a b'" in line for line in lines)
  assert not [name for name in os.listdir(env["TMPDIR"]) if name.endswith(".tar.gz")]


@pytest.mark.parametrize("workdir", ["runs/large", "/mnt/disk/run", "s3://bucket/run"])
def test_a_non_gcs_workdir_is_refused(fake, workdir):
  env, calls, source = fake
  args = pod_args(source)
  args[args.index("--workdir") + 1] = workdir
  result = launch(TPU_POD, args, env)
  assert result.returncode == 1
  assert result.stderr.strip() == (
      f"error: tpu_pod.sh: --workdir must be a gs:// path on a TPU pod, got '{workdir}': "
      "every worker writes checkpoints there and the workers share no local disk")
  assert calls() == []


def test_pod_usage_errors(fake):
  env, calls, source = fake
  result = launch(TPU_POD, ["--workdir", "gs://b/r"], env)
  assert result.returncode == 1 and "--zone (or TPU_ZONE) is required" in result.stderr
  result = launch(TPU_POD, ["--zone", "z", "--bogus"], env)
  assert result.returncode == 1 and "unknown option '--bogus'" in result.stderr
  help_text = launch(TPU_POD, ["--help"], env)
  assert help_text.returncode == 0 and "--accelerator-type" in help_text.stdout
  assert calls() == []


def test_gpu_dry_run_builds_the_mesh_and_install_commands(fake):
  env, calls, _ = fake
  result = launch(GPU, ["--dry-run", "--install", "--venv", "/opt/gpuvenv", "--gpus", "0,1",
                        "--model-parallel", "2", "--workdir", "runs/base", "--",
                        "--config.train.batch_size=64"], env)
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert "+ python3 -m venv /opt/gpuvenv" in lines
  assert any("'jax[cuda12]'" in line and "-c constraints.txt" in line for line in lines)
  assert lines[-1] == (
      "+ env CUDA_VISIBLE_DEVICES=0,1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.9 "
      "/opt/gpuvenv/bin/python -m videobert_jax.train --config=pretrain:base "
      "--workdir=runs/base --config.mesh.model=2 --config.train.batch_size=64")
  assert calls() == []
  assert not os.path.exists("/opt/gpuvenv")


def test_local_dry_run_runs_the_tiny_config_on_cpu(fake):
  env, _, _ = fake
  result = launch(LOCAL, ["--dry-run", "--devices", "4", "--corpus", "runs/demo/corpus",
                          "--codebook", "runs/demo/codebook.npz", "--",
                          "--config.train.num_steps=5"], env)
  assert result.returncode == 0, result.stderr
  assert result.stdout.splitlines() == [
      "+ env JAX_PLATFORMS=cpu XLA_FLAGS=--xla_force_host_platform_device_count=4 "
      ".venv/bin/python -m videobert_jax.train --config=pretrain:tiny "
      "--workdir=runs/local --config.data.corpus_dir=runs/demo/corpus "
      "--config.data.codebook=runs/demo/codebook.npz --config.train.num_steps=5"]
  bad = launch(LOCAL, ["--devices", "zero"], env)
  assert bad.returncode == 1 and "--devices must be a positive integer" in bad.stderr


def test_run_restarting_reruns_a_preempted_command_and_keeps_other_statuses(tmp_path):
  counter = tmp_path / "count"
  # Exits 75 (preempted) twice, then with the status given as $1.
  job = ('n=$(cat "$COUNT" 2>/dev/null || echo 0); echo $((n + 1)) > "$COUNT"; '
         '[ "$n" -lt 2 ] && exit 75; exit "$1"')
  script = (f'source {os.path.join(REPO, "launch", "common.sh")}; DRY_RUN=0; '
            f'run_restarting bash -c {shlex.quote(job)} job "$1"')
  for final_status in (0, 3):
    counter.unlink(missing_ok=True)
    result = subprocess.run(["bash", "-c", script, "test", str(final_status)],
                            env={**os.environ, "COUNT": str(counter)},
                            capture_output=True, text=True, check=False)
    assert result.returncode == final_status, result.stderr
    assert counter.read_text().strip() == "3"
    assert result.stderr.count("preempted (status 75)") == 2


def _per_process(devices: int, module_and_flags: str) -> list[str]:
  """The lines ``local.sh --dry-run --processes 2`` prints: one command per process."""
  return [f"+ env JAX_COORDINATOR_ADDRESS=127.0.0.1:PORT JAX_NUM_PROCESSES=2 "
          f"JAX_PROCESS_ID={i} JAX_PLATFORMS=cpu "
          f"XLA_FLAGS=--xla_force_host_platform_device_count={devices} "
          f".venv/bin/python -m {module_and_flags}" for i in (0, 1)]


def test_local_dry_run_with_processes_starts_one_command_per_process(fake):
  env, _, _ = fake
  result = launch(LOCAL, ["--dry-run", "--processes", "2", "--devices-per-process", "3",
                          "--workdir", "runs/mp", "--", "--config.train.num_steps=5"], env)
  assert result.returncode == 0, result.stderr
  assert result.stdout.splitlines() == _per_process(
      3, "videobert_jax.train --config=pretrain:tiny --workdir=runs/mp "
      "--distributed=on --config.train.num_steps=5")
  bad = launch(LOCAL, ["--processes", "two"], env)
  assert bad.returncode == 1 and "--processes must be a positive integer" in bad.stderr


def test_local_dry_run_of_another_module_passes_only_its_flags(fake):
  env, _, _ = fake
  result = launch(LOCAL, ["--dry-run", "--processes", "2", "--module",
                          "videobert_jax.quantize", "--", "assign", "--corpus", "c",
                          "--codebook", "b.npz", "--out", "t"], env)
  assert result.returncode == 0, result.stderr
  assert result.stdout.splitlines() == _per_process(
      1, "videobert_jax.quantize assign --corpus c --codebook b.npz --out t "
      "--distributed=on")
  one = launch(LOCAL, ["--dry-run", "--module", "videobert_jax.quantize", "--", "assign"],
               env)
  assert one.stdout.splitlines() == [
      "+ env JAX_PLATFORMS=cpu XLA_FLAGS=--xla_force_host_platform_device_count=1 "
      ".venv/bin/python -m videobert_jax.quantize assign"]
