"""The VideoBERT model: Flax BERT encoder, pretraining heads, losses and sharding rules.

``VideoBert(config.model)`` is the module; ``losses.pretraining_loss`` the loss;
``partitioning`` maps logical axis names onto a ``(data, model)`` mesh;
``visual_init.visual_embeddings`` starts visual words from codebook centroids.
"""

from videobert_jax.models.bert import VideoBert

__all__ = ["VideoBert"]
