"""Benchmark: our JAX k-means against faiss-cpu and scikit-learn on the same data.

    python benchmarks/kmeans.py                       # N=200,000 x 1024, k=12 and 256
    python benchmarks/kmeans.py --runs 4 --json out.json   # 4 runs, a table of their ratios
    python benchmarks/kmeans.py --n 20000 --json out.json

Data: N x D float32 points around ``--true-clusters`` Gaussian centres. For each
k, ours starts from k-means|| seeding, scikit-learn from k-means++ (faiss: its own
random init, as it has no k-means++), and each runs Lloyd's iterations: ours and scikit-learn until the relative
inertia change / centre shift falls below ``--tol`` or ``--max-iter``; faiss
always runs ``--max-iter`` iterations, made to use every point
(``max_points_per_centroid`` = N; by default it subsamples 256 points per
centroid). Reported: initialisation seconds, seconds per Lloyd iteration, total
seconds, iterations actually run, final inertia (re-evaluated for every method
with the same exact nearest-centroid pass), ratios to ours, and each method's
share of this machine's matmul peak (a Lloyd iteration is 2*N*k*D FLOPs; the
peak is measured in the same run with a large float32 matmul in JAX and numpy,
the faster counts). Ours keeps Hamerly bounds per row and computes distances only
for rows whose label may have changed: "rows%" is the share of rows it did
compute (the FLOPs it really did are that share of the effective figure), and
``ours-nobounds`` is the same code computing every row. Then the 4 x 12
hierarchy, ours (first call, which compiles, and a second, compiled call)
against the same tree built node by node with scikit-learn, compared by time
and mean squared quantisation error under tree descent.

Ours is seeded by k-means|| (``quantize/seeding.py``); ``ours-kmeans++`` (not run
by default) is the same fit seeded by greedy k-means++ on the same sample, the
seeding it replaced, with its seeding time in "init s".

``--runs N`` repeats all of it N times on the same data and seeds (the machine's
state is what varies) and ends with one table per run and k of ours against faiss
(whole fit and per iteration, ratios > 1: ours is faster) and of the tree against
scikit-learn (time and error), and in how many runs issue 19's goals were met
(k = 256: whole fit >= 1.3x faiss, per iteration >= 1.2x; tree >= 5x scikit-learn
at lower error). ``--json`` writes every run (``runs``) and that table
(``summary``).

Each flat (k, method) fit runs in a fresh Python process on the same data (saved
once to a temporary .npy), so no thread pool, allocator state or compiled code
left by one fit colours the next one's timing: in one process, our k = 256 fit
after the k = 12 fits ran 20-30% slower than alone. ``--in-process`` turns that
off.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def make_data(n: int, dim: int, true_clusters: int, seed: int) -> np.ndarray:
  """N x D float32 points around random Gaussian centres (unequal cluster sizes)."""
  rng = np.random.default_rng(seed)
  centres = rng.standard_normal((true_clusters, dim), np.float32)
  weights = rng.uniform(0.5, 1.5, true_clusters)
  labels = rng.choice(true_clusters, n, p=weights / weights.sum())
  x = centres[labels]
  x += rng.standard_normal((n, dim), np.float32) * np.float32(0.5)
  return x


def matmul_peak(size: int = 4096, repeats: int = 3) -> dict:
  """GFLOP/s of a size^3 float32 matmul in JAX and numpy (best of ``repeats``)."""
  import jax
  import jax.numpy as jnp
  a = np.random.default_rng(0).standard_normal((size, size), np.float32)
  flops = 2.0 * size ** 3
  ja = jnp.asarray(a)
  mm = jax.jit(lambda m: m @ m)
  jax.block_until_ready(mm(ja))
  best_j = min(_timed(lambda: jax.block_until_ready(mm(ja))) for _ in range(repeats))
  best_n = min(_timed(lambda: a @ a) for _ in range(repeats))
  return {"jax_gflops": flops / best_j / 1e9, "numpy_gflops": flops / best_n / 1e9,
          "peak_gflops": flops / min(best_j, best_n) / 1e9, "size": size}


def _timed(fn) -> float:
  t = time.perf_counter()
  fn()
  return time.perf_counter() - t


def inertia_of(x: np.ndarray, centroids: np.ndarray) -> float:
  """Exact inertia of ``centroids`` on ``x`` (the same evaluator for every method)."""
  from videobert_jax.quantize.kmeans import assign_nearest
  return assign_nearest(x, centroids)[1]


def run_ours(x, k, args, bounds: bool = True, greedy_init: bool = False) -> dict:
  """Our fit (k-means|| seeding; ``greedy_init``: greedy k-means++ on the same sample)."""
  from videobert_jax.quantize.kmeans import fit_kmeans, initial_centroids
  # A two-iteration warm-up on the same data compiles the per-shape functions (the
  # stacked pass is shaped by n, the seeding by the sample) outside the timing;
  # its time is reported apart.
  t = time.perf_counter()
  init = initial_centroids(x, k, args.seed, rounds=0) if greedy_init else None
  fit_kmeans(x, k, seed=args.seed, max_iter=2, bounds=bounds, init=init)
  warmup_s = time.perf_counter() - t
  init_s = 0.0
  if greedy_init:
    t = time.perf_counter()
    init = initial_centroids(x, k, args.seed, rounds=0)
    init_s = time.perf_counter() - t
  r = fit_kmeans(x, k, seed=args.seed, max_iter=args.max_iter, tol=args.tol, bounds=bounds,
                 init=init)
  lloyd = float(sum(r.iteration_seconds))
  init_s += r.init_seconds
  return {"init_s": init_s, "iter_s": lloyd / r.iterations,
          "total_s": init_s + r.staging_seconds + lloyd,
          "iterations": r.iterations, "centroids": r.centroids,
          "rows_share": float(sum(r.distance_rows)) / (r.iterations * len(x)),
          "distance_rows": r.distance_rows, "iteration_s": r.iteration_seconds,
          "staging_s": r.staging_seconds, "compile_and_first_pass_s": warmup_s}


def run_ours_without_bounds(x, k, args) -> dict:
  """Ours with every row's distances computed on every pass (``bounds=False``)."""
  return run_ours(x, k, args, bounds=False)


