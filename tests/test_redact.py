"""Credential redaction: the password of a URI and secret query values become ***, nothing else changes."""

import pytest

from intradayjules.redact import REDACTED, Redactor, RedactingStream, redact_obj, redact_text, uri_password


@pytest.mark.parametrize("text, expected", [
    ("postgresql://tune:PASS@db.internal:5432/optuna", "postgresql://tune:***@db.internal:5432/optuna"),
    ("mysql+pymysql://u:p%40ss@h/d", "mysql+pymysql://u:***@h/d"),
    ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
    ("postgresql://tune:p@ss@db/x", "postgresql://tune:***@db/x"),  # an unescaped '@' in the password
    ("http://tune:pw@127.0.0.1:5000", "http://tune:***@127.0.0.1:5000"),
    ("storage: 'postgresql://a:b@h/x' and http://c:d@e:1/y end",
     "storage: 'postgresql://a:***@h/x' and http://c:***@e:1/y end"),
    ("https://h/x?sslmode=require&password=abc&token=t0k", "https://h/x?sslmode=require&password=***&token=***"),
])
def test_passwords_are_redacted(text, expected):
    assert redact_text(text) == expected


@pytest.mark.parametrize("text", [
    "sqlite:////abs/path/mlflow.db", "http://127.0.0.1:5000/api", "postgresql://tune@db/x",  # no password
    "journal:/runs/tune/s/journal.log", "http://127.0.0.1:5000/a@b", "a=1, b=2", "",
])
def test_text_without_a_password_is_unchanged(text):
    assert redact_text(text) == text


def test_nested_objects_and_literal_secrets(tmp_path):
    cfg = {"tune": {"storage": "postgresql://tune:PASS@db/o"}, "tracking": {"uri": None, "n": 3},
           "list": ["http://u:PASS@h", 1.5]}
    out = redact_obj(cfg)
    assert out == {"tune": {"storage": "postgresql://tune:***@db/o"}, "tracking": {"uri": None, "n": 3},
                   "list": ["http://u:***@h", 1.5]}
    assert cfg["tune"]["storage"].endswith("PASS@db/o")  # a copy: the original keeps the real value
    assert uri_password("postgresql://tune:p@ss@db/x") == "p@ss" and uri_password("sqlite:////x") is None
    r = Redactor([uri_password("postgresql://tune:S3cret@db/x"), None, ""])
    assert r("db: password S3cret rejected") == f"db: password {REDACTED} rejected"
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        RedactingStream(f, r).write("S3cret and http://x:y12@h\n")
    assert log.read_text() == "*** and http://x:***@h\n"


def test_every_writer_of_config_and_lineage_redacts(tmp_path):
    from intradayjules.config import ExperimentConfig, dump_config
    from intradayjules.evaluate.report import write_report_data
    from intradayjules.track.lineage import Lineage, flatten_config

    cfg = ExperimentConfig()
    cfg.tune.storage = "postgresql://tune:PASS123@db:5432/optuna"
    cfg.tracking.uri = "http://mlf:PASS123@mlflow.internal:5000"
    assert cfg.tune.storage.count("PASS123") == 1  # the config itself keeps the real value (to connect)
    dumped = dump_config(cfg)  # config.yaml of every run, `config show`
    assert "PASS123" not in dumped and "postgresql://tune:***@db:5432/optuna" in dumped
    params = flatten_config(cfg)  # MLflow params
    assert params["tracking.uri"] == "http://mlf:***@mlflow.internal:5000"
    assert not [k for k, v in params.items() if "PASS123" in v]
    lin = Lineage.collect(cfg)  # lineage/config.json and its sha256 tag
    assert "PASS123" not in lin.config_json() and "PASS123" not in str(lin.tags())
    write_report_data(tmp_path, {"config_yaml": "storage: " + cfg.tune.storage,  # report.html is rendered
                                 "lineage": {"tracking": cfg.tracking.uri}})  # from this file only
    text = (tmp_path / "report_data.json").read_text()
    assert "PASS123" not in text and "mlf:***@" in text
