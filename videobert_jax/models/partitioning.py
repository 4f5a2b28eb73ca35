"""From logical axis names to a device Mesh and NamedShardings.

Every parameter and activation of the model is annotated with logical names
(``models.layers``); ``LOGICAL_AXIS_RULES`` maps them onto the two mesh axes:

* ``data``: the batch is split over it (data parallelism);
* ``model``: the vocabulary, MLP and attention-head dimensions are split over it
  (tensor parallelism, Megatron-style), everything over ``embed`` stays whole.

Shardings are computed from ``jax.eval_shape`` outputs, so nothing is allocated
before its placement is known: the trainer then initialises straight into them.
"""

from __future__ import annotations

import contextlib
from typing import Any, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"
MODEL_AXIS = "model"
MESH_AXES = (DATA_AXIS, MODEL_AXIS)

LOGICAL_AXIS_RULES = (
    ("batch", DATA_AXIS),
    ("vocab", MODEL_AXIS),
    ("mlp", MODEL_AXIS),
    ("heads", MODEL_AXIS),
    ("embed", None),
    ("kv", None),
    ("length", None),
    ("predictions", None),
    ("segments", None),  # examples of a packed row
)


def make_mesh(mesh_config, devices: Sequence[Any] | None = None) -> Mesh:
  """A ``(data, model)`` Mesh from ``config.mesh`` (``data`` -1 = the rest).

  Args:
    mesh_config: has ``data`` and ``model`` sizes; ``data`` may be -1.
    devices: the devices to use (default: all of ``jax.devices()``).
  """
  devices = list(jax.devices() if devices is None else devices)
  model = int(mesh_config.model)
  data = int(mesh_config.data)
  if model < 1 or len(devices) % model:
    raise ValueError(f"mesh.model={model} does not divide the {len(devices)} devices")
  if data == -1:
    data = len(devices) // model
  if data * model != len(devices):
    raise ValueError(f"mesh data={data} x model={model} != {len(devices)} devices")
  # Auto axes: the compiler propagates shardings from the annotations (GSPMD),
  # rather than sharding-in-types.
  auto = (jax.sharding.AxisType.Auto,) * 2
  if len(devices) == len(jax.devices()):
    # Topology-aware order (e.g. ICI rings on TPU) when we use every device.
    return jax.make_mesh((data, model), MESH_AXES, axis_types=auto, devices=devices)
  return Mesh(np.asarray(devices).reshape(data, model), MESH_AXES, axis_types=auto)


def logical_shardings(abstract_boxed_tree, mesh: Mesh, rules=LOGICAL_AXIS_RULES):
  """NamedShardings for a tree of ``nn.LogicallyPartitioned`` (e.g. ``eval_shape(init)``).

  Leaves without logical names are replicated.
  """
  specs = nn.get_partition_spec(abstract_boxed_tree)
  return nn.logical_to_mesh_sharding(specs, mesh, rules)


def _dict_path(path) -> tuple[str, ...]:
  """The dict keys along a tree path (skipping attribute and index entries)."""
  return tuple(entry.key for entry in path if isinstance(entry, jax.tree_util.DictKey))


def like_params_shardings(abstract_tree, params_shardings, abstract_params, mesh: Mesh):
  """Shardings for a tree whose leaves mirror the parameters (optimizer state).

  Optimizer states (Adam's ``mu``/``nu``) hold copies of the parameter tree; a leaf
  whose trailing dict keys and shape equal a parameter's takes that parameter's
  sharding, every other leaf (step counts, scalars) is replicated.
  """
  by_path = {}
  for (path, sharding), leaf in zip(
      jax.tree_util.tree_flatten_with_path(params_shardings)[0],
      jax.tree_util.tree_leaves(abstract_params)):
    by_path[_dict_path(path)] = (sharding, leaf.shape)
  replicated = NamedSharding(mesh, PartitionSpec())

  def pick(path, leaf):
    keys = _dict_path(path)
    for start in range(len(keys)):
      match = by_path.get(keys[start:])
      if match is not None and match[1] == leaf.shape:
        return match[0]
    return replicated

  return jax.tree_util.tree_map_with_path(pick, abstract_tree)


def batch_shardings(abstract_batch, mesh: Mesh):
  """Every batch field split over ``data`` along its first (batch) axis."""
  return jax.tree.map(lambda _: NamedSharding(mesh, PartitionSpec(DATA_AXIS)),
                      abstract_batch)


def replicated(mesh: Mesh) -> NamedSharding:
  """A sharding that keeps a full copy on every device."""
  return NamedSharding(mesh, PartitionSpec())


@contextlib.contextmanager
def activate(mesh: Mesh, rules=LOGICAL_AXIS_RULES):
  """Makes ``mesh`` and the logical rules current, so activation annotations apply.

  Trace (the first call of a jitted step) inside this context.
  """
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    yield
