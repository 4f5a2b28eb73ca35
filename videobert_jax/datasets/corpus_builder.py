"""The shared TFDS builder of the three pretraining datasets (text, video, video-text).

A builder reads a corpus folder (DESIGN.md) and, for visual tokens, a codebook.
Both are builder arguments, so they work from Python and from the ``tfds`` CLI:

  tfds build videobert_video_text/codebook=/abs/codebook.npz \
      --imports videobert_jax.datasets --manual_dir /abs/CORPUS --data_dir /abs/tfds

or ``tfds.builder("videobert_video_text", data_dir=..., corpus_dir=..., codebook=...)``.
The corpus may also come as ``corpus_dir=...`` instead of ``--manual_dir``.

Splits: ``validation`` holds ``validation_percent`` of the (non-evaluation) videos,
chosen by a hash of the video id, so the three builders hold out the same videos;
``train`` holds the rest. Evaluation videos (YouCook II ids by default, see
``eval_ids``) are dropped before either split.

Beam: when the build is given Beam options or a runner (``tfds build
--beam_pipeline_options=runner=DirectRunner``), ``_generate_examples`` returns a
``beam.PTransform`` that runs the same per-video function on the workers;
otherwise a plain generator does. Both give the same examples.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import tensorflow_datasets as tfds

from videobert_jax.corpus import reader
from videobert_jax.datasets import builder_support
from videobert_jax.datasets import eval_ids as eval_ids_lib
from videobert_jax.datasets import segments

DATASET_VERSION = "1.1.0"
RELEASE_NOTES = {
    "1.0.0": "First release.",
    "1.1.0": "videobert_video_text: action_groups (verb-object pairs of each sentence).",
}
DEFAULT_VALIDATION_PERCENT = 1.0

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Pass the corpus folder (videos.jsonl + features/ + asr/, see DESIGN.md) as
--manual_dir (or the builder argument corpus_dir=...) and, for visual tokens,
the codebook file as the builder argument codebook=/path/to/codebook.
"""


def validation_ids(video_ids: list[str], percent: float) -> set[str]:
  """The held-out videos: the first ``percent`` % of ids ordered by a hash of the id.

  At least one video is held out when ``percent > 0`` and there are two or more
  videos, so even a tiny corpus has a validation split.
  """
  if percent <= 0 or len(video_ids) < 2:
    return set()
  ranked = sorted(video_ids, key=lambda v: hashlib.sha1(v.encode("utf-8")).hexdigest())
  count = max(1, int(round(len(ranked) * percent / 100.0)))
  return set(ranked[:min(count, len(ranked) - 1)])


def file_stamp(path: str | None) -> str:
  """``path:size:mtime`` of a file (or the path alone when missing), to detect a change."""
  if not path:
    return ""
  path = os.path.abspath(path)
  try:
    st = os.stat(path)
  except OSError:
    return path
  return f"{path}:{st.st_size}:{int(st.st_mtime)}"


def source_fingerprint(kind: str, corpus_dir: str, codebook: str | None,
                       vocab_path: str | None, eval_fingerprint: str,
                       validation_percent: float, chunk_tokens: int) -> str:
  """A digest of every input of a build; the input pipeline compares it before reuse."""
  parts = [kind, file_stamp(reader.index_path(corpus_dir)),
           file_stamp(codebook) if kind != segments.TEXT else "",
           file_stamp(vocab_path) if kind != segments.VIDEO else "",
           eval_fingerprint, repr(float(validation_percent)), str(chunk_tokens)]
  return hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()[:16]


