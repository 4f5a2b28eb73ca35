"""Raw video to a corpus: 20 fps decoding, 1.5 s clips, S3D features (``docs/video.md``).

Modules: ``decode`` (PyAV decoding and the clip rules), ``s3d`` (the Flax network),
``convert`` and ``weights`` (public checkpoints to one ``.npz``), ``extract``
(the resumable, sharded extractor), ``corpus_writer`` (the corpus it writes),
``beam`` (the same extraction on Apache Beam). Importing this package imports
nothing heavy.
"""
