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
from videobert_jax import tokens
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


HOST_INPUTS = ("shard", "slice")


def host_batches(config, source: BatchSource, *, split: str, seed: int, skip: int = 0,
                 host_input: str = "shard") -> Iterator[Mapping[str, np.ndarray]]:
  """This host's batches (its share of the global batch), after ``skip`` batches.

  ``host_input`` is how hosts share the input: ``shard`` (each host reads its own
  1/N of the data: the input scales with the hosts, but the global batches depend
  on how many there are) or ``slice`` (every host reads the whole global batch and
  keeps its own rows: N times the input work, and a run whose batches, hence
  losses, do not depend on the process count).
  """
  hosts, index = jax.process_count(), jax.process_index()
  per_host = config.train.batch_size // hosts
  if config.train.batch_size % hosts:
    raise ValueError(f"train.batch_size {config.train.batch_size} is not a multiple of "
                     f"the {hosts} hosts")
  if host_input not in HOST_INPUTS:
    raise ValueError(f"host_input must be one of {HOST_INPUTS}, got {host_input!r}")
  if host_input == "slice" and hosts > 1:
    whole = source(config, batch_size=config.train.batch_size, split=split, seed=seed,
                   shard_index=0, num_shards=1)
    iterator = ({k: v[index * per_host:(index + 1) * per_host] for k, v in b.items()}
                for b in whole)
  else:
    iterator = source(config, batch_size=per_host, split=split, seed=seed,
                      shard_index=index, num_shards=hosts)
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


