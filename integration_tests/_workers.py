"""Helpers for the distributed tests: a synthetic corpus of learning curves, a replay objective
whose trials take their configuration from a table indexed by the trial number (no enqueued
trials, see the SQLite pitfall in the notes), a pruner that checks what it fitted on, and a
worker entry point for ``multiprocessing``.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import json
import math
import os
import time
import traceback
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import FloatDistribution
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage
from optuna.storages import JournalStorage
from optuna.storages import RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import Trial
from optuna.trial import TrialState

from optuna_srp import SRPPruner


N_CONFIGS = 80
N_STEPS = 20
DISTRIBUTIONS: dict[str, BaseDistribution] = {
    "x": FloatDistribution(0.0, 1.0),
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
}
PRUNER_KWARGS: dict[str, Any] = {"n_startup_trials": 5, "n_estimators": 5, "seed": 0}
TERMINAL = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class Config:
    params: dict[str, float]
    curve: list[float]


def make_corpus(n: int = N_CONFIGS, n_steps: int = N_STEPS, seed: int = 0) -> list[Config]:
    """Saturating exponentials: the final value depends on ``x`` and ``lr`` plus noise, the
    speed on ``lr``; each step adds a little measurement noise."""
    rng = np.random.RandomState(seed)
    corpus = []
    for _ in range(n):
        x = float(rng.uniform(0.0, 1.0))
        lr = float(10 ** rng.uniform(-4.0, -1.0))
        final = 0.9 - 0.6 * (x - 0.7) ** 2 - 0.04 * (math.log10(lr) + 2.0) ** 2
        final += float(rng.normal(0.0, 0.01))
        tau = 1.0 + 5.0 * (-1.0 - math.log10(lr)) / 3.0  # 1 (fast) to 6 (slow)
        t = np.arange(1, n_steps + 1)
        curve = final * (1.0 - np.exp(-t / tau)) + rng.normal(0.0, 0.005, n_steps)
        corpus.append(Config({"x": x, "lr": lr}, [float(v) for v in curve]))
    return corpus


def make_order(n: int = N_CONFIGS, seed: int = 1) -> list[int]:
    """The replay ordering: trial number ``k`` runs configuration ``order[k]``."""
    return [int(i) for i in np.random.RandomState(seed).permutation(n)]


class TableSampler(BaseSampler):
    """Gives trial number ``k`` the parameters of row ``k`` of a table (modulo its length)."""

    def __init__(self, table: Sequence[dict[str, float]]) -> None:
        self._table = list(table)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._table[trial.number % len(self._table)][param_name]


def make_sampler(corpus: Sequence[Config], order: Sequence[int]) -> TableSampler:
    return TableSampler([corpus[i].params for i in order])


StepHook = Callable[[Trial, int], None]


def make_objective(
    corpus: Sequence[Config], order: Sequence[int], on_step: StepHook | None = None
) -> Callable[[Trial], float]:
    def objective(trial: Trial) -> float:
        config = corpus[order[trial.number % len(order)]]
        for name, dist in DISTRIBUTIONS.items():
            assert isinstance(dist, FloatDistribution)
            value = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
            assert value == config.params[name], (trial.number, name)
        for step, value in enumerate(config.curve):
            trial.report(value, step)
            if on_step is not None:
                on_step(trial, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return config.curve[-1]

    return objective


class CheckedSRPPruner(SRPPruner):
    """An SRPPruner that, after each decision, checks that the model it holds was fitted only
    on trials that are COMPLETE in storage, with the values storage has for them."""

    def __init__(self, *, record_every_decision: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.record_every_decision = record_every_decision
        self.n_calls = 0
        self.n_model_calls = 0
        self.n_pruned = 0
        self.violations: list[str] = []
        # What the models' decisions of a trial at a step (the key) rested on that another
        # worker's timing can change: the complete trials the models had learned from, and the
        # other trials that had reported at or past the step (the peers of the top-fraction
        # keep). Recorded at the prunes, or at every decision with record_every_decision. The
        # peers are read just after the decision, so a worker's record may also hold a trial
        # that reported in between: a difference from the single-process record can be that.
        self.evidence: dict[tuple[int, int], list[list[int]]] = {}

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        decision = super().prune(study, trial)
        fit = self._fit_for(study)
        step = trial.last_step
        if fit is not None and step is not None and (decision or self.record_every_decision):
            peers = sorted(
                t.number
                for t in study.get_trials(deepcopy=False)
                if t.number != trial.number
                and t.intermediate_values
                and max(t.intermediate_values) >= step
            )
            with self._lock:
                self.evidence[trial.number, step] = [sorted(fit.complete_numbers), peers]
        problems: list[str] = []
        if fit is not None:
            # COMPLETE is final, so "complete now" is a superset of "complete at fit time".
            complete = {
                t.number: t
                for t in study._storage.get_all_trials(
                    study._study_id, deepcopy=False, states=(TrialState.COMPLETE,)
                )
            }
            missing = sorted(fit.complete_numbers - complete.keys())
            if missing:
                problems.append(f"trial {trial.number}: fit on non-complete trials {missing}")
            for record in fit.records:
                stored = complete.get(record.number)
                if stored is None or record.final is None:
                    problems.append(f"trial {trial.number}: record {record.number} not complete")
                elif not _same(record.final, stored.value):
                    problems.append(
                        f"trial {trial.number}: record {record.number} final {record.final} "
                        f"!= stored {stored.value}"
                    )
        with self._lock:  # the base class's RLock: n_jobs threads share this pruner
            self.n_calls += 1
            self.n_model_calls += fit is not None
            self.n_pruned += decision
            self.violations.extend(problems)
        return decision


def _same(a: float, b: float | None) -> bool:
    if b is None:
        return False
    return (math.isnan(a) and not math.isfinite(b)) or a == b


@dataclass
class StorageSpec:
    """How a process opens the shared storage: ``kind`` is sqlite, journal, postgres or memory
    (``location`` is a file path or a URL)."""

    kind: str
    location: str = ""
    heartbeat_interval: int | None = None
    grace_period: int | None = None

    def open(self) -> BaseStorage:
        if self.kind == "memory":
            return optuna.storages.InMemoryStorage()
        if self.kind == "journal":
            return JournalStorage(JournalFileBackend(self.location))
        url = f"sqlite:///{self.location}" if self.kind == "sqlite" else self.location
        engine_kwargs: dict[str, Any] = {}
        if self.kind == "sqlite":
            # Several writers: wait for the file lock instead of failing after 5 s.
            engine_kwargs["connect_args"] = {"timeout": 120}
        return RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=self.heartbeat_interval,
            grace_period=self.grace_period,
        )


@dataclass
class WorkerSpec:
    storage: StorageSpec
    study_name: str
    n_trials: int
    result_path: str
    worker: int = 0
    n_jobs: int = 1
    corpus_seed: int = 0
    order_seed: int = 1
    # (i, step): in the first of this worker's trials from its i-th (0-based) on that reaches
    # ``step``, write ``hang_marker`` and sleep until killed.
    hang_at: tuple[int, int] | None = None
    hang_marker: str = ""
    pruner_kwargs: dict[str, Any] = field(default_factory=lambda: dict(PRUNER_KWARGS))
    record_every_decision: bool = False  # CheckedSRPPruner's evidence at every decision


def run_worker(spec: WorkerSpec) -> None:
    """Process entry point: replay ``n_trials`` trials, then write a JSON result file."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result: dict[str, Any] = {"worker": spec.worker, "pid": os.getpid(), "error": None}
    try:
        result.update(replay(spec))
    except BaseException:
        result["error"] = traceback.format_exc()
    with open(spec.result_path + ".tmp", "w") as f:
        json.dump(result, f)
    os.replace(spec.result_path + ".tmp", spec.result_path)
    if result["error"] is not None:
        raise SystemExit(1)


