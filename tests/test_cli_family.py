"""The CLI as one family: --version, -h, --set and --json everywhere, run's flags, init, refusals that
name the setting, tables that survive a pipe (issue 18)."""

import json

import optuna
import pytest
from typer.testing import CliRunner

from intradayjules.cli import app
from intradayjules.tune.optuna_backend import make_pruner, make_sampler

runner = CliRunner()


def test_version_and_short_help():
    from intradayjules import __version__

    v = runner.invoke(app, ["--version"])
    assert v.exit_code == 0 and v.output.strip() == f"intradayjules {__version__}"
    for cmd in ([], ["run"], ["tune"], ["data", "validate"], ["models", "list"]):
        res = runner.invoke(app, [*cmd, "-h"])
        assert res.exit_code == 0 and "Usage:" in res.output, cmd


def test_run_flags_reach_the_config(monkeypatch):
    import intradayjules.pipeline.main_job as mj

    seen = {}

    def fake(cfg, **kw):
        seen["cfg"], seen["kw"] = cfg, kw
        raise KeyboardInterrupt

    monkeypatch.setattr(mj, "run_main", fake)
    res = runner.invoke(app, ["run", "--trials", "3", "--workers", "1", "--timesteps", "12345", "--seed", "9",
                              "--set", "tune.sampler=random", "--no-track"])
    assert res.exit_code == 130, res.output
    cfg = seen["cfg"]
    assert (cfg.tune.n_trials, cfg.tune.workers, cfg.agent.total_timesteps, cfg.agent.seed) == (3, 1, 12345, 9)
    assert cfg.tune.sampler == "random" and cfg.name == "quickstart" and seen["kw"]["track"] is False


def test_run_starts_no_thread_so_its_workers_can_be_forked(monkeypatch):
    """While ``run`` shows its status line, the process runs no thread of its own: the tuning and seed
    workers are forked only from a single-threaded process (rich's ``console.status`` redraws from one)."""
    import threading

    import intradayjules.pipeline.main_job as mj

    seen = {}
    before = threading.active_count()

    def fake(cfg, progress=None, **kw):
        progress("tune", "a stage line")
        progress("train", "half way", 0.5)
        seen["threads"] = threading.active_count()
        raise KeyboardInterrupt

    monkeypatch.setattr(mj, "run_main", fake)
    res = runner.invoke(app, ["run", "--no-track"])
    assert res.exit_code == 130 and "a stage line" in res.output, res.output
    assert seen["threads"] == before


def test_init_writes_an_editable_preset(tmp_path):
    res = runner.invoke(app, ["init", str(tmp_path / "cfg")])
    assert res.exit_code == 0, res.output
    written = tmp_path / "cfg" / "quickstart.yaml"
    assert written.exists() and runner.invoke(app, ["config", "validate", str(written)]).exit_code == 0
    again = runner.invoke(app, ["init", str(tmp_path / "cfg")])
    assert again.exit_code == 2 and "--force" in again.output
    assert runner.invoke(app, ["init", str(tmp_path / "x"), "--preset", "nope"]).exit_code == 2


def test_experiment_refuses_a_budget_below_learning_starts():
    res = runner.invoke(app, ["experiment", "illiquid", "-c", "illiquid_experiment", "--timesteps", "2000"])
    assert res.exit_code == 2 and "agent.learning_starts" in res.output


def test_env_rollout_piped_and_json():
    table = runner.invoke(app, ["env", "rollout", "--episodes", "1", "--policy", "flat"])  # not a terminal
    assert table.exit_code == 0 and "…" not in table.output and "session_close" in table.output
    js = runner.invoke(app, ["env", "rollout", "--episodes", "2", "--policy", "flat", "--json"])
    rows = json.loads(js.stdout)
    assert len(rows) == 2 and all(r["pnl"] == 0 for r in rows)


def test_data_validate_json(tmp_path):
    out = tmp_path / "bars"
    assert runner.invoke(app, ["data", "synth", "--out", str(out), "--symbols", "3", "--days", "30"]).exit_code == 0
    res = runner.invoke(app, ["data", "validate", str(out), "--json"])
    d = json.loads(res.stdout)
    assert d["bars"] > 0 and {s["symbol"] for s in d["symbols"]} == {"LQ01", "MD01", "IL01"}
    assert d["sessions"]["total"] == 30


@pytest.mark.parametrize("kind, cls", [("tpe", optuna.samplers.TPESampler), ("random", optuna.samplers.RandomSampler),
                                       ("cmaes", optuna.samplers.CmaEsSampler), ("qmc", optuna.samplers.QMCSampler)])
def test_samplers(kind, cls):
    assert isinstance(make_sampler(42, 3, 2, kind), cls)


def test_qmc_resumes_its_sequence_and_pruner_warmup():
    def sample(n_first, n_total):
        study = optuna.create_study(sampler=make_sampler(7, 0, 1, "qmc"))
        xs = []
        for i in range(n_total):
            if i == n_first:  # a "resumed" study: a new sampler object, same seed
                study.sampler = make_sampler(7, i, 1, "qmc")
            t = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
            xs.append(t.params["x"])
            study.tell(t, t.params["x"])
        return xs

    a, b = sample(99, 8), sample(4, 8)
    assert a == b and len(set(a)) == 8  # continued, never repeated
    p = make_pruner("median", startup_trials=1, warmup_steps=5)
    assert p._n_startup_trials == 1 and p._n_warmup_steps == 5