def run_ours_greedy_init(x, k, args) -> dict:
  """Ours seeded with greedy k-means++ on the same sample (the seeding before k-means||)."""
  return run_ours(x, k, args, greedy_init=True)


def run_sklearn(x, k, args) -> dict:
  from sklearn.cluster import KMeans, kmeans_plusplus
  t = time.perf_counter()
  init, _ = kmeans_plusplus(x, k, random_state=args.seed)
  init_s = time.perf_counter() - t
  t = time.perf_counter()
  km = KMeans(k, init=init, n_init=1, max_iter=args.max_iter, tol=args.tol,
              algorithm="lloyd", random_state=args.seed).fit(x)
  lloyd = time.perf_counter() - t
  return {"init_s": init_s, "iter_s": lloyd / max(km.n_iter_, 1), "total_s": init_s + lloyd,
          "iterations": int(km.n_iter_), "centroids": km.cluster_centers_.astype(np.float32)}


def run_faiss(x, k, args) -> dict:
  import faiss
  km = faiss.Kmeans(x.shape[1], k, niter=args.max_iter, seed=args.seed, verbose=False,
                    max_points_per_centroid=x.shape[0])  # use every point
  t = time.perf_counter()
  km.train(x)
  total = time.perf_counter() - t
  iters = len(km.iteration_stats) or args.max_iter
  return {"init_s": 0.0, "iter_s": total / iters, "total_s": total, "iterations": iters,
          "centroids": np.asarray(km.centroids, np.float32)}