def replay(spec: WorkerSpec, storage: BaseStorage | None = None) -> dict[str, Any]:
    """Replay trials through one CheckedSRPPruner; returns what it saw."""
    corpus = make_corpus(seed=spec.corpus_seed)
    order = make_order(len(corpus), seed=spec.order_seed)
    pruner = CheckedSRPPruner(
        record_every_decision=spec.record_every_decision, **spec.pruner_kwargs
    )
    study = optuna.create_study(
        storage=storage if storage is not None else spec.storage.open(),
        study_name=spec.study_name,
        load_if_exists=True,
        direction="maximize",
        sampler=make_sampler(corpus, order),
        pruner=pruner,
    )
    started = [0]

    def on_step(trial: Trial, step: int) -> None:
        if spec.hang_at is None:
            return
        if step == 0:
            started[0] += 1
        min_index, hang_step = spec.hang_at
        if started[0] - 1 >= min_index and step == hang_step:
            with open(spec.hang_marker + ".tmp", "w") as f:
                json.dump({"trial": trial.number, "n_started": started[0]}, f)
            os.replace(spec.hang_marker + ".tmp", spec.hang_marker)
            time.sleep(600)  # the test kills us here

    study.optimize(
        make_objective(corpus, order, on_step),
        n_trials=spec.n_trials,
        n_jobs=spec.n_jobs,
        catch=(),
    )
    return {
        "n_calls": pruner.n_calls,
        "n_model_calls": pruner.n_model_calls,
        "n_pruned": pruner.n_pruned,
        "violations": pruner.violations[:20],
        "n_violations": len(pruner.violations),
        "evidence": [[n, step, numbers] for (n, step), numbers in pruner.evidence.items()],
    }


