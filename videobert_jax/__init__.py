"""videobert_jax: a JAX/Flax reimplementation of VideoBERT (Sun et al., ICCV 2019).

The pipeline runs left to right, one subpackage a stage: ``video`` (raw video to
S3D features), ``text`` (ASR transcripts to sentences and WordPieces), ``corpus``
(the interchange format), ``quantize`` (hierarchical k-means visual words),
``datasets`` and ``tasks`` (TFDS builders and seqio tasks), ``models`` and
``train`` (sharded BERT pretraining), and ``eval`` (zero-shot classification,
captioning, text-to-video and forecasting). A trained model exported with
``python -m videobert_jax.export`` loads in one call: ``videobert_jax.load(BUNDLE)``
(``api.py``); ``videobert_jax.load_params(BUNDLE)`` gives its parameter tree.

Heavy dependencies (jax, tensorflow) are imported lazily by the modules that need
them, so ``import videobert_jax`` is cheap.
"""

__version__ = "0.1.0"

_API = ("load", "load_params")  # videobert_jax.load(bundle): see videobert_jax/api.py


def __getattr__(name):
  """``videobert_jax.load`` and ``load_params``, imported on first use (PEP 562)."""
  if name in _API:
    from videobert_jax import api  # pylint: disable=g-import-not-at-top
    return getattr(api, name)
  raise AttributeError(f"module 'videobert_jax' has no attribute {name!r}")
