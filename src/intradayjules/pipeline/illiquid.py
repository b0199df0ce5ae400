"""The illiquid ablation: what each part of the risk machinery does to illiquid trading and to net P&L.

A 2 x 2 x 2 factorial, ``agent.n_seeds`` seeds per cell (or ``seeds``), same data, agent and budget, all
evaluated on the same test sessions under the **realistic** market model:

==============  ======================================  =====================================================
factor          off                                     on
==============  ======================================  =====================================================
``costs``       ``flat``: 5 bps of notional in training  ``realistic``: spread + sqrt impact + cap in training
``shaping``     reward = the env's net P&L               the ``balanced`` profile's shaping: drawdown, ulcer and
                                                        impact penalties and the illiquid cost multiplier (3x,
                                                        ``illiquid_penalty_basis``, risk/shaping.py)
``early_stop``  the callback evaluates, never stops      the ``balanced`` stop rule (composite > 0.75 for 5
                                                        consecutive evaluations)
==============  ======================================  =====================================================

Cells are named ``<costs>/<shaping>/<early_stop>`` (e.g. ``flat/off/off``, the original set-up, and
``realistic/on/on``, the former ``risk_aware`` arm: ``arm_config(cfg, "original" | "risk_aware", seed)``
gives those two). The callback's evaluation schedule (``risk.eval_freq``, ``eval_episodes``) is the config's
in every cell; early stopping can only trigger when a run has at least ``risk.patience`` evaluations.

Per cell (mean +- sd over seeds and per seed): ``illiquid_trade_share`` (filled illiquid notional / all
filled notional, fills and the end-of-session flatten), ``illiquid_order_share`` (the same over the notional
the agent asked for), mean daily net P&L (bps of initial cash), fills, and how many runs stopped early.

Compute: a run with early stopping on that never stopped *is* the same run with it off (same seed, same
config apart from the stop rule; the callback's evaluations use their own env and greedy actions, so they
change nothing in training: tested), so the ``off`` cell reuses it (``stats["reused_from"]``) and only
runs that did stop are trained again without the rule.

Main effect of a factor: the mean over the 4 cells with it ``on`` minus the mean over the 4 with it ``off``,
for daily P&L and fills (``evaluate.seeds.contrast``) and for the two shares (``ratio_contrast``: ratio of
summed notionals per cell), each with a two-level (sessions x seeds) bootstrap interval. An effect counts
only when its interval excludes 0.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ExperimentConfig, RiskConfig
from ..config.profiles import RISK_PROFILES
from ..evaluate.metrics import json_safe
from ..evaluate.seeds import contrast, main_effect_weights, ratio_contrast
from .compare import RunRecord, comparison_table, contrast_row, pnl_matrix, realistic, train_arm
from .prepare import prepare, run_dir

FACTORS: dict[str, tuple[str, str]] = {"costs": ("flat", "realistic"), "shaping": ("off", "on"),
                                       "early_stop": ("off", "on")}
ON = {"costs": "realistic", "shaping": "on", "early_stop": "on"}
CELLS: dict[str, dict[str, str]] = {"/".join(levels): dict(zip(FACTORS, levels))
                                    for levels in itertools.product(*FACTORS.values())}
ARMS = {"original": "flat/off/off", "risk_aware": "realistic/on/on"}
SHAPING_FIELDS = ("drawdown_penalty", "ulcer_penalty", "impact_penalty", "illiquid_penalty_multiplier")


def cell_config(cfg: ExperimentConfig, cell: str, seed: int) -> ExperimentConfig:
    """The training config of a cell (module docstring); only the market model and the risk section
    change, and the risk section never keeps explicit settings of ``cfg`` other than the evaluation
    schedule (``eval_freq``, ``eval_episodes``, ``ulcer_window``) and ``illiquid_penalty_basis``."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; one of {list(CELLS)}")
    lv = CELLS[cell]
    r = cfg.risk
    keep = {"eval_freq": r.eval_freq, "eval_episodes": r.eval_episodes, "ulcer_window": r.ulcer_window,
            "illiquid_penalty_basis": r.illiquid_penalty_basis}
    shaping, stop = lv["shaping"] == "on", lv["early_stop"] == "on"
    if not shaping and not stop:
        risk = RiskConfig(profile="off", **keep)
    else:
        explicit: dict[str, Any] = {"early_stop": stop}
        if not shaping:  # the wrapper is on (profile balanced) with every coefficient at its neutral value
            explicit |= {"drawdown_penalty": 0.0, "ulcer_penalty": 0.0, "impact_penalty": 0.0,
                         "illiquid_penalty_multiplier": 1.0}
        risk = RiskConfig(profile="balanced", **keep, **explicit)
    market = cfg.market.model_copy(update={"model": lv["costs"]})
    agent = cfg.agent.model_copy(update={"seed": seed})
    return cfg.model_copy(update={"risk": risk, "market": market, "agent": agent})