def _weightless(local: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """A copy of a batch that counts for nothing (real tokens, so no NaN; zero weights)."""
  out = {k: np.array(v) for k, v in local.items()}
  for name in ("masked_weights", "alignment_weight"):
    out[name][:] = 0
  return out


def _agreed_count(count: int) -> int:
  """The largest ``count`` over all hosts: every host must run as many eval steps."""
  if jax.process_count() == 1:
    return count
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return int(np.max(multihost_utils.process_allgather(np.array(count, np.int64))))


def evaluate(setup: state_lib.Setup, state, source: BatchSource,
             host_input: str = "shard") -> dict[str, float]:
  """Validation metrics over up to ``train.eval_steps`` batches (0: all; summed, divided).

  With several hosts each host's shard may hold a different number of batches;
  the hosts agree on the largest and the shorter ones add zero-weight batches, so
  every host runs the same jitted steps (a host that stopped early would hang the
  others in the step's collectives).
  """
  config = setup.config
  per_host = config.train.batch_size // jax.process_count()
  limit = config.train.eval_steps or None
  local_batches = []
  for local in host_batches(config, source, split="validation", seed=config.data.seed,
                            host_input=host_input):
    if limit is not None and len(local_batches) >= limit:
      break
    local_batches.append(_pad_batch(local, per_host))
  count = _agreed_count(len(local_batches))
  if count > len(local_batches):
    if not local_batches:
      raise ValueError(f"host {jax.process_index()} has no validation examples while "
                       "others do: use fewer hosts or more validation videos")
    local_batches += [_weightless(local_batches[-1])] * (count - len(local_batches))
  results = [setup.eval_step(state, setup.global_batch(b)) for b in local_batches]
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
      seconds = time.perf_counter() - self.start
      rate = self.steps / seconds
      scalars["steps_per_second"] = rate
      # Real examples and non-padding tokens: what packing raises; tokens_per_second
      # counts every position (padding too), the work MFU is measured on.
      scalars["examples_per_second"] = total["real_examples"] / seconds
      scalars["useful_tokens_per_second"] = total["real_tokens"] / seconds
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


def _build_datasets_on_chief(config) -> None:
  """With several processes, process 0 builds missing datasets while the others wait.

  Otherwise every process would start the same on-demand TFDS build into the
  shared folder, and each removes the others' half-written files as "left by an
  interrupted build". After the barrier the others find the datasets built (a
  shared folder) or build their own copy (disks not shared between hosts).
  """
  if jax.process_count() == 1:
    return
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  from videobert_jax.tasks import pipeline  # pylint: disable=g-import-not-at-top
  from videobert_jax.tasks import registry  # pylint: disable=g-import-not-at-top
  if jax.process_index() == 0:
    pipeline.ensure_datasets(config.data, kinds=tuple(registry.mixture_rates(config.data)))
  multihost_utils.sync_global_devices("videobert_jax.train: datasets built")


def _train_stream(config, source: BatchSource, meta: Mapping[str, int], host_input: str):
  """(data seed, batches skipped, iterator): the training input where ``meta`` left it."""
  if source is default_batch_source:
    _build_datasets_on_chief(config)
  data_seed, skip = meta["data_seed"], meta["batches_consumed"]
  if config.train.data_resume == "reseed" and skip:
    data_seed, skip = data_seed + skip, 0  # a fresh, deterministic stream
  return data_seed, skip, host_batches(config, source, split="train", seed=data_seed,
                                       skip=skip, host_input=host_input)


def check_initialisation(config) -> None:
  """Frozen embeddings need the checkpoint they are frozen at (or an explicit opt-out).

  ``small``, ``base`` and ``large`` freeze the word, position and token-type tables
  as the paper does; without ``init.checkpoint`` those would stay random for the
  whole run, which is never what the paper's recipe means.
  """
  init = config.get("init", {})
  if (config.model.get("freeze_embeddings") and not init.get("checkpoint")
      and not init.get("from_scratch", False)):
    raise ValueError(
        f"config {config.get('size', '?')}: model.freeze_embeddings is on but "
        "init.checkpoint is not set, so the frozen word tables would stay random; pass "
        "--config.init.checkpoint=BERT_CHECKPOINT (the paper: BERT-large), or "
        "--config.init.from_scratch=True to train that way on purpose")


def _resolve_mlm_vocabulary(config, can_read_datasets: bool):
  """Fills ``model.mlm_vocab_ids`` (``tasks.mlm_vocabulary``); the chief builds first."""
  from videobert_jax.tasks import mlm_vocabulary  # pylint: disable=g-import-not-at-top
  needs = (config.model.get("mlm_vocab", "full") == "corpus"
           and config.model.get("mlm_vocab_ids") is None)
  if needs and can_read_datasets and jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    from videobert_jax.tasks import pipeline  # pylint: disable=g-import-not-at-top
    if jax.process_index() == 0:
      pipeline.ensure_datasets(config.data, kinds=mlm_vocabulary.TEXT_KINDS)
    multihost_utils.sync_global_devices("videobert_jax.train: text datasets built")
  layout = tokens.TokenLayout(config.model.text_vocab_size, config.model.num_visual_words)
  return mlm_vocabulary.resolve(config, layout, can_read_datasets=can_read_datasets)


def prepare(config, workdir: str, *, can_read_datasets: bool = True):
  """The resolved config of a run in ``workdir``, checked against what it holds.

  Returns ``(config, leaf_centroids, final_metrics)``; ``final_metrics`` is not
  None when the workdir already finished this run (nothing is left to do). Raises
  ``workdir.ConfigMismatchError`` before anything is written.
  ``can_read_datasets``: the batches come from the config's datasets (not a
  custom batch source), so ``model.mlm_vocab = "corpus"`` can read them.
  """
  check_initialisation(config)
  config, centroids = state_lib.resolve_model_config(workdir_lib.absolute_paths(config))
  config = _resolve_mlm_vocabulary(config, can_read_datasets)
  workdir_lib.check_workdir(config, workdir)
  return config, centroids, workdir_lib.finished_metrics(workdir, config.train.num_steps)


def train(config, workdir: str, *, batch_source: BatchSource | None = None,
          devices=None, host_input: str = "shard") -> dict[str, Any]:
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
    host_input: ``shard`` or ``slice``, how hosts share the input (``host_batches``).
  """
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  import tqdm  # pylint: disable=g-import-not-at-top

  source = batch_source or default_batch_source
  is_chief = jax.process_index() == 0
  config, centroids, finished = prepare(config, workdir,
                                        can_read_datasets=source is default_batch_source)
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
  data_seed, skip, train_iter = _train_stream(config, source, meta, host_input)
  writer = metric_writers.create_default_writer(workdir, just_logging=not is_chief)
  if is_chief and batch_source is None and start_step == 0:
    _write_recipe_stats(config, workdir, writer)
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
          eval_metrics = _evaluate_and_write(setup, state, source, log, writer, step,
                                             host_input)
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
  return _finish(step, log.last, eval_metrics, workdir, is_chief)


def _finish(step: int, train_metrics, eval_metrics, workdir: str, is_chief: bool) -> dict:
  """The final metrics, written to ``final_metrics.json`` and summarised by process 0."""
  final = {"step": step, **{f"train/{k}": v for k, v in train_metrics.items()},
           **{f"eval/{k}": v for k, v in eval_metrics.items()}}
  if is_chief:
    _write_text(os.path.join(workdir, "final_metrics.json"),
                json.dumps(final, indent=2) + "\n")
    print_summary(final, workdir)
  return final


def _evaluate_and_write(setup, state, source, log, writer, step: int,
                        host_input: str) -> dict:
  """The validation metrics at ``step``, written to TensorBoard, out of the train rates."""
  log.flush(step)
  eval_metrics = evaluate(setup, state, source, host_input)
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


def _write_recipe_stats(config, workdir: str, writer) -> None:
  """Measures what the recipe does to the examples, once, before the first step."""
  from videobert_jax.tasks import recipe_stats  # pylint: disable=g-import-not-at-top
  stats = recipe_stats.recipe_statistics(config)
  _write_text(os.path.join(workdir, "recipe_stats.json"), json.dumps(
      {"recipe": config.get("recipe"), "objectives": stats}, indent=2) + "\n")
  writer.write_scalars(0, recipe_stats.as_scalars(stats))
  print(recipe_stats.describe(stats), flush=True)


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
        f"{get('train/useful_tokens_per_second', '{:,.0f}')} useful tokens/s "
        f"({get('train/examples_per_second', '{:,.1f}')} examples/s), "
        f"MFU {get('train/mfu', '{:.1%}')}; outputs in {workdir}")
