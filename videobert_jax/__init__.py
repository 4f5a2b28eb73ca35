"""videobert_jax: a JAX/Flax reimplementation of VideoBERT (Sun et al., ICCV 2019).

The pipeline runs left to right, one subpackage a stage: ``video`` (raw video to
S3D features), ``text`` (ASR transcripts to sentences and WordPieces), ``corpus``
(the interchange format), ``quantize`` (hierarchical k-means visual words),
``datasets`` and ``tasks`` (TFDS builders and seqio tasks), ``models`` and
``train`` (sharded BERT pretraining), and ``eval`` (zero-shot classification,
captioning, text-to-video and forecasting).

Heavy dependencies (jax, tensorflow) are imported lazily by the modules that need
them, so ``import videobert_jax`` is cheap.
"""

__version__ = "0.1.0"
