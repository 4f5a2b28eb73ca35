"""The state of one run: mesh, model, optimizer, shardings, initialisation, jitted steps.

Shapes first (``jax.eval_shape``), then shardings from the logical axis rules,
then parameters created (or restored, or loaded from a text checkpoint) straight
into those shardings: nothing is allocated before its placement is known.
"""

from __future__ import annotations

import functools
from typing import Mapping

import flax.linen as nn
import jax
import numpy as np

from videobert_jax import batch as batch_lib
from videobert_jax import tokens
from videobert_jax.models import bert
from videobert_jax.models import flops
from videobert_jax.models import partitioning
from videobert_jax.models import visual_init
from videobert_jax.train import optim
from videobert_jax.train import steps

TrainState = steps.TrainState


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


class ModelSetup:
  """The model, mesh and parameter shardings of a run: what evaluation needs.

  No optimizer: parameters are created (``init_params``) or restored
  (``checkpointing.Checkpointer.restore_params``) straight into
  ``param_shardings``.
  """

  def __init__(self, config, devices=None):
    self.config = config
    self.mesh = partitioning.make_mesh(config.mesh, devices)
    self.model = bert.VideoBert(config.model)
    self.layout: tokens.TokenLayout = self.model.layout
    self.replicated = partitioning.replicated(self.mesh)
    self.init_report = None  # what load_pretrained loaded, when init.checkpoint is set
    # Shapes and shardings first; nothing is allocated until placement is known.
    with partitioning.activate(self.mesh):
      boxed = jax.eval_shape(self._init_boxed, jax.random.key(0))
    self.param_shardings = partitioning.logical_shardings(boxed, self.mesh)
    self.abstract_params = nn.meta.unbox(boxed)

  def _init_boxed(self, rng):
    batch = batch_lib.zeros(1, self.config.data.max_seq_len, self.config.data.max_predictions)
    return self.model.init(rng, batch, deterministic=True)["params"]

  def _init_params(self, rng, visual_rows):
    params = nn.meta.unbox(self._init_boxed(rng))
    if visual_rows is not None:
      table = params["embeddings"]["word"]["embedding"]
      start = self.layout.visual_offset
      table = table.at[start:start + visual_rows.shape[0]].set(
          visual_rows.astype(table.dtype))
      params["embeddings"]["word"]["embedding"] = table
    return params

  def init_params(self, rng, leaf_centroids=None):
    """Fresh parameters in their shardings: visual rows from the centroids, and the
    text checkpoint of ``config.init.checkpoint`` when one is set."""
    visual_rows = None
    if leaf_centroids is not None:
      visual_rows = visual_init.visual_embeddings(
          leaf_centroids, self.config.model.hidden_size, seed=self.config.train.seed)
    init = jax.jit(self._init_params, out_shardings=self.param_shardings)
    with partitioning.activate(self.mesh):
      params = init(rng, visual_rows)
    self.init_report = None
    if self.config.init.checkpoint:
      params, self.init_report = self._load_pretrained(params, leaf_centroids)
    return params

  def _load_pretrained(self, params, leaf_centroids):
    """``params`` with the leaves of a text checkpoint put in; returns (params, report).

    The converter fills what the checkpoint lacks (e.g. MiniLM's heads) itself and
    says so in the report; a leaf it does not return keeps its fresh value.
    """
    from videobert_jax import pretrained  # pylint: disable=g-import-not-at-top
    loaded, report = pretrained.load_pretrained(
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


class Setup(ModelSetup):
  """A ``ModelSetup`` plus the optimizer, train-state shardings and jitted steps."""

  def __init__(self, config, devices=None):
    super().__init__(config, devices)
    self.tx = optim.make_optimizer(config)
    sizes = batch_lib.sizes(config.data)  # packed rows when config.data.pack
    global_batch = config.train.batch_size
    if global_batch % self.mesh.shape[partitioning.DATA_AXIS]:
      raise ValueError(f"train.batch_size {global_batch} is not a multiple of the mesh's "
                       f"data axis ({self.mesh.shape[partitioning.DATA_AXIS]})")
    self.abstract_batch = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
        batch_lib.zeros(global_batch, sizes["seq_len"], sizes["max_predictions"],
                        sizes["max_segments"]))
    self.batch_shardings = partitioning.batch_shardings(self.abstract_batch, self.mesh)
    self.abstract_state = jax.eval_shape(self._state_of, self.abstract_params)
    self.state_shardings = self.abstract_state.replace(
        step=self.replicated, params=self.param_shardings,
        opt_state=partitioning.like_params_shardings(
            self.abstract_state.opt_state, self.param_shardings,
            self.abstract_state.params, self.mesh))

    weights = dict(config.train.objective_weights)
    self.train_step = jax.jit(
        functools.partial(steps.train_step, objective_weights=weights,
                          frozen=bool(config.model.freeze_embeddings)),
        in_shardings=(self.state_shardings, self.batch_shardings, self.replicated),
        out_shardings=(self.state_shardings, self.replicated), donate_argnums=(0,))
    self.eval_step = jax.jit(
        functools.partial(steps.eval_step, objective_weights=weights),
        in_shardings=(self.state_shardings, self.batch_shardings),
        out_shardings=self.replicated)

  def _state_of(self, params) -> TrainState:
    return TrainState.create(apply_fn=self.model.apply, params=params, tx=self.tx)

  def init_state(self, rng, leaf_centroids=None) -> TrainState:
    """A fresh train state in its shardings (parameters from ``init_params``)."""
    params = self.init_params(rng, leaf_centroids)
    with partitioning.activate(self.mesh):
      return jax.jit(self._state_of, out_shardings=self.state_shardings)(params)

  def global_batch(self, local_batch: Mapping[str, np.ndarray]):
    """Assembles this host's share of the batch into global sharded arrays.

    An unpacked batch given to a packed setup (``config.data.pack``) becomes
    packed rows of one example each (``batch.to_packed``).
    """
    if batch_lib.is_packed(self.abstract_batch) and not batch_lib.is_packed(local_batch):
      sizes = batch_lib.sizes(self.config.data)
      local_batch = batch_lib.to_packed(local_batch, sizes["max_predictions"],
                                        sizes["max_segments"])
    return {name: jax.make_array_from_process_local_data(
        self.batch_shardings[name], np.asarray(local_batch[name]),
        self.abstract_batch[name].shape) for name in self.abstract_batch}

  def flops_per_token(self) -> float:
    """Training FLOPs per token of this model (issue 5's count)."""
    m = self.config.model
    sizes = batch_lib.sizes(self.config.data)
    ranked = self.model.mlm_vocab_ids  # the rows the softmax ranks
    return flops.train_flops_per_token(
        m.num_layers, m.hidden_size, m.mlp_dim, sizes["seq_len"],
        self.layout.vocab_size if ranked is None else len(ranked), sizes["max_predictions"])

