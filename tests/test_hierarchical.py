"""Hierarchical k-means: exactly k^d leaves, device-count independence, fill rule."""

import jax
import numpy as np

from videobert_jax.quantize.hierarchical import fit_hierarchical


def _tree_data(seed=0):
  """Points with a 3x3 cluster hierarchy (well separated at both levels)."""
  rng = np.random.default_rng(seed)
  top = rng.standard_normal((3, 16)) * 20
  sub = top[:, None, :] + rng.standard_normal((3, 3, 16)) * 4
  labels = rng.integers(0, 9, 1800)
  x = sub.reshape(9, 16)[labels] + rng.standard_normal((1800, 16)) * 0.5
  return x.astype(np.float32), labels


def _assert_siblings_distinct(codebook):
  for centroids in codebook.level_centroids:
    groups = centroids.reshape(-1, codebook.clusters, codebook.feature_dim)
    for children in groups:
      assert len(np.unique(children, axis=0)) == codebook.clusters


def test_exactly_k_pow_d_leaves_and_recovers_the_tree():
  x, labels = _tree_data()
  stats = {}
  codebook = fit_hierarchical(x, levels=2, clusters=3, seed=0, stats=stats)
  assert codebook.num_words == 9 and codebook.leaves.shape == (9, 16)
  assert [c.shape[0] for c in codebook.level_centroids] == [3, 9]
  tokens = codebook.assign(x)
  # Each true sub-cluster maps to exactly one leaf, and each leaf to one sub-cluster.
  pairs = set(zip(labels.tolist(), tokens.tolist()))
  assert len(pairs) == 9 and len({t for _, t in pairs}) == 9
  assert stats["filled_children"] == 0
  _assert_siblings_distinct(codebook)


def test_four_devices_give_the_same_codebook_as_one():
  assert len(jax.devices()) == 4
  x = np.random.default_rng(1).standard_normal((1500, 16)).astype(np.float32)
  four = fit_hierarchical(x, levels=2, clusters=3, seed=5)
  one = fit_hierarchical(x, levels=2, clusters=3, seed=5, devices=jax.devices()[:1])
  for a, b in zip(four.level_centroids, one.level_centroids):
    np.testing.assert_array_equal(a, b)


def test_fewer_natural_clusters_and_fewer_points_than_k():
  # 5 distinct points (40 copies each) for a 3-level, 4-way tree: level 2 nodes
  # hold 1 or 2 distinct points, level 3 nodes are empty or a single point.
  rng = np.random.default_rng(0)
  x = np.repeat(rng.standard_normal((5, 8)).astype(np.float32), 40, axis=0)
  stats = {}
  codebook = fit_hierarchical(x, levels=3, clusters=4, seed=0, stats=stats)
  assert codebook.leaves.shape == (64, 8)
  assert np.isfinite(codebook.leaves).all()
  assert stats["filled_children"] > 0 and stats["empty_nodes"] > 0
  _assert_siblings_distinct(codebook)
  # Every data point still lands on a leaf that sits on it.
  tokens = codebook.assign(x)
  np.testing.assert_allclose(codebook.leaves[tokens], x, atol=1e-4)
  # Perturbations are tiny and deterministic.
  again = fit_hierarchical(x, levels=3, clusters=4, seed=0)
  np.testing.assert_array_equal(again.leaves, codebook.leaves)


def test_streamed_input_and_sampling():
  x, _ = _tree_data(seed=2)
  blocks = lambda: (x[i:i + 100] for i in range(0, len(x), 100))
  codebook = fit_hierarchical(blocks, levels=2, clusters=3, seed=0, sample_size=900)
  assert codebook.sample_size == 900 and codebook.num_words == 9
  assert len(np.unique(codebook.assign(x))) == 9


def test_level_fit_does_not_depend_on_how_nodes_are_chunked():
  # Every node's k-means++ draws and sums run in the same order wherever the
  # node lands, so 1, 3 or 4 chunks (1 or 4 devices, or 8 ...) agree bitwise.
  from videobert_jax.quantize import kmeans, level_fit
  rng = np.random.default_rng(0)
  x = rng.standard_normal((700, 8)).astype(np.float32)
  nodes = rng.integers(0, 6, 700)
  nodes[nodes == 4] = 5  # node 4 is empty
  seeds = rng.integers(0, 2**32, 6, dtype=np.uint32)
  mesh = kmeans.make_data_mesh(jax.devices()[:1])
  fit, _ = level_fit.level_functions(3, 30, 1e-4)
  results = []
  for chunks in (1, 3, 4):
    layout = level_fit.pack_level(nodes, 6, chunks, tile=16)
    xs, w = level_fit.gather_rows(jax.device_put(x), layout, mesh)
    real = layout.node_global >= 0
    node_seeds = np.where(real, seeds[np.maximum(layout.node_global, 0)], 0).astype(np.uint32)
    centres, counts, _ = fit(xs, w, layout.tile_node, layout.tile_rank, node_seeds)
    out = np.zeros((6, 3, 8), np.float32)
    out[layout.node_global[real]] = np.asarray(centres)[real]
    total = np.zeros(6)
    total[layout.node_global[real]] = np.asarray(counts)[real].sum(1)
    np.testing.assert_array_equal(total, np.bincount(nodes, minlength=6))
    results.append(out)
  for other in results[1:]:
    np.testing.assert_array_equal(other, results[0])


def test_choose_tile_trades_padding_for_larger_tiles():
  from videobert_jax.quantize import level_fit
  assert level_fit.choose_tile(np.full(10, 5000)) == 128  # big nodes: big tiles
  assert level_fit.choose_tile(np.full(1000, 9)) <= 16  # tiny nodes: little padding
