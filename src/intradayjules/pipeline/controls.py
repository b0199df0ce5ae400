"""Controls: the learning pipeline must find a planted edge, and must find nothing where there is none.

Both controls run the whole walk-forward protocol (``pipeline.walk_forward``: tuning on validation blocks,
retraining per fold and seed, concatenated out-of-sample test P&L) on the synthetic market
(``data/synthetic.py``), once with the planted edge (``data.synthetic.edge_bps``) and once without it;
everything else, the seed of the market included, is the same.

* **Positive control** (edge on): passes when the model beats ``flat`` and ``buy_hold`` out of sample with the
  two-level bootstrap interval of the mean daily P&L difference above 0 (``evaluate.seeds``). Shown next to
  it: the edge expected net of costs (``expected_edge``, from the generator's parameters and the cost model's
  inputs on those sessions) and what the rule that holds the sign of the last printed return
  (``edge_oracle``) measurably earns in the env on the same sessions.
* On **your own bars** (single-asset, ``data.source: path``): the positive control plants the same edge in
  the env's symbol (``plant_edge_in_bars``: same rule on printed closes, the shift carried forward), the
  negative control runs on the bars as they are; the expected-edge formula needs the generator, so only the
  oracle's measured P&L is shown there.
* **Negative control** (edge off): passes when no fold's selection is significant by the deflated Sharpe
  ratio (``p >= alpha``) and the model does not beat ``flat`` (interval not above 0); the PBO of each fold's
  selection is reported.

Expected edge of the oracle rule in single-asset mode, per session with ``B`` bars, position value
``V = position_size * initial_cash``, planted edge ``e`` (fraction per bar; bars from the third one on):

    gross = V e (B - 2)                                   (holds bars 2 .. B-1, each earning e in expectation)
    costs = 2 c(V) + sum_{t=2}^{B-2} p_t c(2V)            (entry, exit at the close, and a reversal when the
                                                           sign of the last printed return changes)
    c(x)  = x (hs + comm) + Y sigma_d sqrt(x / ADV) x      (the realistic model: half-spread, commission,
                                                           square-root impact; hs, sigma_d, ADV of the session)
    p_t   = 1 - Phi(e / sqrt(s_t^2 + 2 h^2))              (the next printed return has the other sign: bar
                                                           noise s_t = daily_vol sqrt(u_t / mean(u) / bars)
                                                           with the generator's U-shape u, bounce of +-h)

``net = gross - costs``, in bps of initial cash per session, averaged over the sessions. The bar noise uses
the GARCH process's unconditional variance (its clustering is left out), so the reversal rate is an
approximation; the tests check the formula against the oracle's measured P&L in the env.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import ExperimentConfig, apply_overrides
from ..data import load_data
from ..data.synthetic import TIER_PARAMS, u_shape
from ..env import EnvData
from ..env.rollout import Policy
from ..evaluate._distributions import norm_cdf
from ..evaluate.metrics import json_safe
from .compare import evaluate_daily, realistic
from .main_job import study_name
from .prepare import prepare, run_dir
from .walk_forward import WalkForwardResult, run_walk_forward

DEFAULT_EDGE_BPS = 4.0  # what ``tradable_edge`` picks for the controls preset (tests/pipeline/test_controls.py)
EDGE_GRID = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
MIN_NET_SHARE = 0.5
ALPHA = 0.05


def tradable_edge(cfg: ExperimentConfig, env_data: EnvData, grid=EDGE_GRID, min_net_share: float = MIN_NET_SHARE
                  ) -> tuple[float, list[dict[str, Any]]]:
    """The planted edge's size, chosen without training anything and without looking at any validation or
    test session: the smallest edge of ``grid`` (bps per bar) at which the oracle rule's expected net P&L
    (``expected_edge``, generator parameters and the cost model on fold 0's **training** sessions) keeps at
    least ``min_net_share`` of its gross (costs at most half of it). Returns the edge and the grid's rows."""
    train = [str(np.datetime_as_string(d, unit="D")) for d in (env_data.folds or [env_data.splits])[0]["train"]]
    rows = []
    for e in grid:
        x = expected_edge(apply_overrides(cfg, {"data.synthetic.edge_bps": float(e)}), env_data, train)
        rows.append(x)
        if x["gross_bps_per_day"] > 0 and x["net_bps_per_day"] >= min_net_share * x["gross_bps_per_day"]:
            return float(e), rows
    raise ValueError(f"no edge in {list(grid)} bps/bar keeps {min_net_share:.0%} of its gross after costs")


def edge_oracle(env_data: EnvData, cfg: ExperimentConfig) -> Policy:
    """Single-asset: long after a bar whose printed close rose, short after one that fell, flat at the open
    and after an unchanged close (the rule the planted edge pays)."""
    if cfg.env.mode != "single":
        raise ValueError("edge_oracle trades one symbol: env.mode must be 'single'")
    panel = env_data.panel
    index = {str(np.datetime_as_string(d, unit="D")): i for i, d in enumerate(panel.sessions)}

    def act(obs, info=None) -> int:
        info = info or {}
        t = int(info.get("bar", info.get("start_bar", 0)))
        if t < 1:
            return 1
        r0 = int(panel.starts[index[info["session"]]])
        d = panel.close[r0 + t, 0] - panel.close[r0 + t - 1, 0]
        return 2 if d > 0 else 0 if d < 0 else 1

    return act


def expected_edge(cfg: ExperimentConfig, env_data: EnvData, sessions: list[str]) -> dict[str, Any]:
    """The oracle's expected gross, costs and net P&L per session (module docstring), bps of initial cash,
    averaged over ``sessions`` (``YYYY-MM-DD``)."""
    if cfg.env.mode != "single":
        raise ValueError("expected_edge is defined for the single-asset env (env.mode: single)")
    syn, mk = cfg.data.synthetic, cfg.market
    panel = env_data.panel
    index = {str(np.datetime_as_string(d, unit="D")): i for i, d in enumerate(panel.sessions)}
    tier = str(panel.tier[index[sessions[-1]], 0])  # the symbol's tier as of the sessions (from its ADV)
    gen = TIER_PARAMS[tier]
    e = syn.edge_bps * 1e-4 if tier in syn.edge_tiers else 0.0
    h = gen["half_spread_bps"] * 1e-4
    v = cfg.env.position_size * cfg.env.initial_cash
    full_day = int(np.diff(panel.starts).max())
    rows = []
    for s in sessions:
        i = index[s]
        b = int(panel.starts[i + 1] - panel.starts[i])
        hs, sig, adv = panel.half_spread[i, 0] * 1e-4, panel.sigma[i, 0], panel.adv[i, 0]

        def cost(x: float) -> float:
            return x * (hs + mk.commission_bps * 1e-4) + mk.impact_coef * sig * math.sqrt(x / adv) * x

        pos = np.arange(full_day)
        u = u_shape((pos + 0.5) / full_day)
        s_bar = gen["daily_vol"] * np.sqrt(u / u.mean() / full_day)
        p = np.array([1.0 - norm_cdf(e / math.sqrt(s_bar[t] ** 2 + 2 * h * h)) for t in range(2, b - 1)])
        gross = v * e * (b - 2)
        costs = 2 * cost(v) + float(p.sum()) * cost(2 * v)
        rows.append((gross, costs, float(p.mean()) if len(p) else math.nan))
    g, c, pf = (np.array(x) for x in zip(*rows))
    scale = 1e4 / cfg.env.initial_cash
    return {"edge_bps_per_bar": syn.edge_bps, "tier": tier, "sessions": len(sessions),
            "gross_bps_per_day": float(g.mean() * scale), "costs_bps_per_day": float(c.mean() * scale),
            "net_bps_per_day": float((g - c).mean() * scale), "reversal_rate": float(np.nanmean(pf))}


def oracle_pnl(cfg: ExperimentConfig, env_data: EnvData, split: str = "test") -> pd.DataFrame:
    """The oracle's daily record on ``split`` under realistic costs (``compare.daily_record``)."""
    ecfg = realistic(cfg)
    _, daily = evaluate_daily(edge_oracle(env_data, ecfg), env_data, ecfg, split)
    return daily


def plant_edge_in_bars(frame: pd.DataFrame, symbols: list[str], edge_bps: float) -> pd.DataFrame:
    """Bars (canonical table, e.g. real ones) with the planted edge in ``symbols``: from the third bar of a
    session on, a traded bar's close moves ``edge_bps`` further in the direction of the previous bar's
    printed close-to-close return (``plant_edge``'s rule on printed prices). The shift carries forward (the
    next bars and sessions are scaled by it), so every other return of the series is unchanged; open, high
    and low follow the shift in force when they printed."""
    out = frame.copy()
    e = edge_bps * 1e-4
    for sym in symbols:
        rows = np.flatnonzero((out["symbol"] == sym).to_numpy())
        if not len(rows):
            raise ValueError(f"plant_edge_in_bars: no bars for symbol {sym!r}")
        lc = np.log(out["close"].to_numpy()[rows])
        pos = out.iloc[rows].groupby("session").cumcount().to_numpy()
        stale = out["stale"].to_numpy()[rows]
        off = np.zeros(len(rows))  # cumulative log shift after bar k
        new = lc.copy()
        for k in range(len(rows)):
            prev_off = off[k - 1] if k else 0.0
            step = 0.0
            if pos[k] >= 2 and not stale[k]:
                d = new[k - 1] - new[k - 2]
                step = e if d > 0 else -e if d < 0 else 0.0
            off[k] = prev_off + step
            new[k] = lc[k] + off[k]
        before = np.r_[0.0, off[:-1]]
        o = out["open"].to_numpy()[rows] * np.exp(before)
        c = np.exp(new)
        hi = np.maximum(np.maximum(o, c), out["high"].to_numpy()[rows] * np.exp(np.maximum(before, off)))
        lo = np.minimum(np.minimum(o, c), out["low"].to_numpy()[rows] * np.exp(np.minimum(before, off)))
        for col, v in (("open", o), ("high", hi), ("low", lo), ("close", c)):
            out.loc[out.index[rows], col] = v
    return out


def _control_config(cfg: ExperimentConfig, edge: float, suffix: str) -> ExperimentConfig:
    return apply_overrides(cfg, {"data.synthetic.edge_bps": edge, "name": f"{cfg.name}-{suffix}"})


def _real_control(cfg: ExperimentConfig, data_path, edge: float, kind: str, out: Path) -> tuple[ExperimentConfig, Any]:
    """Real bars for a control: unchanged (negative) or with the edge planted in the env's symbol
    (positive), written to ``out/<kind>-bars.parquet``; returns the config and the data path to use."""
    c = apply_overrides(cfg, {"name": f"{cfg.name}-{kind}"})
    if kind == "negative" or edge == 0:
        return c, data_path
    bars, _ = load_data(cfg, data_path)
    symbols = list(cfg.env.symbols or [])
    if cfg.env.mode != "single" or len(symbols) != 1:
        raise ValueError("a control on your own bars needs env.mode: single and env.symbols: [SYMBOL] (the "
                         "symbol that gets the planted edge)")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{kind}-bars.parquet"
    plant_edge_in_bars(bars.frame, symbols, edge).to_parquet(path, index=False)
    return apply_overrides(c, {"data.path": str(path), "data.symbols": None}), path


def run_controls(cfg: ExperimentConfig, *, edge_bps: float | None = None, which=("positive", "negative"),
                 out: Path | None = None, progress: Callable[[str, str], None] | None = None,
                 track: bool = False, timesteps: int | None = None, data_path=None) -> dict[str, Any]:
    """Run the controls (module docstring); returns and writes ``controls.json`` with the table rows.

    On the synthetic market the generator plants the edge. On your own bars (``data.source: path`` or
    ``data_path``), single-asset: the positive control plants it in the env's symbol
    (``plant_edge_in_bars``), the negative control uses the bars as they are."""
    real = data_path is not None or cfg.data.source != "synthetic"
    if cfg.data.splits.mode != "walk_forward":
        raise ValueError("controls run the walk-forward protocol: set data.splits.mode: walk_forward")
    say = progress or (lambda stage, msg: None)
    edge = edge_bps if edge_bps is not None else (cfg.data.synthetic.edge_bps or DEFAULT_EDGE_BPS)
    out = out or run_dir(cfg, f"{cfg.name}-controls")
    rows: dict[str, Any] = {}
    for kind in which:
        e = edge if kind == "positive" else 0.0
        if real:
            c, path = _real_control(cfg, data_path, e, kind, out)
            c = apply_overrides(c, {"data.synthetic.edge_bps": e})  # records the planted edge for the row
        else:
            c, path = _control_config(cfg, e, kind), None
        say("control", f"{kind}: edge {e:g} bps/bar{' planted in ' + str(path) if real and e else ''}, "
                       f"{c.data.splits.folds} folds x {c.agent.n_seeds} seeds")
        prepared = prepare(c, path)
        res = run_walk_forward(c, study=study_name(c), prepared=prepared, out=out / kind, track=track,
                               progress=progress, timesteps=timesteps, data_path=path)
        rows[kind] = control_row(kind, c, prepared, res, real=real)
        say("control", f"{kind}: {rows[kind]['verdict']}")
    path = out / "controls.json"
    path.write_text(json.dumps(json_safe(rows), indent=2, default=float))
    return {"rows": rows, "path": str(path)}


def control_row(kind: str, cfg: ExperimentConfig, prepared, res: WalkForwardResult,
                real: bool = False) -> dict[str, Any]:
    """One row of the controls table from a walk-forward result."""
    oos = res.oos
    contrasts = {c["b"]: c for c in oos["table"]["contrasts"]}
    model = oos["table"]["arms"]["model"]
    dsr_p = [f.selection.get("dsr", {}).get("p_value", math.nan) for f in res.folds]
    pbo = [f.selection.get("pbo", {}).get("pbo", math.nan) for f in res.folds]
    row: dict[str, Any] = {
        "control": kind, "edge_bps_per_bar": cfg.data.synthetic.edge_bps, "folds": len(res.folds),
        "seeds": cfg.agent.n_seeds, "timesteps": cfg.agent.total_timesteps, "n_trials": cfg.tune.n_trials,
        "trial_timesteps": cfg.tune.trial_timesteps, "oos_sessions": oos["n_sessions"],
        "model_mean_bps": model["mean"], "model_sd_bps": model["sd"], "model_per_seed_bps": model["per_seed"],
        "vs": contrasts, "dsr_p_by_fold": dsr_p, "pbo_by_fold": pbo, "sharpe": oos["sharpe"],
        "psr_vs_0": oos["psr_vs_0"], "run_dir": str(res.run_dir)}
    if cfg.env.mode == "single":
        sessions = [str(s) for s in oos["sessions"]]
        if not real:
            row["expected"] = expected_edge(cfg, prepared.env_data, sessions)
        oracle = pd.concat([oracle_pnl(cfg, prepared.for_fold(f.fold).env_data) for f in res.folds])
        row["oracle_mean_bps"] = float(oracle["pnl"].mean())
        row["oracle_sd_bps"] = float(oracle["pnl"].std(ddof=1))
    beats = {n: contrasts[n]["ci_low"] > 0 for n in ("flat", "buy_hold") if n in contrasts}
    if kind == "positive":
        row["passed"] = bool(beats) and all(beats.values())
        row["verdict"] = ("found the edge: " if row["passed"] else "did NOT find the edge: ") + ", ".join(
            f"vs {n} {contrasts[n]['mean_diff_bps']:+.1f} bps/day [{contrasts[n]['ci_low']:+.1f}, "
            f"{contrasts[n]['ci_high']:+.1f}]" for n in beats)
    else:
        significant = [p < ALPHA for p in dsr_p if not math.isnan(p)]
        flat = contrasts.get("flat", {})
        row["passed"] = (not any(significant)) and not (flat.get("ci_low", 0.0) > 0)
        row["verdict"] = (("found nothing" if row["passed"] else "FOUND SOMETHING IN A NULL MARKET") +
                          f": DSR p by fold {', '.join(f'{p:.2f}' for p in dsr_p)}; PBO by fold "
                          f"{', '.join(f'{p:.2f}' for p in pbo)}; vs flat {flat.get('mean_diff_bps', math.nan):+.1f}"
                          f" bps/day [{flat.get('ci_low', math.nan):+.1f}, {flat.get('ci_high', math.nan):+.1f}]")
    return row
