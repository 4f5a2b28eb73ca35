"""The paper's experiments in one command: ``python -m videobert_jax.experiments paper``.

Table 1 (zero-shot, both protocols), Table 2 (pretraining data size: nested subsets
of the corpus's videos at the same number of epochs) and Table 3 (captioning, the
four rows, mean and spread over captioner seeds), written to ``W/report.json`` and
``W/report.html`` beside the paper's figures (``docs/experiments.md``).
"""
