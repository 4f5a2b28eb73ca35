"""Benchmark: clips per second of the video stage (decoding, S3D, end to end).

    python benchmarks/extract.py                            # 224x224, a few clips
    python benchmarks/extract.py --size 64 --json out.json  # a quick look
    python benchmarks/extract.py --weights s3d_kinetics400.npz --dtype bfloat16

Three measurements on the same video (default: the shared pancake clip, 10.3 s
at 30 fps, 426x240):

* decode: PyAV decoding, 20 fps resampling, resize and crop, clips per second
  (one thread);
* network: S3D on ``--batch-size`` clips of 30 frames over every local device
  (``ClipEncoder``), after a warm-up that compiles; clips per second, GFLOP per
  clip from XLA's cost analysis and the GFLOP/s reached;
* end to end: ``run_extraction`` over ``--copies`` copies of the video into a
  fresh corpus (decoding threads, batching across videos, writing), clips per
  second of wall time.

Weights: ``--weights FILE`` or random (``--random-init`` is implied: speed does
not depend on the values). Where S3D runs is whatever jax sees (CPU here; a GPU
or TPU where one is at hand).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# The shared clip lies beside the repository (../shared), as on every machine here.
DEFAULT_VIDEO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                             "shared", "data", "videos", "flipping_a_pancake.mkv")


def bench_decode(video: str, spec, repeats: int) -> dict:
  """Decoding alone: clips per second over ``repeats`` passes."""
  from videobert_jax.video import decode
  start = time.perf_counter()
  clips = 0
  for _ in range(repeats):
    clips += sum(1 for _ in decode.iter_clips(video, spec))
  seconds = time.perf_counter() - start
  return {"clips": clips, "seconds": seconds, "clips_per_s": clips / seconds}


def bench_network(encoder, spec, batches: int) -> dict:
  """S3D alone on random uint8 clips: compile once, then time ``batches`` batches."""
  rng = np.random.default_rng(0)
  clips = rng.integers(0, 256, (encoder.batch_size, spec.frames_per_clip, spec.size,
                                spec.size, 3), dtype=np.uint8)
  start = time.perf_counter()
  encoder.fetch(encoder.submit(clips))
  compile_s = time.perf_counter() - start
  flops = encoder.flops_per_batch(clips.shape[1:])
  start = time.perf_counter()
  handles = [encoder.submit(clips) for _ in range(batches)]
  for handle in handles:
    encoder.fetch(handle)
  seconds = time.perf_counter() - start
  n = batches * encoder.batch_size
  out = {"clips": n, "seconds": seconds, "clips_per_s": n / seconds,
         "first_call_s": compile_s}
  if flops:
    out["gflop_per_clip"] = flops / encoder.batch_size / 1e9
    out["gflops_reached"] = flops * batches / seconds / 1e9
  return out


def bench_end_to_end(video: str, encoder, spec, copies: int, workers: int) -> dict:
  """``run_extraction`` over ``copies`` copies of ``video`` into a fresh corpus."""
  from videobert_jax.video import corpus_writer, extract
  with tempfile.TemporaryDirectory() as tmp:
    suffix = os.path.splitext(video)[1]
    paths = []
    for i in range(copies):
      path = os.path.join(tmp, f"copy{i:03d}{suffix}")
      os.symlink(os.path.abspath(video), path)
      paths.append(path)
    writer = corpus_writer.CorpusWriter(os.path.join(tmp, "corpus"))
    report = extract.run_extraction(paths, writer, encoder, spec, workers,
                                    progress=False)
  if report.failed:
    raise RuntimeError(report.failed[0]["error"])
  return {"videos": report.extracted, "clips": report.clips, "seconds": report.seconds,
          "clips_per_s": report.clips_per_second}


def main() -> int:
  """Runs the three measurements and prints/writes them."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--video", default=DEFAULT_VIDEO, help="video to measure on")
  parser.add_argument("--weights", default=None,
                      help="converted S3D weights (.npz); random weights if omitted")
  parser.add_argument("--size", type=int, default=224,
                      help="frame size (224 = the real one; smaller for a quick look)")
  parser.add_argument("--batch-size", type=int, default=4, help="clips per step")
  parser.add_argument("--batches", type=int, default=2, help="timed network steps")
  parser.add_argument("--decode-repeats", type=int, default=2,
                      help="passes over the video when timing decoding")
  parser.add_argument("--copies", type=int, default=2,
                      help="copies of the video in the end-to-end run")
  parser.add_argument("--decode-workers", type=int, default=2,
                      help="decoding threads in the end-to-end run")
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                      help="S3D computation dtype")
  parser.add_argument("--json", default=None, help="also write the results here")
  args = parser.parse_args()

  import jax
  from videobert_jax.video import decode, encoder as encoder_lib
  spec = decode.ClipSpec(size=args.size)
  encoder, info = encoder_lib.load_encoder(args.weights, random_init=True,
                                           batch_size=args.batch_size, dtype=args.dtype)
  devices = jax.local_devices()
  results = {
      "machine": {"platform": jax.default_backend(), "devices": len(devices),
                  "device_kind": devices[0].device_kind, "cpu_count": os.cpu_count(),
                  "python": platform.python_version(), "jax": jax.__version__},
      "settings": {"video": args.video, "size": args.size, "frames_per_clip": 30,
                   "batch_size": encoder.batch_size, "dtype": args.dtype,
                   "weights": info["source"]},
  }
  print(f"{results['machine']['platform']} x{len(devices)} "
        f"({results['machine']['device_kind']}), {os.cpu_count()} CPUs; clips of 30 "
        f"frames at {args.size}x{args.size}, batch {encoder.batch_size}, {args.dtype}")
  results["decode"] = bench_decode(args.video, spec, args.decode_repeats)
  print(f"decode        {results['decode']['clips_per_s']:8.2f} clips/s "
        f"({results['decode']['clips']} clips)")
  results["network"] = bench_network(encoder, spec, args.batches)
  net = results["network"]
  extra = (f", {net['gflop_per_clip']:.1f} GFLOP/clip, {net['gflops_reached']:.1f} "
           "GFLOP/s" if "gflop_per_clip" in net else "")
  print(f"network       {net['clips_per_s']:8.2f} clips/s ({net['clips']} clips; first "
        f"call incl. compile {net['first_call_s']:.1f} s{extra})")
  results["end_to_end"] = bench_end_to_end(args.video, encoder, spec, args.copies,
                                           args.decode_workers)
  e2e = results["end_to_end"]
  print(f"end to end    {e2e['clips_per_s']:8.2f} clips/s ({e2e['videos']} videos, "
        f"{e2e['clips']} clips in {e2e['seconds']:.1f} s)")
  if args.json:
    from videobert_jax import fileio
    fileio.write_json(args.json, results)
    print(f"wrote {args.json}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
