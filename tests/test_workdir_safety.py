"""A workdir is never damaged by a command that fails or has nothing to do."""

import json
import os

import pytest

from test_train import random_batches, tiny_config  # pylint: disable=import-error
from videobert_jax.testing import files
from videobert_jax.train import loop as train_lib
from videobert_jax.train import workdir as workdir_lib


def test_rerun_of_a_finished_run_changes_nothing(tmp_path, capsys):
  config = tiny_config()
  first = train_lib.train(config, str(tmp_path), batch_source=random_batches)
  before = files.file_bytes(tmp_path)
  again = train_lib.train(config, str(tmp_path), batch_source=random_batches)
  assert again == json.loads(json.dumps(first))
  assert files.file_bytes(tmp_path) == before
  out = capsys.readouterr().out
  assert "nothing to do" in out and "train loss n/a" not in out


def test_a_different_model_is_refused_before_anything_is_written(tmp_path):
  train_lib.train(tiny_config(), str(tmp_path), batch_source=random_batches)
  before = files.file_bytes(tmp_path)
  bigger = tiny_config()
  bigger.model.hidden_size = 64
  bigger.train.num_steps = 12
  with pytest.raises(workdir_lib.ConfigMismatchError,
                     match=r"model.hidden_size=128 in the workdir, 64 in the config"):
    train_lib.train(bigger, str(tmp_path), batch_source=random_batches)
  assert files.file_bytes(tmp_path) == before


def test_a_workdir_from_before_a_field_was_added_still_matches():
  config = tiny_config()
  config.model.mlm_vocab = "full"  # what every run did before the field was added
  saved = json.loads(config.to_json_best_effort())
  del saved["model"]["mlm_vocab"], saved["model"]["mlm_vocab_ids"]  # an older config.json
  assert workdir_lib.config_differences(saved, config) == []
  config.model.mlm_vocab = "corpus"  # not what the older run did
  config.model.mlm_vocab_ids = list(range(500))
  differences = workdir_lib.config_differences(saved, config)
  assert differences[0].startswith("model.mlm_vocab='full' in the workdir")
  assert "..., 500 items in the config" in differences[1]  # long lists cut short


def test_paths_in_config_json_are_absolute(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  config = tiny_config()
  config.data.corpus_dir = "corpus"
  config.data.tfds_data_dir = "gs://bucket/tfds"
  resolved = workdir_lib.absolute_paths(config)
  assert resolved.data.corpus_dir == os.path.join(str(tmp_path), "corpus")
  assert resolved.data.tfds_data_dir == "gs://bucket/tfds"


def test_frozen_embeddings_without_a_checkpoint_are_refused_before_writing(tmp_path):
  config = tiny_config()
  config.model.freeze_embeddings = True  # as small, base and large
  with pytest.raises(ValueError, match="init.checkpoint is not set.*from_scratch=True"):
    train_lib.train(config, str(tmp_path / "run"), batch_source=random_batches)
  assert not os.path.exists(tmp_path / "run")
  config.init.from_scratch = True  # said on purpose: allowed
  train_lib.check_initialisation(config)
