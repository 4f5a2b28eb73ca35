"""Evaluation of a trained VideoBERT: ``python -m videobert_jax.eval --task=...``.

* ``zeroshot``: zero-shot verb/noun classification on YouCook II (Table 1), with the
  label lists of ``labels`` (derived by ``derive`` with spaCy) and the supervised
  baseline of ``supervised``;
* ``captioning``: VideoBERT captioning features + the ``captioner`` transformer,
  scored by ``caption_metrics`` (pycocoevalcap) (Table 3);
* ``generation``: text-to-video and forecasting, shown by ``pages`` (Figures 1, 2).

``checkpoint`` restores a training workdir, ``segments`` reads the evaluation set,
``sequences`` builds the model inputs and ``runner`` runs the model on them.
Modules import jax lazily; see docs/eval.md.
"""
