"""Both trackers (MLflow and no-op) and their runs implement the one tracking protocol."""

import inspect

import pytest

from intradayjules.track import NoOpTracker, Run, RunProtocol, Tracker, TrackerProtocol
from intradayjules.track.mlflow_tracking import NoOpRun


def _protocol_methods(proto) -> list[str]:
    return [n for n, v in vars(proto).items() if not n.startswith("_") and (callable(v) or isinstance(v, property))]


@pytest.mark.parametrize("proto, impls", [(TrackerProtocol, (Tracker, NoOpTracker)), (RunProtocol, (Run, NoOpRun))])
def test_implementations_have_every_protocol_method_with_its_parameters(proto, impls):
    names = _protocol_methods(proto)
    assert len(names) >= 8
    for impl in impls:
        for name in names:
            assert hasattr(impl, name), f"{impl.__name__} lacks {name}"
            want = getattr(proto, name)
            if isinstance(want, property):
                continue
            got_params = list(inspect.signature(getattr(impl, name)).parameters)
            want_params = [p for p in inspect.signature(want).parameters if p not in ("kw",)]
            missing = [p for p in want_params if p not in got_params and "kw" not in got_params]
            assert not missing, f"{impl.__name__}.{name} lacks parameters {missing}"


def test_noop_tracker_is_a_tracker_and_records_nothing(tmp_path):
    t = NoOpTracker()
    assert isinstance(t, TrackerProtocol) and t.uri is None and not t.enabled
    with t.run("x") as run:
        assert isinstance(run, RunProtocol)
        f = tmp_path / "a.txt"
        f.write_text("hello")
        assert len(run.log_artifact(f)) == 64  # the digest, nothing uploaded
        assert run.run_id is None
    assert run.ended == "FINISHED"
