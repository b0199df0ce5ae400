"""A paper run in MLflow, filed under the model version it ran, so the registry shows how a champion
did forward.

``log_paper_run(tracker, summary, daily, model=...)`` creates a run named ``paper-<model>-v<version>``
(or after the bundle) tagged ``intradayjules.paper_of = NAME/VERSION``, ``intradayjules.model_name``,
``intradayjules.model_version``, ``intradayjules.model_run_id`` and ``intradayjules.bundle_sha256``, with

* metrics ``paper/daily_pnl`` (USD) and ``paper/equity`` (closing equity) by session (step = session
  number, in date order), and the totals of ``summary`` (``paper/<key>``: P&L, orders, fills,
  rejections, sessions, reconciliation agreement ...);
* artifacts ``paper/daily.json`` and, given, ``paper/reconciliation.json``.

For a registry model the version gets the tags ``intradayjules.paper_run_id`` (the latest paper run) and
``intradayjules.paper_pnl`` (its total P&L). Only numbers and names are logged: no bars, no orders.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .lineage import TAG_PREFIX


def log_paper_run(tracker: Any, summary: Mapping[str, float], daily: Sequence[tuple[str, float, float]], *,
                  model_name: str | None = None, model_version: str | None = None,
                  model_run_id: str | None = None, bundle_sha256: str | None = None,
                  reconciliation_json: str | None = None, params: Mapping[str, Any] | None = None) -> str | None:
    """Log a paper run (module docstring). ``daily``: (session, P&L USD, closing equity USD) in date
    order. Returns the MLflow run id (None when tracking is off)."""
    if not getattr(tracker, "enabled", False):
        return None
    label = f"{model_name}-v{model_version}" if model_name else (bundle_sha256 or "bundle")[:12]
    tags = {TAG_PREFIX + "kind": "paper", TAG_PREFIX + "paper_of": f"{model_name}/{model_version}" if model_name else "",
            TAG_PREFIX + "model_name": model_name, TAG_PREFIX + "model_version": model_version,
            TAG_PREFIX + "model_run_id": model_run_id, TAG_PREFIX + "bundle_sha256": bundle_sha256}
    run = tracker.start_run(f"paper-{label}", params=dict(params or {}), tags={k: v for k, v in tags.items() if v})
    try:
        for i, (session, pnl, equity) in enumerate(daily):
            run.log_metrics({"paper/daily_pnl": float(pnl), "paper/equity": float(equity)}, step=i)
        run.log_metrics({f"paper/{k}": float(v) for k, v in summary.items()
                         if isinstance(v, (int, float)) and math.isfinite(float(v))})
        run.log_text(json.dumps([{"session": s, "pnl": p, "equity": e} for s, p, e in daily], indent=1),
                     "paper/daily.json")
        if reconciliation_json is not None:
            run.log_text(reconciliation_json, "paper/reconciliation.json")
        run.end("FINISHED")
    except BaseException:
        run.end("FAILED")
        raise
    if model_name and model_version:
        client = tracker.client
        client.set_model_version_tag(model_name, model_version, TAG_PREFIX + "paper_run_id", run.run_id)
        client.set_model_version_tag(model_name, model_version, TAG_PREFIX + "paper_pnl",
                                     f"{float(summary.get('total_pnl', float('nan'))):.2f}")
    return run.run_id
