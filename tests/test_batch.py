"""The model-batch contract."""

import numpy as np
import pytest

from videobert_jax import batch


def test_zeros_batch_passes_check():
  b = batch.zeros(2, 16, 4)
  batch.check(b)
  assert b["input_ids"].shape == (2, 16) and b["masked_weights"].dtype == np.float32


def test_check_names_the_bad_field():
  b = batch.zeros(2, 16, 4)
  b["masked_ids"] = np.zeros((2, 5), np.int32)
  with pytest.raises(ValueError, match="masked_ids"):
    batch.check(b)
  b = batch.zeros(2, 16, 4)
  b["objective"] = np.zeros((2,), np.int64)
  with pytest.raises(ValueError, match="objective"):
    batch.check(b)
