# Shared by the launchers (sourced, not run): printing or running commands.
#
# DRY_RUN=1 makes `run` print each command, shell-quoted, instead of running it.

DRY_RUN="${DRY_RUN:-0}"

# Prints an error line naming the launcher and exits 1.
die() {
  echo "error: $(basename "$0"): $*" >&2
  exit 1
}

# Prints a progress line on stderr (so stdout stays the command list in --dry-run).
say() {
  echo "[$(basename "$0")] $*" >&2
}

# Quotes one word for a POSIX shell: as it is when safe, otherwise in single quotes.
quote() {
  local word="$1"
  if [[ "${word}" =~ ^[A-Za-z0-9_./:=@%+,~-]+$ ]]; then
    printf '%s' "${word}"
  else
    printf "'%s'" "${word//\'/\'\\\'\'}"
  fi
}

# Prints "+ cmd args..." with every word quoted, as `set -x` would.
show() {
  printf '+ %s\n' "$(quote_args "$@")"
}

# Runs the command, or only shows it under --dry-run.
run() {
  if [[ "${DRY_RUN}" == 1 ]]; then
    show "$@"
  else
    show "$@" >&2
    "$@"
  fi
}

# The trainer's exit status after a preemption notice (SIGTERM): checkpoint saved,
# rerun to resume (videobert_jax/train/preemption.py).
PREEMPTED_STATUS=75

# Like run, but reruns the command while it exits with PREEMPTED_STATUS: a scheduler
# that sends SIGTERM and then lets the job go on gets a resumed run, not a dead one.
# A shell function (run_processes) shows its own commands.
run_restarting() {
  local is_function=0
  if declare -F "$1" > /dev/null; then
    is_function=1
  fi
  if [[ "${DRY_RUN}" == 1 ]]; then
    if [[ "${is_function}" == 1 ]]; then
      "$@"
    else
      show "$@"
    fi
    return
  fi
  local status
  while true; do
    [[ "${is_function}" == 1 ]] || show "$@" >&2
    status=0
    "$@" || status=$?
    [[ "${status}" == "${PREEMPTED_STATUS}" ]] || return "${status}"
    say "preempted (status ${PREEMPTED_STATUS}): resuming from the last checkpoint"
  done
}

# Quotes each argument for a remote shell and joins them with spaces.
quote_args() {
  local out="" arg
  for arg in "$@"; do
    out+=" $(quote "${arg}")"
  done
  printf '%s' "${out# }"
}

# Fails unless the flag "$1" was given a non-empty value "$2" (call with "$@").
need_value() {
  [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"
}

# The repository root (the folder above launch/).
repo_root() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd
}

# Prints a TCP port free on this machine now (for a localhost JAX coordinator).
free_port() {
  "${PYTHON:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_processes N CMD...: runs N copies of CMD as the processes of one JAX run on this
# machine (videobert_jax/train/distributed.py reads the variables): copy i gets
# JAX_PROCESS_ID=i, all get JAX_NUM_PROCESSES=N and a coordinator on a free localhost
# port, fresh on every call so a restart never meets the old one. Returns 0 when all
# succeed, PREEMPTED_STATUS when they stopped at a checkpoint, else the first failure.
#
# When one copy fails the others are killed at once: the collectives of every step
# need every process, so the others could only hang (and cannot save: a checkpoint
# needs them all too). A rerun resumes from the last committed checkpoint.
# SIGINT/SIGTERM to the launcher go to every copy as SIGTERM: they save the current
# step together and exit with PREEMPTED_STATUS, and so does the launcher.
run_processes() {
  local n="$1" i port
  shift
  [[ "$1" != env ]] || shift  # the variables go into the command's own env
  if [[ "${DRY_RUN}" == 1 ]]; then
    for ((i = 0; i < n; i++)); do
      show env JAX_COORDINATOR_ADDRESS=127.0.0.1:PORT "JAX_NUM_PROCESSES=${n}" \
          "JAX_PROCESS_ID=${i}" "$@"
    done
    return
  fi
  port="$(free_port)"
  RUN_PIDS=()
  RUN_STOP=0
  local -A index_of=()
  for ((i = 0; i < n; i++)); do
    show env "JAX_COORDINATOR_ADDRESS=127.0.0.1:${port}" "JAX_NUM_PROCESSES=${n}" \
        "JAX_PROCESS_ID=${i}" "$@" >&2
    env "JAX_COORDINATOR_ADDRESS=127.0.0.1:${port}" "JAX_NUM_PROCESSES=${n}" \
        "JAX_PROCESS_ID=${i}" "$@" &
    RUN_PIDS+=("$!")
    index_of["$!"]="${i}"
  done
  trap 'RUN_STOP=1; kill -TERM "${RUN_PIDS[@]}" 2>/dev/null || true' INT TERM
  local result=0 status done_pid pid live
  while [[ ${#RUN_PIDS[@]} -gt 0 ]]; do
    done_pid=""
    status=0
    wait -n -p done_pid "${RUN_PIDS[@]}" || status=$?
    [[ -n "${done_pid}" ]] || continue  # a signal interrupted the wait; the trap ran
    live=()
    for pid in "${RUN_PIDS[@]}"; do
      [[ "${pid}" == "${done_pid}" ]] || live+=("${pid}")
    done
    RUN_PIDS=(${live[@]+"${live[@]}"})
    if [[ "${status}" != 0 && "${status}" != "${PREEMPTED_STATUS}" ]]; then
      say "process ${index_of[${done_pid}]} (pid ${done_pid}) exited with status" \
          "${status}: stopping the other ${#RUN_PIDS[@]}"
      kill -KILL ${RUN_PIDS[@]+"${RUN_PIDS[@]}"} 2>/dev/null || true
      wait ${RUN_PIDS[@]+"${RUN_PIDS[@]}"} 2>/dev/null || true
      RUN_PIDS=()
      result="${status}"
    elif [[ "${status}" != 0 && "${result}" == 0 ]]; then
      result="${status}"  # preempted: the others are committing the same step, wait
    fi
  done
  trap - INT TERM
  if [[ "${RUN_STOP}" == 1 ]]; then
    say "stopped on a signal (status ${result}); rerun to resume from the last checkpoint"
    exit "${PREEMPTED_STATUS}"
  fi
  return "${result}"
}
