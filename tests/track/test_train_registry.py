"""train -> log -> register -> alias -> load by alias -> evaluate, against sqlite and a real server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from intradayjules.config import ExperimentConfig, dump_config
from intradayjules.track import (IntegrityError, Lineage, RegistryError, flatten_config, get_version, list_models,
                                 list_versions, load_model, load_sb3, promote, register_model, resolve_model,
                                 write_sha256_sidecar)

from intradayjules.agents.export import save_model

from .conftest import artifact_file_on_disk


def _train_with_tracking(tracker, tmp_path, steps=400, eval_every=100):
    """A real SB3 DQN run on CartPole whose callback logs evaluation numbers to the run by step."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(1)
    cfg = ExperimentConfig(name="cartpole-test")
    lineage = Lineage.collect(cfg, data_fingerprint="fp-cartpole", feature_store_key="fs-key", feature_version="1")
    run = tracker.start_run("train", params=flatten_config(cfg), tags=lineage.tags())
    logged = []

    class EvalLogger(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every == 0:
                mean, std = evaluate_policy(self.model, gym.make("CartPole-v1"), n_eval_episodes=2,
                                            deterministic=True)
                logged.append((self.num_timesteps, float(mean), float(std)))
                run.log_metrics({"eval/mean_return": mean, "eval/std_return": std}, step=self.num_timesteps)
            return True

    model = DQN("MlpPolicy", gym.make("CartPole-v1"), learning_starts=50, buffer_size=1_000, seed=1,
                policy_kwargs={"net_arch": [32]}, device="cpu")
    model.learn(steps, callback=EvalLogger())
    out = tmp_path / "artifacts"
    out.mkdir()
    save_model(model, out / "model.zip")  # + model.zip.hmac and model.bundle/, as the trainer writes
    scripted = torch.jit.trace(model.q_net.q_net.eval(), torch.zeros(1, 4))
    scripted.save(str(out / "q_net.pt"))
    (out / "config.yaml").write_text(dump_config(cfg))
    (out / "evaluation.json").write_text(json.dumps({"evals": logged}))
    (out / "report.md").write_text("# report\n")
    return cfg, lineage, run, model, logged, out


def test_train_run_params_metrics_artifacts_tags(tracker, tmp_path):
    cfg, lineage, run, model, logged, out = _train_with_tracking(tracker, tmp_path)
    digests = run.log_artifacts(out)
    run.end()
    r = tracker.client.get_run(run.run_id)
    assert r.info.status == "FINISHED"
    assert r.data.params == flatten_config(cfg)
    for key, col in (("eval/mean_return", 1), ("eval/std_return", 2)):
        hist = sorted(tracker.client.get_metric_history(run.run_id, key), key=lambda m: m.step)
        assert [(m.step, m.value) for m in hist] == [(e[0], pytest.approx(e[col])) for e in logged]
    assert [e[0] for e in logged] == [100, 200, 300, 400]
    for tag, value in lineage.tags().items():
        assert r.data.tags[tag] == value
    assert len(r.data.tags["intradayjules.git_commit"]) == 40
    names = {a.path for a in tracker.client.list_artifacts(run.run_id)}
    assert names == {"model.zip", "model.zip.hmac", "model.bundle", "q_net.pt", "config.yaml", "evaluation.json",
                     "report.md"}
    names = names - {"model.bundle"} | {"model.bundle/manifest.json", "model.bundle/weights.safetensors"}
    # every artifact's sha256 is recorded in the tracking database and matches what comes back
    dl = tracker.download_run(run.run_id, "", tmp_path / "dl")
    for name in names:
        want = hashlib.sha256((out / name).read_bytes()).hexdigest()
        assert digests[name] == want == r.data.tags[f"intradayjules.sha256/{name}"]
        assert hashlib.sha256((dl / name).read_bytes()).hexdigest() == want


def test_register_alias_load_evaluate(tracker, tmp_path):
    import gymnasium as gym

    cfg, lineage, run, model, logged, out = _train_with_tracking(tracker, tmp_path, steps=300)
    run.end()
    name = tracker.target.registered_model
    v1 = register_model(tracker, run.run_id, out / "model.zip", lineage=lineage)
    assert (v1.name, v1.version, v1.aliases, v1.run_id) == (name, "1", ["champion"], run.run_id)
    assert v1.tags["intradayjules.model_sha256"] == hashlib.sha256((out / "model.zip").read_bytes()).hexdigest()
    assert v1.tags["intradayjules.data_fingerprint"] == "fp-cartpole"
    assert v1.tags["intradayjules.feature_version"] == "1"
    assert v1.tags["intradayjules.git_commit"] == lineage.git_commit

    # load by alias as pyfunc: observation batch -> the same greedy actions as the trained model
    pyfunc = load_model(tracker, f"models:/{name}@champion", tmp_path / "m1")
    obs = np.random.default_rng(0).normal(scale=0.5, size=(64, 4)).astype(np.float32)
    expected = model.predict(obs, deterministic=True)[0]
    got = pyfunc.predict(obs)
    assert got.shape == (64,)
    np.testing.assert_array_equal(got, expected)

    # evaluate the loaded model: identical episode returns to the original on the same seeds
    def episode_returns(policy, seeds):
        env = gym.make("CartPole-v1")
        rets = []
        for s in seeds:
            o, _ = env.reset(seed=s)
            done, total = False, 0.0
            while not done:
                a = int(np.asarray(policy(o[None])).reshape(-1)[0])
                o, r, term, trunc, _ = env.step(a)
                total += r
                done = term or trunc
            rets.append(total)
        return rets

    with pytest.raises(IntegrityError, match="trust_pickle"):
        load_sb3(tracker, f"models:/{name}@champion")  # the SB3 object means unpickling: explicit trust only
    loaded = load_sb3(tracker, f"models:/{name}@champion", trust_pickle=True)
    seeds = [0, 1, 2]
    ref = episode_returns(lambda o: model.predict(o, deterministic=True)[0], seeds)
    assert episode_returns(pyfunc.predict, seeds) == ref
    assert episode_returns(lambda o: loaded.predict(o, deterministic=True)[0], seeds) == ref

    # a second version, promote it, the alias moves; models:/NAME/VERSION works too
    run2 = tracker.start_run("train-2", tags=lineage.tags())
    run2.end()
    v2 = register_model(tracker, run2.run_id, out / "model.zip", lineage=lineage, alias=None)
    assert v2.version == "2" and v2.aliases == []
    assert get_version(tracker, name, "@champion").version == "1"
    promote(tracker, name, 2, "champion")
    assert get_version(tracker, name, "champion").version == "2"
    assert [(v.version, v.aliases) for v in list_versions(tracker, name)] == [("1", []), ("2", ["champion"])]
    assert resolve_model(tracker, f"models:/{name}/1").version == "1"
    assert resolve_model(tracker, f"runs:/{run.run_id}/model").run_id == run.run_id
    listed = [m for m in list_models(tracker) if m["name"] == name]
    assert listed == [{"name": name, "versions": 2, "latest": 2, "aliases": {"champion": "2"}}]
    with pytest.raises(RegistryError, match="not found"):
        get_version(tracker, name, "@no-such-alias")
    with pytest.raises(RegistryError, match="not found"):
        promote(tracker, name, 99, "champion")


def test_tampered_model_is_refused(tracker, backend, tmp_path, cartpole_zip, request):
    run = tracker.start_run("train")
    run.end()
    v = register_model(tracker, run.run_id, cartpole_zip)
    ref = f"models:/{v.name}@champion"
    assert resolve_model(tracker, ref, tmp_path / "ok").verified
    server = request.getfixturevalue("mlflow_server") if backend == "server" else None
    on_disk = artifact_file_on_disk(backend, tracker, run.run_id, "model/data/sb3/model.zip", server)
    data = bytearray(on_disk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    on_disk.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="integrity"):
        resolve_model(tracker, ref, tmp_path / "bad")
    with pytest.raises(IntegrityError):
        load_model(tracker, ref, tmp_path / "bad2")
    # tampering with the digest inside the artifact store too is still caught (the registry's tag rules)
    meta = on_disk.parent / "sb3.json"
    meta.write_text(json.dumps({"algo": "DQN", "sha256": hashlib.sha256(bytes(data)).hexdigest()}))
    with pytest.raises(IntegrityError):
        resolve_model(tracker, ref, tmp_path / "bad3")


def test_local_model_files_verified_by_sidecar(tmp_path, cartpole_zip):
    import shutil

    p = tmp_path / "dqn.zip"
    shutil.copyfile(cartpole_zip, p)
    assert resolve_model(None, str(p)).verified is False
    write_sha256_sidecar(p)
    assert resolve_model(None, str(p)).verified is True
    obs = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(IntegrityError, match="--trust-pickle"):  # a bare zip, no bundle beside it
        load_model(None, str(p))
    assert load_model(None, str(p), trust_pickle=True).predict(obs).shape == (3,)
    with open(p, "ab") as f:
        f.write(b"\0")
    with pytest.raises(IntegrityError):
        resolve_model(None, str(p))
    with pytest.raises(RegistryError, match="tracking"):
        resolve_model(None, "models:/x@champion")
    with pytest.raises(RegistryError, match="expected models:/NAME@ALIAS"):
        resolve_model(None, "models:/only-a-name")


def test_register_refuses_run_without_model(tracker):
    run = tracker.start_run("empty")
    run.end()
    with pytest.raises(RegistryError, match="no intradayjules SB3 model"):
        register_model(tracker, run.run_id)


def test_standard_training_layout_then_register_from_run_only(tracker, tmp_path):
    from intradayjules.track import log_training_outputs

    cfg, lineage, run, model, logged, out = _train_with_tracking(tracker, tmp_path, steps=200)
    spec = out / "feature_spec.json"
    spec.write_text(json.dumps({"features": ["rsi_14"], "version": "1"}))
    digests = log_training_outputs(run, model_zip=out / "model.zip", torchscript=out / "q_net.pt",
                                   config_yaml=out / "config.yaml", feature_spec=spec,
                                   evaluation_json=out / "evaluation.json", report=out / "report.md",
                                   lineage=lineage)
    run.end()
    top = {a.path for a in tracker.client.list_artifacts(run.run_id)}
    assert top == {"model", "export", "config", "features", "evaluation", "lineage"}
    tags = tracker.client.get_run(run.run_id).data.tags
    for rel, digest in digests.items():
        assert tags[f"intradayjules.sha256/{rel}"] == digest
    assert digests["export/q_net.pt"] == hashlib.sha256((out / "q_net.pt").read_bytes()).hexdigest()
    # `models register RUN_ID`: the run already holds the model, nothing else is needed
    v = register_model(tracker, run.run_id)
    assert v.aliases == ["champion"] and v.tags["intradayjules.data_fingerprint"] == "fp-cartpole"
    # the TorchScript export round-trips to the same Q-values
    import torch

    scripted = torch.jit.load(str(tracker.download_run(run.run_id, "export/q_net.pt", tmp_path / "ts")))
    x = torch.randn(5, 4)
    torch.testing.assert_close(scripted(x), model.q_net.q_net(x))


def test_model_cache_is_verified_on_every_use_and_heals(tracker, backend, tmp_path, cartpole_zip, request):
    import os

    server = request.getfixturevalue("mlflow_server") if backend == "server" else None
    run = tracker.start_run("train")
    run.end()
    v = register_model(tracker, run.run_id, cartpole_zip)
    ref = f"models:/{v.name}@champion"
    digest = v.tags["intradayjules.model_sha256"]
    store_zip = artifact_file_on_disk(backend, tracker, run.run_id, "model/data/sb3/model.zip", server)
    good = store_zip.read_bytes()
    cache = os.environ["INTRADAYJULES_MODEL_CACHE"]
    entry = Path(cache) / digest

    # 1) the artifact store is corrupted before the first fetch: refused, and nothing enters the cache
    store_zip.write_bytes(good + b"corrupt")
    with pytest.raises(IntegrityError):
        resolve_model(tracker, ref)
    assert not entry.exists()
    # ... the store is repaired: the next call fetches, verifies and caches it (it used to fail forever)
    store_zip.write_bytes(good)
    first = resolve_model(tracker, ref)
    assert first.zip_path.is_relative_to(entry) and first.bundle_path is not None
    assert resolve_model(tracker, ref).zip_path == first.zip_path  # served from the cache

    # 2) a poisoned cache entry (the store is fine): detected on use, fetched again, healed
    with open(first.zip_path, "ab") as f:
        f.write(b"tampered")
    healed = resolve_model(tracker, ref)
    assert healed.zip_path == first.zip_path
    assert hashlib.sha256(healed.zip_path.read_bytes()).hexdigest() == digest

    # 3) cache and store both bad: refused, the bad entry is dropped rather than kept
    with open(first.zip_path, "ab") as f:
        f.write(b"tampered")
    store_zip.write_bytes(good + b"corrupt")
    with pytest.raises(IntegrityError):
        resolve_model(tracker, ref)
    assert not entry.exists()
