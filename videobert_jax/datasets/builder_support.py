"""What the VideoBERT TFDS builders share beyond TFDS: code path, Beam detection, recovery."""

from __future__ import annotations

import contextlib
import glob
import inspect
import logging
import multiprocessing
import os
import shutil
import sys

from etils import epath
import tensorflow_datasets as tfds

from videobert_jax import quiet
from videobert_jax.corpus import reader


def _in_tfds_cli() -> bool:
  """True in the main process of the ``tfds`` command line (its build module is loaded)."""
  return ("tensorflow_datasets.scripts.cli.build" in sys.modules
          and multiprocessing.parent_process() is None)


_CLI_LOG: list = []  # the build.log this ``tfds build`` process writes, once routed


def route_tfds_cli_output(data_dir) -> str | None:
  """Under ``tfds build``: its INFO lines to ``DATA_DIR/build.log`` from here on.

  TFDS's CLI logs every INFO line to the terminal (76 lines for a 14 s build);
  our builder is the first of our code it runs with the data dir in hand, so
  from its construction on, INFO lines go where ``python -m
  videobert_jax.datasets build`` puts them, warnings stay on the terminal
  (TFDS's warning about the version folder it is about to fill dropped).
  ``--logtostderr`` or ``--verbosity=0`` keep INFO lines on the terminal too.
  Returns the log's path (None for a gs:// data dir: INFO lines dropped).
  """
  if not _CLI_LOG:
    root = os.path.expanduser(os.fspath(data_dir or tfds.core.constants.DATA_DIR))
    _CLI_LOG.append(None if "://" in root else os.path.join(root, "build.log"))
    quiet.log_to_file(_CLI_LOG[0])
    logging.getLogger("absl").addFilter(quiet.DropMissingInfoWarning())
  return _CLI_LOG[0]


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

  def __init__(self, *args, **kwargs):
    if _in_tfds_cli():  # before TFDS's own construction logs
      route_tfds_cli_output(kwargs.get("data_dir"))
    super().__init__(*args, **kwargs)

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
    in_cli = _in_tfds_cli()
    try:
      # Under `tfds build`, TFDS's "Downloading and preparing dataset" lines
      # (printed) go to build.log with its INFO lines.
      with quiet.tfds_build_messages_to_log() if in_cli else contextlib.nullcontext():
        super().download_and_prepare(download_dir=download_dir,  # pytype: disable=attribute-error
                                     download_config=download_config, **kwargs)
    except reader.CorpusError as e:
      if not in_cli:
        raise
      # `tfds build` would print the traceback through TFDS; the message names the file.
      print(f"error: {e}", file=sys.stderr, flush=True)
      raise SystemExit(1) from None
    if not built_before:
      warn_empty_transcripts(self.name, self.info.metadata,  # pytype: disable=attribute-error
                             os.fspath(self.data_path))  # pytype: disable=attribute-error
      if in_cli:
        splits = self.info.splits.items()  # pytype: disable=attribute-error
        counts = ", ".join(f"{info.num_examples:,} {split}" for split, info in splits)
        log = f"; INFO lines in {_CLI_LOG[0]}" if _CLI_LOG and _CLI_LOG[0] else ""
        print(f"built {self.name}: {counts} examples ({self.data_path}){log}",  # pytype: disable=attribute-error
              flush=True)


def warn_empty_transcripts(name: str, metadata, data_path: str) -> None:
  """One warning for the videos whose transcript a build (plain or Beam) found empty."""
  empty = (metadata or {}).get("empty_transcripts")
  if empty:
    logging.warning("%s: %d video%s with an empty transcript: treated as no ASR "
                    "(listed in %s)", name, empty, "s" if empty != 1 else "",
                    os.path.join(data_path, "metadata.json"))
