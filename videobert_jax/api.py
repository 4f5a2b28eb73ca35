"""Load a VideoBERT bundle in one call and use it: ``videobert_jax.load(path)``.

The model object answers in words and visual-word ids, never in token ids, and
runs every question through the evaluation's own code (``eval/``: the same input
assembly, candidates, templates and jitted runner), so ``zero_shot`` gives the
top-5 words that ``python -m videobert_jax.eval --task=zeroshot`` writes for the
same segment. Inputs are batched (padded to a power of two up to ``batch_size``,
so a handful of shapes are compiled) and sharded over the devices present.

``load_params`` is for users who put the encoder into their own Flax module: the
parameter tree and the model config, no optimizer. See ``docs/api.md``.
"""

from __future__ import annotations

import os
import types
from typing import Any, Sequence

import numpy as np

from videobert_jax import tokens
from videobert_jax.eval import sequences
from videobert_jax.eval import zeroshot as zeroshot_lib


def _as_segments(features) -> tuple[list[np.ndarray], bool]:
  """A list of ``[N, D]`` arrays, and whether the caller passed a single one."""
  if isinstance(features, np.ndarray) or (
      isinstance(features, (list, tuple)) and features
      and np.ndim(features[0]) == 1):
    return [np.asarray(features, np.float32)], True
  return [np.asarray(f, np.float32) for f in features], False


def _softmax(logits: np.ndarray) -> np.ndarray:
  shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
  return shifted / shifted.sum(axis=-1, keepdims=True)


