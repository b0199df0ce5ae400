"""Training any of the table's algorithms (agents/algos.py): training env, checkpoints, ``learn``.

Readable top to bottom: ``make_training_vec_env`` is what SB3 collects from: the project's own
vectorised env (``SessionVecEnv``, ``env.n_envs`` slots for DQN/QR-DQN, one slot for PPO/A2C so their
rollouts keep ``n_steps``), with ``minimal`` step infos and the risk shaping applied to all slots at once
(``risk/vec_shaping.py``, the same penalties as the wrapper) unless the profile is ``off``, under SB3's
``VecMonitor``; no ``DummyVecEnv`` and no per-step info dicts. Off-policy on N slots, SB3's
``train_freq``/``gradient_steps`` are scaled so gradient steps per env step stay ``1 / agent.train_freq``
(``algos.collect_schedule``); SB3 syncs the target network every ``target_update_interval // N`` calls.
``make_training_env`` (a ``TradingEnv`` in the ``RiskShapingWrapper`` under ``Monitor``, which SB3 puts in
a ``DummyVecEnv``) is the previous path, kept for comparisons: ``learn(..., collector="gym")``.
``learn(cfg, env_data, callbacks)`` builds the model of ``cfg.agent.algo`` and trains it, as SB3's
``model.learn(callback=[...])`` does. What a training *run* writes (run directory, metrics, outputs,
tracking) is ``pipeline.train_run``'s job; validation and early stopping come in as callbacks
(``RiskCallback``), the same for every algorithm.

Checkpoints (``Checkpoint``): ``<algo>_<steps>_steps.zip`` in ``run_dir/checkpoints``. Off-policy
algorithms (DQN, QR-DQN) save every ``save_freq`` steps, with the replay buffer. On-policy ones (PPO, A2C)
save at the first rollout boundary at or after each multiple of ``save_freq`` (after that rollout's
update, so a checkpoint never holds a half-collected rollout), and at the end of training when a multiple
was crossed; they have no replay buffer. An on-policy run stops at the end of a rollout: it runs up to
``n_steps - 1`` steps past ``total_timesteps``.

Resume: ``learn(..., resume_from=checkpoint_zip)`` reloads the model (and the replay buffer saved next to
the newest checkpoint, off-policy) and continues to ``total_timesteps`` without resetting the step counter.
``init_weights_from``: a fresh model with ``cfg``'s hyperparameters that starts from a saved model's network
weights (PBT exploit: the new hyperparameters take effect, the step count continues; off-policy, learning
waits for ``learning_starts`` fresh transitions since the buffer starts empty).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecMonitor

from ..config import ExperimentConfig
from ..env import EnvData, SessionVecEnv, make_env
from ..risk.shaping import wrap_from_config
from ..risk.vec_shaping import vec_shaping_from_config
from .algos import algo_of, algo_of_zip, build_model, get_algo, load_model
from .integrity import copy_weights, load_replay_buffer, save_replay_buffer_signed, save_signed, sig_path

__all__ = ["Checkpoint", "build_model", "configure_torch", "latest_checkpoint", "learn", "load_model",
           "make_training_env", "make_training_vec_env", "buffer_path", "replay_buffer_for", "warm_training"]

_WARMED: set[str] = set()  # env modes whose kernels warm_training has loaded in this process


def configure_torch(threads: int, device: str = "auto") -> str:
    import torch

    torch.set_num_threads(int(threads))
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"agent.device={device!r} but CUDA is not available on this machine")
    return device


def warm_training(cfg: ExperimentConfig, env_data: EnvData) -> None:
    """Load in this process, once, what a training's first steps would load lazily, so that workers forked
    after it (tuning workers, side-by-side runs, seeds) start with it in memory instead of each loading it
    again: ~2.3 s per fresh worker on the 2-core machine, ~0.4 s left (issue 16). That is ``torch._dynamo``
    (torch's optimisers import it on their first call, ~1.1 s), safetensors (model bundles), and the env's
    numba kernels (read from their cache, or compiled, on the first reset and step of a training env and of
    a validation env). The envs are thrown away; numpy's global random state is left as it was."""
    import numpy as np
    import safetensors.torch  # noqa: F401
    import torch._dynamo  # noqa: F401

    key = f"{cfg.env.mode}:{cfg.risk.profile != 'off' or cfg.risk.mask_illiquid}"
    if key in _WARMED:
        return
    state = np.random.get_state()
    try:
        venv = make_training_vec_env(cfg, env_data)
        venv.reset()
        venv.step(np.zeros(venv.num_envs, dtype=np.int64))
        venv.close()
        make_env(cfg, None, split="val", data=env_data).reset()
    finally:
        np.random.set_state(state)
    _WARMED.add(key)


def make_training_env(cfg: ExperimentConfig, env_data: EnvData, split: str = "train"):
    """The env the agent learns on: shaped by the risk profile unless it is ``off``."""
    env = make_env(cfg, None, split=split, data=env_data)
    if cfg.risk.profile != "off" or cfg.risk.mask_illiquid:
        env = wrap_from_config(env, cfg)
    return Monitor(env)


def make_training_vec_env(cfg: ExperimentConfig, env_data: EnvData, n_envs: int | None = None) -> VecMonitor:
    """What SB3 trains on (module docstring): ``SessionVecEnv`` over the training sessions, ``minimal``
    infos, batched risk shaping unless the profile is ``off``, seeded with ``agent.seed``."""
    n = int(n_envs or (cfg.env.n_envs if get_algo(cfg.agent.algo).off_policy else 1))
    venv = SessionVecEnv(env_data.panel, env_data.session_indices("train"), n, cfg.env, cfg.market,
                         lookback=cfg.features.lookback, sampling=cfg.env.train_sampling, seed=cfg.agent.seed,
                         info="minimal", membership=env_data.membership)  # data.members: the PIT universe
    if cfg.risk.profile != "off" or cfg.risk.mask_illiquid:
        venv.shaping = vec_shaping_from_config(cfg, n, int(venv.action_space.n), len(env_data.panel.symbols))
    return VecMonitor(venv)


class Checkpoint(BaseCallback):
    """``<algo>_<steps>_steps.zip`` (the newest ``keep`` are kept) and, off-policy, the newest checkpoint's
    replay buffer ``replay_buffer_<steps>.pkl`` (only the newest: a buffer can hold hundreds of MB). The buffer
    is written and signed *before* the model zip of the same step, so a signed zip always has its complete
    buffer: a kill at any moment leaves the newest signed checkpoint resumable (an unfinished next buffer is
    ignored and removed at the next save). When: module docstring."""

    def __init__(self, save_freq: int, path: str | Path, keep: int = 3):
        super().__init__()
        self.save_freq, self.path, self.keep = int(save_freq), Path(path), int(keep)
        self._next = self.save_freq

    def _init_callback(self) -> None:
        self.off_policy = algo_of(self.model).off_policy
        self._next = (self.model.num_timesteps // self.save_freq + 1) * self.save_freq

    def _on_step(self) -> bool:  # off-policy: at the first step at or after each multiple (N slots: +N a call)
        if self.off_policy and self.num_timesteps >= self._next:
            self._save()
            self._next = (self.num_timesteps // self.save_freq + 1) * self.save_freq
        return True

    def _on_rollout_start(self) -> None:  # on-policy: after the previous rollout's update
        if not self.off_policy and self.num_timesteps >= self._next:
            self._save()
            self._next = (self.num_timesteps // self.save_freq + 1) * self.save_freq

    def _on_training_end(self) -> None:  # on-policy: the last rollout's update has no next rollout start
        self._on_rollout_start()

    def _save(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        buf = buffer_path(self.path, self.num_timesteps)
        if self.off_policy:
            save_replay_buffer_signed(self.model, buf)
        save_signed(self.model, self.path / f"{algo_of(self.model).name}_{self.num_timesteps}_steps.zip")
        for old in _checkpoints(self.path)[:-self.keep]:
            old.unlink(missing_ok=True)
            sig_path(old).unlink(missing_ok=True)
        for other in self.path.glob("replay_buffer*.pkl"):  # older buffers, an unfinished one, a legacy one
            if other != buf:
                other.unlink(missing_ok=True)
                sig_path(other).unlink(missing_ok=True)


def _checkpoints(path: Path) -> list[Path]:
    return sorted(path.glob("*_*_steps.zip"), key=lambda p: int(p.stem.split("_")[-2]))


def buffer_path(directory: Path, steps: int) -> Path:
    """Where the replay buffer of the checkpoint at ``steps`` is written."""
    return Path(directory) / f"replay_buffer_{int(steps)}.pkl"


def replay_buffer_for(checkpoint: Path) -> Path | None:
    """The replay buffer saved with ``checkpoint`` (only the newest checkpoint keeps its buffer), or None."""
    buf = buffer_path(checkpoint.parent, int(checkpoint.stem.split("_")[-2]))
    return buf if buf.exists() else None


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    ckpts = _checkpoints(Path(run_dir, "checkpoints"))
    return ckpts[-1] if ckpts else None


def learn(cfg: ExperimentConfig, env_data: EnvData, callbacks: Sequence[BaseCallback] = (), *,
          total_timesteps: int | None = None, log_dir: str | Path | None = None, progress_bar: bool = False,
          resume_from: str | Path | None = None, init_weights_from: str | Path | None = None,
          trust_pickle: bool = False, collector: str = "vec") -> BaseAlgorithm:
    """Train ``cfg.agent.algo`` on ``env_data``'s training sessions with ``callbacks``; returns the model.

    Seeded (``agent.seed``: torch, numpy, the env and its action space), torch on ``agent.torch_threads``
    threads and ``agent.device``. ``log_dir``: SB3's CSV logger (``progress.csv``). A resumed checkpoint
    must be of ``cfg.agent.algo``. Checkpoints and replay buffers are signed when written and verified
    before they are unpickled (``integrity.py``); ``trust_pickle`` admits unsigned ones (a wrong signature
    is refused regardless). ``init_weights_from`` copies tensors only (nothing is unpickled).
    ``collector``: ``vec`` (``make_training_vec_env``) or ``gym`` (the previous ``make_training_env``)."""
    device = configure_torch(cfg.agent.torch_threads, cfg.agent.device)
    set_random_seed(cfg.agent.seed)
    algo = get_algo(cfg.agent.algo)
    total = int(total_timesteps or cfg.agent.total_timesteps)
    env: Any
    if collector == "vec":
        env = make_training_vec_env(cfg, env_data)
        env.seed(cfg.agent.seed)
    elif collector == "gym":
        env = make_training_env(cfg, env_data)
        env.reset(seed=cfg.agent.seed)
    else:
        raise ValueError(f"collector must be 'vec' or 'gym', got {collector!r}")
    env.action_space.seed(cfg.agent.seed)
    if resume_from is not None:
        found = algo_of_zip(resume_from)
        if found is not algo:
            raise ValueError(f"{resume_from}: a {found.name} checkpoint cannot resume agent.algo={algo.name}")
        model = load_model(resume_from, device=device, env=env, trust_pickle=trust_pickle)  # verified or refused
        buf = replay_buffer_for(Path(resume_from)) if algo.off_policy else None
        if buf is not None:
            load_replay_buffer(model, buf, trust_pickle=trust_pickle)
    else:
        model = build_model(cfg.agent, env, device)
        if init_weights_from is not None:
            donor_algo = algo_of_zip(init_weights_from)
            if donor_algo is not algo:
                raise ValueError(f"{init_weights_from}: {donor_algo.name} weights cannot start a {algo.name}")
            model.num_timesteps = copy_weights(model, init_weights_from, device)  # tensors only, no unpickling
            if algo.off_policy:  # an empty buffer: learning waits for learning_starts fresh transitions
                model.learning_starts = model.num_timesteps + cfg.agent.learning_starts
    logger: Any = configure(str(log_dir) if log_dir else None, ["csv"] if log_dir else [])
    model.set_logger(logger)
    try:
        model.learn(max(total - model.num_timesteps, 0), callback=CallbackList(list(callbacks)),
                    progress_bar=progress_bar, reset_num_timesteps=resume_from is None and init_weights_from is None)
    finally:
        logger.close()
    return model
