"""Visual words: hierarchical k-means in JAX, the codebook file and token assignment.

Modules: ``kmeans`` (flat Lloyd's k-means, data-parallel), ``hierarchical``
(the d-level, k-way tree), ``codebook`` (file format, validation, assignment),
``assign`` (a corpus to token sequences), ``show`` (what a visual word looks
like), ``cli`` (``python -m videobert_jax.quantize``). See docs/quantize.md.
"""
