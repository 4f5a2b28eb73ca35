"""The pretraining configs live in the package: ``videobert_jax/configs/pretrain.py``.

Kept here so ``--config=configs/pretrain.py:tiny`` works from the checkout;
``--config=pretrain:tiny`` works from any folder.
"""

from videobert_jax.configs.pretrain import SIZES, get_config  # noqa: F401
