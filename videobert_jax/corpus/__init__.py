"""The corpus: the interchange format between pipeline stages.

A corpus is a folder with ``videos.jsonl`` (one JSON object per video),
``features/`` (``.npy`` arrays ``[num_clips, feature_dim]``) and ``asr/``
(transcripts). ``reader`` streams it; ``validate`` checks it; ``synthesize``
writes a synthetic cooking world in the same format.
"""

from videobert_jax.corpus.reader import (CorpusError, VideoRecord, iter_videos,
                                         load_features, read_index)

__all__ = ["CorpusError", "VideoRecord", "iter_videos", "load_features", "read_index"]
