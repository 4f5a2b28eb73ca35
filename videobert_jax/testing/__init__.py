"""Fixtures shared by tests, benchmarks and docs: synthetic videos and S3D weights
(``videos``) and small trained workdirs (``workdirs``). Not for production use."""
