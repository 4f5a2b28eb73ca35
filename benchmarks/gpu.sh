#!/usr/bin/env bash
# The GPU figures of BENCHMARKS.md in one go, on one H100 or H200 (about 8 minutes).
#
#   PY=/path/to/python benchmarks/gpu.sh [OUT_DIR]        # default OUT_DIR: runs/gpu
#
# Needs this package with the bench extras and a CUDA jax in that Python:
#   pip install -e '.[bench]' 'jax[cuda12]'
# Runs, each with its peer in the same run:
#   1. the `large` train step, bfloat16, T = 128, at the largest batch that fits
#      (512, halved on out-of-memory), cuDNN attention and remat as the config says,
#      against Hugging Face's FlaxBertForPreTraining on the same examples;
#   2. k-means at 1M x 1024: k = 256 (ours, faiss) and the 4 x 12 tree;
#   3. S3D feature extraction throughput (decode and network), bfloat16.
# Writes OUT_DIR/gpu.json (all figures, the device named) and prints the block to
# paste into BENCHMARKS.md. Never part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${1:-runs/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.92}

"$PY" -c "import jax; d = jax.devices()[0]; assert d.platform == 'gpu', \
  f'benchmarks/gpu.sh needs a GPU, jax sees {d.platform}'; print('device:', d.device_kind)"

echo "== 1. large train step (bfloat16, T=128)"
for batch in 512 256 128 64; do
  if "$PY" benchmarks/train_step.py --size large --dtype bfloat16 --seq-len 128 \
      --batch "$batch" --steps 10 --warmup 3 --json "$OUT/train_step.json" \
      > "$OUT/train_step.log" 2>&1; then
    cat "$OUT/train_step.log"
    break
  fi
  if ! grep -qiE "RESOURCE_EXHAUSTED|out of memory" "$OUT/train_step.log"; then
    cat "$OUT/train_step.log"
    exit 1
  fi
  echo "batch $batch does not fit; halving"
done

echo "== 2. k-means, 1M x 1024"
"$PY" benchmarks/kmeans.py --n 1000000 --dim 1024 --ks 256 --methods ours,faiss \
  --levels 4 --clusters 12 --max-iter 25 --json "$OUT/kmeans.json" | tee "$OUT/kmeans.log"

echo "== 3. S3D extraction"
"$PY" benchmarks/extract.py --dtype bfloat16 --batch-size 32 --batches 5 --copies 4 \
  --decode-workers 8 --json "$OUT/extract.json" | tee "$OUT/extract.log"

"$PY" - "$OUT" <<'EOF'
import json, os, sys
import jax
out = sys.argv[1]
parts = {name: json.load(open(os.path.join(out, f"{name}.json")))
         for name in ("train_step", "kmeans", "extract")
         if os.path.exists(os.path.join(out, f"{name}.json"))}
device = jax.devices()[0].device_kind
json.dump({"device": device, **parts}, open(os.path.join(out, "gpu.json"), "w"), indent=2)
print(f"\n### One {device} (benchmarks/gpu.sh)\n\n```")
for name in ("train_step", "kmeans", "extract"):
  print(open(os.path.join(out, f"{name}.log")).read().strip())
print("```")
EOF
