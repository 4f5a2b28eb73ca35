"""Renamed to ``videobert_jax.pretrained``; this alias is kept for one release."""

from videobert_jax.pretrained import *  # noqa: F401,F403
from videobert_jax.pretrained import load_pretrained  # noqa: F401
