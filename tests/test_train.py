"""The trainer: sharded steps, frozen embeddings, resume, NaN stop, CLI, learning."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from videobert_jax.configs import pretrain
from videobert_jax import batch as batch_lib
from videobert_jax.train import checkpointing
from videobert_jax import tokens
from videobert_jax.train import loop as train_lib
from videobert_jax.train import optim
from videobert_jax.train import state as state_lib
from videobert_jax.models import partitioning

T, P, NUM_VISUAL_WORDS = 32, 5, 16
TEXT_VOCAB = 2048  # a small table keeps these trainer tests fast
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
  """Runs that build the same steps (resume, CLI) compile them once."""
  names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
           "jax_persistent_cache_min_entry_size_bytes")
  saved = {name: getattr(jax.config, name) for name in names}
  jax.config.update(names[0], str(tmp_path_factory.mktemp("jax_cache")))
  jax.config.update(names[1], 0)
  jax.config.update(names[2], 0)
  yield
  for name, value in saved.items():
    jax.config.update(name, value)


def tiny_config(**train_overrides):
  config = pretrain.get_config("tiny")
  config.model.num_layers = 2  # the default's 4 are for learning; 2 keep tests fast
  config.model.num_visual_words = NUM_VISUAL_WORDS
  config.model.text_vocab_size = TEXT_VOCAB
  config.data.max_seq_len, config.data.max_predictions = T, P
  config.train.update(batch_size=8, num_steps=6, log_every=2, checkpoint_every=3,
                      eval_every=0, warmup_steps=0, peak_tflops=1.0)
  config.train.update(train_overrides)
  return config


def random_batches(config, *, batch_size, split="train", seed=None, shard_index=0,
                   num_shards=1, nan_at=None):
  """A deterministic stand-in for the input pipeline: batches with every objective.

  The masked ids come from a small set, so a model learns them within steps.
  """
  layout = tokens.TokenLayout(text_vocab_size=config.model.text_vocab_size,
                              num_visual_words=config.model.num_visual_words)
  rng = np.random.default_rng([seed or 0, shard_index, split == "train"])
  count = 0
  while split == "train" or count < 2:
    count += 1
    b = batch_lib.zeros(batch_size, T, P)
    for i in range(batch_size):
      length = int(rng.integers(T // 2, T + 1))
      b["input_ids"][i, :length] = rng.integers(1000, layout.num_used_ids, length)
      b["input_ids"][i, 0] = tokens.CLS_ID
      b["attention_mask"][i, :length] = 1
      positions = rng.choice(np.arange(1, length), P, replace=False)
      b["masked_positions"][i] = positions
      b["masked_ids"][i] = rng.integers(2000, 2004, P)
      b["input_ids"][i, positions] = tokens.MASK_ID
      b["masked_weights"][i] = 1.0
      b["objective"][i] = i % batch_lib.NUM_OBJECTIVES
      b["alignment_weight"][i] = float(b["objective"][i] == batch_lib.VIDEO_TEXT)
      b["alignment_label"][i] = i % 2
    if nan_at is not None and count == nan_at:
      b["masked_weights"][:] = np.nan
    yield b


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]


def _one_step(config, devices):
  setup = state_lib.Setup(config, devices)
  state = setup.init_state(jax.random.key(0))
  batch = setup.global_batch(next(random_batches(config, batch_size=8)))
  with partitioning.activate(setup.mesh):
    state, metrics = setup.train_step(state, batch, jax.random.key(1))
  return setup, state, metrics


def test_2x2_mesh_step_equals_single_device_step():
  config = tiny_config()
  config.mesh.model = 2
  sharded_setup, sharded, sharded_metrics = _one_step(config, jax.devices()[:4])
  assert dict(sharded_setup.mesh.shape) == {"data": 2, "model": 2}
  table = sharded.params["embeddings"]["word"]["embedding"]
  assert table.sharding.spec == jax.sharding.PartitionSpec("model", None)
  config.mesh.model = 1
  _, single, single_metrics = _one_step(config, jax.devices()[:1])
  np.testing.assert_allclose(sharded_metrics["loss_sum"], single_metrics["loss_sum"], rtol=1e-5)
  for a, b in zip(_leaves(sharded.params), _leaves(single.params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  for a, b in zip(_leaves(sharded.opt_state), _leaves(single.opt_state)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-8)


def test_frozen_embeddings_never_change_and_the_rest_trains():
  config = tiny_config()
  config.model.freeze_embeddings = True
  setup = state_lib.Setup(config, jax.devices()[:1])
  state = setup.init_state(jax.random.key(0))
  before = jax.device_get(state.params)
  batches = random_batches(config, batch_size=8)
  with partitioning.activate(setup.mesh):
    for _ in range(3):
      state, _ = setup.train_step(state, setup.global_batch(next(batches)),
                                  jax.random.key(1))
  after = jax.device_get(state.params)
  for path in optim.FROZEN_PARAMS:
    old, new = before, after
    for key in path:
      old, new = old[key], new[key]
    np.testing.assert_array_equal(old, new)
  assert not np.array_equal(before["mlm_head"]["bias"], after["mlm_head"]["bias"])
  assert not np.array_equal(before["embeddings"]["layer_norm"]["scale"],
                            after["embeddings"]["layer_norm"]["scale"])


class Interrupted(Exception):
  pass


def test_resumed_run_continues_with_the_same_step_and_optimizer_state(tmp_path):
  config = tiny_config()
  straight = tmp_path / "straight"
  train_lib.train(config, str(straight), batch_source=random_batches)

  def dies_after_four(*args, **kwargs):
    for count, b in enumerate(random_batches(*args, **kwargs)):
      if count == 4:
        raise Interrupted("killed")
      yield b

  resumed = tmp_path / "resumed"
  with pytest.raises(Interrupted):
    train_lib.train(config, str(resumed), batch_source=dies_after_four)
  assert checkpointing.Checkpointer(str(resumed), 3).latest_step() == 3
  final = train_lib.train(config, str(resumed), batch_source=random_batches)
  assert final["step"] == 6

  setup = state_lib.Setup(state_lib.resolve_model_config(config)[0])
  states = []
  for workdir in (straight, resumed):
    state, meta = checkpointing.Checkpointer(str(workdir), 3).restore(
        setup.abstract_state, setup.state_shardings)
    assert int(state.step) == 6 and meta["batches_consumed"] == 6
    states.append(state)
  for a, b in zip(_leaves(states[0]), _leaves(states[1])):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_nan_loss_stops_and_names_the_step(tmp_path):
  config = tiny_config(num_steps=5)

  def source(*args, **kwargs):
    return random_batches(*args, nan_at=4, **kwargs)

  with pytest.raises(train_lib.NonFiniteLossError, match="at step 4"):
    train_lib.train(config, str(tmp_path), batch_source=source)
  # The checkpoint at step 3 preceded the NaN; nothing after it was saved.
  assert checkpointing.Checkpointer(str(tmp_path), 3).latest_step() == 3


@pytest.fixture(scope="module")
def synthetic_data(tmp_path_factory):
  """A small synthetic corpus, its 2x4 codebook and the TFDS datasets built from them."""
  from videobert_jax.tasks import pipeline as input_pipeline  # pylint: disable=g-import-not-at-top
  from videobert_jax.corpus import reader  # pylint: disable=g-import-not-at-top
  from videobert_jax.synthetic import synthesize  # pylint: disable=g-import-not-at-top
  from videobert_jax.quantize import hierarchical  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("world")
  synthesize.synthesize(root, num_videos=24, num_eval_videos=4, feature_dim=32, seed=0,
                        progress=False)
  corpus = str(root / "corpus")
  features = np.concatenate([np.asarray(reader.load_features(video), np.float32)
                             for video in reader.iter_videos(corpus)])
  codebook = str(root / "codebook.npz")
  hierarchical.fit_hierarchical(features, levels=2, clusters=4, seed=0).save(codebook)
  data = {"corpus_dir": corpus, "codebook": codebook, "tfds_data_dir": str(root / "tfds"),
          "max_seq_len": T, "max_predictions": P}
  config = pretrain.get_config("tiny")
  config.data.update(data)
  input_pipeline.ensure_datasets(config.data)
  return data


def _scalars(workdir, tag):
  """(step, value) pairs of a scalar from the run's TensorBoard events."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  events = event_accumulator.EventAccumulator(str(workdir), size_guidance={"tensors": 0})
  events.Reload()
  return [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in events.Tensors(tag)]


