"""What the VideoBERT TFDS builders share beyond TFDS: code path, Beam detection, recovery."""

from __future__ import annotations

import glob
import inspect
import logging
import multiprocessing
import os
import shutil
import sys

from etils import epath
import tensorflow_datasets as tfds

from videobert_jax.corpus import reader


def _in_tfds_cli() -> bool:
  """True in the main process of the ``tfds`` command line (its build module is loaded)."""
  return ("tensorflow_datasets.scripts.cli.build" in sys.modules
          and multiprocessing.parent_process() is None)


def remove_interrupted_builds(data_path) -> list[str]:
  """Deletes what a killed TFDS build left beside ``data_path`` (``incomplete.XXXXXX_1.1.0``).

  TFDS builds into such a folder and renames it when done; it removes the folder
  itself on an exception, but not after kill -9. Two builds of one dataset into
  one data dir at once are not supported anyway (the second rename would fail).
  Returns the folders removed.
  """
  data_path = os.fspath(data_path).rstrip("/")
  pattern = os.path.join(os.path.dirname(data_path),
                         "incomplete.??????_" + os.path.basename(data_path))
  leftovers = sorted(glob.glob(pattern))
  for leftover in leftovers:
    logging.warning("removing %s, left by an interrupted build", leftover)
    shutil.rmtree(leftover, ignore_errors=True)
  return leftovers


class BuilderSupport:
  """Mixin for ``tfds.core.GeneratorBasedBuilder`` subclasses of this package.

  * ``code_path``: TFDS 4.9.10 resolves a builder's source file through
    ``importlib_resources``, a package it does not install on Python >= 3.9; the
    file of the builder's module is the same answer without it.
  * ``download_and_prepare`` records whether the build runs on Beam (a Beam
    runner or Beam options in the ``DownloadConfig``, as ``tfds build
    --beam_pipeline_options=...`` passes them), so ``_generate_examples`` can
    return a ``beam.PTransform`` then and a plain generator otherwise. Before a
    build it removes what a killed earlier build left behind, whichever command
    runs it (``tfds build``, ``python -m videobert_jax.datasets build``, the
    trainer); after it, it warns about empty transcripts the build counted. Under
    ``tfds build`` bad input is one ``error:`` line and exit 1, as in our commands.
  """

  _use_beam = False

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:  # pylint: disable=no-self-argument
    return epath.Path(inspect.getfile(cls))

  def download_and_prepare(self, *, download_dir=None, download_config=None,
                           **kwargs) -> None:
    """Builds the dataset; with Beam when ``download_config`` asks for Beam."""
    self._use_beam = bool(download_config is not None and (
        download_config.beam_runner is not None
        or download_config.beam_options is not None))
    built_before = self.is_prepared()  # pytype: disable=attribute-error
    if not built_before:
      remove_interrupted_builds(self.data_path)  # pytype: disable=attribute-error
    try:
      super().download_and_prepare(download_dir=download_dir,  # pytype: disable=attribute-error
                                   download_config=download_config, **kwargs)
    except reader.CorpusError as e:
      if not _in_tfds_cli():
        raise
      # `tfds build` would print the traceback through TFDS; the message names the file.
      print(f"error: {e}", file=sys.stderr, flush=True)
      raise SystemExit(1) from None
    if not built_before:
      warn_empty_transcripts(self.name, self.info.metadata,  # pytype: disable=attribute-error
                             os.fspath(self.data_path))  # pytype: disable=attribute-error


def warn_empty_transcripts(name: str, metadata, data_path: str) -> None:
  """One warning for the videos whose transcript a build found empty (none on Beam)."""
  empty = (metadata or {}).get("empty_transcripts")
  if empty:
    logging.warning("%s: %d video%s with an empty transcript: treated as no ASR "
                    "(listed in %s)", name, empty, "s" if empty != 1 else "",
                    os.path.join(data_path, "metadata.json"))