def sklearn_hierarchy(x, levels: int, k: int, seed: int):
  """The same tree, node by node with scikit-learn KMeans (k-means++, one init)."""
  from sklearn.cluster import KMeans
  from videobert_jax.quantize.codebook import Codebook
  level_centroids = []
  nodes = np.zeros(len(x), np.int64)
  parents = x.mean(0, keepdims=True)
  for level in range(levels):
    cents = np.zeros((parents.shape[0] * k, x.shape[1]), np.float32)
    child = np.zeros(len(x), np.int64)
    order = np.argsort(nodes, kind="stable")
    bounds = np.searchsorted(nodes[order], np.arange(parents.shape[0] + 1))
    for node in range(parents.shape[0]):
      rows = order[bounds[node]:bounds[node + 1]]
      pts = x[rows]
      uniq = np.unique(pts, axis=0)
      if len(uniq) < k:  # too few points: each its own child, then perturbed copies
        base = uniq if len(uniq) else parents[node][None]
        noise = 1e-3 * np.random.default_rng([seed, level, node]).standard_normal(
            (k, x.shape[1]))
        cents[node * k:(node + 1) * k] = base[np.arange(k) % len(base)] + noise
        cents[node * k:node * k + len(uniq)] = uniq
        lab = (((pts[:, None] - uniq[None]) ** 2).sum(-1).argmin(1) if len(pts)
               else np.zeros(0, np.int64))
      else:
        km = KMeans(k, n_init=1, random_state=seed, algorithm="lloyd").fit(pts)
        cents[node * k:(node + 1) * k] = km.cluster_centers_
        lab = km.labels_
      child[rows] = node * k + lab
    level_centroids.append(cents)
    parents, nodes = cents, child
  return Codebook(levels=levels, clusters=k, feature_dim=x.shape[1], seed=seed,
                  sample_size=len(x), level_centroids=level_centroids)


def quantisation_mse(x, codebook) -> float:
  """Mean squared distance of each point to the leaf its tree descent reaches."""
  tokens = codebook.assign(x)
  total = 0.0
  for start in range(0, len(x), 65536):
    d = x[start:start + 65536] - codebook.leaves[tokens[start:start + 65536]]
    total += float(np.sum(d * d))
  return total / len(x)


RUNNERS = {"ours": run_ours, "ours-nobounds": run_ours_without_bounds,
           "ours-kmeans++": run_ours_greedy_init, "faiss": run_faiss, "sklearn": run_sklearn}


def run_isolated(method: str, data_path: str, k: int, args) -> dict:
  """``run_<method>`` on the saved data in a fresh process; returns its result dict."""
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "result")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", method, "--data", data_path,
           "--out", out, "--ks", str(k), "--max-iter", str(args.max_iter),
           "--tol", str(args.tol), "--seed", str(args.seed)]
    subprocess.run(cmd, check=True)
    with open(out + ".json", encoding="utf-8") as f:
      result = json.load(f)
    result["centroids"] = np.load(out + ".npy")
  return result


def _worker(args) -> int:
  """The child of ``run_isolated``: one fit, written to ``args.out`` .json/.npy."""
  x = np.load(args.data)
  result = RUNNERS[args.worker](x, int(args.ks), args)
  np.save(args.out + ".npy", result.pop("centroids"))
  with open(args.out + ".json", "w", encoding="utf-8") as f:
    json.dump(result, f)
  return 0