class CorpusBuilder(builder_support.BuilderSupport, tfds.core.GeneratorBasedBuilder,
                    skip_registration=True):
  """Base of the pretraining builders; subclasses set KIND and ``_features()``."""

  VERSION = tfds.core.Version(DATASET_VERSION)
  RELEASE_NOTES = RELEASE_NOTES
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  KIND = ""

  def __init__(self, *, corpus_dir: str | None = None, codebook: str | None = None,
               vocab_path: str | None = None, eval_ids: Any = None,
               validation_percent: float = DEFAULT_VALIDATION_PERCENT,
               chunk_tokens: int = segments.CHUNK_TOKENS, skip_bad: bool = False,
               allow_outside_paths: bool = False, **kwargs):
    """Creates the builder.

    Args:
      corpus_dir: the corpus folder; if None, the build's ``manual_dir``.
      codebook: the codebook file (video and video-text builders).
      vocab_path: a WordPiece vocab.txt; None = bert-base-uncased.
      eval_ids: ids never to include: None = YouCook II, a file path (one id per
        line, or an annotation .json), "none" for no exclusion, or a sequence.
      validation_percent: percent of videos held out as the validation split.
      chunk_tokens: segment length of videos without usable ASR.
      skip_bad: skip (and log) bad videos instead of failing.
      allow_outside_paths: accept paths in videos.jsonl that leave the corpus
        folder (absolute, gs://, ``..``); rejected by default.
      **kwargs: passed to ``tfds.core.GeneratorBasedBuilder`` (data_dir, ...).
    """
    if isinstance(eval_ids, str) and eval_ids.lower() == "none":
      eval_ids = ()
    self._corpus_dir = os.path.abspath(corpus_dir) if corpus_dir else None
    self._codebook = os.path.abspath(codebook) if codebook else None
    self._vocab_path = os.path.abspath(vocab_path) if vocab_path else None
    self._eval_ids = eval_ids
    self._validation_percent = float(validation_percent)
    self._chunk_tokens = int(chunk_tokens)
    self._skip_bad = bool(skip_bad)
    self._allow_outside_paths = bool(allow_outside_paths)
    super().__init__(**kwargs)
    # DatasetBuilder pickles itself as its constructor arguments (Beam does this).
    self._original_state.update(
        corpus_dir=corpus_dir, codebook=codebook, vocab_path=vocab_path,
        eval_ids=eval_ids, validation_percent=validation_percent,
        chunk_tokens=chunk_tokens, skip_bad=skip_bad,
        allow_outside_paths=allow_outside_paths)

  def _features(self) -> dict:
    raise NotImplementedError

  def _description(self) -> str:
    return (self.__doc__ or "").strip()

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=self._description(),
        features=tfds.features.FeaturesDict(self._features()),
        homepage="https://arxiv.org/abs/1904.01766",
        metadata=tfds.core.MetadataDict(),
        citation=_CITATION,
    )

  def _resolve_corpus(self, dl_manager) -> str:
    if self._corpus_dir:
      return self._corpus_dir
    try:
      manual = os.fspath(dl_manager.manual_dir)
    except AssertionError:
      raise reader.CorpusError(
          f"{self.name}", "no corpus: pass --manual_dir CORPUS (tfds build) or "
          "corpus_dir=CORPUS (tfds.builder)") from None
    # Absolute, as the trainer's config makes it: the fingerprint names the folder,
    # and `--manual_dir corpus` typed relative must match the trainer's check.
    return manual if reader.is_url(manual) else os.path.abspath(manual)

  def _split_generators(self, dl_manager):
    corpus_dir = self._resolve_corpus(dl_manager)
    if self.KIND != segments.TEXT:
      if not self._codebook:
        raise reader.CorpusError(
            self.name, "no codebook: pass the builder argument codebook=PATH")
      if not os.path.isfile(self._codebook):
        raise reader.CorpusError(self._codebook, "codebook file is missing")
    skipped: list = []
    records = list(reader.iter_videos(corpus_dir, skip_bad=self._skip_bad,
                                      skipped=skipped,
                                      allow_outside_paths=self._allow_outside_paths))
    excluded_ids = eval_ids_lib.load(self._eval_ids)
    kept = [r for r in records if r.video_id not in excluded_ids]
    held_out = validation_ids([r.video_id for r in kept], self._validation_percent)
    splits = {"train": [r for r in kept if r.video_id not in held_out],
              "validation": [r for r in kept if r.video_id in held_out]}
    check_splits(self.name, self.KIND, corpus_dir, len(records), splits,
                 self._validation_percent)
    self._record_metadata(corpus_dir, records, kept, held_out, excluded_ids, skipped)
    return {split: self._generate_examples(records=split_records, split=split)
            for split, split_records in splits.items()}

  def _record_metadata(self, corpus_dir, records, kept, held_out, excluded_ids,
                       skipped) -> None:
    """Saves the build's inputs and counts in metadata.json next to the data."""
    meta = self.info.metadata
    meta.update(
        kind=self.KIND,
        corpus_dir=corpus_dir,
        codebook=self._codebook if self.KIND != segments.TEXT else None,
        vocab_path=self._vocab_path,
        source_fingerprint=source_fingerprint(
            self.KIND, corpus_dir, self._codebook, self._vocab_path,
            eval_ids_lib.fingerprint(excluded_ids), self._validation_percent,
            self._chunk_tokens),
        eval_ids_fingerprint=eval_ids_lib.fingerprint(excluded_ids),
        num_index_videos=len(records),
        num_excluded_eval_videos=len(records) - len(kept),
        excluded_eval_video_ids=sorted(r.video_id for r in records
                                       if r.video_id in excluded_ids),
        num_validation_videos=len(held_out),
        num_english_asr_videos=sum(bool(r.asr_path) and r.is_english for r in kept),
        skipped_index_lines=[str(e) for e in skipped],
        chunk_tokens=self._chunk_tokens,
        validation_percent=self._validation_percent,
        built_with_beam=self._use_beam,
    )
    if self.KIND != segments.TEXT:
      book = segments._codebook(self._codebook)  # pylint: disable=protected-access
      meta.update(num_visual_words=int(book.num_words),
                  feature_dim=int(book.feature_dim))
    if self.KIND != segments.VIDEO:
      from videobert_jax.text import wordpiece  # pylint: disable=import-outside-toplevel
      meta.update(text_vocab_size=wordpiece.vocab_size(self._vocab_path))

  def _spec(self) -> segments.BuildSpec:
    return segments.BuildSpec(kind=self.KIND, codebook_path=self._codebook,
                              vocab_path=self._vocab_path,
                              chunk_tokens=self._chunk_tokens, skip_bad=self._skip_bad)

  def _generate_examples(self, records: list, split: str = "train"):
    """A generator of ``(key, example)``, or a ``beam.PTransform`` on Beam builds."""
    spec = self._spec()
    if self._use_beam:
      import apache_beam as beam  # pylint: disable=import-outside-toplevel
      import functools  # pylint: disable=import-outside-toplevel
      # Reshuffle spreads the videos over workers; each worker loads the codebook
      # and the vocabulary once (segments caches them per process).
      return (beam.Create(records)
              | beam.Reshuffle()
              | beam.FlatMap(functools.partial(beam_examples_for_video, spec=spec)))
    return self._plain_examples(records, spec, split)

  def _process_pipeline_result(self, pipeline_result) -> None:
    """Beam builds: the empty transcripts the workers counted, into the metadata.

    TFDS calls this once the pipeline is done and before it writes
    metadata.json, so a Beam build records them as the plain one does, and
    ``download_and_prepare`` warns once for all of them.
    """
    from apache_beam.metrics.metric import MetricsFilter  # pylint: disable=import-outside-toplevel
    found = pipeline_result.metrics().query(
        MetricsFilter().with_namespace(BEAM_METRICS))
    def value(result):  # committed where the runner has it (retries not counted twice)
      return result.attempted if result.committed is None else result.committed
    count = sum(value(c) for c in found["counters"]
                if c.key.metric.name == EMPTY_TRANSCRIPTS)
    files = set()
    for result in found["string_sets"]:
      if result.key.metric.name == EMPTY_TRANSCRIPT_FILES:
        files |= set(value(result))
    self.info.metadata.update(empty_transcripts=int(count),
                              empty_transcript_files=sorted(files))

  def _plain_examples(self, records: list, spec: segments.BuildSpec, split: str):
    """The plain build's generator; it counts empty transcripts into the metadata."""
    empty: list[str] = []
    yield from _iterate(records, spec, empty, where=f"the {split} split of {self.name}")
    meta = self.info.metadata
    # Both splits add to one list (metadata.json is written after both).
    files = sorted(set(meta.get("empty_transcript_files", [])) | set(empty))
    meta.update(empty_transcripts=len(files), empty_transcript_files=files)


