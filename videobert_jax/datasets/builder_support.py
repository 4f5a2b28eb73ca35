"""What the VideoBERT TFDS builders share beyond TFDS: code path and Beam detection."""

from __future__ import annotations

import inspect

from etils import epath
import tensorflow_datasets as tfds


class BuilderSupport:
  """Mixin for ``tfds.core.GeneratorBasedBuilder`` subclasses of this package.

  * ``code_path``: TFDS 4.9.10 resolves a builder's source file through
    ``importlib_resources``, a package it does not install on Python >= 3.9; the
    file of the builder's module is the same answer without it.
  * ``download_and_prepare`` records whether the build runs on Beam (a Beam
    runner or Beam options in the ``DownloadConfig``, as ``tfds build
    --beam_pipeline_options=...`` passes them), so ``_generate_examples`` can
    return a ``beam.PTransform`` then and a plain generator otherwise.
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
    super().download_and_prepare(download_dir=download_dir,  # pytype: disable=attribute-error
                                 download_config=download_config, **kwargs)
