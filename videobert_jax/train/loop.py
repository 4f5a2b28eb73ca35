"""The training loop: from a laptop CPU to a TPU pod, one loop.

``python -m videobert_jax.train --config=pretrain:tiny --workdir=DIR``

Sections, in order: input (per-host shards assembled into global arrays); metrics
(summed on the devices, divided when written; NaN checks that name the step); the
loop (restore or initialise, steps, evaluation, Orbax checkpoints, summary). The
state (``state.py``), the pure steps (``steps.py``) and the optimizer
(``optim.py``) live beside it.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Iterator, Mapping

import jax
import numpy as np

from videobert_jax import batch as batch_lib
from videobert_jax import fileio
from videobert_jax.models import flops
from videobert_jax.models import losses
from videobert_jax.models import partitioning
from videobert_jax.train import checkpointing
from videobert_jax.train import optim
from videobert_jax.train import preemption
from videobert_jax.train import state as state_lib
from videobert_jax.train import workdir as workdir_lib

BatchSource = Callable[..., Iterator[Mapping[str, np.ndarray]]]


class NonFiniteLossError(FloatingPointError):
  """The loss became NaN or Inf; ``step`` is the first step where it did."""

  def __init__(self, step: int, loss: float, last_checkpoint: int | None):
    self.step = step
    super().__init__(
        f"non-finite loss ({loss}) at step {step}; training stopped. Last "
        f"checkpoint: {last_checkpoint if last_checkpoint is not None else 'none'}. "
        "Try a lower train.learning_rate or train.grad_clip_norm.")


# ------------------------------------------------------------------------------- input


def default_batch_source(config, **kwargs):
  """The real input pipeline (seqio tasks over the corpus)."""
  from videobert_jax.tasks import pipeline as input_pipeline  # pylint: disable=g-import-not-at-top
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


def evaluate(setup: state_lib.Setup, state, source: BatchSource) -> dict[str, float]:
  """Validation metrics over up to ``train.eval_steps`` batches (summed, then divided)."""
  config = setup.config
  per_host = config.train.batch_size // jax.process_count()
  iterator = host_batches(config, source, split="validation", seed=config.data.seed)
  results = []
  for local in iterator:
    if len(results) >= config.train.eval_steps:
      break
    results.append(setup.eval_step(state, setup.global_batch(_pad_batch(local, per_host))))
  total = None
  for sums in jax.device_get(results):
    total = losses.add_sums(total, sums)
  return losses.summarize(total) if total else {}


# ----------------------------------------------------------------------------- metrics


class TrainMetrics:
  """Summed step metrics since the last write, rates, NaN checks, TensorBoard scalars.

  Steps' sums stay on the devices until ``flush``, so logging never waits on a
  step that is still running.
  """

  def __init__(self, config, setup: state_lib.Setup, writer, checkpointer):
    self.config = config
    self.writer = writer
    self.checkpointer = checkpointer
    self.schedule = optim.learning_rate_schedule(config.train)
    self.tokens_per_step = config.train.batch_size * config.data.max_seq_len
    self.flops_per_token = setup.flops_per_token()
    self.peak = _peak_flops(config, setup.mesh)
    self.pending: list[tuple[int, Any]] = []
    self.last: dict[str, float] = {}
    self.restart_clock()

  def restart_clock(self) -> None:
    """Starts timing anew (after compilation or an evaluation)."""
    self.start, self.steps = time.perf_counter(), 0

  def add(self, step: int, sums) -> None:
    """Records one finished (dispatched) step's summed metrics."""
    self.pending.append((step, sums))
    self.steps += 1

  def flush(self, step: int) -> dict[str, float]:
    """Fetches pending sums, stops on the first non-finite loss, writes the means."""
    if not self.pending:
      return self.last
    fetched = jax.device_get([sums for _, sums in self.pending])
    total = None
    for (s, _), sums in zip(self.pending, fetched):
      if not np.isfinite(sums["loss_sum"]):
        raise NonFiniteLossError(s, float(sums["loss_sum"]),
                                 self.checkpointer.latest_step())
      total = losses.add_sums(total, sums)
    self.pending = []
    scalars = losses.summarize(total)
    scalars["learning_rate"] = float(self.schedule(step - 1))
    if self.steps:
      rate = self.steps / (time.perf_counter() - self.start)
      scalars["steps_per_second"] = rate
      scalars["examples_per_second"] = rate * self.config.train.batch_size
      scalars["tokens_per_second"] = rate * self.tokens_per_step
      scalars["mfu"] = rate * self.tokens_per_step * self.flops_per_token / self.peak
    self.restart_clock()
    self.writer.write_scalars(step, {f"train/{k}": v for k, v in scalars.items()})
    self.last = scalars
    return scalars


# -------------------------------------------------------------------------------- loop


def _restore_or_init(config, setup, ckpt, centroids, workdir, is_chief):
  """(state, meta): the newest checkpoint in ``workdir``, or a fresh initialisation."""
  resumed = ckpt.restore(setup.abstract_state, setup.state_shardings)
  if resumed is not None:
    state, meta = resumed
    if is_chief:
      print(f"resumed from step {int(meta['step'])} in {ckpt.directory}")
    return state, meta
  state = setup.init_state(jax.random.key(config.train.seed), centroids)
  if setup.init_report is not None and is_chief:
    _write_text(os.path.join(workdir, "init_report.json"),
                json.dumps(setup.init_report, indent=2) + "\n")
  return state, {"step": 0, "batches_consumed": 0, "data_seed": int(config.data.seed)}


