"""Initial embeddings of the visual words from the codebook's leaf centroids.

VideoBERT starts each visual word's embedding from its k-means centroid. The
centroids live in the feature space (S3D: 1024-d), the table in the model's
hidden space: when the two sizes match the centroids are used as they are
(BERT-large and S3D are both 1024); otherwise they are projected onto their
top-H principal directions (PCA) and rescaled so the mean row norm equals that of
a BERT embedding row (truncated normal, stddev 0.02: norm ~ 0.02 * sqrt(H) * 0.88),
so visual rows neither drown nor vanish next to the WordPieces after the
embedding LayerNorm's input sum.
"""

from __future__ import annotations

import numpy as np

# A truncated normal on [-2, 2] standard deviations has standard deviation
# ~0.88 of the untruncated one; BERT's rows are drawn from it with stddev 0.02.
BERT_ROW_STDDEV = 0.02 * 0.8796


def bert_row_norm(hidden_size: int) -> float:
  """Expected L2 norm of a BERT-initialised embedding row of ``hidden_size``."""
  return BERT_ROW_STDDEV * float(np.sqrt(hidden_size))


def visual_embeddings(leaf_centroids, hidden_size: int, seed: int = 0) -> np.ndarray:
  """Returns float32 [K, hidden_size] initial embeddings of the K visual words.

  Args:
    leaf_centroids: [K, D] centroids of the codebook's leaves.
    hidden_size: the model's hidden size H.
    seed: seeds the random directions used when H exceeds what PCA can give
      (H > min(K, D)); those extra components are small random noise.

  Returns:
    The centroids themselves when D == H, otherwise the PCA projection to H
    dimensions rescaled to BERT's embedding-row norm.
  """
  centroids = np.asarray(leaf_centroids, dtype=np.float64)
  if centroids.ndim != 2 or centroids.shape[0] < 1:
    raise ValueError(f"leaf_centroids must be [K, D] with K >= 1, got {centroids.shape}")
  if not np.all(np.isfinite(centroids)):
    raise ValueError("leaf_centroids contain NaN or Inf")
  num_words, dim = centroids.shape
  if dim == hidden_size:
    return centroids.astype(np.float32)
  centered = centroids - centroids.mean(axis=0, keepdims=True)
  # Principal directions from the SVD of the centred centroids.
  _, _, components = np.linalg.svd(centered, full_matrices=False)
  keep = min(hidden_size, components.shape[0])
  projected = np.zeros((num_words, hidden_size))
  projected[:, :keep] = centered @ components[:keep].T
  if keep < hidden_size:
    # Fewer principal directions than hidden units: fill the rest with small noise
    # so rows stay distinct and the padding dimensions are not dead.
    rng = np.random.default_rng(seed)
    projected[:, keep:] = rng.normal(0.0, 1e-3, (num_words, hidden_size - keep))
  mean_norm = np.linalg.norm(projected, axis=1).mean()
  if mean_norm > 0:
    projected *= bert_row_norm(hidden_size) / mean_norm
  else:  # all centroids identical: nothing to project, start from BERT-like noise
    rng = np.random.default_rng(seed)
    projected = rng.normal(0.0, BERT_ROW_STDDEV, (num_words, hidden_size))
  return projected.astype(np.float32)
