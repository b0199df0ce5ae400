"""Hyperparameter search: search space, trial protocol, Optuna (processes) and Ray Tune backends, cluster.

Only ``ray_backend`` imports ray, lazily. See ``trial.py`` for the trial-function contract.
"""