def arm_config(cfg: ExperimentConfig, arm: str, seed: int) -> ExperimentConfig:
    """The two historical arms: ``original`` (flat costs, no shaping, no stop) and ``risk_aware``
    (realistic costs, balanced shaping and stop)."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; one of {list(ARMS)}")
    return cell_config(cfg, ARMS[arm], seed)


def run(cfg: ExperimentConfig, seeds: int | None = None, out_dir: str | Path | None = None, data_path=None,
        timesteps: int | None = None, progress=None, cells: list[str] | None = None) -> dict:
    """Train every cell for ``seeds`` (default ``agent.n_seeds``) seeds, evaluate on the test split under
    realistic costs, summarise (``summarize``) and write ``illiquid_ablation.json``."""
    n_seeds = seeds or cfg.agent.n_seeds
    prepared = prepare(cfg, data_path)
    cfg = prepared.cfg  # records --data (pipeline.prepare.with_data_path)
    out = Path(out_dir) if out_dir else run_dir(cfg, f"{cfg.name}-illiquid-ablation")
    eval_cfg = realistic(cfg)
    records: dict[str, list[RunRecord]] = {}
    todo = cells or list(CELLS)
    # early stop "on" cells first: a run that never stopped is the "off" cell's run (below)
    for cell in sorted(todo, key=lambda c: CELLS[c]["early_stop"] != "on"):
        ccfg = cell_config(cfg, cell, cfg.agent.seed)
        twin = cell.rsplit("/", 1)[0] + "/on"
        if CELLS[cell]["early_stop"] == "off" and twin in records:
            records[cell] = [_reuse(r, cell) if not r.stopped_early else None for r in records[twin]]
            for k, r in enumerate(records[cell]):
                if r is None:
                    seed_cfg = ccfg.model_copy(update={"agent": ccfg.agent.model_copy(
                        update={"seed": ccfg.agent.seed + k})})
                    r = train_arm(prepared, seed_cfg, f"{cell.replace('/', '-')}-s{k}", 1, out, split="test",
                                  eval_cfg=eval_cfg, timesteps=timesteps)[0]
                    r.seed = k
                    records[cell][k] = r
                r.arm = cell
                if progress:
                    progress(r)
        else:
            named = (lambda r, c=cell: progress(_as_cell(r, c))) if progress else None
            records[cell] = train_arm(prepared, ccfg, cell.replace("/", "-"), n_seeds, out, split="test",
                                      eval_cfg=eval_cfg, timesteps=timesteps, progress=named)
        for r in records[cell]:
            r.arm = cell
    records = {c: records[c] for c in todo}
    summary = summarize(records)
    summary["config"] = {"name": cfg.name, "symbols": list(prepared.env_data.symbols), "seeds": n_seeds,
                         "timesteps": int(timesteps or cfg.agent.total_timesteps),
                         "eval_freq": cfg.risk.eval_freq, "patience": RISK_PROFILES["balanced"]["patience"],
                         "test_sessions": len(prepared.env_data.splits["test"]),
                         "reward_scale": cfg.env.reward_scale, "data": str(data_path) if data_path else None}
    path = out / "illiquid_ablation.json"
    summary["path"] = str(path)
    path.write_text(json.dumps(json_safe(summary), indent=2, default=float))
    return summary


def _as_cell(r: RunRecord, cell: str) -> RunRecord:
    r.arm = cell
    return r


def _reuse(r: RunRecord, cell: str) -> RunRecord:
    """The early-stop-off twin of a run that never stopped: the same run (same seed and config apart from
    the stop rule, which never fired; the callback only evaluates). Marked ``reused_from``."""
    return RunRecord(cell, r.seed, r.daily, {**r.stats, "reused_from": r.arm}, r.model_path, r.timesteps, False)


def _cell_stats(rs: list[RunRecord]) -> dict[str, Any]:
    runs = [r.summary() for r in rs]
    out: dict[str, Any] = {"n_runs": len(rs), "stopped_early": sum(r.stopped_early for r in rs)}
    for key in ("illiquid_trade_share", "illiquid_order_share", "mean_daily_pnl_bps", "trades"):
        v = np.array([x[key] for x in runs], dtype=float)
        out[key] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else float("nan"),
                    "per_seed": v.tolist()}
    return out


def summarize(records: dict[str, list[RunRecord]], *, n_resamples: int = 10_000) -> dict[str, Any]:
    """Per-cell statistics and, when every cell is present, each factor's main effect with its interval;
    the two historical arms compared by ``compare.comparison_table``."""
    out: dict[str, Any] = {"cells": {c: _cell_stats(rs) for c, rs in records.items()},
                           "runs": [r.summary() for rs in records.values() for r in rs]}
    if set(records) == set(CELLS):
        out["main_effects"] = main_effects(records, n_resamples=n_resamples)
    if all(ARMS[a] in records for a in ARMS):
        t = comparison_table({a: records[ARMS[a]] for a in ("risk_aware", "original")}, n_resamples=n_resamples)
        out["arms"] = {"original": ARMS["original"], "risk_aware": ARMS["risk_aware"],
                       "contrasts": t["contrasts"],
                       "illiquid_share": contrast_row("risk_aware", "original", ratio_contrast(
                           {a: pnl_matrix(records[ARMS[a]], "notional_illiquid") for a in ARMS},
                           {a: pnl_matrix(records[ARMS[a]], "notional") for a in ARMS},
                           {"risk_aware": 1.0, "original": -1.0}, n_resamples=n_resamples))}
    return out


def main_effects(records: dict[str, list[RunRecord]], *, n_resamples: int = 10_000) -> dict[str, Any]:
    """Per factor: the on-minus-off main effect on daily P&L, fills, and the filled / ordered illiquid
    shares, each as a ``compare.contrast_row`` (estimate, interval, p-value, verdict)."""
    mats = {c: {col: pnl_matrix(rs, col) for col in ("pnl", "trades", "notional", "notional_illiquid",
                                                     "ordered", "ordered_illiquid")} for c, rs in records.items()}
    out: dict[str, Any] = {}
    for factor in FACTORS:
        w = main_effect_weights(CELLS, factor, ON[factor])
        label = f"{factor}={ON[factor]}", f"{factor}={FACTORS[factor][0]}"
        out[factor] = {
            "daily_pnl_bps": contrast_row(*label, contrast({c: m["pnl"] for c, m in mats.items()}, w,
                                                          n_resamples=n_resamples)),
            "trades_per_day": contrast_row(*label, contrast({c: m["trades"] for c, m in mats.items()}, w,
                                                           n_resamples=n_resamples)),
            "illiquid_trade_share": contrast_row(*label, ratio_contrast(
                {c: m["notional_illiquid"] for c, m in mats.items()}, {c: m["notional"] for c, m in mats.items()},
                w, n_resamples=n_resamples)),
            "illiquid_order_share": contrast_row(*label, ratio_contrast(
                {c: m["ordered_illiquid"] for c, m in mats.items()}, {c: m["ordered"] for c, m in mats.items()},
                w, n_resamples=n_resamples)),
        }
    return out
