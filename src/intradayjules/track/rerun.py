"""Rerun a registered model from its lineage: same config, same data (checked by fingerprint).

``rerun_version(tracker, "NAME@ALIAS", retrain, fingerprint=fp)``:

1. resolves the version, downloads its config and checks it against the recorded sha256;
2. rebuilds the ExperimentConfig and computes the current data fingerprint with
   ``fingerprint(cfg, data_path)`` (``data_path``: the ``--data`` recorded as ``intradayjules.data_source``,
   None when the config names the data);
3. refuses (:class:`LineageMismatchError`) when it differs from the version's recorded fingerprint,
   or when the version recorded none;
4. calls ``retrain(cfg, lineage)`` and returns its result.

The default ``fingerprint`` is ``intradayjules.data.fingerprint.experiment_fingerprint``. ``retrain`` is
given by the caller (the pipeline's ``pipeline.rerun.retrain``): tracking knows nothing of training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..config import config_from_dict
from ..data.fingerprint import experiment_fingerprint
from ..errors import IntradayJulesError
from .lineage import Lineage, git_state
from .registry import get_version, version_config

Retrain = Callable[[Any, Lineage], Any]
Fingerprint = Callable[[Any, "str | None"], str]


class LineageMismatchError(IntradayJulesError):
    """The inputs a model version was trained on are no longer what the lineage records."""


@dataclass
class RerunPlan:
    name: str
    version: str
    config: Any            # ExperimentConfig
    lineage: Lineage
    current_fingerprint: str
    code_changed: bool     # the current git commit differs from the recorded one (a note, not a refusal)


def default_fingerprint(cfg: Any, data_path: str | None = None) -> str:
    """The fingerprint of the data the config (or ``data_path``) names now, computed without loading it."""
    return experiment_fingerprint(cfg, data_path)


def data_path_of(lineage: Lineage) -> str | None:
    """The data path recorded at training time (``--data``), None for the config's own data."""
    src = lineage.extra.get("data_source")
    return None if src in (None, "", "synthetic") else src


def plan_rerun(tracker: Any, ref: str, fingerprint: Fingerprint | None = None) -> RerunPlan:
    """Check that version ``ref`` (``NAME@ALIAS``, ``NAME/VERSION`` or ``models:/...``) can be rerun."""
    body = ref[len("models:/"):] if ref.startswith("models:/") else ref
    if "@" in body:
        name, sub = body.rsplit("@", 1)
        sub = "@" + sub
    elif "/" in body:
        name, sub = body.rsplit("/", 1)
    else:
        raise LineageMismatchError(f"model reference {ref!r}: expected NAME@ALIAS or NAME/VERSION")
    info = get_version(tracker, name, sub)
    raw = version_config(tracker, info)
    cfg = config_from_dict(raw, source=f"model {info.name} v{info.version} config")
    lineage = Lineage.from_tags(info.tags, config=raw)
    if not lineage.data_fingerprint:
        raise LineageMismatchError(f"model {info.name} v{info.version} records no data fingerprint: "
                                   "refusing to rerun on data that cannot be checked")
    data_path = data_path_of(lineage)
    current = (fingerprint or default_fingerprint)(cfg, data_path)
    if current != lineage.data_fingerprint:
        where = data_path or (cfg.data.path if cfg.data.source == "path" else "the synthetic market")
        raise LineageMismatchError(
            f"data no longer matches model {info.name} v{info.version}: its data fingerprint was "
            f"{lineage.data_fingerprint}, the data at {where} now gives {current}. Refusing to rerun; "
            "restore that data or train a new model.")
    commit, _ = git_state()
    return RerunPlan(name=info.name, version=info.version, config=cfg, lineage=lineage,
                     current_fingerprint=current,
                     code_changed=bool(lineage.git_commit and commit and commit != lineage.git_commit))


def rerun_version(tracker: Any, ref: str, retrain: Retrain,
                  fingerprint: Fingerprint | None = None) -> tuple[RerunPlan, Any]:
    """:func:`plan_rerun`, then ``retrain(cfg, lineage)``; returns (plan, what retrain returned)."""
    plan = plan_rerun(tracker, ref, fingerprint)
    return plan, retrain(plan.config, plan.lineage)
