"""A trained model as a self-contained, versioned bundle (``bundle.py``), its model
card (``card.py``) and the command ``python -m videobert_jax.export``."""
