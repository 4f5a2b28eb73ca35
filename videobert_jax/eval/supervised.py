"""The supervised baseline of Table 1: a linear classifier on average-pooled features.

Each training segment's features are averaged over its clips; a multinomial
logistic regression (scikit-learn, on standardised features) is trained to
predict its verb (and, separately, its noun). A segment with several labels
contributes one training row per label, so the classifier learns every label a
caption names; segments without a label in the list are left out.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def training_rows(features: Sequence[np.ndarray], labels: Sequence[frozenset[str]]):
  """``(X [n, D], y [n])``: one row per (segment, label) pair."""
  rows, targets = [], []
  for x, segment_labels in zip(features, labels):
    for label in sorted(segment_labels):
      rows.append(x)
      targets.append(label)
  if not rows:
    return np.zeros((0, 0), np.float32), np.zeros(0, object)
  return np.stack(rows).astype(np.float32), np.asarray(targets, object)


def rank_with_linear_classifier(train_features: Sequence[np.ndarray],
                                train_labels: Sequence[frozenset[str]],
                                test_features: Sequence[np.ndarray], top_k: int = 5,
                                seed: int = 0, max_iter: int = 2000) -> list[list[str]] | None:
  """Trains on the training segments and ranks labels for each test segment.

  Returns:
    Per test segment, the ``top_k`` most probable labels (best first), or None
    when the training rows hold fewer than two distinct labels.
  """
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  from sklearn.pipeline import make_pipeline  # pylint: disable=g-import-not-at-top
  from sklearn.preprocessing import StandardScaler  # pylint: disable=g-import-not-at-top
  x, y = training_rows(train_features, train_labels)
  if len(set(y.tolist())) < 2:
    return None
  classifier = make_pipeline(
      StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
  classifier.fit(x, y)
  if not len(test_features):
    return []
  probs = classifier.predict_proba(np.stack(test_features).astype(np.float32))
  classes = classifier.classes_
  order = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
  return [[str(classes[j]) for j in row] for row in order]
