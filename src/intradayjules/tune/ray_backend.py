"""Ray Tune backend, the only module that imports ray (lazily, inside functions).

``run_ray`` builds a ``tune.Tuner`` over a function trainable that calls the configured trial function:

- ``asha``: ``OptunaSearch`` (TPE, seed ``tune.sampler_seed``) + ``ASHAScheduler(grace_period=10,
  reduction_factor=2)`` on ``training_iteration`` (= number of ``reporter.report`` calls);
- ``fifo``: ``OptunaSearch`` alone;
- ``pbt``: ``PopulationBasedTraining(perturbation_interval=20)`` over the same space expressed as
  ``tune`` domains (PBT replaces a searcher; the initial population is drawn by a
  ``BasicVariantGenerator(random_state=seed)``). Trials checkpoint every ``perturbation_interval``
  reports (``reporter.checkpoint_every``) and restore from ``tune.get_checkpoint()``;
  ``CheckpointConfig(num_to_keep>=4)``.

Resources per trial: ``cpus_per_trial`` and ``gpus_per_trial`` (fractions allowed, e.g. 0.25: four
trials share one GPU; Ray sets each trial's ``CUDA_VISIBLE_DEVICES`` and the trial uses ``cuda:0``).
Results go to ``storage_path=<workdir>/tune_ray`` (absolute; on a cluster it must be shared storage),
experiment ``<study>``; ``resume=True`` uses ``Tuner.restore``; ``FailureConfig(max_failures)``
retries trials whose node or process died.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..config import ExperimentConfig
from .results import TuneError, TuneResult, json_safe, run_dir_for, write_config
from .cluster import apply_ray_env
from .optuna_backend import make_sampler
from .space import ARCHITECTURE_PARAMS, SIMPLEX_LOW, SearchSpace, simplex_name
from .trial import (
    COMPLETE,
    FAILED,
    PRUNED,
    check_value,
    close_callbacks,
    fire,
    load_callable,
    make_callbacks,
    trial_device,
)

METRIC = "objective"
DONE_KEY = "trial_complete"  # 1 on the final report of a trial that ran to the end ("done" is Ray's)
ASHA_MAX_T = 100_000  # ASHA stops trials at max_t reports: keep it out of the way
# Ray saves the experiment state (what --resume restores) at most every 10 s by default; a trial that
# finished after the last save runs again after a crash. 2 s (cheap for studies of this size) narrows
# that window; TUNE_GLOBAL_CHECKPOINT_S in the environment overrides it.
EXPERIMENT_CHECKPOINT_S = "2"


# ----------------------------------------------------------------------------------- trial side
class RayReporter:
    """``report`` -> ``tune.report``; a checkpoint written since the last report rides along."""

    def __init__(self, checkpoint_every: int | None, node_id: str | None):
        self.checkpoint_every = checkpoint_every
        self._node = node_id
        self._pending: Path | None = None
        self._restore: Path | None = None
        self._restore_checked = False
        self.last_step = 0

    def report(self, step: int, value: float) -> bool:
        v = check_value(value, f"intermediate value at step {step}")
        self.last_step = int(step)
        self._send({METRIC: v, "step": int(step), DONE_KEY: 0})
        return False

    @property
    def trial_key(self) -> str:
        """The trial's id in the study results (``TuneResult.trials[*]["id"]``): its directory name."""
        from ray import tune

        return Path(tune.get_context().get_trial_dir()).name

    def final(self, value: float) -> None:
        self._send({METRIC: value, "step": self.last_step + 1, DONE_KEY: 1})

    def _send(self, metrics: dict[str, Any]) -> None:
        from ray import tune

        metrics["node_id"] = self._node
        ckpt = None
        if self._pending is not None and any(self._pending.iterdir()):
            ckpt = tune.Checkpoint.from_directory(str(self._pending))
        tune.report(metrics, checkpoint=ckpt)
        if ckpt is not None:  # persisted to storage by now
            shutil.rmtree(self._pending, ignore_errors=True)
            self._pending = None

    def checkpoint_dir(self) -> Path:
        if self._pending is None:
            self._pending = Path(tempfile.mkdtemp(prefix="ij_ckpt_"))
        return self._pending

    def restore_dir(self) -> Path | None:
        if not self._restore_checked:
            from ray import tune

            self._restore_checked = True
            ck = tune.get_checkpoint()
            if ck is not None:
                self._restore = Path(ck.to_directory(tempfile.mkdtemp(prefix="ij_restore_")))
        return self._restore

    def cleanup(self) -> None:
        for d in (self._pending, self._restore):
            if d is not None:
                shutil.rmtree(d, ignore_errors=True)