def parse_args(argv=None):
  """The command line (see the module docstring)."""
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--n", type=int, default=200_000, help="points (default 200000)")
  p.add_argument("--dim", type=int, default=1024, help="dimension (default 1024)")
  p.add_argument("--ks", default="12,256", help="comma-separated k values (default 12,256)")
  p.add_argument("--true-clusters", type=int, default=512, help="Gaussian centres of the data")
  p.add_argument("--max-iter", type=int, default=25,
                 help="Lloyd iterations at most (faiss: exactly this many)")
  p.add_argument("--tol", type=float, default=1e-4, help="convergence tolerance (ours, sklearn)")
  p.add_argument("--seed", type=int, default=0, help="random seed")
  p.add_argument("--methods", default="ours,ours-nobounds,faiss,sklearn",
                 help="methods to run (ours-nobounds: ours computing every distance; "
                      "ours-kmeans++: ours seeded by greedy k-means++, the seeding before "
                      "k-means||)")
  p.add_argument("--levels", type=int, default=4, help="hierarchy depth (0 skips it)")
  p.add_argument("--clusters", type=int, default=12, help="hierarchy k per node")
  p.add_argument("--runs", type=int, default=1,
                 help="repeat everything this many times on the same data and seeds, then "
                      "print a table of every run's ratios (default 1)")
  p.add_argument("--json", help="write the results to this JSON file")
  p.add_argument("--in-process", action="store_true",
                 help="run every fit in this process (default: each in a fresh one)")
  p.add_argument("--worker", help=argparse.SUPPRESS)
  p.add_argument("--data", help=argparse.SUPPRESS)
  p.add_argument("--out", help=argparse.SUPPRESS)
  return p.parse_args(argv)


def flat_fits(x, args, peak: dict, data_path: str) -> list:
  """Every (k, method) fit of one run, printed as a table; returns their result rows."""
  methods = [m for m in args.methods.split(",") if m]
  print(f"{'k':>4} {'method':<13} {'init s':>8} {'s/iter':>8} {'iters':>5} {'total s':>8} "
        f"{'inertia':>12} {'rows%':>6} {'%peak':>6} {'iter x':>7} {'total x':>7} "
        f"{'inertia x':>9}")
  flat = []
  for k in [int(v) for v in args.ks.split(",")]:
    rows = {}
    for m in methods:
      r = (RUNNERS[m](x, k, args) if args.in_process
           else run_isolated(m, data_path, k, args))
      r["inertia"] = inertia_of(x, r.pop("centroids"))
      r.setdefault("rows_share", 1.0)  # share of rows whose distances each pass computes
      # Effective: a full Lloyd iteration's 2 N k D FLOPs over its time. Ours skips
      # rows (rows%); the FLOPs it really did are rows% of that.
      r["peak_share"] = 2.0 * args.n * k * args.dim / r["iter_s"] / 1e9 / peak["peak_gflops"]
      rows[m] = r
    ref = rows.get("ours")
    for m, r in rows.items():
      if ref:  # ratios > 1: the other method is slower / worse than ours
        r["iter_ratio"] = r["iter_s"] / ref["iter_s"]
        r["total_ratio"] = r["total_s"] / ref["total_s"]
        r["inertia_ratio"] = r["inertia"] / ref["inertia"]
      print(f"{k:>4} {m:<13} {r['init_s']:>8.3f} {r['iter_s']:>8.4f} {r['iterations']:>5} "
            f"{r['total_s']:>8.2f} {r['inertia']:>12.6g} {100 * r['rows_share']:>5.1f}% "
            f"{100 * r['peak_share']:>5.1f}% "
            f"{r.get('iter_ratio', float('nan')):>7.2f} {r.get('total_ratio', float('nan')):>7.2f}"
            f" {r.get('inertia_ratio', float('nan')):>9.4f}", flush=True)
      flat.append({"k": k, "method": m, **r})
  return flat


