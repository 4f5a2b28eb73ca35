"""The synthetic cooking world: a corpus plus a YouCook II style evaluation set.

``world`` defines the recipes, actions and their feature clusters; ``synthesize``
writes them as a corpus (``python -m videobert_jax.corpus synthesize``).
"""
