"""TFDS builders of VideoBERT data; importing this package registers them with TFDS.

* ``videobert_text``: English ASR sentences as WordPiece ids.
* ``videobert_video``: visual-word segments of every video.
* ``videobert_video_text``: aligned ASR sentences and visual words (English).
* ``youcook2``: YouCook II annotated segments (evaluation).

``python -m videobert_jax.datasets build NAME ...`` (quiet),
``tfds build NAME --imports videobert_jax.datasets ...`` or, in Python,
``import videobert_jax.datasets`` then ``tfds.builder(NAME, data_dir=..., ...)``.
See docs/datasets.md.
"""

from videobert_jax import quiet

# Before the builders import TFDS (and with it TensorFlow): without its start-up
# lines and off the GPUs, which JAX owns (see quiet.import_tensorflow).
quiet.import_tensorflow()

# pylint: disable=g-import-not-at-top,wrong-import-position
from videobert_jax.datasets.pretraining import VideobertText
from videobert_jax.datasets.pretraining import VideobertVideo
from videobert_jax.datasets.pretraining import VideobertVideoText
from videobert_jax.datasets.youcook2 import Youcook2

PRETRAINING_BUILDERS = {
    "text": "videobert_text",
    "video": "videobert_video",
    "video_text": "videobert_video_text",
}

__all__ = ["VideobertText", "VideobertVideo", "VideobertVideoText", "Youcook2",
           "PRETRAINING_BUILDERS"]
