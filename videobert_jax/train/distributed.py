"""Starting JAX on several processes: one code path for a TPU pod, GPU hosts and this CPU.

Every multi-process command (``train``, ``quantize fit``) calls ``initialize``
before it touches a device. What it reads:

* ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0), ``JAX_NUM_PROCESSES``
  and ``JAX_PROCESS_ID``: an explicit cluster, as ``launch/local.sh --processes N``
  sets for N processes on this machine and as any scheduler can set on GPU hosts.
* Nothing of the above, but several TPU workers (``TPU_WORKER_HOSTNAMES``, set on
  every Cloud TPU VM of a pod slice) or several SLURM tasks: JAX's own cluster
  detection finds the coordinator, the process count and this process's id.

On the CPU the cross-process collectives go through gloo (set explicitly, since
another default would make every cross-process ``psum`` fail at its first use).
"""

from __future__ import annotations

import os
from typing import Mapping

# Variables whose presence means several processes take part in this run.
COORDINATOR_ENV = ("JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS")
NUM_PROCESSES_ENV = "JAX_NUM_PROCESSES"
PROCESS_ID_ENV = "JAX_PROCESS_ID"
MODES = ("auto", "on", "off")


def multihost_environment(env: Mapping[str, str] = os.environ) -> bool:
  """True when the environment describes a multi-process run."""
  if any(env.get(name) for name in COORDINATOR_ENV):
    return True
  if len([h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h]) > 1:
    return True
  return int(env.get("SLURM_NTASKS", "1") or 1) > 1


def cluster_arguments(env: Mapping[str, str] = os.environ) -> dict:
  """``jax.distributed.initialize`` keyword arguments from an explicit cluster in ``env``.

  Empty when no coordinator is named (JAX then detects TPU or SLURM clusters
  itself). A coordinator without both the process count and this process's id is
  an error naming the missing variable: guessing them would start a run whose
  processes never meet.
  """
  address = next((env[name] for name in COORDINATOR_ENV if env.get(name)), None)
  if address is None:
    return {}
  missing = [name for name in (NUM_PROCESSES_ENV, PROCESS_ID_ENV) if not env.get(name)]
  if missing:
    raise ValueError(f"{COORDINATOR_ENV[0]}={address} is set but {' and '.join(missing)} "
                     "is not: set the number of processes and this process's id (0..N-1)")
  try:
    num, index = int(env[NUM_PROCESSES_ENV]), int(env[PROCESS_ID_ENV])
  except ValueError as e:
    raise ValueError(f"{NUM_PROCESSES_ENV} and {PROCESS_ID_ENV} must be integers: {e}")
  if not 0 <= index < num:
    raise ValueError(f"{PROCESS_ID_ENV}={index} is outside 0..{num - 1} "
                     f"({NUM_PROCESSES_ENV}={num})")
  return {"coordinator_address": address, "num_processes": num, "process_id": index}


def initialize(mode: str = "auto", env: Mapping[str, str] | None = None) -> bool:
  """Calls ``jax.distributed.initialize()`` when ``mode`` and the environment ask for it.

  Args:
    mode: ``auto`` (when ``multihost_environment``), ``on`` (always) or ``off``.
    env: the environment to read (default ``os.environ``).

  Returns:
    True when JAX was initialised for several processes. Must run before the
    first device is used (jax may be imported already).
  """
  if mode not in MODES:
    raise ValueError(f"distributed mode must be one of {MODES}, got {mode!r}")
  env = os.environ if env is None else env
  if mode == "off" or (mode == "auto" and not multihost_environment(env)):
    return False
  kwargs = cluster_arguments(env)
  import jax  # pylint: disable=import-outside-toplevel
  if env.get("JAX_PLATFORMS", "").split(",")[0] == "cpu":
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(**kwargs)
  return True
