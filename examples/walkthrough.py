# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # IntradayJules in ten cells: the Python API on the synthetic market
#
# config -> prepare (bars, features, scaler) -> a rollout of a reference policy -> a short DQN training
# run -> evaluation on held-out sessions next to the flat policy. Runs as a plain script
# (`python examples/walkthrough.py`, about half a minute on 2 cores) or, with Jupytext, as a notebook
# (`jupytext --to notebook examples/walkthrough.py`). It writes into a temporary folder unless
# `IJ_WALKTHROUGH_DIR` names one. `tests/test_walkthrough.py` runs it.

# %%
import os
import tempfile
from pathlib import Path

import torch

from intradayjules.agents.dqn import load_model
from intradayjules.agents.policy import policy_from_model
from intradayjules.config import apply_overrides, load_config, resolve_config_ref
from intradayjules.env import make_env
from intradayjules.env.rollout import episode_table, named_policy, run_sessions
from intradayjules.evaluate.evaluation import evaluate_policy
from intradayjules.pipeline.prepare import prepare
from intradayjules.pipeline.train_run import train

torch.set_num_threads(1)  # small MLPs are faster on one thread
work = Path(os.environ.get("IJ_WALKTHROUGH_DIR") or tempfile.mkdtemp(prefix="ij-walkthrough-"))

# %% [markdown]
# ## 1. A configuration
# The `quickstart` preset ships inside the package. Overrides take dotted keys, as `--set` does on
# the command line: here a smaller market and a training budget that fits a notebook.

# %%
cfg = load_config(resolve_config_ref("quickstart"))
cfg = apply_overrides(cfg, {
    "name": "walkthrough",
    "workdir": str(work / "runs"),
    "features.store_dir": str(work / "runs" / "feature_store"),
    "data.synthetic.days": 45,
    "agent.total_timesteps": 3000,
    "agent.learning_starts": 500,
    "agent.buffer_size": 5000,
    "risk.eval_freq": 1500,
    "risk.eval_episodes": 2,
    "tracking.enabled": False,
})
print(cfg.name, cfg.data.synthetic.n_symbols, "symbols,", cfg.data.synthetic.days, "sessions")

# %% [markdown]
# ## 2. Prepare: bars, features, the training-session scaler
# Synthesised and validated bars, indicators from the feature store, a scaler fitted on the training
# sessions only. The same call loads your own bars with `prepare(cfg, "path/to/bars")`.

# %%
prepared = prepare(cfg)
bars = prepared.bars.frame
print(f"{len(bars):,} bars, symbols {prepared.env_data.symbols}, feature key {prepared.feature_key[:12]}")
print({split: len(prepared.env_data.session_indices(split)) for split in ("train", "val", "test")})

# %% [markdown]
# ## 3. The environment and one rollout
# A Gymnasium env over the validation sessions; `run_sessions` is the one loop every evaluation uses.
# A policy is any `policy(obs, info) -> action`.

# %%
env = make_env(cfg, None, split="val", data=prepared.env_data)
print("observation", env.observation_space.shape, "actions", env.action_space)
res = run_sessions(named_policy("random", env, seed=0), env)
table = episode_table(res)
print(table[["session", "steps", "end_reason", "pnl", "traded_notional"]].head())

# %% [markdown]
# ## 4. A short training run
# A DQN with the risk callback (validation evaluations, best model, early stopping); the run
# directory holds the model, its config, lineage and metrics.

# %%
result = train(prepared, work / "runs" / "walkthrough", cfg=cfg)
print(f"{result.timesteps} steps in {result.wall_s:.1f} s; evaluations:",
      [round(e["eval/objective"], 2) for e in result.evaluations])

# %% [markdown]
# ## 5. Evaluation on held-out sessions, next to the flat policy
# Both under the realistic market model. A 3,000-step DQN is not expected to beat doing nothing: this
# is the shape of the comparison, not a result.

# %%
eval_cfg = apply_overrides(cfg, {"market.model": "realistic"})
model_stats, _ = evaluate_policy(policy_from_model(load_model(result.model_path)), prepared.env_data, eval_cfg,
                                 "test")
flat_stats, _ = evaluate_policy(named_policy("flat", env), prepared.env_data, eval_cfg, "test")
for name, s in (("dqn", model_stats), ("flat", flat_stats)):
    print(f"{name:5s} sessions {s['sessions']}  total return {s['total_return']:+.4%}  "
          f"turnover {s['turnover']:.2f}")
