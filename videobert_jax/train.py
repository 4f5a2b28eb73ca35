"""VideoBERT pretraining: one trainer from a laptop CPU to a TPU pod.

``python -m videobert_jax.train --config=configs/pretrain.py:tiny --workdir=DIR``

Sections, in order: optimizer; the pure ``train_step`` / ``eval_step``; state
set-up (``eval_shape`` first, then initialise or restore straight into the
shardings); input (per-host shards assembled into global arrays); the loop
(metrics, NaN checks, evaluation, Orbax checkpoints).
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Any, Callable, Iterator, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from videobert_jax import batch as batch_lib
from videobert_jax import checkpointing
from videobert_jax import fileio
from videobert_jax import tokens
from videobert_jax.models import bert
from videobert_jax.models import flops
from videobert_jax.models import losses
from videobert_jax.models import partitioning
from videobert_jax.models import visual_init

# Input tables frozen by config.model.freeze_embeddings (the paper freezes the
# input embeddings). The word table is tied to the masked-token output
# projection; the embedding LayerNorm and the head's output bias keep training.
FROZEN_PARAMS = (("embeddings", "word", "embedding"),
                 ("embeddings", "position", "embedding"),
                 ("embeddings", "token_type", "embedding"))

TrainState = train_state.TrainState
BatchSource = Callable[..., Iterator[Mapping[str, np.ndarray]]]


class NonFiniteLossError(FloatingPointError):
  """The loss became NaN or Inf; ``step`` is the first step where it did."""

  def __init__(self, step: int, loss: float, last_checkpoint: int | None):
    self.step = step
    super().__init__(
        f"non-finite loss ({loss}) at step {step}; training stopped. Last "
        f"checkpoint: {last_checkpoint if last_checkpoint is not None else 'none'}. "
        "Try a lower train.learning_rate or train.grad_clip_norm.")


# --------------------------------------------------------------------------- optimizer


def learning_rate_schedule(train_config) -> optax.Schedule:
  """Linear warm-up to ``learning_rate``, then linear decay to 0 at ``num_steps``."""
  peak = train_config.learning_rate
  warmup = int(train_config.warmup_steps)
  decay = optax.linear_schedule(peak, 0.0, max(1, train_config.num_steps - warmup))
  if warmup <= 0:
    return decay
  return optax.join_schedules(
      [optax.linear_schedule(0.0, peak, warmup), decay], [warmup])


def _is_frozen(path) -> bool:
  keys = tuple(getattr(entry, "key", None) for entry in path)
  return keys in FROZEN_PARAMS


def make_optimizer(config) -> optax.GradientTransformation:
  """Adam with the schedule and optional clipping; frozen tables get no update at all.

  Frozen parameters go through ``optax.set_to_zero`` inside
  ``optax.multi_transform``: they keep no Adam moments and their update is exactly
  zero, and they do not count towards the clipping norm.
  """
  train = config.train
  adam = optax.adam(learning_rate_schedule(train), b1=train.adam_b1, b2=train.adam_b2,
                    eps=train.adam_eps)
  if train.grad_clip_norm and train.grad_clip_norm > 0:
    adam = optax.chain(optax.clip_by_global_norm(train.grad_clip_norm), adam)
  if not config.model.freeze_embeddings:
    return adam

  def labels(params):
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "frozen" if _is_frozen(path) else "trained", params)

  return optax.multi_transform({"trained": adam, "frozen": optax.set_to_zero()}, labels)


# ------------------------------------------------------------------------------- steps


def _stop_frozen_gradients(params, frozen: bool):
  """Stops gradients into frozen tables so autodiff does not even compute them."""
  if not frozen:
    return params
  return jax.tree_util.tree_map_with_path(
      lambda path, p: jax.lax.stop_gradient(p) if _is_frozen(path) else p, params)


def train_step(state: TrainState, batch, rng, *, objective_weights, frozen: bool):
  """One optimizer step; returns the new state and the step's metrics.

  Pure: dropout randomness comes from ``rng`` folded with the step number.
  """
  dropout_rng = jax.random.fold_in(rng, state.step)

  def loss_fn(params):
    params = _stop_frozen_gradients(params, frozen)
    outputs = state.apply_fn({"params": params}, batch, deterministic=False,
                             rngs={"dropout": dropout_rng})
    return losses.pretraining_loss(outputs, batch, objective_weights)

  (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  if frozen:
    grads = jax.tree_util.tree_map_with_path(
        lambda path, g: jnp.zeros_like(g) if _is_frozen(path) else g, grads)
  metrics["grad_norm"] = optax.global_norm(grads)
  return state.apply_gradients(grads=grads), metrics


def eval_step(state: TrainState, batch, *, objective_weights):
  """Metrics of the model on one batch, without dropout."""
  outputs = state.apply_fn({"params": state.params}, batch, deterministic=True)
  _, metrics = losses.pretraining_loss(outputs, batch, objective_weights)
  return metrics


# ------------------------------------------------------------------------------- set-up


def resolve_model_config(config):
  """Fills ``model.num_visual_words`` from the codebook; returns the leaf centroids.

  Returns ``(config, leaf_centroids or None)``; ``config`` is a copy.
  """
  config = config.copy_and_resolve_references()
  centroids = None
  if config.data.codebook:
    from videobert_jax.quantize import codebook as codebook_lib  # pylint: disable=g-import-not-at-top
    centroids = np.asarray(codebook_lib.load_codebook(config.data.codebook).leaves)
    if config.model.num_visual_words is None:
      config.model.num_visual_words = int(centroids.shape[0])
    elif config.model.num_visual_words != centroids.shape[0]:
      raise ValueError(
          f"{config.data.codebook}: codebook has {centroids.shape[0]} leaves but "
          f"model.num_visual_words is {config.model.num_visual_words}")
  if config.model.num_visual_words is None:
    raise ValueError("set data.codebook (or model.num_visual_words) so the vocabulary "
                     "size is known")
  return config, centroids


class Setup:
  """The model, optimizer, mesh, shardings and jitted steps of one run."""

  def __init__(self, config, devices=None):
    self.config = config
    self.mesh = partitioning.make_mesh(config.mesh, devices)
    self.model = bert.VideoBert(config.model)
    self.layout: tokens.TokenLayout = self.model.layout
    self.tx = make_optimizer(config)
    self.init_report = None  # what load_pretrained loaded, when init.checkpoint is set
    t, p = config.data.max_seq_len, config.data.max_predictions
    global_batch = config.train.batch_size
    if global_batch % self.mesh.shape[partitioning.DATA_AXIS]:
      raise ValueError(f"train.batch_size {global_batch} is not a multiple of the mesh's "
                       f"data axis ({self.mesh.shape[partitioning.DATA_AXIS]})")
    self.abstract_batch = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
        batch_lib.zeros(global_batch, t, p))
    self.batch_shardings = partitioning.batch_shardings(self.abstract_batch, self.mesh)
    self.replicated = partitioning.replicated(self.mesh)

    # Shapes and shardings first; nothing is allocated until placement is known.
    init_batch = batch_lib.zeros(1, t, p)
    with partitioning.activate(self.mesh):
      boxed = jax.eval_shape(
          lambda rng: self.model.init(rng, init_batch, deterministic=True),
          jax.random.key(0))["params"]
    self.param_shardings = partitioning.logical_shardings(boxed, self.mesh)
    self.abstract_state = jax.eval_shape(self._init_state, jax.random.key(0), None)
    self.state_shardings = self.abstract_state.replace(
        step=self.replicated, params=self.param_shardings,
        opt_state=partitioning.like_params_shardings(
            self.abstract_state.opt_state, self.param_shardings,
            self.abstract_state.params, self.mesh))

    weights = dict(config.train.objective_weights)
    self.train_step = jax.jit(
        functools.partial(train_step, objective_weights=weights,
                          frozen=bool(config.model.freeze_embeddings)),
        in_shardings=(self.state_shardings, self.batch_shardings, self.replicated),
        out_shardings=(self.state_shardings, self.replicated), donate_argnums=(0,))
    self.eval_step = jax.jit(
        functools.partial(eval_step, objective_weights=weights),
        in_shardings=(self.state_shardings, self.batch_shardings),
        out_shardings=self.replicated)

  def _init_state(self, rng, visual_rows):
    params = self.model.init(rng, batch_lib.zeros(1, self.config.data.max_seq_len,
                                                  self.config.data.max_predictions),
                             deterministic=True)["params"]
    params = nn.meta.unbox(params)
    if visual_rows is not None:
      table = params["embeddings"]["word"]["embedding"]
      start = self.layout.visual_offset
      table = table.at[start:start + visual_rows.shape[0]].set(
          visual_rows.astype(table.dtype))
      params["embeddings"]["word"]["embedding"] = table
    return TrainState.create(apply_fn=self.model.apply, params=params, tx=self.tx)

  def init_state(self, rng, leaf_centroids=None) -> TrainState:
    """A fresh state, created directly in its shardings (and from a checkpoint if set)."""
    visual_rows = None
    if leaf_centroids is not None:
      visual_rows = visual_init.visual_embeddings(
          leaf_centroids, self.config.model.hidden_size, seed=self.config.train.seed)
    init = jax.jit(self._init_state, out_shardings=self.state_shardings)
    with partitioning.activate(self.mesh):
      state = init(rng, visual_rows)
    self.init_report = None
    if self.config.init.checkpoint:
      params, self.init_report = self._load_pretrained(state.params, leaf_centroids)
      state = state.replace(params=params)
    return state

  def _load_pretrained(self, params, leaf_centroids):
    """``params`` with the leaves of a text checkpoint put in; returns (params, report).

    The converter fills what the checkpoint lacks (e.g. MiniLM's heads) itself and
    says so in the report; a leaf it does not return keeps its fresh value.
    """
    from videobert_jax import checkpoints  # pylint: disable=g-import-not-at-top
    loaded, report = checkpoints.load_pretrained(
        self.config.init.checkpoint, self.config, self.layout, leaf_centroids,
        seed=self.config.train.seed)
    flat_loaded = {tuple(getattr(e, "key", e) for e in path): leaf
                   for path, leaf in jax.tree_util.tree_flatten_with_path(loaded)[0]}

    def replace(path, current, sharding):
      key = tuple(getattr(e, "key", e) for e in path)
      if key not in flat_loaded:
        return current
      value = np.asarray(flat_loaded[key])
      if value.shape != current.shape:
        raise ValueError(f"{self.config.init.checkpoint}: {'/'.join(key)} has shape "
                         f"{value.shape}, the model needs {current.shape}")
      return jax.device_put(value.astype(current.dtype), sharding)

    return (jax.tree_util.tree_map_with_path(replace, params, self.param_shardings),
            report)

  def global_batch(self, local_batch: Mapping[str, np.ndarray]):
    """Assembles this host's share of the batch into global sharded arrays."""
    return {name: jax.make_array_from_process_local_data(
        self.batch_shardings[name], np.asarray(local_batch[name]),
        self.abstract_batch[name].shape) for name in self.abstract_batch}

  def flops_per_token(self) -> float:
    """Training FLOPs per token of this model (issue 5's count)."""
    m = self.config.model
    return flops.train_flops_per_token(
        m.num_layers, m.hidden_size, m.mlp_dim, self.config.data.max_seq_len,
        self.layout.vocab_size, self.config.data.max_predictions)


# ------------------------------------------------------------------------------- input


def default_batch_source(config, **kwargs):
  """The real input pipeline (seqio tasks over the corpus)."""
  from videobert_jax import input_pipeline  # pylint: disable=g-import-not-at-top
  return input_pipeline.pretrain_batches(config, **kwargs)


def host_batches(config, source: BatchSource, *, split: str, seed: int,
                 skip: int = 0) -> Iterator[Mapping[str, np.ndarray]]:
  """This host's batches (its share of the global batch), after ``skip`` batches."""
  hosts = jax.process_count()
  if config.train.batch_size % hosts:
    raise ValueError(f"train.batch_size {config.train.batch_size} is not a multiple of "
                     f"the {hosts} hosts")
  iterator = source(config, batch_size=config.train.batch_size // hosts, split=split,
                    seed=seed, shard_index=jax.process_index(), num_shards=hosts)
  for _ in range(skip):
    next(iterator)
  return iterator


def _pad_batch(local: Mapping[str, np.ndarray], size: int):
  """Pads a short (last validation) batch with zero-weight rows."""
  n = len(local["input_ids"])
  if n == size:
    return local
  return {k: np.concatenate([v, np.zeros((size - n,) + v.shape[1:], v.dtype)])
          for k, v in local.items()}


def evaluate(setup: Setup, state, source: BatchSource) -> dict[str, float]:
  """Mean validation metrics over up to ``train.eval_steps`` batches."""
  config = setup.config
  per_host = config.train.batch_size // jax.process_count()
  iterator = host_batches(config, source, split="validation", seed=config.data.seed)
  results = []
  for local in iterator:
    if len(results) >= config.train.eval_steps:
      break
    results.append(setup.eval_step(state, setup.global_batch(_pad_batch(local, per_host))))
  return mean_metrics(jax.device_get(results))


# -------------------------------------------------------------------------------- loop


def train(config, workdir: str, *, batch_source: BatchSource | None = None,
          devices=None) -> dict[str, Any]:
  """Trains (or resumes) in ``workdir``; returns the final metrics.

  Args:
    config: a ``configs/pretrain.py`` config.
    workdir: checkpoints, TensorBoard events, ``config.json`` and
      ``final_metrics.json`` go here (a local path or ``gs://``).
    batch_source: ``f(config, *, batch_size, split, seed, shard_index,
      num_shards)`` yielding host batches; default: ``input_pipeline.pretrain_batches``.
    devices: devices of the mesh (default all).
  """
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  import tqdm  # pylint: disable=g-import-not-at-top

  source = batch_source or default_batch_source
  config, centroids = resolve_model_config(config)
  is_chief = jax.process_index() == 0
  if is_chief:
    _write_text(os.path.join(workdir, "config.json"),
                config.to_json_best_effort(indent=2) + "\n")
  setup = Setup(config, devices)
  ckpt = checkpointing.Checkpointer(workdir, config.train.keep_checkpoints)
  resumed = ckpt.restore(setup.abstract_state, setup.state_shardings)
  if resumed is not None:
    state, meta = resumed
    if is_chief:
      print(f"resumed from step {int(meta['step'])} in {ckpt.directory}")
  else:
    state = setup.init_state(jax.random.key(config.train.seed), centroids)
    if setup.init_report is not None and is_chief:
      _write_text(os.path.join(workdir, "init_report.json"),
                  json.dumps(setup.init_report, indent=2) + "\n")
    meta = {"step": 0, "batches_consumed": 0, "data_seed": int(config.data.seed)}
  start_step = int(jax.device_get(state.step))
  data_seed = meta["data_seed"]
  skip = meta["batches_consumed"]
  if config.train.data_resume == "reseed" and skip:
    data_seed, skip = data_seed + skip, 0  # a fresh, deterministic stream
  train_iter = host_batches(config, source, split="train", seed=data_seed, skip=skip)

  writer = metric_writers.create_default_writer(workdir, just_logging=not is_chief)
  schedule = learning_rate_schedule(config.train)
  dropout_rng = jax.random.key(config.train.seed + 1)
  tokens_per_step = config.train.batch_size * config.data.max_seq_len
  peak = _peak_flops(config, setup.mesh)
  flops_per_token = setup.flops_per_token()
  num_steps = config.train.num_steps
  pending, last_metrics, eval_metrics = [], {}, {}
  timer = {"start": None, "steps": 0}

  def flush(step):
    """Fetches pending metrics, stops on the first non-finite loss, writes scalars."""
    nonlocal pending, last_metrics
    if not pending:
      return
    fetched = jax.device_get([m for _, m in pending])
    for (s, _), m in zip(pending, fetched):
      if not np.isfinite(m["loss"]):
        raise NonFiniteLossError(s, float(m["loss"]), ckpt.latest_step())
    pending = []
    scalars = mean_metrics(fetched)
    scalars["learning_rate"] = float(schedule(step - 1))
    if timer["start"] is not None and timer["steps"]:
      rate = timer["steps"] / (time.perf_counter() - timer["start"])
      scalars["steps_per_second"] = rate
      scalars["examples_per_second"] = rate * config.train.batch_size
      scalars["tokens_per_second"] = rate * tokens_per_step
      scalars["mfu"] = rate * tokens_per_step * flops_per_token / peak
    timer["start"], timer["steps"] = time.perf_counter(), 0
    writer.write_scalars(step, {f"train/{k}": v for k, v in scalars.items()})
    last_metrics = scalars
    progress.set_postfix(loss=f"{scalars['loss']:.3f}", refresh=False)

  progress = tqdm.tqdm(total=num_steps, initial=start_step, disable=not is_chief,
                       desc="train", unit="step", dynamic_ncols=True)
  step = start_step
  with partitioning.activate(setup.mesh):
    try:
      while step < num_steps:
        local = next(train_iter)
        if step == start_step:
          batch_lib.check(local)
        state, metrics = setup.train_step(state, setup.global_batch(local), dropout_rng)
        step += 1
        timer["steps"] += 1
        pending.append((step, metrics))
        progress.update(1)
        if step == start_step + 1:
          flush(step)  # the first step includes compilation: keep it out of rates
        if step % config.train.log_every == 0 or step == num_steps:
          flush(step)
        if config.train.eval_every and (step % config.train.eval_every == 0
                                        or step == num_steps):
          flush(step)
          eval_metrics = evaluate(setup, state, source)
          writer.write_scalars(step, {f"eval/{k}": v for k, v in eval_metrics.items()})
          timer["start"], timer["steps"] = time.perf_counter(), 0
        if step % config.train.checkpoint_every == 0 or step == num_steps:
          flush(step)  # never checkpoint a state that followed a NaN
          ckpt.save(step, state, {"step": step, "batches_consumed": skip + step - start_step,
                                  "data_seed": data_seed})
    finally:
      progress.close()
      ckpt.close()
      writer.flush()
  final = {"step": step, **{f"train/{k}": v for k, v in last_metrics.items()},
           **{f"eval/{k}": v for k, v in eval_metrics.items()}}
  if is_chief:
    _write_text(os.path.join(workdir, "final_metrics.json"),
                json.dumps(final, indent=2) + "\n")
    _print_summary(final, workdir)
  return final


def mean_metrics(per_step: list[Mapping[str, Any]]) -> dict[str, float]:
  """Averages per-step scalar metrics; per-objective ones over steps that had any.

  A step without examples of an objective reports 0 for it (count 0), which must
  not drag its mean down, so each ``<objective>/...`` metric is averaged over the
  steps whose ``<objective>/predictions`` (or ``alignment/examples``) is positive.
  """
  if not per_step:
    return {}
  counts = {}
  for name in list(losses.LOSS_NAMES):
    key = f"{name}/examples" if name == losses.ALIGNMENT else f"{name}/predictions"
    counts[name] = np.array([float(m[key]) for m in per_step])
  result = {}
  for key in per_step[0]:
    values = np.array([float(m[key]) for m in per_step])
    group = key.split("/")[0]
    if group in counts and not key.endswith(("/predictions", "/examples")):
      present = counts[group] > 0
      result[key] = float(values[present].mean()) if present.any() else 0.0
    else:
      result[key] = float(values.mean())
  return result


def _peak_flops(config, mesh) -> float:
  """FLOP/s the mesh could do: configured, or one device's measured matmul rate x devices.

  Host-platform "devices" share the same CPU cores, so on CPU the single measured
  rate is the whole machine's.
  """
  if config.train.peak_tflops:
    return config.train.peak_tflops * 1e12
  per_device = flops.measure_matmul_peak(config.model.dtype)
  devices = list(mesh.devices.flat)
  return per_device if devices[0].platform == "cpu" else per_device * len(devices)


def _write_text(path: str, text: str) -> None:
  """Atomic local write; ``gs://`` and other remote paths go through tf.io.gfile."""
  if "://" in path:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    with tf.io.gfile.GFile(path, "w") as f:
      f.write(text)
  else:
    fileio.write_text(path, text)


def _print_summary(final: Mapping[str, Any], workdir: str) -> None:
  """A few human-readable lines at the end of a run."""
  def get(name):
    value = final.get(name)
    return "n/a" if value is None else f"{value:.4g}"
  print(f"done: step {final['step']}, train loss {get('train/loss')}, "
        f"eval loss {get('eval/loss')}, tokens/s {get('train/tokens_per_second')}, "
        f"MFU {get('train/mfu')}; outputs in {workdir}")


if __name__ == "__main__":
  from videobert_jax import train_main  # pylint: disable=g-import-not-at-top
  train_main.run()
