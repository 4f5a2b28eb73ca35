"""Small evaluation fixtures for tests: a synthetic world, a codebook, an untrained run.

``untrained_workdir`` writes what ``videobert_jax.train`` writes (``config.json``
and an Orbax checkpoint) for randomly initialised parameters of a config, so the
evaluation code can be tested end to end without training.
"""

from __future__ import annotations

import glob
import os

import numpy as np

from videobert_jax import fileio


def synthetic_world(out_dir: str, num_videos: int = 4, num_eval_videos: int = 12,
                    feature_dim: int = 32, seed: int = 0) -> dict:
  """The bundled synthetic world (small); returns ``synthesize``'s summary."""
  from videobert_jax.synthetic import synthesize  # pylint: disable=g-import-not-at-top
  return synthesize.synthesize(out_dir, num_videos=num_videos,
                               num_eval_videos=num_eval_videos,
                               feature_dim=feature_dim, seed=seed, progress=False)


def fit_codebook(features_dir: str, path: str, levels: int = 2, clusters: int = 4,
                 seed: int = 0):
  """Fits a small hierarchical k-means codebook on every ``.npy`` in a folder."""
  from videobert_jax.quantize import hierarchical  # pylint: disable=g-import-not-at-top
  files = sorted(glob.glob(os.path.join(features_dir, "*.npy")))
  features = np.concatenate([np.load(f).astype(np.float32) for f in files])
  book = hierarchical.fit_hierarchical(features, levels, clusters, seed=seed)
  book.save(path)
  return book


def tiny_config(codebook_path: str, num_visual_words: int):
  """``configs/pretrain.py:tiny`` pointed at a codebook: 2 layers, small batch."""
  from videobert_jax.configs import pretrain  # pylint: disable=g-import-not-at-top
  config = pretrain.get_config("tiny")
  config.data.codebook = codebook_path
  config.model.num_visual_words = num_visual_words
  # The default's 4 layers are for learning; tests of behaviour run 2, half the encoder.
  config.model.num_layers = 2
  config.train.batch_size = 8
  return config


def world_config(root: str, num_videos: int = 6, validation_percent: float = 50.0,
                 world_dir: str | None = None):
  """A small synthetic world (or ``world_dir``'s) and a tiny config on its corpus.

  Returns ``(world summary, config)``; the codebook and TFDS datasets go under ``root``.
  """
  if world_dir is None:
    world = synthetic_world(os.path.join(root, "world"), num_videos=num_videos)
  else:
    world = {"out_dir": world_dir, "corpus_dir": os.path.join(world_dir, "corpus")}
  book = fit_codebook(os.path.join(world["corpus_dir"], "features"),
                      os.path.join(root, "cb.npz"))
  config = tiny_config(os.path.join(root, "cb.npz"), book.num_words)
  config.data.corpus_dir = world["corpus_dir"]
  config.data.tfds_data_dir = os.path.join(root, "tfds")
  config.data.validation_percent = validation_percent
  return world, config


def untrained_workdir(workdir: str, config, step: int = 0, seed: int = 0) -> str:
  """Writes ``config.json`` and a checkpoint of randomly initialised parameters."""
  import jax  # pylint: disable=g-import-not-at-top
  from videobert_jax.train import checkpointing  # pylint: disable=g-import-not-at-top
  from videobert_jax.train import state as train  # pylint: disable=g-import-not-at-top
  from videobert_jax.train import loop  # pylint: disable=g-import-not-at-top
  config, centroids, _ = loop.prepare(config, workdir)
  fileio.write_text(os.path.join(workdir, "config.json"),
                    config.to_json_best_effort(indent=2) + "\n")
  setup = train.Setup(config)
  state = setup.init_state(jax.random.key(seed), centroids)
  ckpt = checkpointing.Checkpointer(workdir, keep=3)
  ckpt.save(step, state, {"step": step, "batches_consumed": 0, "data_seed": 0})
  ckpt.close()
  return workdir


def untrained_eval_run(root: str, num_videos: int = 4, num_eval_videos: int = 8) -> dict:
  """A synthetic world, its codebook and an untrained tiny workdir under ``root``.

  Returns ``{"workdir", "world", "book"}``: what the eval and bundle tests start from.
  """
  world = synthetic_world(os.path.join(root, "world"), num_videos=num_videos,
                          num_eval_videos=num_eval_videos)
  book = fit_codebook(world["eval_features_dir"], os.path.join(root, "cb.npz"))
  config = tiny_config(os.path.join(root, "cb.npz"), book.num_words)
  workdir = untrained_workdir(os.path.join(root, "run"), config)
  return {"workdir": workdir, "world": world, "book": book}
