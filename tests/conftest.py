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


class Malicious:
    """Files that write ``marker`` when unpickled (the attack the loaders must refuse).

    ``payload()`` is a pickle whose ``__reduce__`` calls ``exec`` to create ``marker``; ``pickle_file``
    writes it; ``sb3_zip(src, dst)`` copies a real SB3 zip with the payload as its cloudpickled
    ``observation_space`` (what ``DQN.load`` deserializes)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def payload(self) -> bytes:
        import pickle

        class _WritesMarker:
            def __reduce__(inner):
                return (exec, (f"open({str(self.marker)!r}, 'w').write('unpickled')",))

        return pickle.dumps(_WritesMarker())

    def pickle_file(self, path: Path) -> Path:
        path.write_bytes(self.payload())
        return path

    def sb3_zip(self, src: Path, dst: Path) -> Path:
        import base64
        import json
        import zipfile

        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
            for item in zin.infolist():
                data = zin.read(item.filename)
                if item.filename == "data":
                    d = json.loads(data)
                    d["observation_space"][":serialized:"] = base64.b64encode(self.payload()).decode()
                    data = json.dumps(d).encode()
                zout.writestr(item, data)
        return dst


@pytest.fixture
def malicious(tmp_path) -> Malicious:
    m = Malicious(tmp_path / "MARKER-unpickled")
    assert not m.marker.exists()
    return m


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
