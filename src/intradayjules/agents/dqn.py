"""The Stable-Baselines3 DQN: model, training env, checkpoints, and ``learn`` with a list of callbacks.

Readable top to bottom: ``build_model`` maps ``cfg.agent`` onto SB3's ``DQN`` (defaults: the original
system's), ``make_training_env`` wraps the env in the risk-shaping wrapper unless the profile is ``off``,
and ``learn(cfg, env_data, callbacks)`` builds both and trains, as SB3's ``model.learn(callback=[...])``
does. What a training *run* writes (run directory, metrics, outputs, tracking) is
``pipeline.train_run``'s job; validation and early stopping come in as callbacks (``RiskCallback``).

Resume: ``learn(..., resume_from=checkpoint_zip)`` reloads the model (and the replay buffer saved next to
the newest checkpoint) and continues to ``total_timesteps`` without resetting the step counter.
Checkpoints and the replay buffer are signed when written and verified before they are unpickled
(``integrity.py``); an unsigned or altered one is refused unless ``trust_pickle`` (unsigned only).
``init_weights_from``: a fresh model with ``cfg``'s hyperparameters that starts from a saved model's
network weights (PBT exploit: the new hyperparameters take effect, the step count continues).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.utils import set_random_seed

from ..config import ExperimentConfig
from ..env import EnvData, make_env
from ..risk.shaping import wrap_from_config
from .integrity import copy_weights, load_replay_buffer, load_sb3, save_replay_buffer_signed, save_signed, sig_path


def configure_torch(threads: int, device: str = "auto") -> str:
    import torch

    torch.set_num_threads(int(threads))
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"agent.device={device!r} but CUDA is not available on this machine")
    return device


def make_training_env(cfg: ExperimentConfig, env_data: EnvData, split: str = "train"):
    """The env the agent learns on: shaped by the risk profile unless it is ``off``."""
    env = make_env(cfg, None, split=split, data=env_data)
    if cfg.risk.profile != "off" or cfg.risk.mask_illiquid:
        env = wrap_from_config(env, cfg)
    return Monitor(env)


def build_model(cfg: ExperimentConfig, env, device: str) -> DQN:
    a = cfg.agent
    return DQN(
        "MlpPolicy", env,
        learning_rate=a.learning_rate, buffer_size=a.buffer_size, learning_starts=a.learning_starts,
        batch_size=a.batch_size, gamma=a.gamma, train_freq=a.train_freq,
        target_update_interval=a.target_update_interval, exploration_fraction=a.exploration_fraction,
        exploration_initial_eps=a.exploration_initial_eps, exploration_final_eps=a.exploration_final_eps,
        policy_kwargs={"net_arch": list(a.net_arch)}, seed=a.seed, device=device, verbose=0,
    )


class Checkpoint(BaseCallback):
    """Every ``save_freq`` steps: ``dqn_<steps>_steps.zip`` (the newest ``keep`` are kept) and one
    ``replay_buffer.pkl`` (overwritten atomically: a buffer can hold hundreds of MB)."""

    def __init__(self, save_freq: int, path: str | Path, keep: int = 3):
        super().__init__()
        self.save_freq, self.path, self.keep = int(save_freq), Path(path), int(keep)

    def _on_step(self) -> bool:
        if self.num_timesteps % self.save_freq:
            return True
        self.path.mkdir(parents=True, exist_ok=True)
        save_signed(self.model, self.path / f"dqn_{self.num_timesteps}_steps.zip")  # signed: integrity.py
        save_replay_buffer_signed(self.model, self.path / "replay_buffer.pkl")
        for old in _checkpoints(self.path)[:-self.keep]:
            old.unlink(missing_ok=True)
            sig_path(old).unlink(missing_ok=True)
        return True


def _checkpoints(path: Path) -> list[Path]:
    return sorted(path.glob("dqn_*_steps.zip"), key=lambda p: int(p.stem.split("_")[-2]))


def replay_buffer_for(checkpoint: Path) -> Path | None:
    """The replay buffer saved with the newest checkpoint (only the newest one has its buffer)."""
    buf = checkpoint.parent / "replay_buffer.pkl"
    newest = _checkpoints(checkpoint.parent)
    return buf if buf.exists() and newest and newest[-1] == checkpoint else None


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    ckpts = _checkpoints(Path(run_dir, "checkpoints"))
    return ckpts[-1] if ckpts else None


def load_model(path: str | Path, device: str = "cpu", trust_pickle: bool = False) -> DQN:
    """An SB3 DQN from a zip this project wrote (signed); unsigned only with ``trust_pickle``."""
    return load_sb3(path, trust_pickle=trust_pickle, device=device)


def learn(cfg: ExperimentConfig, env_data: EnvData, callbacks: Sequence[BaseCallback] = (), *,
          total_timesteps: int | None = None, log_dir: str | Path | None = None, progress_bar: bool = False,
          resume_from: str | Path | None = None, init_weights_from: str | Path | None = None,
          trust_pickle: bool = False) -> DQN:
    """Train a DQN on ``env_data``'s training sessions with ``callbacks``; returns the model.

    Seeded (``agent.seed``: torch, numpy, the env and its action space), torch on ``agent.torch_threads``
    threads and ``agent.device``. ``log_dir``: SB3's CSV logger (``progress.csv``). ``trust_pickle``:
    resume from a checkpoint / replay buffer that carries no signature; a wrong signature is refused."""
    device = configure_torch(cfg.agent.torch_threads, cfg.agent.device)
    set_random_seed(cfg.agent.seed)
    total = int(total_timesteps or cfg.agent.total_timesteps)
    env = make_training_env(cfg, env_data)
    env.reset(seed=cfg.agent.seed)
    env.action_space.seed(cfg.agent.seed)
    if resume_from is not None:
        model = load_sb3(resume_from, trust_pickle=trust_pickle, env=env, device=device)  # verified or refused
        buf = replay_buffer_for(Path(resume_from))
        if buf is not None:
            load_replay_buffer(model, buf, trust_pickle=trust_pickle)
    else:
        model = build_model(cfg, env, device)
        if init_weights_from is not None:
            model.num_timesteps = copy_weights(model, init_weights_from, device)  # tensors only, no unpickling
            # an empty buffer: learning waits for learning_starts fresh transitions
            model.learning_starts = model.num_timesteps + cfg.agent.learning_starts
    logger: Any = configure(str(log_dir) if log_dir else None, ["csv"] if log_dir else [])
    model.set_logger(logger)
    try:
        model.learn(max(total - model.num_timesteps, 0), callback=CallbackList(list(callbacks)),
                    progress_bar=progress_bar, reset_num_timesteps=resume_from is None and init_weights_from is None)
    finally:
        logger.close()
    return model
