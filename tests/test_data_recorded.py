"""A run with --data records the data it really used wherever it records its config (issue 20)."""

import yaml

from intradayjules.config import ExperimentConfig, SyntheticConfig, config_from_dict, dump_config
from intradayjules.data.synthetic import generate
from intradayjules.pipeline.prepare import prepare


def test_prepared_config_names_the_data_path_and_reruns_on_it(tmp_path):
    folder = tmp_path / "bars"
    generate(SyntheticConfig(n_symbols=3, days=35, seed=7)).write(folder)
    cfg = ExperimentConfig.model_validate({
        "name": "rec", "workdir": str(tmp_path / "runs"), "features": {"store_dir": str(tmp_path / "store")},
        "env": {"mode": "multi", "n_assets": 3}, "tracking": {"enabled": False},
        "data": {"synthetic": {"n_symbols": 3, "days": 35, "seed": 1}}})  # a different synthetic market
    assert cfg.data.source == "synthetic"
    p = prepare(cfg, folder)
    assert p.cfg.data.source == "path" and p.cfg.data.path == folder.resolve()
    recorded = yaml.safe_load(dump_config(p.cfg))
    assert recorded["data"]["source"] == "path" and recorded["data"]["path"] == str(folder.resolve())
    # rerunning the recorded config (no --data) trains on the same bars, not on the synthetic market
    again = prepare(config_from_dict(recorded))
    assert again.data_fingerprint == p.data_fingerprint
    assert prepare(cfg).data_fingerprint != p.data_fingerprint