def hierarchy_fits(x, args) -> dict:
  """The ``levels`` x ``clusters`` tree, ours (twice) and scikit-learn's, printed."""
  from videobert_jax.quantize.hierarchical import fit_hierarchical
  # Ours twice: the first call includes compiling the per-level programs (their
  # shapes depend on the data), the second is the compiled run.
  fits = []
  for _ in range(2):
    stats = {}
    t = time.perf_counter()
    ours = fit_hierarchical(x, args.levels, args.clusters, args.seed, sample_size=len(x),
                            stats=stats)
    fits.append((time.perf_counter() - t, stats))
  t = time.perf_counter()
  theirs = sklearn_hierarchy(x, args.levels, args.clusters, args.seed)
  theirs_s = time.perf_counter() - t
  (cold_s, _), (ours_s, stats) = fits
  h = {"levels": args.levels, "clusters": args.clusters, "ours_s": ours_s,
       "ours_first_call_s": cold_s, "ours_level_s": stats["level_seconds"],
       "ours_level_iterations": stats.get("level_iterations"),
       "sklearn_s": theirs_s, "ours_mse": quantisation_mse(x, ours),
       "sklearn_mse": quantisation_mse(x, theirs)}
  h["time_ratio"] = theirs_s / ours_s
  h["first_call_time_ratio"] = theirs_s / cold_s
  h["mse_ratio"] = h["sklearn_mse"] / h["ours_mse"]
  leaves = args.clusters ** args.levels
  print(f"hierarchy {args.levels}x{args.clusters} ({leaves} leaves)  {'s':>8} {'mse':>10} "
        f"{'time x':>7} {'mse x':>7}")
  rows = [("ours (first call, compiles)", cold_s, h["ours_mse"]),
          ("ours", ours_s, h["ours_mse"]), ("scikit-learn", theirs_s, h["sklearn_mse"])]
  for name, secs, mse in rows:  # ratios > 1: scikit-learn is slower / worse than ours
    print(f"  {name:<30} {secs:>8.2f} {mse:>10.5g} {theirs_s / secs:>7.2f} "
          f"{h['sklearn_mse'] / mse:>7.4f}")
  print(f"  ours per level (s): {', '.join(f'{v:.2f}' for v in stats['level_seconds'])}")
  return h


# Issue 19 item 3's goals: at k = 256 the whole fit and each iteration this much
# faster than faiss's; the tree this much faster than scikit-learn's, at lower error.
GOAL_TOTAL_VS_FAISS, GOAL_ITER_VS_FAISS, GOAL_TREE_VS_SKLEARN = 1.3, 1.2, 5.0


def summarise(runs: list) -> dict:
  """Per run and k: ours against faiss (whole fit, per iteration); per run: the tree
  against scikit-learn (time, error); and in how many runs each goal was met."""
  flat, tree = [], []
  for i, run in enumerate(runs, 1):
    by = {(r["k"], r["method"]): r for r in run["flat"]}
    for k in sorted({r["k"] for r in run["flat"]}):
      ours, faiss = by.get((k, "ours")), by.get((k, "faiss"))
      if ours and faiss:
        flat.append({"run": i, "k": k, "ours_total_s": ours["total_s"],
                     "faiss_total_s": faiss["total_s"], "total_x": faiss["total_ratio"],
                     "ours_iter_s": ours["iter_s"], "faiss_iter_s": faiss["iter_s"],
                     "iter_x": faiss["iter_ratio"], "ours_init_s": ours["init_s"],
                     "inertia_x": faiss["inertia_ratio"]})
    h = run.get("hierarchy")
    if h:
      tree.append({"run": i, "ours_s": h["ours_s"], "sklearn_s": h["sklearn_s"],
                   "time_x": h["time_ratio"], "ours_mse": h["ours_mse"],
                   "sklearn_mse": h["sklearn_mse"], "mse_x": h["mse_ratio"]})
  at_256 = [r for r in flat if r["k"] == 256]
  goals = {"runs": len(runs),
           "k256_total_runs_met": sum(r["total_x"] >= GOAL_TOTAL_VS_FAISS for r in at_256),
           "k256_iter_runs_met": sum(r["iter_x"] >= GOAL_ITER_VS_FAISS for r in at_256),
           "k256_runs": len(at_256),
           "tree_runs_met": sum(r["time_x"] >= GOAL_TREE_VS_SKLEARN and r["mse_x"] > 1.0
                                for r in tree),
           "tree_runs": len(tree)}
  return {"flat": flat, "tree": tree, "goals": goals}


