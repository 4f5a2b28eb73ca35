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
run_restarting() {
  if [[ "${DRY_RUN}" == 1 ]]; then
    show "$@"
    return
  fi
  local status
  while true; do
    show "$@" >&2
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
