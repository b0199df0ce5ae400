"""Generate the configuration reference (docs/configuration.md) from the schema itself.

``python -m intradayjules.config.reference > docs/configuration.md``; a test fails when the page is out of
date, so the reference never drifts from the code.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from .schema import ExperimentConfig

HEADER = """# Configuration reference

One YAML file configures an experiment; every key below is optional (the default applies). Unknown keys
and wrong types are errors that name the field path (`env.position_size: must be > 0`). See the resolved
configuration with `intradayjules config show FILE`. Generated from `src/intradayjules/config.py` by
`python -m intradayjules.config.reference`: do not edit by hand.
"""


def _fmt(v: Any) -> str:
    if isinstance(v, BaseModel):
        return "(section)"
    try:
        return "`" + json.dumps(v, default=str) + "`"
    except TypeError:
        return f"`{v}`"


def _type_name(t: Any) -> str:
    import typing

    if typing.get_origin(t) is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in typing.get_args(t))
    return (str(t) if typing.get_args(t) else getattr(t, "__name__", str(t))).replace("typing.", "").replace(
        "pathlib.", "")


def _rows(model: type[BaseModel], instance: BaseModel, prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        value = getattr(instance, name)
        path = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            rows += _rows(type(value), value, path + ".")
            continue
        ann = _type_name(field.annotation)
        constraints = []
        for m in field.metadata:
            for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
                if getattr(m, attr, None) is not None:
                    constraints.append(f"{sym} {getattr(m, attr)}")
        desc = (field.description or "").replace("|", "\\|")
        if constraints:
            desc = (desc + "; " if desc else "") + ", ".join(constraints)
        default = _fmt(value).replace("|", "\\|")
        kind = ann.replace("|", "or")
        rows.append(f"| `{path}` | {kind} | {default} | {desc} |")
    return rows


def reference() -> str:
    cfg = ExperimentConfig()
    out = [HEADER]
    top = [n for n, f in ExperimentConfig.model_fields.items() if not isinstance(getattr(cfg, n), BaseModel)]
    out.append("## top level\n\n| key | type | default | meaning |\n|---|---|---|---|")
    out += [r for r in _rows(ExperimentConfig, cfg, "") if r.split("`")[1] in top]
    for name in ExperimentConfig.model_fields:
        value = getattr(cfg, name)
        if isinstance(value, BaseModel):
            doc = (type(value).__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            out.append(f"\n## {name}\n\n{doc}\n\n| key | type | default | meaning |\n|---|---|---|---|")
            out += _rows(type(value), value, f"{name}.")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