# The summary tables' columns: (key, header, width, format).
FLAT_COLUMNS = [("run", "run", 3, "d"), ("k", "k", 4, "d"), ("ours_total_s", "ours s", 8, ".2f"),
                ("faiss_total_s", "faiss s", 8, ".2f"), ("total_x", "total x", 7, ".2f"),
                ("ours_iter_s", "ours s/it", 9, ".4f"), ("faiss_iter_s", "faiss s/it", 10, ".4f"),
                ("iter_x", "iter x", 7, ".2f"), ("ours_init_s", "ours init s", 11, ".3f")]
TREE_COLUMNS = [("run", "run", 3, "d"), ("ours_s", "ours s", 8, ".2f"),
                ("sklearn_s", "sklearn s", 9, ".2f"), ("time_x", "time x", 7, ".2f"),
                ("ours_mse", "ours mse", 10, ".5g"), ("sklearn_mse", "sklearn mse", 11, ".5g"),
                ("mse_x", "mse x", 7, ".4f")]


def _print_table(title: str, rows: list, columns: list) -> None:
  """``rows`` (dicts) under ``title`` as right-aligned ``columns``."""
  if not rows:
    return
  print(f"\n{title}\n" + " ".join(f"{head:>{width}}" for _, head, width, _ in columns))
  for r in rows:
    print(" ".join(f"{r[key]:>{width}{fmt}}" for key, _, width, fmt in columns))


def print_summary(summary: dict) -> None:
  """The per-run tables of ``summarise`` and the goal counts."""
  _print_table("per run: ours vs faiss (x: faiss's time over ours)", summary["flat"],
               FLAT_COLUMNS)
  _print_table("per run: the tree, ours vs scikit-learn (x: scikit-learn's over ours)",
               summary["tree"], TREE_COLUMNS)
  g = summary["goals"]
  if g["k256_runs"]:
    print(f"goal, k = 256: whole fit >= {GOAL_TOTAL_VS_FAISS}x faiss in "
          f"{g['k256_total_runs_met']} of {g['k256_runs']} runs; per iteration >= "
          f"{GOAL_ITER_VS_FAISS}x in {g['k256_iter_runs_met']} of {g['k256_runs']}")
  if g["tree_runs"]:
    print(f"goal, tree: >= {GOAL_TREE_VS_SKLEARN}x scikit-learn at lower error in "
          f"{g['tree_runs_met']} of {g['tree_runs']} runs")


def main(argv=None) -> int:
  """Runs the benchmark ``--runs`` times; prints each run and the per-run summary."""
  args = parse_args(argv)
  if args.worker:
    return _worker(args)
  import jax
  x = make_data(args.n, args.dim, args.true_clusters, args.seed)
  results = {"n": args.n, "dim": args.dim, "devices": len(jax.devices()),
             "backend": jax.default_backend(), "cpu_count": os.cpu_count(),
             "methods": args.methods, "runs": []}
  scratch = tempfile.TemporaryDirectory()
  data_path = os.path.join(scratch.name, "data.npy")
  if not args.in_process:
    np.save(data_path, x)
  for i in range(args.runs):
    # The peak is measured again in each run: the machine's state changes.
    peak = matmul_peak()
    print(f"{'' if i == 0 else chr(10)}run {i + 1} of {args.runs}: data {args.n} x {args.dim} "
          f"float32, {results['devices']} {results['backend']} device(s); matmul peak "
          f"{peak['peak_gflops']:.1f} GFLOP/s (jax {peak['jax_gflops']:.1f}, numpy "
          f"{peak['numpy_gflops']:.1f})")
    run = {"peak": peak, "flat": flat_fits(x, args, peak, data_path), "hierarchy": None}
    if args.levels:
      run["hierarchy"] = hierarchy_fits(x, args)
    results["runs"].append(run)
  scratch.cleanup()
  results["summary"] = summarise(results["runs"])
  print_summary(results["summary"])
  if args.json:
    from videobert_jax import fileio
    fileio.write_json(args.json, results)
    print(f"results -> {args.json}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
