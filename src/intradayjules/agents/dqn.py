"""The Stable-Baselines3 DQN trainer: seeded, one torch thread, checkpoints, resume, risk-aware.

``train(prepared, run_dir)`` builds the training env (optionally wrapped in ``RiskShapingWrapper``), a
validation env for ``RiskCallback``, and an SB3 ``DQN`` with the config's hyperparameters (defaults: the
original system's), then learns with a progress bar, periodic checkpoints and the risk callback. It writes
into ``run_dir``: ``config.yaml`` (resolved), ``lineage.json`` (data fingerprint, feature key, versions),
``model.zip`` (final), ``best_model.zip`` (best validation objective), ``checkpoints/``,
``metrics.json`` (the callback's evaluations) and ``progress.csv`` (SB3 logger).

Resume: ``train(..., resume_from=checkpoint_zip)`` reloads the model (and the replay buffer saved next to
the newest checkpoint) and continues to ``total_timesteps`` without resetting the step counter.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ExperimentConfig, RiskConfig, dump_config


@dataclass
class TrainResult:
    run_dir: Path
    model_path: Path
    best_model_path: Path | None
    timesteps: int
    stopped_early: bool
    evaluations: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    eval_s: float = 0.0
    best_objective: float | None = None


def with_risk_profile(cfg: ExperimentConfig, profile: str | None) -> ExperimentConfig:
    """A copy of ``cfg`` whose risk section uses ``profile``; explicitly set risk values are kept."""
    if profile is None or profile == cfg.risk.profile:
        return cfg
    explicit = {k: getattr(cfg.risk, k) for k in cfg.risk.model_fields_set if k != "profile"}
    risk = RiskConfig.model_validate({**{k: (v.model_dump() if hasattr(v, "model_dump") else v)
                                         for k, v in explicit.items()}, "profile": profile})
    return cfg.model_copy(update={"risk": risk})


def configure_torch(threads: int, device: str = "auto") -> str:
    import torch

    torch.set_num_threads(int(threads))
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"agent.device={device!r} but CUDA is not available on this machine")
    return device


def make_training_env(cfg: ExperimentConfig, env_data, split: str = "train"):
    """The env the agent learns on: shaped by the risk profile unless it is ``off``."""
    from stable_baselines3.common.monitor import Monitor

    from ..env import make_env
    from ..risk.shaping import wrap_from_config

    env = make_env(cfg, None, split=split, data=env_data)
    if cfg.risk.profile != "off" or cfg.risk.mask_illiquid:
        env = wrap_from_config(env, cfg)
    return Monitor(env)


def build_model(cfg: ExperimentConfig, env, device: str):
    from stable_baselines3 import DQN

    a = cfg.agent
    return DQN(
        "MlpPolicy", env,
        learning_rate=a.learning_rate, buffer_size=a.buffer_size, learning_starts=a.learning_starts,
        batch_size=a.batch_size, gamma=a.gamma, train_freq=a.train_freq,
        target_update_interval=a.target_update_interval, exploration_fraction=a.exploration_fraction,
        exploration_initial_eps=a.exploration_initial_eps, exploration_final_eps=a.exploration_final_eps,
        policy_kwargs={"net_arch": list(a.net_arch)}, seed=a.seed, device=device, verbose=0,
    )


def checkpoint_callback(save_freq: int, path: Path, keep: int = 3):
    """Every ``save_freq`` steps: ``dqn_<steps>_steps.zip`` (the newest ``keep`` are kept) and one
    ``replay_buffer.pkl`` (overwritten atomically: a buffer can hold hundreds of MB)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Checkpoint(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % save_freq:
                return True
            path.mkdir(parents=True, exist_ok=True)
            self.model.save(path / f"dqn_{self.num_timesteps}_steps.zip")
            tmp = path / "replay_buffer.tmp.pkl"
            self.model.save_replay_buffer(tmp)
            tmp.replace(path / "replay_buffer.pkl")
            for old in _checkpoints(path)[:-keep]:
                old.unlink(missing_ok=True)
            return True

    return Checkpoint()


def _checkpoints(path: Path) -> list[Path]:
    return sorted(path.glob("dqn_*_steps.zip"), key=lambda p: int(p.stem.split("_")[-2]))


def train(prepared, run_dir: str | Path, *, cfg: ExperimentConfig | None = None,
          total_timesteps: int | None = None, progress_bar: bool = False, resume_from: str | Path | None = None,
          hooks: Sequence = (), extra_callbacks: Sequence = (), eval_sessions: int | None = None,
          tracker=None, init_weights_from: str | Path | None = None, objective_weights=None,
          checkpoints: bool = True) -> TrainResult:
    """Train a DQN on ``prepared`` (``experiment.prepare``) and write the run directory.

    ``resume_from``: continue a run exactly (the checkpoint's hyperparameters, step count and replay
    buffer). ``init_weights_from``: a fresh model with ``cfg``'s hyperparameters that starts from a saved
    model's network weights (PBT exploit: the new hyperparameters take effect, the step count restarts
    from the saved one so schedules continue). ``objective_weights``: risk weights of the validation
    objective's composite (default ``cfg.risk.weights``); tuning fixes them so that trials which sample
    the weights are still scored on one scale."""
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.utils import set_random_seed

    from ..env import make_env
    from ..risk.callback import RiskCallback
    from .vec_training import TrainingDQN, build_training_model, make_training_vec_env  # issue 16 (torch: lazy)

    cfg = cfg or prepared.cfg
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(cfg))
    (run_dir / "lineage.json").write_text(json.dumps(prepared.lineage(), indent=2))
    device = configure_torch(cfg.agent.torch_threads, cfg.agent.device)
    set_random_seed(cfg.agent.seed)
    total = int(total_timesteps or cfg.agent.total_timesteps)

    # issue 16: collect on the project's vectorised env (agents/vec_training.py); SB3 seeds it from agent.seed
    env = make_training_vec_env(cfg, prepared.env_data, total)
    eval_env = make_env(cfg, None, split="val", data=prepared.env_data)
    if resume_from is not None:
        model = TrainingDQN.load(str(resume_from), env=env, device=device)
        buf = _replay_buffer_for(Path(resume_from))
        if buf is not None:
            model.load_replay_buffer(str(buf))
    else:
        model = build_training_model(cfg, env, device)
        if init_weights_from is not None:
            donor = DQN.load(str(init_weights_from), device=device)
            model.set_parameters(donor.get_parameters(), exact_match=True, device=device)
            model.num_timesteps = donor.num_timesteps
            # an empty buffer: learning waits for learning_starts fresh transitions
            model.learning_starts = donor.num_timesteps + cfg.agent.learning_starts
    logger = configure(str(run_dir), ["csv"])
    model.set_logger(logger)

    risk_cb = RiskCallback(eval_env, cfg.risk, n_sessions=eval_sessions, best_model_path=run_dir / "best_model.zip",
                           hooks=list(hooks), objective_weights=objective_weights)
    prev = run_dir / "metrics.json"
    if resume_from is not None and prev.exists():  # continue the same run: keep its history and best
        before = json.loads(prev.read_text())
        risk_cb.history = [e for e in before.get("evaluations", []) if e["timesteps"] <= model.num_timesteps]
        if risk_cb.history and (run_dir / "best_model.zip").exists():
            best = max(risk_cb.history, key=lambda e: e["eval/objective"])
            risk_cb.best_objective, risk_cb.best_step = best["eval/objective"], int(best["timesteps"])
    risk_cb.hooks.insert(0, lambda cb, m: _write_metrics(run_dir, cb, model.num_timesteps))  # survives a crash
    callbacks = [risk_cb, *([checkpoint_callback(cfg.agent.checkpoint_freq, run_dir / "checkpoints")]
                            if checkpoints else []), *extra_callbacks]
    if tracker is not None:
        risk_cb.hooks.append(lambda cb, m: tracker.log_metrics(m, step=cb.num_timesteps))
    t0 = time.perf_counter()
    remaining = max(total - model.num_timesteps, 0)
    model.learn(remaining, callback=CallbackList(callbacks), progress_bar=progress_bar,
                reset_num_timesteps=resume_from is None and init_weights_from is None)
    wall = time.perf_counter() - t0
    if not risk_cb.history or risk_cb.history[-1]["timesteps"] < model.num_timesteps:
        risk_cb.evaluate(final=True)  # judge the final policy too (no stop rule, no hooks)
    logger.close()
    model_path = run_dir / "model.zip"
    model.save(model_path)
    best = run_dir / "best_model.zip"
    result = TrainResult(run_dir, model_path, best if best.exists() else None, int(model.num_timesteps),
                         risk_cb.stopped_early, risk_cb.history, wall, risk_cb.eval_seconds,
                         risk_cb.best_objective)
    _write_metrics(run_dir, risk_cb, result.timesteps, wall)
    return result


