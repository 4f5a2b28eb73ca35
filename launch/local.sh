#!/usr/bin/env bash
# Trains the tiny VideoBERT on this machine's CPU (a smoke run of the real trainer), or runs
# another command (--module), in one process or in several (a stand-in for a pod's hosts).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<'EOF'
Usage: launch/local.sh [options] [-- TRAIN_FLAGS...]

Runs, from the repository root, on the CPU,

  .venv/bin/python -m videobert_jax.train --config=pretrain:tiny \
      --workdir=DIR [--config.data.corpus_dir=CORPUS] \
      [--config.data.codebook=CODEBOOK] TRAIN_FLAGS...

Options (environment variable in brackets):
  --workdir DIR      run folder [WORKDIR] (default: runs/local)
  --config SPEC      config and size [CONFIG] (default: pretrain:tiny)
  --corpus DIR       corpus folder (config.data.corpus_dir)
  --codebook FILE    codebook .npz (config.data.codebook)
  --devices N        split the CPU into N XLA devices, to exercise the sharded
                     code path as on a pod (default: 1); per process
  --devices-per-process M
                     the same as --devices
  --processes N      run N processes of one JAX run (jax.distributed on a
                     localhost coordinator, gloo collectives), one workdir;
                     when one dies the others are stopped (default: 1)
  --module M         run python -m M instead of the trainer, with only the flags
                     after -- (no --config/--workdir/--corpus/--codebook), e.g.
                     videobert_jax.quantize: `--module videobert_jax.quantize --
                     assign --corpus C --codebook B --out D`, or
                     videobert_jax.eval: `--module videobert_jax.eval --
                     --task=zeroshot --workdir W ...` (default:
                     videobert_jax.train)
  --venv DIR         virtualenv to run in [VENV] (default: .venv)
  --dry-run          print the command instead of running it
  -h, --help         this help

With --processes N the command above runs N times, each with
JAX_COORDINATOR_ADDRESS=127.0.0.1:PORT JAX_NUM_PROCESSES=N JAX_PROCESS_ID=i and
--distributed=on (videobert_jax/train/distributed.py, as on a pod; after the
flags for --module, so that a subcommand comes first).

Example:
  launch/local.sh --processes 2 --devices-per-process 2 --corpus runs/demo/corpus --codebook runs/demo/codebook.npz \
      -- --config.train.num_steps=50
EOF
}

WORKDIR="${WORKDIR:-runs/local}"
CONFIG="${CONFIG:-pretrain:tiny}"
VENV="${VENV:-.venv}"
CORPUS=""
CODEBOOK=""
DEVICES=1
PROCESSES=1
MODULE=videobert_jax.train
TRAIN_FLAGS=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    --workdir) need_value "$@"; WORKDIR="$2"; shift 2 ;;
    --config) need_value "$@"; CONFIG="$2"; shift 2 ;;
    --corpus) need_value "$@"; CORPUS="$2"; shift 2 ;;
    --codebook) need_value "$@"; CODEBOOK="$2"; shift 2 ;;
    --devices|--devices-per-process) need_value "$@"; DEVICES="$2"; shift 2 ;;
    --processes) need_value "$@"; PROCESSES="$2"; shift 2 ;;
    --module) need_value "$@"; MODULE="$2"; shift 2 ;;
    --venv) need_value "$@"; VENV="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; TRAIN_FLAGS=("$@"); break ;;
    *) die "unknown option '$1' (flags for training go after --; see --help)" ;;
  esac
done

[[ "${DEVICES}" =~ ^[1-9][0-9]*$ ]] || die "--devices must be a positive integer, got '${DEVICES}'"
[[ "${PROCESSES}" =~ ^[1-9][0-9]*$ ]] || \
  die "--processes must be a positive integer, got '${PROCESSES}'"
cd "$(repo_root)"
if [[ "${DRY_RUN}" != 1 && ! -x "${VENV}/bin/python" ]]; then
  die "no virtualenv at ${VENV}: run 'make venv' first (or pass --venv)"
fi

ENV=(env JAX_PLATFORMS=cpu "XLA_FLAGS=--xla_force_host_platform_device_count=${DEVICES}")
if [[ "${MODULE}" != videobert_jax.train ]]; then
  # Another command (quantize assign, ...): its own flags, --distributed=on last.
  COMMAND=("${ENV[@]}" "${VENV}/bin/python" -m "${MODULE}" ${TRAIN_FLAGS[@]+"${TRAIN_FLAGS[@]}"})
  if [[ "${PROCESSES}" == 1 ]]; then
    run "${COMMAND[@]}"
  else
    PYTHON="${VENV}/bin/python" run_processes "${PROCESSES}" "${COMMAND[@]}" --distributed=on
  fi
  exit
fi

ARGS=("--config=${CONFIG}" "--workdir=${WORKDIR}")
if [[ -n "${CORPUS}" ]]; then
  ARGS+=("--config.data.corpus_dir=${CORPUS}")
fi
if [[ -n "${CODEBOOK}" ]]; then
  ARGS+=("--config.data.codebook=${CODEBOOK}")
fi
COMMAND=("${ENV[@]}" "${VENV}/bin/python" -m videobert_jax.train "${ARGS[@]}")
if [[ "${PROCESSES}" == 1 ]]; then
  run_restarting "${COMMAND[@]}" ${TRAIN_FLAGS[@]+"${TRAIN_FLAGS[@]}"}
else
  PYTHON="${VENV}/bin/python" run_restarting run_processes "${PROCESSES}" "${COMMAND[@]}" \
      --distributed=on ${TRAIN_FLAGS[@]+"${TRAIN_FLAGS[@]}"}
fi
