"""Captioning: our metric pipeline against pycocoevalcap, the captioner, end to end."""

import os

import numpy as np
import pytest

from videobert_jax.corpus import youcook
from videobert_jax.eval import caption_metrics
from videobert_jax.eval import captioner

ANNOTATIONS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                           "youcook2", "youcookii_annotations_trainval.json")


def _real_captions(n=6):
  path = ANNOTATIONS if os.path.exists(ANNOTATIONS) else (
      "/work/shared/data/youcook2/youcookii_annotations_trainval.json")
  if not os.path.exists(path):
    pytest.skip("YouCook II annotations not available")
  segments = youcook.load_annotations(path, subsets=["validation"])[:n]
  return [s.sentence for s in segments]


def test_metrics_match_pycocoevalcap_called_directly():
  from pycocoevalcap.bleu.bleu import Bleu
  from pycocoevalcap.cider.cider import Cider
  from pycocoevalcap.meteor.meteor import Meteor
  from pycocoevalcap.rouge.rouge import Rouge
  from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
  captions = _real_captions()
  references = {f"seg{i}": [c] for i, c in enumerate(captions)}
  # Plausible predictions: shuffled, shortened and one exact copy.
  predictions = {"seg0": captions[0]}
  for i, c in enumerate(captions[1:], start=1):
    words = c.split()
    predictions[f"seg{i}"] = " ".join(words[:max(2, len(words) // 2)] + ["the", "pan"])
  ours = caption_metrics.score_captions(references, predictions)

  tok = PTBTokenizer()
  gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in references.items()})
  res = tok.tokenize({k: [{"caption": v}] for k, v in predictions.items()})
  bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
  direct = {"BLEU-3": bleu[2], "BLEU-4": bleu[3],
            "METEOR": Meteor().compute_score(gts, res)[0],
            "ROUGE-L": Rouge().compute_score(gts, res)[0],
            "CIDEr": Cider().compute_score(gts, res)[0]}
  assert set(ours) == set(caption_metrics.METRICS)
  for metric, value in direct.items():
    assert ours[metric] == pytest.approx(value, abs=1e-9), metric
  assert 0 < ours["BLEU-4"] < ours["BLEU-3"] < 1


def test_metrics_reject_mismatched_ids():
  with pytest.raises(ValueError, match="different ids"):
    caption_metrics.score_captions({"a": ["x"]}, {"b": "x"}, metrics=("BLEU-4",))


def test_word_vocabulary_encodes_and_decodes():
  vocab = captioner.WordVocabulary.build(
      ["Cut the onion.", "cut the egg", "fry the egg"], min_count=2)
  assert vocab.words[:4] == captioner.SPECIALS
  assert set(vocab.words[4:]) == {"the", "cut", "egg"}
  ids = vocab.encode("cut the tomato", max_words=20)
  assert ids[0] == captioner.BOS and ids[-1] == captioner.EOS
  assert captioner.UNK in ids
  assert vocab.decode(ids[1:]) == "cut the"  # <unk> dropped, stops at </s>
  assert vocab.encode("a b c d", max_words=2)[1:-1] == [captioner.UNK] * 2


def _small_config():
  from videobert_jax.eval import captioning
  config = captioning.load_captioner_config()
  config.num_steps = 150
  config.batch_size = 16
  config.dropout_rate = 0.0
  return config


@pytest.mark.slow
def test_captioner_learns_captions_of_separable_features():
  rng = np.random.default_rng(0)
  captions = ["cut the onion", "fry the egg", "add some salt"]
  x = np.eye(3)[np.arange(48) % 3] * 3 + rng.normal(0, 0.1, (48, 3))
  config = _small_config()
  trained = captioner.train_captioner(x, [captions[i % 3] for i in range(48)], config,
                                      progress=False)
  assert captioner.generate(trained, x[:3]) == captions
  config.beam_size = 3
  assert captioner.generate(trained, x[:3]) == captions


@pytest.mark.slow
def test_run_captioning_end_to_end(tmp_path):
  from videobert_jax.eval import captioning
  from videobert_jax.testing import workdirs as testing
  world = testing.synthetic_world(str(tmp_path / "world"), num_videos=1, num_eval_videos=8)
  book = testing.fit_codebook(world["eval_features_dir"], str(tmp_path / "cb.npz"))
  config = testing.tiny_config(str(tmp_path / "cb.npz"), book.num_words)
  workdir = testing.untrained_workdir(str(tmp_path / "run"), config)
  result = captioning.run_captioning(workdir, world["annotations"],
                                     world["eval_features_dir"],
                                     captioner_config=_small_config(), progress=False)
  assert [r["row"] for r in result["rows"]] == ["features", "videobert",
                                                "videobert_features"]
  hidden = config.model.hidden_size
  assert result["rows"][1]["feature_dim"] == 2 * hidden
  assert result["rows"][2]["feature_dim"] == 2 * hidden + 32
  import json
  saved = json.load(open(os.path.join(workdir, "eval", "captions_videobert.json")))
  # The written predictions re-score to the reported numbers.
  again = caption_metrics.score_captions(saved["references"], saved["predictions"])
  assert again == pytest.approx({m: result["rows"][1][m] for m in again})


def test_captioner_gives_identical_results_for_identical_inputs_and_seed():
  import jax
  rng = np.random.default_rng(0)
  captions = ["cut the onion", "fry the egg", "add some salt"]
  x = np.eye(3)[np.arange(24) % 3] * 3 + rng.normal(0, 0.1, (24, 3))
  config = _small_config()
  config.num_steps = 20
  config.dropout_rate = 0.1  # dropout draws from the seeded key too
  runs = [captioner.train_captioner(x, [captions[i % 3] for i in range(24)], config,
                                    progress=False) for _ in range(2)]
  first, second = (jax.tree_util.tree_leaves(r.params) for r in runs)
  assert all(np.array_equal(a, b) for a, b in zip(first, second))
  assert runs[0].final_loss == runs[1].final_loss
  assert captioner.generate(runs[0], x[:3]) == captioner.generate(runs[1], x[:3])
  config.seed += 1
  other = captioner.train_captioner(x, [captions[i % 3] for i in range(24)], config,
                                    progress=False)
  assert other.final_loss != runs[0].final_loss  # the seed is really used