def _train_stream(config, source: BatchSource, meta: Mapping[str, int]):
  """(data seed, batches skipped, iterator): the training input where ``meta`` left it."""
  data_seed, skip = meta["data_seed"], meta["batches_consumed"]
  if config.train.data_resume == "reseed" and skip:
    data_seed, skip = data_seed + skip, 0  # a fresh, deterministic stream
  return data_seed, skip, host_batches(config, source, split="train", seed=data_seed,
                                       skip=skip)


def prepare(config, workdir: str):
  """The resolved config of a run in ``workdir``, checked against what it holds.

  Returns ``(config, leaf_centroids, final_metrics)``; ``final_metrics`` is not
  None when the workdir already finished this run (nothing is left to do). Raises
  ``workdir.ConfigMismatchError`` before anything is written.
  """
  config, centroids = state_lib.resolve_model_config(workdir_lib.absolute_paths(config))
  workdir_lib.check_workdir(config, workdir)
  return config, centroids, workdir_lib.finished_metrics(workdir, config.train.num_steps)


def train(config, workdir: str, *, batch_source: BatchSource | None = None,
          devices=None) -> dict[str, Any]:
  """Trains (or resumes) in ``workdir``; returns the final metrics.

  A workdir that already finished ``train.num_steps`` is left as it is (its final
  metrics are printed and returned); one trained with a different model or data
  config is refused before anything is written (``workdir.check_workdir``).

  Args:
    config: a ``videobert_jax/configs/pretrain.py`` config.
    workdir: checkpoints, TensorBoard events, ``config.json`` and
      ``final_metrics.json`` go here (a local path or ``gs://``).
    batch_source: ``f(config, *, batch_size, split, seed, shard_index,
      num_shards)`` yielding host batches; default: ``tasks.pipeline.pretrain_batches``.
    devices: devices of the mesh (default all).
  """
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  import tqdm  # pylint: disable=g-import-not-at-top

  source = batch_source or default_batch_source
  is_chief = jax.process_index() == 0
  config, centroids, finished = prepare(config, workdir)
  if finished is not None:
    if is_chief:
      print(f"nothing to do: {workdir} already finished step {finished['step']}")
      print_summary(finished, workdir)
    return finished
  if is_chief:
    _write_text(os.path.join(workdir, "config.json"),
                config.to_json_best_effort(indent=2) + "\n")
  setup = state_lib.Setup(config, devices)
  ckpt = checkpointing.Checkpointer(workdir, config.train.keep_checkpoints)
  state, meta = _restore_or_init(config, setup, ckpt, centroids, workdir, is_chief)
  start_step = int(jax.device_get(state.step))
  data_seed, skip, train_iter = _train_stream(config, source, meta)
  writer = metric_writers.create_default_writer(workdir, just_logging=not is_chief)
  log = TrainMetrics(config, setup, writer, ckpt)
  dropout_rng = jax.random.key(config.train.seed + 1)
  num_steps, every = config.train.num_steps, config.train
  eval_metrics = {}
  progress = tqdm.tqdm(total=num_steps, initial=start_step, disable=not is_chief,
                       desc="train", unit="step", dynamic_ncols=True)
  step = start_step
  with partitioning.activate(setup.mesh), preemption.PreemptionNotice() as notice:
    try:
      while step < num_steps:
        local = next(train_iter)
        if step == start_step:
          batch_lib.check(local)
        state, sums = setup.train_step(state, setup.global_batch(local), dropout_rng)
        step += 1
        log.add(step, sums)
        progress.update(1)
        last = step == num_steps
        if step == start_step + 1 or step % every.log_every == 0 or last:
          # The first step includes compilation: flushed at once, out of the rates.
          scalars = log.flush(step)
          progress.set_postfix(loss=f"{scalars.get('loss', float('nan')):.3f}",
                               refresh=False)
        if every.eval_every and (step % every.eval_every == 0 or last):
          eval_metrics = _evaluate_and_write(setup, state, source, log, writer, step)
        preempted = notice.reached(step)
        if step % every.checkpoint_every == 0 or last or preempted:
          log.flush(step)  # never checkpoint a state that followed a NaN
          ckpt.save(step, state, {"step": step, "batches_consumed": skip + step - start_step,
                                  "data_seed": data_seed})
        if preempted and not last:
          raise preemption.Preempted(step)  # ckpt.close() below waits for the commit
    finally:
      progress.close()
      ckpt.close()
      writer.flush()
  final = {"step": step, **{f"train/{k}": v for k, v in log.last.items()},
           **{f"eval/{k}": v for k, v in eval_metrics.items()}}
  if is_chief:
    _write_text(os.path.join(workdir, "final_metrics.json"),
                json.dumps(final, indent=2) + "\n")
    print_summary(final, workdir)
  return final


def _evaluate_and_write(setup, state, source, log, writer, step: int) -> dict:
  """The validation metrics at ``step``, written to TensorBoard, out of the train rates."""
  log.flush(step)
  eval_metrics = evaluate(setup, state, source)
  writer.write_scalars(step, {f"eval/{k}": v for k, v in eval_metrics.items()})
  log.restart_clock()
  return eval_metrics


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


def print_summary(final: Mapping[str, Any], workdir: str) -> None:
  """A few human-readable lines at the end of a run, with units."""
  def get(name, fmt="{:.4g}"):
    value = final.get(name)
    return "n/a" if value is None else fmt.format(value)
  print(f"done: step {final['step']}, train loss {get('train/loss')}, "
        f"eval loss {get('eval/loss')}, eval alignment accuracy "
        f"{get('eval/alignment/accuracy', '{:.3f}')}, "
        f"{get('train/tokens_per_second', '{:,.0f}')} tokens/s, "
        f"MFU {get('train/mfu', '{:.1%}')}; outputs in {workdir}")