def _trainable(config: dict[str, Any], base_cfg: dict[str, Any], checkpoint_every: int | None) -> None:
    """Runs in a Ray worker: raw sampled values -> params -> trial function -> final report."""
    import ray

    cfg = ExperimentConfig.model_validate(base_cfg)
    threads = cfg.agent.torch_threads  # 1 by default: small MLPs are fastest on one thread
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:  # torch already imported in this worker process
        sys.modules["torch"].set_num_threads(threads)
    space = SearchSpace.from_config(cfg.tune, cfg.agent.algo)
    params = space.materialize(config)
    tcfg = space.apply(cfg, params)
    tcfg.agent.device = trial_device(cfg.tune.gpus_per_trial, os.environ.get("CUDA_VISIBLE_DEVICES"))
    fn = load_callable(cfg.tune.trial_fn)
    reporter = RayReporter(checkpoint_every, ray.get_runtime_context().get_node_id())
    try:
        value = check_value(fn(params, tcfg, reporter))
        reporter.final(value)
    finally:
        reporter.cleanup()


# ---------------------------------------------------------------------------------- driver side
def _pbt_mutations(space: SearchSpace) -> dict[str, Any]:
    """PBT's ``hyperparam_mutations``: numeric domains (PBT perturbs x0.8/x1.2 or resamples; values are
    clipped back into bounds by ``SearchSpace.materialize``), categorical as lists (PBT shifts to a
    neighbouring choice). Network shapes (``ARCHITECTURE_PARAMS``) are left out: an exploiting trial keeps
    its donor's, so the donor's weights fit it."""
    out = {k: v for k, v in _ray_domains(space).items() if k not in ARCHITECTURE_PARAMS}
    for p in space.params:
        if p.spec.type == "categorical" and p.name not in ARCHITECTURE_PARAMS:
            out[p.name] = p.encoded_choices
    return out


def _ray_domains(space: SearchSpace) -> dict[str, Any]:
    """The space as ``tune`` domains (PBT's initial population)."""
    from ray import tune

    out: dict[str, Any] = {}
    for p in space.params:
        s = p.spec
        if s.type == "float":
            out[p.name] = tune.loguniform(s.low, s.high) if s.log else tune.uniform(s.low, s.high)
        elif s.type == "int":
            lo, hi = int(s.low), int(s.high) + 1  # tune's randint excludes the upper bound
            out[p.name] = tune.lograndint(lo, hi) if s.log else tune.randint(lo, hi)
        else:
            out[p.name] = tune.choice(p.encoded_choices)
    for c in space.simplex:
        out[simplex_name(c)] = tune.uniform(SIMPLEX_LOW, 1.0)
    return out


def _make_callback(space: SearchSpace, callbacks: list[Any]) -> Any:
    """Adapt the tune layer's callbacks (on_trial_start/on_report/on_trial_end) to a Ray driver Callback."""
    from ray.tune import Callback

    class _Adapter(Callback):
        def _params(self, trial: Any) -> dict[str, Any]:
            try:
                return space.materialize(trial.config)
            except Exception:  # noqa: BLE001
                return dict(trial.config)

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            fire(callbacks, "on_trial_start", trial.trial_id, self._params(trial))

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            if not result.get(DONE_KEY) and METRIC in result:
                fire(callbacks, "on_report", trial.trial_id, int(result.get("step", 0)), float(result[METRIC]))

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            last = trial.last_result or {}
            state = COMPLETE if last.get(DONE_KEY) else PRUNED
            fire(callbacks, "on_trial_end", trial.trial_id, self._params(trial), state, last.get(METRIC))

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            fire(callbacks, "on_trial_end", trial.trial_id, self._params(trial), FAILED, None)

    return _Adapter()