class VideoBertModel:
  """A restored bundle: parameters on the devices plus its codebook, vocabulary and lists.

  Attributes:
    path: the (local) bundle folder.
    step: the training step of the parameters.
    config: the training config (``ml_collections.ConfigDict``).
    layout: the token layout (``videobert_jax.tokens.TokenLayout``).
    codebook: the ``quantize.codebook.Codebook``.
    manifest: ``bundle.json``.
  """

  def __init__(self, run, manifest: dict, batch_size: int = 32):
    from videobert_jax.eval import labels as labels_lib  # pylint: disable=g-import-not-at-top
    from videobert_jax.export import bundle  # pylint: disable=g-import-not-at-top
    from videobert_jax.text import wordpiece  # pylint: disable=g-import-not-at-top
    self._run = run
    self.manifest = manifest
    self.path, self.step, self.config, self.layout = run.workdir, run.step, run.config, run.layout
    self.batch_size = int(batch_size)
    self._vocab_path = run.config.data.vocab_path
    self.vocab_words = wordpiece.vocab_words(self._vocab_path)
    self.labels = labels_lib.load_vocabulary(*bundle.label_paths(run))
    # The zero-shot setup of the evaluation itself: same codebook check, template
    # ids and candidates, so both rank the very same logits.
    self._zeroshot = zeroshot_lib._setup(  # pylint: disable=protected-access
        run.workdir, None, None, sequences.ZEROSHOT_TEMPLATE, self.labels, run)
    self.codebook = self._zeroshot.book
    self._seq_len, self._max_video = self._zeroshot.seq_len, self._zeroshot.max_video
    self._runners = {}

  def __repr__(self) -> str:
    m = self.config.model
    return (f"VideoBertModel({self.path!r}, step={self.step}, {m.num_layers} x "
            f"{m.hidden_size}, {self.layout.num_visual_words} visual words)")

  def _masked(self, n: int):
    """The evaluation's runner for batches of about ``n`` examples (cached per size)."""
    from videobert_jax.eval import runner  # pylint: disable=g-import-not-at-top
    size = min(self.batch_size, 1 << max(0, int(n) - 1).bit_length())
    if size not in self._runners:
      self._runners[size] = runner.MaskedModel(self._run.model, self._run.params,
                                               self._run.mesh, self._seq_len, size)
    return self._runners[size]

  def _video_ids(self, features) -> np.ndarray | None:
    """Token ids of the visual words of ``features`` ``[N, D]``; None for no video."""
    if features is None:
      return None
    return self.layout.visual_ids(self.visual_words(features))

  def visual_words(self, features) -> np.ndarray:
    """The codebook leaf (visual word, int32 ``[N]``) of each clip feature ``[N, D]``."""
    features = np.asarray(features, np.float32)
    if features.ndim != 2 or features.shape[1] != self.codebook.feature_dim:
      raise ValueError(f"features must be [clips, {self.codebook.feature_dim}] (the "
                       f"codebook's dimension), got shape {features.shape}")
    return self.codebook.assign(features)

  def fill_masks(self, text: str, features=None, top_k: int = 5
                 ) -> list[list[tuple[str, float]]]:
    """Per ``[MASK]`` of ``text`` (in order), the ``top_k`` WordPieces and probabilities.

    ``features`` ``[N, D]`` (optional) are clips appended as the video part:
    ``[CLS] text [>] visual words [SEP]``. Probabilities are a softmax over the
    text vocabulary.
    """
    text_ids = sequences.encode_template(text, self._vocab_path)
    example = sequences.assemble(text_ids, self._video_ids(features), self.layout,
                                 self._seq_len, self._max_video)
    candidates = np.arange(self.layout.text_vocab_size, dtype=np.int32)
    logits = self._masked(1).run([example], [list(example.text_mask_positions)],
                                 candidates)["logits"][0]
    probs = _softmax(logits.astype(np.float64))
    out = []
    for row in probs:
      best = np.argsort(-row, kind="stable")[:top_k]
      out.append([(self.vocab_words[i], float(row[i])) for i in best])
    return out

  def zero_shot(self, features, top_k: int = 5,
                protocol: str = zeroshot_lib.OPEN_VOCABULARY):
    """The paper's zero-shot verbs and nouns of a segment: ``{"verbs": [...], "nouns": [...]}``.

    Input: ``[CLS] now let me show you how to [MASK] the [MASK] . [>] visual
    words [SEP]``, as ``eval --task=zeroshot``. ``features`` is one segment's
    clips ``[N, D]`` (or a list of them: a list of results, batched).
    ``protocol``: ``"open_vocabulary"`` (every whole-word WordPiece competes;
    words as predicted) or ``"label_lists"`` (the bundle's list lemmas only).
    """
    if protocol not in zeroshot_lib.PROTOCOLS:
      raise ValueError(f"protocol must be one of {zeroshot_lib.PROTOCOLS}, got {protocol!r}")
    segments, single = _as_segments(features)
    setup = self._zeroshot
    examples = [sequences.assemble(setup.text_ids, self._video_ids(f), self.layout,
                                   self._seq_len, self._max_video) for f in segments]
    ranked = zeroshot_lib.predict(self._masked(len(examples)), examples, setup.candidates,
                                  k=top_k)[protocol]
    out = [{"verbs": verbs, "nouns": nouns} for verbs, nouns in zip(*ranked)]
    return out[0] if single else out

  def embed(self, text: str | None = None, features=None) -> dict[str, np.ndarray]:
    """``{"cls": [H]}`` of ``[CLS] text [>] video [SEP]``, plus ``"captioning": [2H]``
    (the paper's captioning feature: its template + the video) when ``features``."""
    from videobert_jax.eval import captioning  # pylint: disable=g-import-not-at-top
    from videobert_jax.text import wordpiece  # pylint: disable=g-import-not-at-top
    if text is None and features is None:
      raise ValueError("embed needs text, features or both")
    text_ids = []
    if text:
      text_ids = (sequences.encode_template(text, self._vocab_path)
                  if sequences.MASK_TOKEN in text else wordpiece.encode(text, self._vocab_path))
    example = sequences.assemble(text_ids, self._video_ids(features), self.layout,
                                 self._seq_len, self._max_video)
    masked = self._masked(1)
    cls = masked.run([example], [[0]], np.asarray([tokens.MASK_ID], np.int32),
                     reduce_hidden=lambda _, hidden: hidden[:, 0])["hidden"][0]
    out = {"cls": cls}
    if features is not None:
      segment = types.SimpleNamespace(visual_words=self.visual_words(features))
      template = sequences.encode_template(sequences.CAPTIONING_TEMPLATE, self._vocab_path)
      out["captioning"] = captioning.videobert_features(
          masked, [segment], self.layout, template, self._max_video, progress=False)[0]
    return out

  def text_to_video(self, sentences: str | Sequence[str], num_video_tokens: int = 3,
                    top_k: int = 3, features_dir: str | None = None) -> list[dict]:
    """Visual words for each sentence, filled left to right (``eval/generation.py``).

    Returns per sentence ``{"sentence", "slots": [{"top": [word ids], "probs"}]}``;
    with ``features_dir`` (``<video_id>.npy`` files) also ``"clips"``: the clip
    nearest to each shown visual word.
    """
    from videobert_jax.eval import generation  # pylint: disable=g-import-not-at-top
    sentences = [sentences] if isinstance(sentences, str) else list(sentences)
    results = generation.text_to_video(self._masked(len(sentences)), self.layout,
                                       sentences, num_video_tokens, top_k, self._vocab_path)
    return self._with_clips(results, features_dir)

  def forecast(self, features, horizons: Sequence[int] = (1, 2, 3), top_k: int = 3,
               context: int = 8, features_dir: str | None = None) -> dict:
    """The top-k visual words ``h`` clips after the last of ``features`` ``[N, D]``.

    The context is the last ``context`` clips. Returns ``{"visual_words": context,
    "horizons": [{"steps": h, "top": [word ids], "probs"}]}`` (+ ``"clips"`` with
    ``features_dir``, as ``text_to_video``).
    """
    from videobert_jax.eval import generation  # pylint: disable=g-import-not-at-top
    words = self.visual_words(features)
    if not len(words):
      raise ValueError("forecast needs at least one clip of context")
    start = generation.ForecastContext(
        "features", tuple(int(w) for w in words[-int(context):]))
    result = generation.forecast(self._masked(1), self.layout, [start],
                                 [int(h) for h in horizons], top_k)
    return self._with_clips(result, features_dir)[0]

  def _with_clips(self, results: list[dict], features_dir: str | None) -> list[dict]:
    """Adds each shown visual word's nearest clip of ``features_dir`` (eval's pages)."""
    if features_dir is None:
      return results
    import dataclasses  # pylint: disable=g-import-not-at-top
    from videobert_jax.eval import pages  # pylint: disable=g-import-not-at-top
    clips = pages.nearest_clips(self.codebook.leaves, pages.words_on(results), features_dir)
    shown = {w: dataclasses.asdict(c) for w, c in clips.items()}
    for r in results:
      r["clips"] = {w: shown[w] for w in pages.words_on([r]) if w in shown}
    return results


