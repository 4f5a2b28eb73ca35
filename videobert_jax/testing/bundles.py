"""The small committed bundle ``tests/fixtures/bundle_v1/``: how it was made.

A bundle of format v1 that later package versions must keep loading (the test
``tests/test_bundle.py`` loads the committed copy; this module only documents and
reproduces how it was written). To stay under a megabyte it is an untrained
1-layer, 32-wide model with a 16-word codebook of 8-d features and a truncated
WordPiece vocabulary: bert-base-uncased's specials, its ASCII characters, its
first ordinary words, and the label-list lemmas and template words that are
whole WordPieces there.

    python -c "from videobert_jax.testing import bundles; \\
        bundles.write_fixture_bundle('tests/fixtures/bundle_v1')"
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

FEATURE_DIM = 8  # of the fixture's codebook (any [N, 8] array is a valid input)
NUM_WORDS = 800  # ordinary words kept from bert-base-uncased, in vocabulary order
FIRST_WORD_ID = 1996  # "the": where bert-base-uncased's whole words start


def truncated_vocab(source_words, keep_words) -> list[str]:
  """bert-base-uncased cut down: specials at their ids, ASCII characters, some words."""
  from videobert_jax import tokens  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import vocabulary  # pylint: disable=g-import-not-at-top
  words = list(source_words[:tokens.MASK_ID + 1])  # [PAD], [unused*], the specials
  words += [w for w in source_words[tokens.MASK_ID + 1:FIRST_WORD_ID]
            if len(w) == 1 and w.isascii()]
  ordinary = [w for w in source_words[FIRST_WORD_ID:] if vocabulary.is_ordinary_word(w)]
  whole = set(source_words)
  extra = [w for w in keep_words if w in whole]
  seen = set(words)
  for word in ordinary[:NUM_WORDS] + extra:
    if word not in seen:
      seen.add(word)
      words.append(word)
  return words


def write_fixture_bundle(out: str, seed: int = 0) -> dict:
  """Writes the fixture bundle to ``out``; returns its manifest."""
  from videobert_jax.eval import labels as labels_lib  # pylint: disable=g-import-not-at-top
  from videobert_jax.eval import sequences  # pylint: disable=g-import-not-at-top
  from videobert_jax.export import bundle  # pylint: disable=g-import-not-at-top
  from videobert_jax.quantize import hierarchical  # pylint: disable=g-import-not-at-top
  from videobert_jax.testing import workdirs  # pylint: disable=g-import-not-at-top
  from videobert_jax.text import wordpiece  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as root:
    features = np.random.default_rng(seed).normal(size=(400, FEATURE_DIM)).astype(np.float32)
    book = hierarchical.fit_hierarchical(features, 2, 4, seed=seed)
    book.save(os.path.join(root, "codebook.npz"))
    lists = labels_lib.load_vocabulary()
    template_words = " ".join([sequences.ZEROSHOT_TEMPLATE, sequences.CAPTIONING_TEMPLATE,
                               "cut the onion"]).replace("[MASK]", " ").split()
    vocab = truncated_vocab(wordpiece.vocab_words(),
                            [*template_words, *lists.verbs.lemmas, *lists.nouns.lemmas])
    with open(os.path.join(root, "vocab.txt"), "w", encoding="utf-8") as f:
      f.write("\n".join(vocab) + "\n")
    config = workdirs.tiny_config(os.path.join(root, "codebook.npz"), book.num_words)
    config.model.update(num_layers=1, hidden_size=32, num_heads=2, mlp_dim=64, max_len=64,
                        text_vocab_size=len(vocab))
    config.data.vocab_path = os.path.join(root, "vocab.txt")
    workdirs.untrained_workdir(os.path.join(root, "run"), config, seed=seed)
    return bundle.export_bundle(os.path.join(root, "run"), out, overwrite=True)
