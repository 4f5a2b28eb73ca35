"""The VideoBERT bundle: a trained model as one self-contained, versioned folder.

``python -m videobert_jax.export --workdir W --out BUNDLE`` writes (format v1):

| file | what |
| --- | --- |
| ``bundle.json`` | format name and version, package version, step, sha256 and size of every other file |
| ``config.json`` | the training config; ``data.codebook`` / ``data.vocab_path`` name the files below |
| ``checkpoints/<step>/`` | Orbax checkpoint of the parameters alone (no Adam moments) |
| ``model.safetensors`` | the same parameters for tools outside JAX (keys: Flax tree paths joined by ``.``) |
| ``codebook.npz`` | the hierarchical k-means codebook (visual words) |
| ``vocab.txt`` | the WordPiece vocabulary |
| ``labels/verbs.txt``, ``labels/nouns.txt`` | the zero-shot label lists |
| ``results/*.json`` | the workdir's eval results of that step, when it has them |
| ``README.md`` | the model card (``card.py``) |

A bundle is shaped like a training workdir (``config.json`` + ``checkpoints/``),
so it is restored by the evaluation's own code (``eval.restore.load_run``). It is
written into a temporary sibling folder and renamed into place; a ``gs://``
destination is staged locally and copied file by file with ``tf.io.gfile``,
``bundle.json`` last, so a partial copy has no manifest and never loads.

Loading checks, before any parameter is read, that ``bundle.json``'s format
version is one this package reads and that every listed file has its sha256;
either failure is one ``BundleError`` line naming the version or the file.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.resources
import json
import os
import shutil
import tempfile
from typing import Any

FORMAT = "videobert_jax.bundle"
FORMAT_VERSION = 1  # bump on a change old readers cannot read; keep reading v1
MANIFEST = "bundle.json"
CONFIG = "config.json"
CODEBOOK = "codebook.npz"
VOCAB = "vocab.txt"
VERBS = "labels/verbs.txt"
NOUNS = "labels/nouns.txt"
SAFETENSORS = "model.safetensors"
CARD = "README.md"
RESULTS = "results"
EVAL_RESULTS = ("zeroshot", "captioning", "text_to_video")  # copied when of this step


class BundleError(ValueError):
  """A bundle that cannot be written or trusted; ``str()`` names the file or version."""


def package_version() -> str:
  """``videobert_jax.__version__``."""
  # Looked up at run time: the package root imports this module lazily (``load``),
  # so a static import of the root here would be an import cycle.
  return importlib.import_module("videobert_jax").__version__


def _is_uri(path: str) -> bool:
  return "://" in path


def _gfile():
  from videobert_jax import quiet  # pylint: disable=g-import-not-at-top
  tf = quiet.import_tensorflow()  # without its start-up lines
  return tf.io.gfile


def copy_file(src: str, dst: str) -> None:
  """Copies one file (either side may be a ``gs://`` URI)."""
  if _is_uri(src) or _is_uri(dst):
    gfile = _gfile()
    gfile.makedirs(os.path.dirname(dst))
    gfile.copy(src, dst, overwrite=True)
    return
  os.makedirs(os.path.dirname(dst), exist_ok=True)
  shutil.copyfile(src, dst)


def sha256_file(path: str) -> str:
  """Hex sha256 of a local file, read in 1 MiB blocks."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _files(folder: str) -> list[str]:
  """Every file under ``folder`` but the manifest, as sorted POSIX relative paths."""
  out = []
  for root, _, names in os.walk(folder):
    for name in names:
      rel = os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
      if rel != MANIFEST:
        out.append(rel)
  return sorted(out)


def _label_files(verbs_path: str | None, nouns_path: str | None) -> dict[str, str]:
  """Bundle path -> source of each label list, checked (the shipped lists by default)."""
  from videobert_jax.eval import labels as labels_lib  # pylint: disable=g-import-not-at-top
  labels_lib.load_vocabulary(verbs_path, nouns_path)  # a bad list fails here, named
  resources = importlib.resources.files(labels_lib.RESOURCE_PACKAGE)
  return {VERBS: verbs_path or str(resources.joinpath(labels_lib.DEFAULT_VERBS)),
          NOUNS: nouns_path or str(resources.joinpath(labels_lib.DEFAULT_NOUNS))}


def _write_params(folder: str, run) -> None:
  """The parameters: an Orbax checkpoint (no optimizer) and ``model.safetensors``."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from safetensors import numpy as safetensors_np  # pylint: disable=g-import-not-at-top
  from videobert_jax.train import checkpointing  # pylint: disable=g-import-not-at-top
  ckpt = checkpointing.Checkpointer(folder, create=True, asynchronous=False)
  try:
    # The trainer's checkpoint format with a state of parameters alone, so the
    # trainer's partial restore (restore_params) reads it unchanged.
    ckpt.save(run.step, {"params": run.params}, {"step": run.step, "format": FORMAT})
  finally:
    ckpt.close()
  flat = jax.tree_util.tree_flatten_with_path(run.params)[0]
  tensors = {".".join(str(getattr(k, "key", k)) for k in path):
             np.ascontiguousarray(jax.device_get(leaf)) for path, leaf in flat}
  safetensors_np.save_file(tensors, os.path.join(folder, SAFETENSORS),
                           metadata={"format": FORMAT, "step": str(run.step)})


def _bundle_config(workdir: str):
  """The workdir's config with its codebook and vocabulary pointing into the bundle."""
  from videobert_jax.eval import restore  # pylint: disable=g-import-not-at-top
  config = restore.load_config(workdir)
  path = os.path.join(workdir, CONFIG)
  codebook = config.data.get("codebook")
  if not codebook or not (_is_uri(codebook) or os.path.isfile(codebook)):
    raise BundleError(f"{path}: data.codebook {codebook!r} is not a readable file; "
                      "a bundle needs the codebook the model was trained with")
  return config


def _write_contents(folder: str, workdir: str, step, verbs_path, nouns_path) -> dict:
  """Writes every bundle file but the manifest into ``folder``; returns the card's facts."""
  from videobert_jax.eval import restore  # pylint: disable=g-import-not-at-top
  from videobert_jax.export import card  # pylint: disable=g-import-not-at-top
  from videobert_jax.text import wordpiece  # pylint: disable=g-import-not-at-top
  config = _bundle_config(workdir)
  sources = {CODEBOOK: config.data.codebook,
             VOCAB: config.data.get("vocab_path") or wordpiece.default_vocab_path(),
             **_label_files(verbs_path, nouns_path)}
  run = restore.load_run(workdir, step)
  _write_params(folder, run)
  for rel, src in sources.items():
    copy_file(src, os.path.join(folder, rel))
  results = card.eval_results(workdir, run.step, EVAL_RESULTS)
  for name, result in results.items():
    copy_file(result["path"], os.path.join(folder, RESULTS, f"{name}.json"))
  trained_from = {"workdir": workdir, "codebook": sources[CODEBOOK],
                  "vocab": sources[VOCAB], "corpus_dir": config.data.get("corpus_dir")}
  # Paths relative to the bundle (resolved by load_run); the rest stay as trained.
  config.data.codebook, config.data.vocab_path = CODEBOOK, VOCAB
  with open(os.path.join(folder, CONFIG), "w", encoding="utf-8") as f:
    f.write(config.to_json_best_effort(indent=2) + "\n")
  return {"config": config, "step": run.step, "trained_from": trained_from,
          "results": results, "num_params": card.count_params(run.params)}


def _manifest(folder: str, facts: dict) -> dict:
  """``bundle.json``: versions, step, and the sha256 of every file in ``folder``."""
  model = facts["config"].model
  return {"format": FORMAT, "format_version": FORMAT_VERSION,
          "package_version": package_version(), "step": int(facts["step"]),
          "model": {"num_layers": model.num_layers, "hidden_size": model.hidden_size,
                    "num_visual_words": model.num_visual_words,
                    "text_vocab_size": model.text_vocab_size,
                    "num_params": facts["num_params"]},
          "trained_from": facts["trained_from"],
          "files": {rel: {"sha256": sha256_file(os.path.join(folder, rel)),
                          "bytes": os.path.getsize(os.path.join(folder, rel))}
                    for rel in _files(folder)}}


def export_bundle(workdir: str, out: str, step: int | None = None, *,
                  verbs_path: str | None = None, nouns_path: str | None = None,
                  overwrite: bool = False) -> dict:
  """Writes the bundle of ``workdir``'s checkpoint at ``step`` (default newest) to ``out``.

  Returns the manifest (``bundle.json``) with ``"path"`` added.

  Raises:
    BundleError: ``out`` exists (without ``overwrite``) or the workdir lacks a file.
    CheckpointError: no checkpoint (at ``step``).
  """
  from videobert_jax.export import card  # pylint: disable=g-import-not-at-top
  workdir = os.fspath(workdir) if _is_uri(os.fspath(workdir)) else os.path.abspath(workdir)
  out = os.fspath(out) if _is_uri(os.fspath(out)) else os.path.abspath(out)
  if not overwrite and (_gfile().exists(out) if _is_uri(out) else os.path.exists(out)):
    raise BundleError(f"{out}: already exists; choose another --out or pass --overwrite")
  parent = tempfile.gettempdir() if _is_uri(out) else os.path.dirname(out)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(out)}.partial-")
  try:
    facts = _write_contents(staging, workdir, step, verbs_path, nouns_path)
    with open(os.path.join(staging, CARD), "w", encoding="utf-8") as f:
      f.write(card.model_card(facts, out))
    manifest = _manifest(staging, facts)
    with open(os.path.join(staging, MANIFEST), "w", encoding="utf-8") as f:
      json.dump(manifest, f, indent=2)
      f.write("\n")
    _readable(staging)
    _publish(staging, out)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return {**manifest, "path": out}


