"""Benchmark: what the security hardening costs (issue 15). No target; recorded so the costs are known.

* the config loader refusing a YAML alias bomb of a few hundred bytes (9 levels x 9 aliases);
* signing and verifying a replay buffer (HMAC-SHA256 over ``--buffer-mb`` MiB of random bytes: the
  default DQN buffer of 100k transitions of a 459-dim observation is ~370 MB);
* the policy bundle of a DQN with the default MLP [64, 64] on a 459-dim observation, 19 actions:
  export (safetensors + manifest) and load (manifest, digests, network rebuild), against SB3's
  ``DQN.save`` / ``DQN.load`` of the same model;
* resolving (digests) a bundle-backed model vs loading the SB3 zip: both medians of ``--repeat`` runs.

Run: ``.venv/bin/python benchmarks/security_overhead.py [--buffer-mb 370] [--repeat 7]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def _median_s(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--buffer-mb", type=int, default=370)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()

    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3 import DQN

    from intradayjules.agents import integrity
    from intradayjules.agents.bundle import export_bundle, load_policy
    from intradayjules.errors import ConfigError
    from intradayjules.safe_yaml import load_yaml

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="ij-secbench-"))
    os.environ.setdefault(integrity.KEY_ENV, str(tmp / "key"))
    rows = []

    bomb = "\n".join(['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
                     + [f"{n}: &{n} [{','.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi")]) + "\n"

    def refuse():
        try:
            load_yaml(bomb, "bomb.yaml")
        except ConfigError:
            return
        raise AssertionError("the bomb was accepted")

    rows.append((f"refuse a {len(bomb)}-byte alias bomb", _median_s(refuse, a.repeat) * 1e3, "ms"))

    buf = tmp / "replay_buffer.pkl"
    with open(buf, "wb") as f:
        for _ in range(a.buffer_mb):
            f.write(os.urandom(1 << 20))
    rows.append((f"sign a {a.buffer_mb} MiB replay buffer", _median_s(lambda: integrity.sign(buf), a.repeat), "s"))
    rows.append((f"verify a {a.buffer_mb} MiB replay buffer",
                 _median_s(lambda: integrity.verify(buf, "buffer"), a.repeat), "s"))

    obs_dim, n_actions = 459, 19
    space = gym.spaces.Box(-10.0, 10.0, (obs_dim,), np.float32)

    class Env(gym.Env):
        observation_space = space
        action_space = gym.spaces.Discrete(n_actions)

        def reset(self, *, seed=None, options=None):
            return np.zeros(obs_dim, np.float32), {}

        def step(self, action):
            return np.zeros(obs_dim, np.float32), 0.0, True, False, {}

    model = DQN("MlpPolicy", Env(), buffer_size=1000, seed=0, device="cpu")
    zip_path = tmp / "model.zip"
    rows.append(("SB3 DQN.save", _median_s(lambda: model.save(zip_path), a.repeat) * 1e3, "ms"))
    rows.append(("bundle export", _median_s(lambda: export_bundle(model, tmp / "model.bundle"), a.repeat) * 1e3, "ms"))
    rows.append(("SB3 DQN.load", _median_s(lambda: DQN.load(str(zip_path), device="cpu"), a.repeat) * 1e3, "ms"))
    rows.append(("bundle load (digests + rebuild)",
                 _median_s(lambda: load_policy(tmp / "model.bundle"), a.repeat) * 1e3, "ms"))
    policy = load_policy(tmp / "model.bundle")
    obs = np.random.default_rng(0).uniform(-3, 3, (1000, obs_dim)).astype(np.float32)
    same = float(np.mean(policy.predict(obs)[0] == model.predict(obs, deterministic=True)[0]))
    rows.append(("bundle vs SB3 greedy actions, 1,000 obs", same * 100, "% equal"))

    width = max(len(r[0]) for r in rows)
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:10.3f} {unit}")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
