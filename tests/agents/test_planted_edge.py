"""Positive control per algorithm: on a market with a planted edge (tests/agents/planted_edge.py) each agent,
trained on the training sessions only, beats the flat policy on the held-out test sessions.

Budget: 8,000 environment steps each (~3 passes over 35 training sessions), 10-25 s per algorithm on the
2-core development machine under load. "Beats flat": the paired comparison of daily net P&L (flat earns
exactly 0) has its whole 95 % block-bootstrap interval above 0 bps/day.
"""

from __future__ import annotations

import pytest

from intradayjules.agents.policy import policy_from_model
from intradayjules.agents.sb3 import learn
from intradayjules.env import make_env
from intradayjules.env.rollout import named_policy
from intradayjules.evaluate.evaluation import evaluate_policy
from intradayjules.evaluate.paired import paired_comparison
from intradayjules.pipeline.prepare import prepare

from .planted_edge import planted_edge_config, write_planted_edge

BUDGET = 8000
AGENT = {
    "dqn": {"learning_starts": 500, "buffer_size": 10_000, "target_update_interval": 250, "exploration_fraction": 0.2},
    "qrdqn": {"learning_starts": 500, "buffer_size": 10_000, "target_update_interval": 250, "exploration_fraction": 0.2,
              "qrdqn": {"n_quantiles": 25}},
    "ppo": {"ppo": {"n_steps": 512, "batch_size": 64, "n_epochs": 5}},
    "a2c": {"a2c": {"n_steps": 16}},
}


@pytest.fixture(scope="module")
def edge_data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edge")
    return tmp, write_planted_edge(tmp / "data")


def _daily_bps(policy, prepared, cfg):
    _, res = evaluate_policy(policy, prepared.env_data, cfg, "test")
    return (res.closing_equity() / res.initial_equity - 1.0) * 1e4


@pytest.mark.parametrize("algo", list(AGENT))
def test_learns_the_planted_edge_and_beats_flat_out_of_sample(edge_data, algo):
    tmp, data = edge_data
    cfg = planted_edge_config(tmp, data, algo, total_timesteps=BUDGET, **AGENT[algo])
    prepared = prepare(cfg)
    assert len(prepared.env_data.splits["test"]) >= 10
    flat = _daily_bps(named_policy("flat", make_env(cfg, None, split="test", data=prepared.env_data)), prepared, cfg)
    assert (flat == 0).all()  # the reference: never trades, earns nothing
    model = learn(cfg, prepared.env_data)
    agent = _daily_bps(policy_from_model(model), prepared, cfg)
    c = paired_comparison(agent, flat, name_a=algo, name_b="flat")
    assert c.n == len(prepared.env_data.splits["test"])
    assert c.ci_low > 0, f"{algo}: {c.mean_diff:+.1f} bps/day [{c.ci_low:+.1f}, {c.ci_high:+.1f}] vs flat"


def test_the_edge_is_planted_where_the_agents_can_see_it(edge_data):
    """The control's own check: the 1-bar return autocorrelation is ~phi, and the oracle rule (sign of the
    last bar's return) earns well above costs, while on a market without the edge (phi = 0) it loses."""
    import numpy as np
    import pandas as pd

    tmp, data = edge_data
    bars = pd.read_parquet(data / "bars.parquet")
    r = np.log(bars["close"] / bars["open"]).to_numpy()
    same = bars["session"].eq(bars["session"].shift()).to_numpy()
    rho = np.corrcoef(r[1:][same[1:]], r[:-1][same[1:]])[0, 1]
    assert 0.45 < rho < 0.55
    null = write_planted_edge(tmp / "null", phi=0.0)
    for path, sign in ((data, 1), (null, -1)):
        cfg = planted_edge_config(tmp, path, "dqn")
        prepared = prepare(cfg)
        env = make_env(cfg, None, split="test", data=prepared.env_data)
        col = list(prepared.env_data.panel.feature_names).index("logret_1")
        lookback = cfg.features.lookback
        n_feat = len(prepared.env_data.panel.feature_names)

        def oracle(obs, info):  # the newest bar's standardised 1-bar return is the last row of the window
            x = obs[: lookback * n_feat].reshape(lookback, n_feat)[-1, col]
            return 2 if x > 0 else 0

        bps = _daily_bps(oracle, prepared, cfg)
        assert sign * bps.mean() > 0, (path, bps.mean())
        del env