def _readable(folder: str) -> None:
  """Gives the staged files the modes a plain write would (mkdtemp makes them private)."""
  umask = os.umask(0)
  os.umask(umask)
  for root, _, names in os.walk(folder):
    os.chmod(root, 0o777 & ~umask)
    for name in names:
      os.chmod(os.path.join(root, name), 0o666 & ~umask)


def _publish(staging: str, out: str) -> None:
  """Moves the finished bundle to ``out``: a rename locally, a manifest-last copy on GCS."""
  if _is_uri(out):
    gfile = _gfile()
    if gfile.exists(os.path.join(out, MANIFEST)):
      gfile.remove(os.path.join(out, MANIFEST))  # the old bundle stops loading first
    for rel in [*_files(staging), MANIFEST]:
      copy_file(os.path.join(staging, rel), f"{out.rstrip('/')}/{rel}")
    return
  old = None
  if os.path.exists(out):  # --overwrite: the old bundle moves aside, then goes
    old = tempfile.mkdtemp(dir=os.path.dirname(out), prefix=f".{os.path.basename(out)}.old-")
    os.rename(out, os.path.join(old, "bundle"))
  os.rename(staging, out)
  if old:
    shutil.rmtree(old, ignore_errors=True)


def read_manifest(path: str) -> dict:
  """The checked ``bundle.json`` of a local bundle (format and version, not hashes)."""
  manifest_path = os.path.join(path, MANIFEST)
  try:
    with open(manifest_path, encoding="utf-8") as f:
      manifest = json.load(f)
  except FileNotFoundError:
    raise BundleError(f"{manifest_path}: missing; {path} is not a videobert_jax bundle "
                      "(or an unfinished copy of one)") from None
  except json.JSONDecodeError as e:
    raise BundleError(f"{manifest_path}:{e.lineno}: not valid JSON ({e.msg})") from None
  if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
    raise BundleError(f"{manifest_path}: not a {FORMAT} manifest")
  version = manifest.get("format_version")
  if not isinstance(version, int) or version < 1:
    raise BundleError(f"{manifest_path}: bad format_version {version!r}")
  if version > FORMAT_VERSION:
    raise BundleError(
        f"{manifest_path}: bundle format version {version} is newer than this "
        f"videobert_jax {package_version()} reads (up to {FORMAT_VERSION}); upgrade "
        "the package")
  if not isinstance(manifest.get("files"), dict) or CONFIG not in manifest["files"]:
    raise BundleError(f"{manifest_path}: lists no files (or no {CONFIG})")
  for rel in manifest["files"]:
    # Listed paths are read (and, from gs://, written): never outside the bundle.
    if rel.startswith("/") or "\\" in rel or ".." in rel.split("/"):
      raise BundleError(f"{manifest_path}: file path {rel!r} points outside the bundle")
  return manifest