def _set_env(address: str | None, token_file: str | None) -> None:
    """The cluster environment (token auth with our token file, no usage stats), before ray reads it."""
    apply_ray_env(token_file, create_token=address is None)
    if address is None:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", EXPERIMENT_CHECKPOINT_S)
    if "ray" in sys.modules:  # ray already imported in this process: make it re-read RAY_AUTH_*
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


def _init_ray(address: str | None, num_cpus: int | None, temp_dir: str | None) -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=True,
                                  logging_level="WARNING")
    if address is None:
        ray.init(num_cpus=num_cpus, _temp_dir=temp_dir, **kwargs)
    else:
        ray.init(address=address, **kwargs)


def can_restore(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a Ray Tune experiment that ``Tuner.restore`` can continue."""
    from ray import tune

    return bool(tune.Tuner.can_restore(str(run_dir)))


def run_ray(
    cfg: ExperimentConfig,
    *,
    n_trials: int | None = None,
    study: str | None = None,
    address: str | None = None,
    scheduler: str | None = None,
    cpus_per_trial: float | None = None,
    gpus_per_trial: float | None = None,
    max_failures: int | None = None,
    num_cpus: int | None = None,
    resume: bool = False,
    callbacks: list[Any] | None = None,
    token_file: str | None = None,
    temp_dir: str | None = None,
    verbose: int = 0,
) -> TuneResult:
    """Run (or resume) a Ray Tune search. ``address``: None = a local Ray started here (``num_cpus``,
    default ``tune.workers`` or all cores; Ray's session files under ``temp_dir``, default /tmp/ray),
    ``"auto"`` or ``HOST:PORT`` = an existing cluster. ``callbacks`` run in this (driver) process."""
    updates = {k: v for k, v in dict(cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                                     max_failures=max_failures, scheduler=scheduler,
                                     n_trials=n_trials).items() if v is not None}
    if address is not None:
        updates["address"] = address
    cfg = cfg.model_copy(update={"tune": cfg.tune.model_copy(update=updates)})
    cfg = ExperimentConfig.model_validate(cfg.model_dump())  # re-validate the overrides
    tc = cfg.tune
    name = study or tc.study_name or cfg.name
    run_dir = run_dir_for(cfg, name, "ray")
    storage_path = run_dir.parent
    space = SearchSpace.from_config(tc, cfg.agent.algo)
    load_callable(tc.trial_fn)
    cbs = make_callbacks(cfg, callbacks)
    _set_env(tc.address, token_file)

    from ray import tune

    can_restore = tune.Tuner.can_restore(str(run_dir))
    if can_restore and not resume:
        raise TuneError(f"Ray experiment {run_dir} already exists; pass --resume to continue it "
                        "or choose another --study")
    if resume and not can_restore:
        raise TuneError(f"--resume: no Ray experiment to restore at {run_dir}")
    write_config(cfg, run_dir)

    if tc.scheduler == "pbt" and tc.reports_per_trial <= tc.pbt_perturbation_interval:
        import logging

        logging.getLogger(__name__).warning(
            "PBT perturbs every %d reports but tune.reports_per_trial=%d: trials will barely exploit; "
            "use e.g. reports_per_trial=%d", tc.pbt_perturbation_interval, tc.reports_per_trial,
            3 * tc.pbt_perturbation_interval)
    local_cpus = num_cpus or (tc.workers or None)
    _init_ray(tc.address, local_cpus, temp_dir)
    import ray

    try:
        if tc.gpus_per_trial > 0:
            have = ray.cluster_resources().get("GPU", 0)
            if have < tc.gpus_per_trial:
                raise TuneError(f"tune.gpus_per_trial={tc.gpus_per_trial} but the Ray cluster has {have} GPU(s)")
        checkpoint_every = tc.pbt_perturbation_interval if tc.scheduler == "pbt" else None
        trainable = tune.with_resources(
            tune.with_parameters(_trainable, base_cfg=cfg.model_dump(mode="json"), checkpoint_every=checkpoint_every),
            {"cpu": tc.cpus_per_trial, "gpu": tc.gpus_per_trial},
        )
        run_config = tune.RunConfig(
            name=name,
            storage_path=str(storage_path),
            failure_config=tune.FailureConfig(max_failures=tc.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=tc.checkpoint_num_to_keep),
            callbacks=[_make_callback(space, cbs)] if cbs else None,
            verbose=verbose,
        )
        t0 = time.perf_counter()
        if resume:
            tuner = tune.Tuner.restore(str(run_dir), trainable=trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=False)
        else:
            tuner = tune.Tuner(trainable, tune_config=_tune_config(tc, space), run_config=run_config,
                               param_space=_ray_domains(space) if tc.scheduler == "pbt" else None)
        grid = tuner.fit()
        wall = time.perf_counter() - t0
        result = _summarize(grid, name, run_dir, tc.direction, space, wall)
    finally:
        ray.shutdown()
    result.write()
    close_callbacks(cbs)
    return result


class _DefineByRun:
    """OptunaSearch's define-by-run space (a picklable object: Ray pickles the searcher's state)."""

    def __init__(self, space: SearchSpace):
        self.space = space

    def __call__(self, trial: Any) -> None:
        self.space.suggest(trial)  # raw values land in the trial config under their own names


def _tune_config(tc: Any, space: SearchSpace) -> Any:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining
    from ray.tune.search import BasicVariantGenerator
    from ray.tune.search.optuna import OptunaSearch

    mode = "max" if tc.direction == "maximize" else "min"
    if tc.scheduler == "pbt":
        sched = PopulationBasedTraining(
            time_attr="training_iteration", perturbation_interval=tc.pbt_perturbation_interval,
            hyperparam_mutations=_pbt_mutations(space),
        )
        search = BasicVariantGenerator(random_state=tc.sampler_seed)
    else:
        search = OptunaSearch(space=_DefineByRun(space), metric=METRIC, mode=mode,
                              sampler=make_sampler(tc.sampler_seed, 0, 1, tc.sampler))
        if tc.scheduler == "asha":
            sched = ASHAScheduler(time_attr="training_iteration", grace_period=tc.asha_grace_period,
                                  reduction_factor=tc.asha_reduction_factor, max_t=ASHA_MAX_T)
        else:
            sched = FIFOScheduler()
    return tune.TuneConfig(metric=METRIC, mode=mode, search_alg=search, scheduler=sched,
                           num_samples=tc.n_trials, reuse_actors=True)


def _summarize(grid: Any, name: str, run_dir: Path, direction: str, space: SearchSpace, wall: float) -> TuneResult:
    trials = []
    counts = {COMPLETE: 0, PRUNED: 0, FAILED: 0}
    best_v: float | None = None
    best_p: dict[str, Any] | None = None
    better = (lambda a, b: a > b) if direction == "maximize" else (lambda a, b: a < b)
    for r in grid:
        m = r.metrics or {}
        if r.error is not None:
            state = FAILED
        elif m.get(DONE_KEY):
            state = COMPLETE
        else:
            state = PRUNED
        counts[state] += 1
        try:
            params = json_safe(space.materialize(r.config))
        except Exception:  # noqa: BLE001
            params = json_safe(dict(r.config or {}))
        value = m.get(METRIC)
        trials.append({"id": Path(r.path).name if r.path else None, "state": state, "value": value,
                       "last_step": m.get("step"), "iterations": m.get("training_iteration"),
                       "node_id": m.get("node_id"), "params": params,
                       "seconds": m.get("time_total_s"),
                       "fail_reason": None if r.error is None else f"{type(r.error).__name__}: {r.error}"[:2000]})
        if state == COMPLETE and value is not None and (best_v is None or better(value, best_v)):
            best_v, best_p = float(value), params
    return TuneResult(backend="ray", study=name, run_dir=str(run_dir), direction=direction,
                      best_value=best_v, best_params=best_p, n_complete=counts[COMPLETE],
                      n_pruned=counts[PRUNED], n_failed=counts[FAILED], n_interrupted=0, wall_s=wall,
                      trials=trials, storage=str(run_dir.parent))
