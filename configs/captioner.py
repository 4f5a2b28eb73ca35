"""The captioner config lives in the package: ``videobert_jax/configs/captioner.py``.

Kept here so ``--captioner=configs/captioner.py`` works from the checkout;
``--captioner=captioner`` works from any folder.
"""

from videobert_jax.configs.captioner import get_config  # noqa: F401