def verify_bundle(path: str) -> dict:
  """The manifest of a local bundle after checking every listed file's sha256.

  Raises:
    BundleError: a missing manifest, a newer format version, a missing file or a
      file whose hash differs (naming it).
  """
  manifest = read_manifest(path)
  for rel, entry in manifest["files"].items():
    file_path = os.path.join(path, *rel.split("/"))
    if not os.path.isfile(file_path):
      raise BundleError(f"{file_path}: missing (listed in {MANIFEST})")
    if sha256_file(file_path) != entry.get("sha256"):
      raise BundleError(f"{file_path}: sha256 differs from {MANIFEST}; the file was "
                        "changed or damaged, re-export or re-download the bundle")
  return manifest


def local_bundle(path: str) -> str:
  """A local folder holding the bundle at ``path``: itself, or a cached copy of a URI.

  ``gs://`` bundles are copied once into ``$VIDEOBERT_JAX_CACHE`` (default
  ``~/.cache/videobert_jax``), keyed by the manifest's hash, then read locally.
  """
  path = os.fspath(path)
  if not _is_uri(path):
    return os.path.abspath(path)
  gfile = _gfile()
  remote_manifest = f"{path.rstrip('/')}/{MANIFEST}"
  if not gfile.exists(remote_manifest):
    raise BundleError(f"{remote_manifest}: missing; not a videobert_jax bundle "
                      "(or an unfinished copy of one)")
  with gfile.GFile(remote_manifest, "rb") as f:
    raw = f.read()
  cache = os.path.expanduser(os.environ.get("VIDEOBERT_JAX_CACHE", "~/.cache/videobert_jax"))
  local = os.path.join(cache, "bundles", hashlib.sha256(raw).hexdigest()[:16])
  if os.path.isfile(os.path.join(local, MANIFEST)):
    return local
  os.makedirs(os.path.dirname(local), exist_ok=True)
  staging = tempfile.mkdtemp(dir=os.path.dirname(local), prefix=".partial-")
  try:
    with open(os.path.join(staging, MANIFEST), "wb") as f:
      f.write(raw)
    # Version and listed paths are checked before anything is copied.
    for rel in read_manifest(staging)["files"]:
      copy_file(f"{path.rstrip('/')}/{rel}", os.path.join(staging, *rel.split("/")))
    os.rename(staging, local)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return local


