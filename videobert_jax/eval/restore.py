"""Restores a trained VideoBERT (and its step-0 parameters) from a training workdir.

``videobert_jax.train`` writes ``WORKDIR/config.json`` (the resolved config) and
Orbax checkpoints under ``WORKDIR/checkpoints/<step>`` (items ``state`` and
``meta``, see ``videobert_jax.train.checkpointing``). Evaluation builds the model's
``ModelSetup`` (no optimizer) from that config and restores the parameters alone
(an Orbax partial restore, the Adam moments are never read) straight into their
shardings, at the newest or a chosen step.

The *initial* parameters are the model before video pretraining, i.e. the text
checkpoint of ``config.init.checkpoint`` (BERT / MiniLM) with the visual rows
initialised from the codebook, re-created with the trainer's own init function
and seed; they give the paper's "BERT language prior" row. With no text
checkpoint in the config they are the random initialisation of step 0.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np


from videobert_jax.train.checkpointing import CheckpointError


@dataclasses.dataclass
class Run:
  """A restored training run: config, model, mesh and parameters."""

  workdir: str
  config: Any  # ml_collections.ConfigDict, as trained (codebook overridable)
  setup: Any  # videobert_jax.train.state.ModelSetup: model, layout, mesh, shardings
  params: Any  # the restored parameters (sharded jax arrays)
  step: int  # the checkpoint's step

  @property
  def model(self):
    """The ``VideoBert`` module."""
    return self.setup.model

  @property
  def layout(self):
    """The token layout of the embedding table."""
    return self.setup.layout

  @property
  def mesh(self):
    """The device mesh the parameters live on."""
    return self.setup.mesh

  def initial_params(self):
    """The parameters training started from (text checkpoint + visual init, seed)."""
    import jax  # pylint: disable=g-import-not-at-top
    centroids = None
    if self.config.data.get("codebook") and os.path.exists(self.config.data.codebook):
      from videobert_jax.quantize import codebook as codebook_lib  # pylint: disable=g-import-not-at-top
      centroids = np.asarray(codebook_lib.load_codebook(self.config.data.codebook).leaves)
    try:
      return self.setup.init_params(jax.random.key(self.config.train.seed), centroids)
    except (OSError, ValueError) as e:
      raise CheckpointError(f"{self.config.init.checkpoint}: cannot rebuild the initial "
                            f"(pre-video) model: {e}") from None


def load_config(workdir: str | os.PathLike):
  """The resolved training config saved in ``WORKDIR/config.json``."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  path = os.path.join(os.fspath(workdir), "config.json")
  try:
    with open(path, encoding="utf-8") as f:
      raw = json.load(f)
  except FileNotFoundError:
    raise CheckpointError(f"{path}: missing; is {workdir} a videobert_jax.train "
                          "workdir?") from None
  except json.JSONDecodeError as e:
    raise CheckpointError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
  for section in ("model", "data", "train", "mesh"):
    if not isinstance(raw.get(section), dict):
      raise CheckpointError(f"{path}: has no '{section}' section")
  if raw["model"].get("num_visual_words") is None:
    raise CheckpointError(f"{path}: model.num_visual_words is not set")
  raw.setdefault("init", {"checkpoint": None, "format": "auto"})
  return ml_collections.ConfigDict(raw)


def load_run(workdir: str | os.PathLike, step: int | None = None,
             codebook: str | None = None, devices=None, config=None) -> Run:
  """Restores the parameters of ``workdir`` at ``step`` (default: the newest).

  Args:
    workdir: a ``videobert_jax.train`` workdir.
    step: checkpoint step; None for the newest.
    codebook: overrides ``config.data.codebook`` (used for the initial model's
      visual rows when the trained path is not reachable here).
    devices: devices of the mesh (default: this process's, ``jax.local_devices()``).
    config: the run's config, already read (a bundle's, whose paths point into
      the bundle); default ``WORKDIR/config.json``.

  Raises:
    CheckpointError: no config, no checkpoint, or no checkpoint at ``step``.
  """
  from videobert_jax.train import checkpointing  # pylint: disable=g-import-not-at-top
  from videobert_jax.train import state as state_lib  # pylint: disable=g-import-not-at-top
  workdir = os.fspath(workdir)
  if "://" not in workdir:
    workdir = os.path.abspath(workdir)
  config = load_config(workdir) if config is None else config
  if codebook is not None:
    config.data.codebook = os.fspath(codebook)
  folder = checkpointing.checkpoint_dir(workdir)
  if not os.path.isdir(folder) and "://" not in folder:
    raise CheckpointError(folder, "no checkpoint; train first (python -m videobert_jax.train ...)")
  ckpt = checkpointing.Checkpointer(workdir, create=False, asynchronous=False)
  try:
    steps = ckpt.all_steps()
    if not steps:
      raise CheckpointError(folder, "no checkpoint; train first (python -m videobert_jax.train ...)")
    step = steps[-1] if step is None else int(step)
    if step not in steps:
      raise CheckpointError(folder, f"no checkpoint at step {step}; have {steps}")
    setup = state_lib.ModelSetup(config, _mesh_devices(config, devices))
    params = ckpt.restore_params(step, setup.abstract_params, setup.param_shardings)
  finally:
    ckpt.close()
  return Run(workdir=workdir, config=config, setup=setup, params=params, step=step)


def _mesh_devices(config, devices):
  """Devices for the mesh: this process's, as many as the batch and config allow.

  This process's devices alone (all of them in a one-process run): with several
  processes each restores its own copy of the parameters and runs the model
  without waiting for the others (``eval.shards``).
  """
  import jax  # pylint: disable=g-import-not-at-top
  devices = list(jax.local_devices() if devices is None else devices)
  model = int(config.mesh.model)
  data = len(devices) // model
  if int(config.mesh.data) != -1:  # trained with a fixed data axis: at most that here
    data = min(data, int(config.mesh.data))
  # The trainer checks the batch divides the data axis; evaluation has its own
  # batches, so shrink the device set rather than fail on a training setting.
  while data > 1 and config.train.batch_size % data:
    data -= 1
  config.mesh.data = data
  return devices[:data * model]