@dataclass
class Quality:
    best_kept: bool  # the best configuration replayed ended COMPLETE
    best_value: float  # best COMPLETE value
    optimum: float  # best final value among the configurations replayed
    saved: float  # fraction of the steps not run


def quality(
    trials: Sequence[FrozenTrial], corpus: Sequence[Config], order: Sequence[int]
) -> Quality:
    finals = {t.number: corpus[order[t.number % len(order)]].curve[-1] for t in trials}
    best_number = max(finals, key=lambda k: finals[k])
    by_number = {t.number: t for t in trials}
    complete = [t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    steps_run = sum(len(t.intermediate_values) for t in trials)
    return Quality(
        best_kept=by_number[best_number].state == TrialState.COMPLETE,
        best_value=max(complete, default=-math.inf),
        optimum=finals[best_number],
        saved=1.0 - steps_run / (len(trials) * len(corpus[0].curve)),
    )


def run_processes(
    specs: Sequence[WorkerSpec], kill_when_hanging: int | None = None, timeout: float = 150.0
) -> list[dict[str, Any]]:
    """Run one process per spec (spawned, so nothing is inherited but the spec) and return
    their results. With ``kill_when_hanging``, that worker is SIGKILLed once it has written
    its hang marker; its result is ``{"killed": True, "trial": number, "n_started": n}``
    (the trial it was killed in, and how many trials it had started)."""
    import multiprocessing
    import signal

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=run_worker, args=(spec,)) for spec in specs]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout
    killed: dict[int, dict[str, Any]] = {}
    try:
        if kill_when_hanging is not None:
            victim = specs[kill_when_hanging]
            while not os.path.exists(victim.hang_marker):
                if time.monotonic() > deadline or not procs[kill_when_hanging].is_alive():
                    raise AssertionError("the victim never reached its hang point")
                time.sleep(0.05)
            time.sleep(0.1)  # the marker is written; the trial is RUNNING
            pid = procs[kill_when_hanging].pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            with open(victim.hang_marker) as f:
                killed[kill_when_hanging] = json.load(f)
        for p in procs:
            p.join(max(1.0, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    results = []
    for i, (spec, p) in enumerate(zip(specs, procs)):
        if i in killed:
            assert p.exitcode == -signal.SIGKILL, p.exitcode
            results.append({"worker": i, "killed": True, **killed[i]})
            continue
        if not os.path.exists(spec.result_path):
            raise AssertionError(f"worker {i} left no result (exit code {p.exitcode})")
        with open(spec.result_path) as f:
            result = json.load(f)
        result["exitcode"] = p.exitcode
        results.append(result)
    return results
