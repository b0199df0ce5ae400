"""Rerun a registered model from its lineage: same config, same data (checked by fingerprint).

``rerun_version(tracker, "NAME@ALIAS", retrain=fn, fingerprint=fp)``:

1. resolves the version, downloads its config and checks it against the recorded sha256;
2. rebuilds the ExperimentConfig and computes the current data fingerprint with
   ``fingerprint(cfg, data_path)`` (``data_path``: the ``--data`` recorded as ``intradayjules.data_source``,
   None when the config names the data);
3. refuses (:class:`LineageMismatchError`) when it differs from the version's recorded fingerprint,
   or when the version recorded none;
4. calls ``retrain(cfg, lineage)`` and returns its result.

The default ``fingerprint`` is ``intradayjules.data.fingerprint.experiment_fingerprint``; the default
``retrain`` is ``intradayjules.agents.dqn.retrain(cfg, lineage)`` (or prepare + ``dqn.train`` when the
trainer has no ``retrain``). Both are imported lazily and a missing one is a clear error, so other
functions plug in without touching this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

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
    """``intradayjules.data.fingerprint.experiment_fingerprint(cfg, data_path)``: the fingerprint of the
    data the config (or ``data_path``) names now, computed without loading it."""
    try:
        from ..data.fingerprint import experiment_fingerprint
    except ImportError as e:
        raise IntradayJulesError("cannot check the data fingerprint: intradayjules.data.fingerprint is not "
                                 f"available ({e}); pass a fingerprint function") from None
    return experiment_fingerprint(cfg, data_path)


def default_retrain(cfg: Any, lineage: Lineage) -> Any:
    """``intradayjules.agents.dqn.retrain(cfg, lineage)`` when the trainer provides it; otherwise
    ``experiment.prepare`` + ``agents.dqn.train`` into ``<workdir>/<name>-rerun``."""
    import importlib

    try:  # import_module consults sys.modules, so a trainer that is absent is seen as absent
        dqn = importlib.import_module("intradayjules.agents.dqn")
    except ImportError as e:
        raise IntradayJulesError(f"cannot retrain: the DQN trainer (intradayjules.agents.dqn) is not available ({e})") from None
    fn = getattr(dqn, "retrain", None)
    if fn is not None:
        return fn(cfg, lineage)
    try:
        from ..experiment import prepare, run_dir
    except ImportError as e:
        raise IntradayJulesError(f"cannot retrain: intradayjules.experiment is not available ({e})") from None
    prepared = prepare(cfg, _data_path(lineage))
    return dqn.train(prepared, run_dir(cfg, f"{cfg.name}-rerun"), cfg=cfg)


def _data_path(lineage: Lineage) -> str | None:
    """The data path recorded at training time (``--data``), None for the config's own data."""
    src = lineage.extra.get("data_source")
    return None if src in (None, "", "synthetic") else src


def plan_rerun(tracker: Any, ref: str, fingerprint: Fingerprint | None = None) -> RerunPlan:
    """Check that version ``ref`` (``NAME@ALIAS``, ``NAME/VERSION`` or ``models:/...``) can be rerun."""
    from ..config import config_from_dict

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
    data_path = _data_path(lineage)
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


def rerun_version(tracker: Any, ref: str, retrain: Retrain | None = None,
                  fingerprint: Fingerprint | None = None) -> tuple[RerunPlan, Any]:
    """:func:`plan_rerun`, then ``retrain(cfg, lineage)``; returns (plan, what retrain returned)."""
    plan = plan_rerun(tracker, ref, fingerprint)
    return plan, (retrain or default_retrain)(plan.config, plan.lineage)
