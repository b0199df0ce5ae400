"""Runs: prepare once, a training run (train -> evaluate -> outputs -> tracking), the main job, the
experiments, the default tuning trial and the rerun of a registered model.

Everything that trains a model goes through ``train_run``; everything that needs bars, features and env
arrays goes through ``prepare``. Modules: ``prepare``, ``train_run``, ``main_job``, ``illiquid``
(the illiquid experiment), ``trial`` (``tune.trial_fn`` default), ``rerun``, ``models`` (loading a
policy from a path, run directory or registry URI).
"""