def test_loss_falls_on_the_tiny_config_with_the_real_pipeline(tmp_path, synthetic_data):
  config = pretrain.get_config("tiny")
  config.data.update(synthetic_data)
  config.train.update(batch_size=16, num_steps=40, log_every=5, checkpoint_every=40,
                      eval_every=40, eval_steps=2, peak_tflops=1.0)
  final = train_lib.train(config, str(tmp_path))
  with open(tmp_path / "final_metrics.json") as f:
    saved = json.load(f)
  assert saved["step"] == 40 and saved == json.loads(json.dumps(final))
  losses = _scalars(tmp_path, "train/loss")
  assert losses[0][0] == 1 and losses[-1][0] == 40
  # From ~3 x log(51k) + log(2) at the start, the loss must clearly fall.
  assert losses[-1][1] < losses[0][1] - 3.0, losses
  for name in ("text", "video", "video_text"):
    assert f"train/{name}/mlm_accuracy" in final
  assert np.isfinite(final["eval/loss"])
  assert os.listdir(tmp_path / "checkpoints")


def test_cli_trains_a_few_steps(tmp_path, synthetic_data):
  env = dict(os.environ, PYTHONPATH=REPO)
  workdir = tmp_path / "run"
  cmd = [sys.executable, "-m", "videobert_jax.train", "--config=configs/pretrain.py:tiny",
         f"--workdir={workdir}", "--config.train.batch_size=4",
         "--config.train.num_steps=2", "--config.train.eval_every=0",
         "--config.train.peak_tflops=1.0",
         *[f"--config.data.{k}={v}" for k, v in synthetic_data.items()]]
  result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "done: step 2" in result.stdout
  with open(workdir / "final_metrics.json") as f:
    assert json.load(f)["step"] == 2
  assert os.listdir(workdir / "checkpoints") and any(
      name.startswith("events.out.tfevents") for name in os.listdir(workdir))


