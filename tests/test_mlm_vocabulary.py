"""model.mlm_vocab = "corpus": the ids the masked-token softmax ranks for a run."""

import numpy as np
import pytest

from videobert_jax import tokens
from videobert_jax.tasks import mlm_vocabulary


@pytest.fixture(scope="module")
def config(tmp_path_factory):
  from videobert_jax.testing import workdirs as testing
  _, config = testing.world_config(str(tmp_path_factory.mktemp("vocab")),
                                   validation_percent=30.0)
  config.model.mlm_vocab = "corpus"
  return config


def _layout(config):
  return tokens.TokenLayout(config.model.text_vocab_size, config.model.num_visual_words)


def test_corpus_ids_are_every_wordpiece_of_the_datasets_plus_specials_and_video(config):
  import tensorflow_datasets as tfds
  from videobert_jax.tasks import pipeline
  resolved = mlm_vocabulary.resolve(config, _layout(config))
  ids = resolved.model.mlm_vocab_ids
  layout = _layout(config)
  assert ids == sorted(set(ids))
  assert set(tokens.TEXT_SPECIAL_IDS) <= set(ids)
  assert set(range(layout.video_sep_id, layout.num_used_ids)) <= set(ids)
  spoken = set()
  for kind in ("text", "video_text"):
    builder = pipeline.builder(config.data, kind)
    for split in ("train", "validation"):
      for ex in tfds.as_numpy(builder.as_dataset(split=split)):
        spoken.update(np.asarray(ex["text_ids"]).tolist())
  text_ids = {i for i in ids if tokens.MASK_ID < i < layout.text_vocab_size}
  assert text_ids == spoken  # nothing the corpus does not say
  assert len(ids) < layout.vocab_size // 20  # the point: a small softmax
  assert config.model.mlm_vocab_ids is None  # the caller's config is not changed


def test_full_ranks_everything_and_resolved_ids_are_kept(config):
  full = config.copy_and_resolve_references()
  full.model.mlm_vocab = "full"
  assert mlm_vocabulary.resolve(full, _layout(config)).model.mlm_vocab_ids is None
  kept = config.copy_and_resolve_references()
  kept.model.mlm_vocab_ids = [0, 5, 7]
  assert mlm_vocabulary.resolve(kept, _layout(config)).model.mlm_vocab_ids == [0, 5, 7]


def test_without_the_datasets_corpus_falls_back_to_the_full_table_and_says_so(
    config, capsys):
  resolved = mlm_vocabulary.resolve(config, _layout(config), can_read_datasets=False)
  assert resolved.model.mlm_vocab == "full" and resolved.model.mlm_vocab_ids is None
  assert "ranking the whole vocabulary" in capsys.readouterr().err


def test_an_unknown_mode_is_one_clear_error(config):
  bad = config.copy_and_resolve_references()
  bad.model.mlm_vocab = "corpora"
  with pytest.raises(ValueError, match="model.mlm_vocab is 'corpora'"):
    mlm_vocabulary.resolve(bad, _layout(config))
