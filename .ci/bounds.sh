#!/usr/bin/env bash
# The lower bounds pyproject.toml claims, installed and tested: a fresh venv gets every dependency of
# the package and of [tracking] at exactly its lower bound (`>=X` -> `==X`; torch stays 2.13.0), and a
# fast subset of the tests runs against it. The upper side is the usual run with constraints.txt.
# Usage: bash .ci/bounds.sh     (PYTHON=python3.11; KEEP=1 keeps the venv; TESTS="..." to change the subset)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
PY=${PYTHON:-python3}
work=$(mktemp -d /tmp/ij-bounds.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
t0=$(date +%s)

"$PY" - "$repo/pyproject.toml" > "$work/lower.txt" <<'PY'
import re, sys, tomllib
proj = tomllib.load(open(sys.argv[1], "rb"))["project"]
reqs = proj["dependencies"] + proj["optional-dependencies"]["tracking"]
for r in reqs:
    name = re.match(r"[A-Za-z0-9_.\-]+", r).group(0)
    m = re.search(r"(==|>=)\s*([0-9][^,;\s]*)", r)
    if not m:
        sys.exit(f"pyproject.toml: {r!r} has no lower bound (>=X or ==X)")
    print(f"{name}=={m.group(2)}")
PY
echo "lower bounds:"; sed 's/^/  /' "$work/lower.txt"
# test tools at the lock's versions (they are not part of the claim); the reference libraries of the
# [dev] extra (arch, empyrical, ta) are not installed, so the tests that compare against them are left out
grep -E '^(pytest|pytest-timeout|hypothesis)==' "$repo/constraints.txt" > "$work/tools.txt"

"$PY" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --upgrade pip
"$work/venv/bin/pip" install -q -c "$work/lower.txt" "$repo[tracking]" -r "$work/tools.txt"
"$work/venv/bin/pip" check
t1=$(date +%s)
echo "installed in $(( t1 - t0 )) s:"
"$work/venv/bin/pip" list 2>/dev/null | grep -iE '^(numpy|pandas|pyarrow|mlflow|optuna|stable.baselines3|gymnasium|pydantic|numba|duckdb|typer|matplotlib) ' | sed 's/^/  /'

TESTS=${TESTS:-"tests/test_config.py tests/test_config_overrides.py tests/data tests/features/test_scaler.py \
tests/features/test_pipeline.py tests/market tests/env/test_rollout.py tests/env/test_env.py tests/risk \
tests/evaluate/test_stats_overfitting.py tests/evaluate/test_stats_daily_pnl.py tests/evaluate/test_stats_verdict.py \
tests/track/test_protocol.py tests/track/test_mlflow_views.py tests/track/test_workdir_move.py tests/tune/test_space.py \
tests/tune/test_optuna_backend.py tests/agents/test_dqn_step.py"}
# the installed package, not the checkout's src/ (tests import intradayjules from site-packages)
cd "$repo"
MLFLOW_DISABLE_TELEMETRY=true "$work/venv/bin/python" -m pytest -q -p no:cacheprovider -m "not slow" \
    -k "not server" $TESTS
echo "bounds check passed: install $(( t1 - t0 )) s, tests $(( $(date +%s) - t1 )) s"
