"""The seqio stage: TFDS examples into the weighted multi-objective batch stream.

``preprocessors`` (masking, neighbour sentences, subsampling, negatives, the
feature converter), ``registry`` (the seqio Tasks and the Mixture) and
``pipeline`` (what the trainer calls: ``pretrain_batches``, building the TFDS
datasets on demand).
"""