BEAM_METRICS = "videobert_jax"  # namespace of the Beam metrics the builds count in
EMPTY_TRANSCRIPTS = "empty_transcripts"
EMPTY_TRANSCRIPT_FILES = "empty_transcript_files"


def beam_examples_for_video(record, spec: segments.BuildSpec) -> list:
  """A Beam worker's ``examples_for_video``: empty transcripts go to Beam metrics.

  Workers cannot add to one list; a counter (exact) and a string set of the
  files (Beam keeps up to 1 MB of names) reach the pipeline's result, which
  ``_process_pipeline_result`` reads: one warning for the build, not one per
  video on the workers.
  """
  from apache_beam.metrics import Metrics  # pylint: disable=import-outside-toplevel
  empty: list[str] = []
  examples = segments.examples_for_video(record, spec, empty)
  for path in empty:
    Metrics.counter(BEAM_METRICS, EMPTY_TRANSCRIPTS).inc()
    Metrics.string_set(BEAM_METRICS, EMPTY_TRANSCRIPT_FILES).add(path)
  return examples


def _iterate(records, spec, empty_transcripts: list | None = None, where: str = ""):
  """Examples of ``records`` in order; an error when they give none at all.

  TFDS refuses a split without examples with an AssertionError deep in its
  writer; naming the videos here says why (no usable ASR, sentences outside the
  features) and what to change.
  """
  yielded = 0
  for record in records:
    for example in segments.examples_for_video(record, spec, empty_transcripts):
      yielded += 1
      yield example
  if records and not yielded:
    ids = ", ".join(repr(r.video_id) for r in records[:5])
    more = f" and {len(records) - 5} more" if len(records) > 5 else ""
    raise reader.CorpusError(
        records[0].index_path or where or "corpus",
        f"{where or 'a split'} has no examples: its {len(records)} video(s) ({ids}{more}) "
        f"give none for kind {spec.kind!r} (for text, they need English ASR sentences "
        "within the features); add such videos or change validation_percent")


