# Two entry points: `make demo` (main job on the embedded synthetic market) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PIP    := $(VENV)/bin/pip
PY     := $(VENV)/bin/python
CONFIG ?= examples/configs/quickstart.yaml
PYTEST_ARGS ?=

.PHONY: demo paper-demo test test-fast typecheck bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Re-install when pyproject.toml or the lock changes. pyproject.toml gives compatible ranges;
# constraints.txt pins today's exact versions, so the demo and the tests install what was tested.
$(VENV)/.demo-installed: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) install -q -c constraints.txt -e '.[tracking]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) install -q -c constraints.txt -e '.[dev,tracking,ray,dashboard]'
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(VENV)/bin/intradayjules run --config $(CONFIG)

# After `make demo`: paper-trade its champion on a replay of the same synthetic market (trading from the
# first held-out session) and print the reconciliation with the backtest (docs/paper.md).
paper-demo: $(VENV)/.demo-installed
	$(VENV)/bin/intradayjules data synth --symbols 6 --days 60 --seed 0 --out runs/quickstart-bars
	$(VENV)/bin/intradayjules paper --model models:/intradayjules-dqn@champion --feed replay:runs/quickstart-bars

# Layer contracts first (import-linter, [tool.importlinter] in pyproject.toml), then mypy --strict on
# the typed public modules ([tool.mypy] files), then every test.
test: $(VENV)/.dev-installed
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) -m pytest $(PYTEST_ARGS)

typecheck: $(VENV)/.dev-installed
	$(VENV)/bin/mypy

test-fast: $(VENV)/.dev-installed
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

bench: $(VENV)/.dev-installed
	for f in benchmarks/*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