def load_run(path: str, step: int | None = None, devices=None, verify: bool = True):
  """Restores a bundle as an ``eval.restore.Run`` (parameters in their shardings).

  The run's ``workdir`` is the (local) bundle folder; its config's codebook and
  vocabulary are the bundle's files.

  Raises:
    BundleError: the bundle fails ``verify_bundle``.
    CheckpointError: no checkpoint at ``step`` in the bundle.
  """
  from videobert_jax.eval import restore  # pylint: disable=g-import-not-at-top
  local = local_bundle(path)
  manifest = verify_bundle(local) if verify else read_manifest(local)
  config = restore.load_config(local)
  config.data.codebook = os.path.join(local, config.data.codebook or CODEBOOK)
  config.data.vocab_path = os.path.join(local, config.data.get("vocab_path") or VOCAB)
  # The trainer's mesh does not travel: use the devices here, tensor-parallel only
  # when they divide by the trained model axis.
  config.mesh.data = -1
  import jax  # pylint: disable=g-import-not-at-top
  if len(devices if devices is not None else jax.local_devices()) % int(config.mesh.model):
    config.mesh.model = 1
  run = restore.load_run(local, step if step is not None else manifest["step"],
                         devices=devices, config=config)
  return run


def label_paths(run) -> tuple[str, str]:
  """The verb and noun lists of a bundle restored by ``load_run``."""
  return (os.path.join(run.workdir, *VERBS.split("/")),
          os.path.join(run.workdir, *NOUNS.split("/")))


def describe(manifest: dict[str, Any]) -> str:
  """One line about a bundle: step, model shape, files and bytes."""
  model = manifest.get("model", {})
  total = sum(int(e.get("bytes", 0)) for e in manifest["files"].values())
  return (f"bundle format v{manifest['format_version']}, step {manifest['step']}, "
          f"{model.get('num_layers')} x {model.get('hidden_size')} with "
          f"{model.get('num_visual_words')} visual words, {len(manifest['files'])} files, "
          f"{total / 1e6:.1f} MB")