def load(path: str | os.PathLike, *, batch_size: int = 32, devices=None,
         verify: bool = True) -> VideoBertModel:
  """Loads a bundle (local folder or ``gs://``) of ``python -m videobert_jax.export``.

  Args:
    path: the bundle.
    batch_size: most examples per device call.
    devices: devices to shard over (default: all).
    verify: check every file's sha256 against ``bundle.json`` first.

  Raises:
    BundleError: a file differs from its hash, or the format is newer than
      this package reads (one line naming the file or the version).
  """
  from videobert_jax import quiet  # pylint: disable=g-import-not-at-top
  from videobert_jax.export import bundle  # pylint: disable=g-import-not-at-top
  quiet.import_tensorflow()  # the WordPiece tokenizer's; off the GPUs, minus its chatter
  local = bundle.local_bundle(os.fspath(path))
  manifest = bundle.verify_bundle(local) if verify else bundle.read_manifest(local)
  run = bundle.load_run(local, devices=devices, verify=False)
  return VideoBertModel(run, manifest, batch_size)


def load_params(path: str | os.PathLike, *, devices=None,
                verify: bool = True) -> tuple[Any, Any]:
  """``(params, model_config)`` of a bundle: the Flax tree (no optimizer) and the
  ``model`` config section that ``videobert_jax.models.bert.VideoBert`` takes."""
  from videobert_jax.export import bundle  # pylint: disable=g-import-not-at-top
  run = bundle.load_run(os.fspath(path), devices=devices, verify=verify)
  return run.params, run.config.model