def test_cli_bad_input_is_one_error_line(tmp_path):
  env = dict(os.environ, PYTHONPATH=REPO)
  cmd = [sys.executable, "-m", "videobert_jax.train", "--config=configs/pretrain.py:tiny",
         f"--workdir={tmp_path}", "--config.data.codebook=/nonexistent/codebook.npz"]
  result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 1, result.stderr[-2000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error:") and "/nonexistent/codebook.npz" in last


def test_sigterm_saves_the_current_step_and_a_rerun_finishes_like_a_straight_run(tmp_path):
  import os
  import signal
  from videobert_jax.train import preemption
  config = tiny_config()
  straight = train_lib.train(config, str(tmp_path / "straight"), batch_source=random_batches)

  def preempted_after_four(*args, **kwargs):
    for count, b in enumerate(random_batches(*args, **kwargs)):
      if count == 4:
        os.kill(os.getpid(), signal.SIGTERM)  # what a Spot VM's scheduler sends
      yield b

  workdir = str(tmp_path / "preempted")
  with pytest.raises(preemption.Preempted) as stopped:
    train_lib.train(config, workdir, batch_source=preempted_after_four)
  assert 4 <= stopped.value.step < config.train.num_steps
  assert checkpointing.Checkpointer(workdir, 3).latest_step() == stopped.value.step
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is gone again
  final = train_lib.train(config, workdir, batch_source=random_batches)
  assert final["step"] == straight["step"]
  # The loss window of the last log differs (it restarts at the resume); the state not.
  setup = state_lib.Setup(state_lib.resolve_model_config(config)[0])
  states = [checkpointing.Checkpointer(str(w), 3).restore(
      setup.abstract_state, setup.state_shardings)[0]
            for w in (tmp_path / "straight", workdir)]
  for a, b in zip(_leaves(states[0]), _leaves(states[1])):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
