#!/usr/bin/env bash
# Build the wheel, install it into a fresh venv with the lock (constraints.txt), and run the CLI from
# outside the source tree: the presets and py.typed must be inside the wheel.
# Usage: bash .ci/wheel.sh            (PYTHON=python3.11 to choose the interpreter; KEEP=1 keeps the venv)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
PY=${PYTHON:-python3}
work=$(mktemp -d /tmp/ij-wheel.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
t0=$(date +%s)

"$PY" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --upgrade pip
"$work/venv/bin/pip" wheel -q --no-deps -w "$work/dist" "$repo"
whl=$(ls "$work"/dist/intradayjules-*.whl)
echo "built $(basename "$whl")"
# the files a user needs from the wheel, not from the checkout
"$work/venv/bin/python" - "$whl" <<'PY'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ["intradayjules/py.typed", "intradayjules/config/presets/quickstart.yaml"]
missing = [n for n in need if n not in names]
assert not missing, f"wheel lacks {missing}"
print(f"wheel holds {len(names)} files, presets and py.typed included")
PY
"$work/venv/bin/pip" install -q -c "$repo/constraints.txt" "$whl"
cd /tmp
where=$("$work/venv/bin/python" -c "import intradayjules; print(intradayjules.__file__)")
case "$where" in "$work"/venv/*) ;; *) echo "imported from $where, not the wheel"; exit 1 ;; esac
"$work/venv/bin/intradayjules" --help >/dev/null
"$work/venv/bin/intradayjules" config show quickstart | grep -q "^name: quickstart"
"$work/venv/bin/intradayjules" config validate quickstart
echo "wheel check passed in $(( $(date +%s) - t0 )) s"
