"""Codebook file: round trip, assignment by descent and exactly, validation errors."""

import numpy as np
import pytest

from videobert_jax.quantize.codebook import Codebook, CodebookError, load_codebook


def _codebook(k=3, d=2, dim=4, seed=0):
  rng = np.random.default_rng(seed)
  levels = [rng.standard_normal((k ** (i + 1), dim)).astype(np.float32) for i in range(d)]
  return Codebook(levels=d, clusters=k, feature_dim=dim, seed=seed, sample_size=100,
                  level_centroids=levels)


def _brute_force_descent(codebook, x):
  out = []
  for v in x:
    node = 0
    for centroids in codebook.level_centroids:
      children = centroids[node * codebook.clusters:(node + 1) * codebook.clusters]
      node = node * codebook.clusters + int(np.argmin(((children - v) ** 2).sum(1)))
    out.append(node)
  return np.array(out)


def test_save_load_round_trip_and_assignment(tmp_path):
  codebook = _codebook()
  path = tmp_path / "cb.npz"
  codebook.save(path)
  loaded = load_codebook(path, feature_dim=4)
  assert (loaded.levels, loaded.clusters, loaded.feature_dim, loaded.num_words) == (2, 3, 4, 9)
  for a, b in zip(loaded.level_centroids, codebook.level_centroids):
    np.testing.assert_array_equal(a, b)
  x = np.random.default_rng(1).standard_normal((300, 4)).astype(np.float32)
  np.testing.assert_array_equal(loaded.assign(x), codebook.assign(x))
  np.testing.assert_array_equal(loaded.assign(x), _brute_force_descent(codebook, x))
  # Batch size (padding of the last batch) does not change the result.
  np.testing.assert_array_equal(loaded.assign(x, batch_size=64), loaded.assign(x))


def test_exact_assignment_is_the_nearest_leaf():
  codebook = _codebook(seed=3)
  x = np.random.default_rng(2).standard_normal((200, 4)).astype(np.float32)
  exact = codebook.assign(x, exact=True)
  brute = ((x[:, None, :] - codebook.leaves[None]) ** 2).sum(-1).argmin(1)
  np.testing.assert_array_equal(exact, brute)
  descent = codebook.assign(x)
  # Tree descent can differ from the nearest leaf but never beats it.
  d_exact = ((x - codebook.leaves[exact]) ** 2).sum(1)
  d_tree = ((x - codebook.leaves[descent]) ** 2).sum(1)
  assert (d_tree >= d_exact - 1e-5).all()


def test_wrong_feature_dim_names_the_file(tmp_path):
  path = tmp_path / "cb.npz"
  _codebook().save(path)
  with pytest.raises(CodebookError, match=r"cb\.npz: codebook was fit on 4-d features, "
                     r"the corpus has 1024-d"):
    load_codebook(path, feature_dim=1024)
  with pytest.raises(ValueError, match="features must be"):
    load_codebook(path).assign(np.zeros((3, 5), np.float32))


@pytest.mark.parametrize("mutate, message", [
    (lambda a: a.pop("level_1"), "missing level_1"),
    (lambda a: a.pop("clusters"), "missing clusters"),
    (lambda a: a.update(format_version=np.array(99)), "format version 99"),
    (lambda a: a.update(format=np.array("something")), "not a videobert_jax codebook"),
    (lambda a: a.update(level_1=a["level_1"][:5]), "'level_1' has shape"),
    (lambda a: a.update(leaves=a["leaves"] + 1), "'leaves' differ"),
    (lambda a: a.update(leaves=a["leaves"] * np.nan, level_1=a["level_1"] * np.nan),
     "NaN"),
])
def test_bad_codebook_files(tmp_path, mutate, message):
  good = tmp_path / "good.npz"
  _codebook().save(good)
  with np.load(good) as z:
    arrays = {key: z[key] for key in z.files}
  mutate(arrays)
  bad = tmp_path / "bad.npz"
  np.savez(bad, **arrays)
  with pytest.raises(CodebookError, match=message) as info:
    load_codebook(bad)
  assert str(bad) in str(info.value)


def test_not_an_npz_and_missing_file(tmp_path):
  junk = tmp_path / "junk.npz"
  junk.write_bytes(b"not a zip file")
  with pytest.raises(CodebookError, match="junk.npz: not a readable codebook"):
    load_codebook(junk)
  with pytest.raises(CodebookError, match="does not exist"):
    load_codebook(tmp_path / "nope.npz")