def _write_metrics(run_dir: Path, cb, timesteps: int, wall: float | None = None) -> None:
    """``metrics.json`` (atomically): written at every evaluation, so a crashed run keeps its history."""
    payload = {"timesteps": int(timesteps), "stopped_early": cb.stopped_early, "wall_s": wall,
               "eval_s": cb.eval_seconds, "best_objective": cb.best_objective, "best_step": cb.best_step,
               "evaluations": cb.history, "complete": wall is not None}
    tmp = run_dir / "metrics.json.tmp"
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    tmp.replace(run_dir / "metrics.json")


def _replay_buffer_for(checkpoint: Path) -> Path | None:
    """The replay buffer saved with the newest checkpoint (only the newest one has its buffer)."""
    buf = checkpoint.parent / "replay_buffer.pkl"
    newest = _checkpoints(checkpoint.parent)
    return buf if buf.exists() and newest and newest[-1] == checkpoint else None


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    ckpts = _checkpoints(Path(run_dir, "checkpoints"))
    return ckpts[-1] if ckpts else None


def load_model(path: str | Path, device: str = "cpu"):
    from stable_baselines3 import DQN

    return DQN.load(str(path), device=device)


def write_outputs(result: TrainResult, prepared, cfg: ExperimentConfig | None = None,
                  split: str = "test") -> dict[str, Path]:
    """The artifacts a training run ships besides the SB3 zip: ``policy.pt`` (TorchScript greedy
    policy), ``feature_spec.json``, and ``evaluation.json`` (statistics of the final model on ``split``
    under the config's market model)."""
    from ..evaluate.backtest import policy_from_model
    from ..evaluate.evaluation import evaluate_policy
    from ..evaluate.metrics import json_safe
    from ..features.pipeline import feature_spec
    from .export import export_torchscript

    cfg = cfg or prepared.cfg
    model = load_model(result.model_path)
    paths = {"torchscript": export_torchscript(model, result.run_dir / "policy.pt")}
    spec = result.run_dir / "feature_spec.json"
    spec.write_text(json.dumps(feature_spec(cfg.features, cfg.data.calendar), indent=2, default=str))
    paths["feature_spec"] = spec
    stats, _ = evaluate_policy(policy_from_model(model), prepared, split, cfg)
    ev = result.run_dir / "evaluation.json"
    ev.write_text(json.dumps(json_safe(stats), indent=2, sort_keys=True))
    paths["evaluation"] = ev
    return paths
