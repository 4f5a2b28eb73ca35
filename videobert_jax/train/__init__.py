"""Pretraining: one trainer from a laptop CPU to a TPU pod.

``python -m videobert_jax.train`` is the command line (``__main__.py``). The
modules: ``optim`` (Adam, schedule, frozen tables), ``steps`` (the pure
``train_step`` / ``eval_step``), ``state`` (mesh, shardings, initialisation),
``checkpointing`` (Orbax), ``workdir`` (what a workdir holds, checked before a
run writes) and ``loop`` (the loop itself: ``loop.train(config, workdir)``).
"""
