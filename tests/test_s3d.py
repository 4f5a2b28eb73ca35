"""S3D in Flax against torchvision's S3D and the MIL-NCE S3D-G, with no torch here.

tests/golden/s3d_golden.npz was written by tests/golden/make_s3d_golden.py (torch
2.14.1, torchvision 0.29.1): the reference networks ran on weights generated from
a seed and each tensor's name (videobert_jax.testing.videos), so this test
regenerates the same weights, converts them with our converters and compares.
Small 64x64 frames keep it fast on CPU (the network is fully convolutional up to
a global average pool); torchvision's logits need full 224x224 frames.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from videobert_jax.video import __main__ as cli
from videobert_jax.video import convert
from videobert_jax.video import s3d
from videobert_jax.testing import videos as synthetic
from videobert_jax.video import weights

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "s3d_golden.npz")
RTOL = 1e-4  # relative to the largest reference value


@pytest.fixture(scope="module")
def golden():
  with np.load(GOLDEN, allow_pickle=False) as data:
    arrays = {k: data[k] for k in data.files}
  arrays["meta"] = json.loads(str(arrays.pop("meta_json")))
  return arrays


def _state(golden, source):
  shapes = json.loads(str(golden[f"{source}_shapes_json"]))
  return synthetic.synthetic_state_dict(shapes, golden["meta"]["weight_seed"])


def _input(golden, which, seed_offset, low, high):
  x = synthetic.synthetic_input(golden["meta"][which], golden["meta"]["input_seed"]
                                + seed_offset, low, high)
  return jnp.asarray(x.transpose(0, 2, 3, 4, 1))  # [B, C, T, H, W] -> NDHWC


def _apply(params, config, x, logits=False):
  model = s3d.S3D(config)
  return jax.jit(lambda p, v: model.apply({"params": p}, v, return_logits=logits))(
      params, x)


def assert_close(ours, reference):
  ours, reference = np.asarray(ours), np.asarray(reference)
  assert ours.shape == reference.shape
  error = np.abs(ours - reference).max() / np.abs(reference).max()
  assert error < RTOL, f"max error {error:.2e} of the largest value"


def test_torchvision_features_match(golden):
  params, config = convert.from_torchvision(_state(golden, "torchvision"))
  features = _apply(params, config, _input(golden, "small_input", 0, -2, 2))
  assert features.shape == (2, s3d.FEATURE_DIM)
  assert_close(features, golden["torchvision_features"])


def test_torchvision_logits_match_at_full_size(golden):
  params, config = convert.from_torchvision(_state(golden, "torchvision"))
  features, logits = _apply(params, config, _input(golden, "full_input", 1, -2, 2),
                            logits=True)
  assert_close(features, golden["torchvision_full_features"])
  assert_close(logits, golden["torchvision_logits"])


def test_howto100m_features_and_embedding_match(golden):
  params, config = convert.from_howto100m(_state(golden, "howto100m"))
  assert config.gating and config.space_to_depth and config.input_std == (1, 1, 1)
  features, embedding = _apply(params, config, _input(golden, "small_input", 2, 0, 1),
                               logits=True)
  assert_close(features, golden["howto100m_features"])
  assert_close(embedding, golden["howto100m_embedding"])


def test_converters_reject_wrong_layouts(golden):
  state = _state(golden, "torchvision")
  with pytest.raises(convert.ConversionError, match="missing"):
    convert.from_howto100m(state)
  del state["features.5.branch0.0.weight"]
  state["extra.weight"] = np.zeros(3, np.float32)
  with pytest.raises(convert.ConversionError) as e:
    convert.from_torchvision(state)
  assert "features.5.branch0.0.weight" in str(e.value) and "extra.weight" in str(e.value)


def test_howto100m_converter_ignores_text_module_and_dataparallel_prefix(golden):
  state = _state(golden, "howto100m")
  state["text_module.fc1.weight"] = np.zeros((4, 3), np.float32)
  state = {"module." + k: v for k, v in state.items()}
  params, _ = convert.from_howto100m(state)
  assert params["head"]["kernel"].shape == (1024, 512)


def test_random_init_has_the_converted_tree(golden):
  converted, _ = convert.from_torchvision(_state(golden, "torchvision"))
  random = s3d.init_params(s3d.TORCHVISION_KINETICS400, seed=0)
  shapes = lambda tree: jax.tree_util.tree_map(np.shape, tree)
  assert shapes(random) == shapes(converted)
  converted, _ = convert.from_howto100m(_state(golden, "howto100m"))
  random = s3d.init_params(s3d.HOWTO100M_MILNCE, seed=0)
  assert shapes(random) == shapes(converted)


def test_convert_cli_and_weights_file_round_trip(tmp_path, golden):
  state = _state(golden, "howto100m")
  checkpoint = tmp_path / "state.npz"
  np.savez(checkpoint, **state)
  out = tmp_path / "s3d_howto100m.npz"
  assert cli.main(["convert", "--from", "howto100m", "--checkpoint", str(checkpoint),
                   "--out", str(out)]) == 0
  params, config, meta = weights.load(out)
  assert config == s3d.HOWTO100M_MILNCE and meta["source"].startswith("howto100m:")
  expected, _ = convert.from_howto100m(state)
  for (name, a), (name_b, b) in zip(convert.iter_params(params),
                                    convert.iter_params(expected)):
    assert name == name_b
    np.testing.assert_array_equal(a, b)
  # The wrong converter names the file and says what is missing.
  assert cli.main(["convert", "--from", "torchvision", "--checkpoint", str(checkpoint),
                   "--out", str(tmp_path / "x.npz")]) == 1
  assert not (tmp_path / "x.npz").exists()


def test_weights_load_errors(tmp_path):
  with pytest.raises(weights.WeightsError, match="not found"):
    weights.load(tmp_path / "none.npz")
  np.savez(tmp_path / "other.npz", a=np.zeros(2))
  with pytest.raises(weights.WeightsError, match="not an S3D weights file"):
    weights.load(tmp_path / "other.npz")
  (tmp_path / "bad.npz").write_bytes(b"garbage")
  with pytest.raises(weights.WeightsError, match="cannot read"):
    weights.load(tmp_path / "bad.npz")


def test_normalize_and_space_to_depth():
  clips = jnp.full((1, 2, 2, 2, 3), 255, jnp.uint8)
  x = s3d.normalize(clips, s3d.TORCHVISION_KINETICS400)
  np.testing.assert_allclose(x[0, 0, 0, 0], (1 - np.array(s3d.KINETICS_MEAN))
                             / np.array(s3d.KINETICS_STD), rtol=1e-6)
  np.testing.assert_array_equal(s3d.normalize(clips, s3d.HOWTO100M_MILNCE), 1.0)
  # Channel order (dt, dh, dw, c), as the MIL-NCE stem's weights expect.
  x = jnp.arange(2 * 2 * 2 * 3, dtype=jnp.float32).reshape(1, 2, 2, 2, 3)
  np.testing.assert_array_equal(s3d.space_to_depth(x).reshape(-1), x.reshape(-1))
  with pytest.raises(ValueError, match="even"):
    s3d.space_to_depth(jnp.zeros((1, 3, 2, 2, 3)))