def check_splits(name: str, kind: str, corpus_dir: str, num_index_videos: int,
                 splits: dict[str, list], validation_percent: float) -> None:
  """One clear error when a split would have no videos (TFDS would fail deep inside).

  Text-only and video-text splits need at least one English video with ASR.
  """
  needs_asr = kind != segments.VIDEO
  usable = {split: [r for r in records if not needs_asr or (r.asr_path and r.is_english)]
            for split, records in splits.items()}
  held_out = len(splits["validation"])
  if not held_out:
    usable_videos = len(splits["train"])
    problem = (f"no validation split: validation_percent={validation_percent:g} of "
               f"{usable_videos} usable video{'s' if usable_videos != 1 else ''} holds "
               "out none (a validation split takes at least 2 videos; evaluation ids "
               "are excluded first)")
  elif not usable["validation"]:
    problem = (f"none of the {held_out} held-out validation video(s) has English ASR, "
               f"which {name} needs; raise validation_percent or add English videos")
  elif not usable["train"]:
    what = "English videos with ASR" if needs_asr else "videos"
    problem = (f"the train split would hold no {what} ({num_index_videos} listed; "
               f"evaluation ids excluded, {held_out} held out for validation)")
  else:
    return
  raise reader.CorpusError(reader.index_path(corpus_dir), f"{name}: {problem}")


_CITATION = """\
@inproceedings{sun2019videobert,
  title={VideoBERT: A Joint Model for Video and Language Representation Learning},
  author={Sun, Chen and Myers, Austin and Vondrick, Carl and Murphy, Kevin and Schmid, Cordelia},
  booktitle={ICCV},
  year={2019}
}"""
