"""Shared fixtures. Tests that need ../shared/data/intraday_5min skip cleanly when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("INTRADAYJULES_SHARED_DATA", REPO.parent / "shared" / "data" / "intraday_5min"))


@pytest.fixture(scope="session", autouse=True)
def _integrity_key(tmp_path_factory):
    """The key that signs checkpoints and models (agents/integrity.py): one per test session, in tmp,
    never ~/.intradayjules (worker subprocesses inherit the variable)."""
    old = os.environ.get("INTRADAYJULES_KEY_FILE")
    os.environ["INTRADAYJULES_KEY_FILE"] = str(tmp_path_factory.mktemp("integrity") / "integrity.key")
    yield
    if old is None:
        os.environ.pop("INTRADAYJULES_KEY_FILE", None)
    else:
        os.environ["INTRADAYJULES_KEY_FILE"] = old


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    if not (SHARED_DATA.is_dir() and any(SHARED_DATA.glob("*_5min.csv"))):
        pytest.skip(f"shared real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_bars(shared_data_dir):
    from intradayjules.data import load_bars

    return load_bars(shared_data_dir)


@pytest.fixture(scope="session")
def synthetic_market():
    from intradayjules.data.synthetic import generate

    return generate()
