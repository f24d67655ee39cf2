"""Soak test: run SRPPruner on many randomly generated, deliberately hostile studies.

Each study is generated from a seed by :func:`generate_study` (the same generator drives the
property-based tests in ``tests/test_properties.py``) and replayed by :func:`run_study`:
complete, pruned, failed and running trials are added with ``study.add_trial``, then a running
trial from ``study.ask()`` reports its curve and asks ``should_prune()`` at several steps.

The generated studies have curves with NaN, ±inf, huge (1e18), tiny, constant, negative and
jittery values; irregular, sparse, repeated and out-of-order steps, steps from 0 or from 1,
trials of different lengths and curves of 1,000 steps; conditional parameters, categoricals of
strings, booleans and ``None``, int/float/log/step distributions; failed and pruned trials,
studies where every trial was pruned and studies with one complete trial; both directions.

Checked on every decision:

* ``prune`` (through ``Trial.should_prune``) and ``predict`` never raise;
* a running trial whose best finite reported value is at least as good as the best finite
  complete value is never pruned (unless a ``wrapped_pruner`` decided, before the models are
  ready);
* ``predict`` returns :obj:`None` or a finite mean and a finite, non-negative std;
* with ``--repro-every k``, every k-th study is replayed with a fresh pruner of the same seed
  and must give the same decisions and predictions.

Usage::

    python -m optuna_srp.benchmark._soak --n-studies 10000 --jobs 2
    python -m optuna_srp.benchmark soak --n-studies 200
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import math
import multiprocessing
import os
import random
import re
import sys
import time
import traceback
from typing import Any
from typing import Literal
import warnings

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_srp import SRPPruner


_FIT_WARNING = "SRPPruner could not fit"
_NONFINITE = (math.nan, math.inf, -math.inf)


# --------------------------------------------------------------------------------------------
# Study specifications: plain data, so that the same study can be built twice.


@dataclass
class TrialSpec:
    """A finished (or foreign running) trial, added with ``study.add_trial``."""

    state: TrialState
    value: float | None
    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]
    intermediate_values: dict[int, float]


@dataclass
class StudySpec:
    """Everything needed to build and replay one generated study."""

    seed: int | None
    direction: Literal["minimize", "maximize"]
    pruner_kwargs: dict[str, Any]
    wrapped_pruner: bool
    extra_features: bool
    trials: list[TrialSpec]
    running_params: dict[str, Any]
    running_distributions: dict[str, BaseDistribution]
    reports: list[tuple[int, float]]  # in report order; steps may repeat or go backwards
    decide_after: list[int]  # decide after this many reports (0: before any report)
    description: list[str] = field(default_factory=list)


@dataclass
class Decision:
    n_reports: int
    last_step: int | None
    pruned: bool
    prediction: tuple[float, float] | None
    holds_best: bool
    rule: str | None  # the trial's ``srp:decision`` after this check (None if never written)


@dataclass
class StudyOutcome:
    decisions: list[Decision]
    violations: list[str]
    fit_warnings: int
    other_warnings: list[str]

    @property
    def n_pruned(self) -> int:
        return sum(d.pruned for d in self.decisions)

    def signature(self) -> list[str]:
        """What must be identical between two replays with the same seed (as text, so that NaN
        compares equal to NaN)."""
        return [f"{d.n_reports}:{d.pruned}:{d.prediction!r}" for d in self.decisions]


def extra_features(trial: FrozenTrial) -> list[float]:
    """A user feature callable of varying length with non-finite entries (module level so
    that a pruner using it can be pickled)."""
    out = [float(len(trial.params)), float(trial.number % 3)]
    if trial.number % 2:
        out.append(math.nan)
    if trial.number % 5 == 0:
        out.append(math.inf)
    return out


# --------------------------------------------------------------------------------------------
# The generator. ``rnd`` makes every structural choice (so that hypothesis can shrink them); the
# bulk of the per-step noise comes from a numpy generator seeded from ``rnd``.


def generate_study(rnd: random.Random, extreme: bool = True) -> StudySpec:
    """Generate one hostile study specification from a :class:`random.Random`.

    With ``extreme``, "huge" curves may also reach 1e300, whose squares overflow float64."""
    desc: list[str] = []
    direction: Literal["minimize", "maximize"] = rnd.choice(["minimize", "maximize"])
    pruner_kwargs: dict[str, Any] = {
        "n_startup_trials": rnd.randint(2, 5),
        "n_warmup_steps": rnd.choice([0, 0, 0, 1, 3, 10]),
        "interval_steps": rnd.choice([1, 1, 1, 2, 5]),
        "threshold": rnd.choice([0.0, 0.01, 0.01, 0.1, 0.5, 0.99, 1.0]),
        "n_estimators": rnd.randint(1, 4),
        "seed": rnd.choice([None, rnd.randint(0, 2**31 - 1)]),
        "max_train_trials": rnd.choice([10, 300, 300]),
    }
    wrapped = rnd.random() < 0.1
    use_extra = rnd.random() < 0.2
    np_rng = np.random.default_rng(rnd.getrandbits(32))

    param_specs = _generate_param_specs(rnd)
    study_steps = rnd.choice(["from0", "from0", "from1", "sparse", "irregular"])
    study_curve = rnd.choice(
        ["decay", "decay", "rise", "constant", "jitter", "huge", "negative", "tiny", "mixed"]
    )
    study_length = rnd.choice([1, 3, 10, 30, 30, 1000]) if rnd.random() < 0.97 else 1000
    desc += [direction, study_steps, study_curve, f"len={study_length}"]

    mode = rnd.choice(["mixed", "mixed", "mixed", "all_pruned", "one_complete", "few", "many"])
    n_trials = {
        "mixed": rnd.randint(0, 10),
        "all_pruned": rnd.randint(1, 8),
        "one_complete": rnd.randint(1, 6),
        "few": rnd.randint(2, 6),
        "many": rnd.randint(9, 16),
    }[mode]
    desc.append(f"{mode}:{n_trials}")
    trials: list[TrialSpec] = []
    for i in range(n_trials):
        if mode == "all_pruned":
            state = TrialState.PRUNED
        elif mode == "one_complete":
            state = (
                TrialState.COMPLETE if i == 0 else rnd.choice([TrialState.PRUNED, TrialState.FAIL])
            )
        else:
            state = rnd.choice(
                [TrialState.COMPLETE] * 6
                + [TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING]
            )
        params, dists = _generate_params(rnd, param_specs)
        steps = _generate_steps(rnd, np_rng, study_steps, study_length)
        if state != TrialState.COMPLETE and steps and rnd.random() < 0.7:
            steps = steps[: rnd.randint(0, len(steps))]  # stopped early
        values = _generate_curve(rnd, np_rng, study_curve, len(steps), extreme)
        inter = dict(zip(steps, values))
        value: float | None = None
        if state == TrialState.COMPLETE:
            value = _final_value(rnd, np_rng, values)
        elif state == TrialState.PRUNED and values and rnd.random() < 0.8:
            value = None if math.isnan(values[-1]) else values[-1]  # as optuna's tell does
        trials.append(TrialSpec(state, value, params, dists, inter))

    running_params, running_dists = _generate_params(rnd, param_specs)
    steps = _generate_steps(rnd, np_rng, study_steps, study_length)
    values = _generate_curve(rnd, np_rng, study_curve, len(steps), extreme)
    reports = list(zip(steps, values))
    if reports and rnd.random() < 0.2:  # repeated steps: optuna ignores them with a warning
        for _ in range(rnd.randint(1, 3)):
            s, _v = rnd.choice(reports)
            reports.insert(rnd.randint(0, len(reports)), (s, float(np_rng.normal() * 1e3)))
        desc.append("repeated")
    if len(reports) > 1 and rnd.random() < 0.05:
        reports = [reports[int(i)] for i in np_rng.permutation(len(reports))]
        desc.append("shuffled")
    if len(reports) <= 12:
        decide_after = list(range(len(reports) + 1))
    else:
        decide_after = sorted({0, len(reports), *rnd.sample(range(1, len(reports)), 10)})

    return StudySpec(
        seed=pruner_kwargs["seed"],
        direction=direction,
        pruner_kwargs=pruner_kwargs,
        wrapped_pruner=wrapped,
        extra_features=use_extra,
        trials=trials,
        running_params=running_params,
        running_distributions=running_dists,
        reports=reports,
        decide_after=decide_after,
        description=desc,
    )


def _generate_param_specs(rnd: random.Random) -> list[tuple[str, BaseDistribution, bool]]:
    specs: list[tuple[str, BaseDistribution, bool]] = []
    for i in range(rnd.choice([0, 1, 2, 3, 5])):
        kind = rnd.choice(
            [
                "float",
                "float_log",
                "float_step",
                "int",
                "int_log",
                "int_step",
                "str",
                "bool",
                "none",
                "mixed",
                "single",
            ]
        )
        dist: BaseDistribution
        if kind == "float":
            low = rnd.choice([-1e18, -5.0, 0.0, 1.0])
            dist = FloatDistribution(low, low + rnd.choice([1e-9, 1.0, 1e6, 1e18]))
        elif kind == "float_log":
            low = rnd.choice([1e-12, 1e-5, 1.0])
            dist = FloatDistribution(low, low * rnd.choice([1.0, 10.0, 1e12]), log=True)
        elif kind == "float_step":
            dist = FloatDistribution(-1.0, 1.0, step=0.25)
        elif kind == "int":
            low_i = rnd.choice([-100, 0, 1])
            dist = IntDistribution(low_i, low_i + rnd.choice([0, 1, 10, 10**9]))
        elif kind == "int_log":
            dist = IntDistribution(1, rnd.choice([1, 8, 1024]), log=True)
        elif kind == "int_step":
            step_i = rnd.choice([1, 7, 50])
            dist = IntDistribution(0, step_i * (100 // step_i), step=step_i)
        elif kind == "str":
            dist = CategoricalDistribution(["adam", "sgd", "rmsprop"][: rnd.randint(1, 3)])
        elif kind == "bool":
            dist = CategoricalDistribution([True, False])
        elif kind == "none":
            dist = CategoricalDistribution([None, "relu", 0])
        elif kind == "mixed":
            dist = CategoricalDistribution([None, True, "a", 1, 2.5])
        else:
            dist = CategoricalDistribution(["only"])
        specs.append((f"p{i}_{kind}", dist, rnd.random() < 0.3))
    return specs


def _generate_params(
    rnd: random.Random, specs: list[tuple[str, BaseDistribution, bool]]
) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    params: dict[str, Any] = {}
    dists: dict[str, BaseDistribution] = {}
    for name, dist, conditional in specs:
        if conditional and rnd.random() < 0.5:
            continue
        params[name] = _sample(rnd, dist)
        dists[name] = dist
    return params, dists


def _sample(rnd: random.Random, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return rnd.choice(dist.choices)
    if isinstance(dist, IntDistribution):
        if dist.log:
            return int(
                min(
                    dist.high,
                    max(
                        dist.low,
                        round(math.exp(rnd.uniform(math.log(dist.low), math.log(dist.high)))),
                    ),
                )
            )
        return dist.low + dist.step * rnd.randint(0, (dist.high - dist.low) // dist.step)
    assert isinstance(dist, FloatDistribution)
    if dist.step is not None:
        n = int(round((dist.high - dist.low) / dist.step))
        return dist.low + dist.step * rnd.randint(0, n)
    if dist.log:
        x = math.exp(rnd.uniform(math.log(dist.low), math.log(dist.high)))
        return min(dist.high, max(dist.low, x))
    return min(dist.high, max(dist.low, rnd.uniform(dist.low, dist.high)))


def _generate_steps(
    rnd: random.Random, np_rng: np.random.Generator, study_steps: str, study_length: int
) -> list[int]:
    kind = study_steps if rnd.random() < 0.8 else rnd.choice(["from0", "from1", "sparse"])
    n = study_length if rnd.random() < 0.6 else rnd.randint(0, max(1, study_length))
    if kind == "from0":
        return list(range(n))
    if kind == "from1":
        return list(range(1, n + 1))
    if kind == "sparse":
        k = rnd.choice([5, 50])
        return list(range(rnd.choice([0, 1, k]), n * k + 1, k))[:n]
    return sorted(int(s) for s in np_rng.choice(5 * n + 1, n, replace=False))


def _generate_curve(
    rnd: random.Random, np_rng: np.random.Generator, study_curve: str, n: int, extreme: bool
) -> list[float]:
    if n == 0:
        return []
    kind = study_curve if rnd.random() < 0.8 else rnd.choice(["decay", "constant", "jitter"])
    t = np.arange(n, dtype=np.float64)
    level = float(np_rng.uniform(0.0, 1.0))
    if kind == "decay":
        y = level + np.exp(-t / max(1.0, n / rnd.choice([1.0, 3.0, 10.0])))
        y += np_rng.normal(0, rnd.choice([0.0, 0.01, 0.1]), n)
    elif kind == "rise":
        y = level * (1.0 - np.exp(-t / max(1.0, n / 4.0))) + np_rng.normal(0, 0.02, n)
    elif kind == "constant":
        y = np.full(n, rnd.choice([0.0, 1.0, -3.0, level]))
    elif kind == "jitter":
        y = np_rng.normal(level, rnd.choice([1.0, 1e3]), n)
    elif kind == "huge":
        y = (level + np_rng.normal(0, 0.1, n)) * rnd.choice(
            [1e18, -1e18, 1e300 if extreme else 1e18]
        )
    elif kind == "negative":
        y = -1e6 * (1.0 + level) + np_rng.normal(0, 10.0, n) - t
    elif kind == "tiny":
        y = (level + np_rng.normal(0, 0.1, n)) * rnd.choice([1e-300, 5e-324, 1e-12])
    else:  # mixed scales within one curve
        y = np_rng.normal(0, 1, n) * 10.0 ** np_rng.integers(-20, 20, n)
    p_bad = rnd.choice([0.0, 0.0, 0.0, 0.05, 0.3, 1.0])
    if p_bad > 0:
        bad = np_rng.random(n) < p_bad
        y[bad] = np_rng.choice(np.array(_NONFINITE), int(bad.sum()))
    return [float(v) for v in y]


def _final_value(rnd: random.Random, np_rng: np.random.Generator, values: list[float]) -> float:
    r = rnd.random()
    finite = [v for v in values if math.isfinite(v)]
    if r < 0.05:
        return rnd.choice([math.inf, -math.inf])
    if r < 0.75 and finite:
        return finite[-1]
    if r < 0.9 and finite:
        return finite[-1] + float(np_rng.normal(0.0, 0.1 * (abs(finite[-1]) + 1.0)))
    return float(np_rng.normal(0.0, rnd.choice([1.0, 1e18])))


# --------------------------------------------------------------------------------------------
# Replaying a specification.


def make_pruner(spec: StudySpec) -> SRPPruner:
    """A fresh pruner for ``spec``."""
    return SRPPruner(
        **spec.pruner_kwargs,
        wrapped_pruner=optuna.pruners.MedianPruner(n_startup_trials=1)
        if spec.wrapped_pruner
        else None,
        extra_features=extra_features if spec.extra_features else None,
    )


def build_study(spec: StudySpec, pruner: SRPPruner) -> tuple[optuna.Study, optuna.Trial]:
    """Create the study of ``spec`` (in memory) and ask for its running trial."""
    study = optuna.create_study(
        direction=spec.direction,
        pruner=pruner,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    for t in spec.trials:
        study.add_trial(
            optuna.trial.create_trial(
                state=t.state,
                value=t.value,
                params=t.params,
                distributions=t.distributions,
                intermediate_values=t.intermediate_values,
            )
        )
    study.enqueue_trial(spec.running_params)
    trial = study.ask(fixed_distributions=spec.running_distributions)
    return study, trial


def run_study(spec: StudySpec, pruner: SRPPruner | None = None) -> StudyOutcome:
    """Replay ``spec``: report the running trial's curve and decide at ``spec.decide_after``.

    Exceptions from the pruner propagate. Violations of the properties are returned."""
    pruner = make_pruner(spec) if pruner is None else pruner
    violations: list[str] = []
    decisions: list[Decision] = []
    fit_warnings = 0
    other: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study, trial = build_study(spec, pruner)
        sign = -1.0 if spec.direction == "minimize" else 1.0
        complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
        best_complete = max(
            (t.value * sign for t in complete if t.value is not None and math.isfinite(t.value)),
            default=-math.inf,
        )
        delegates = spec.wrapped_pruner and len(complete) < spec.pruner_kwargs["n_startup_trials"]
        decide = set(spec.decide_after)
        for i in range(len(spec.reports) + 1):
            if i > 0:
                step, value = spec.reports[i - 1]
                trial.report(value, step)
            if i not in decide:
                continue
            pruned = trial.should_prune()
            frozen = study._storage.get_trial(trial._trial_id)
            prediction = pruner.predict(study, frozen)
            running = [v * sign for v in frozen.intermediate_values.values() if math.isfinite(v)]
            holds_best = max(running, default=-math.inf) >= best_complete
            rule = study._storage.get_trial(trial._trial_id).user_attrs.get("srp:decision")
            d = Decision(i, frozen.last_step, pruned, prediction, holds_best, rule)
            decisions.append(d)
            # With no finite complete value there is no best to hold, and a diverged run is
            # stopped all the same (SRPPruner's _diverged).
            vacuous = rule == "pruned:diverged" and not math.isfinite(best_complete)
            if pruned and holds_best and not delegates and not vacuous:
                violations.append(
                    f"pruned the trial holding the best value after {i} reports "
                    f"(step {frozen.last_step}, best running {max(running, default=None)!r}, "
                    f"best complete {best_complete!r}, sign {sign})"
                )
            if prediction is not None and not (
                math.isfinite(prediction[0])
                and math.isfinite(prediction[1])
                and prediction[1] >= 0.0
            ):
                violations.append(f"non-finite prediction {prediction!r} after {i} reports")
    for w in caught:
        message = str(w.message)
        if message.startswith(_FIT_WARNING):
            fit_warnings += 1
        elif issubclass(w.category, RuntimeWarning) or (
            "already reported" not in message
            and not issubclass(w.category, optuna.exceptions.ExperimentalWarning)
        ):
            other.append(
                f"{w.category.__name__}: {message} ({os.path.basename(w.filename)}:{w.lineno})"
            )
    return StudyOutcome(decisions, violations, fit_warnings, other)


# --------------------------------------------------------------------------------------------
# The command.


@dataclass
class _Result:
    index: int
    n_decisions: int = 0
    n_pruned: int = 0
    n_predictions: int = 0
    fit_warnings: int = 0
    exception: str | None = None
    violations: list[str] = field(default_factory=list)
    other_warnings: list[str] = field(default_factory=list)
    repro_checked: bool = False


def study_seed(seed: int, index: int) -> int:
    """The seed of study ``index`` of a soak run with ``--seed seed``."""
    return (seed * 1_000_003 + index) % 2**63


def _soak_one(job: tuple[int, int, int, bool]) -> _Result:
    seed, index, repro_every, extreme = job
    result = _Result(index)
    try:
        spec = generate_study(random.Random(study_seed(seed, index)), extreme)
        outcome = run_study(spec)
        result.n_decisions = len(outcome.decisions)
        result.n_pruned = outcome.n_pruned
        result.n_predictions = sum(d.prediction is not None for d in outcome.decisions)
        result.fit_warnings = outcome.fit_warnings
        result.violations = list(outcome.violations)
        result.other_warnings = outcome.other_warnings
        if repro_every > 0 and index % repro_every == 0:
            result.repro_checked = True
            again = run_study(spec)
            if again.signature() != outcome.signature():
                result.violations.append("not reproducible with the same seed")
    except Exception:
        result.exception = traceback.format_exc()
    return result


DESCRIPTION = (
    "Soak test: run SRPPruner on many randomly generated, deliberately hostile studies "
    "(NaN and infinite values, irregular steps, failed trials, extreme scales) and report any "
    "crash, warning storm or irreproducible decision."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the soak command's arguments to ``parser``."""
    parser.add_argument(
        "--n-studies", type=int, default=10_000, help="studies to generate (default: 10000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator (default: 0)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default: 1)")
    parser.add_argument(
        "--repro-every",
        type=int,
        default=10,
        help="replay every k-th study with a fresh pruner to check reproducibility "
        "(0: never; default: 10)",
    )
    parser.add_argument(
        "--no-extreme",
        dest="extreme",
        action="store_false",
        help="keep curves within ±1e18, no values whose squares overflow float64 (default: off)",
    )
    parser.add_argument(
        "--progress",
        type=int,
        default=1000,
        help="print progress every this many studies (default: 1000)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=0.0,
        help="stop after this many seconds and report the studies run so far "
        "(0: no limit; default: 0)",
    )
    parser.add_argument(
        "--show", type=int, default=3, help="how many failures to print in full (default: 3)"
    )


def run(args: argparse.Namespace) -> int:
    """Run the soak test; return 0 when there were no exceptions and no violations."""
    if args.n_studies < 0 or args.jobs < 1:
        raise ValueError(
            f"--n-studies must be >= 0 and --jobs >= 1, but got {args.n_studies=}, {args.jobs=}."
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    jobs = [(args.seed, i, args.repro_every, args.extreme) for i in range(args.n_studies)]
    start = time.perf_counter()
    results: list[_Result] = []

    def collect(stream: Iterable[_Result]) -> None:
        for r in stream:
            results.append(r)
            n = len(results)
            if args.progress and n % args.progress == 0:
                bad = sum(bool(x.exception or x.violations) for x in results)
                elapsed = time.perf_counter() - start
                print(
                    f"  {n}/{args.n_studies} studies, {bad} failing, {elapsed:.0f} s", flush=True
                )
            if args.time_limit and time.perf_counter() - start > args.time_limit:
                print(f"  time limit reached after {n} studies", flush=True)
                return

    if args.jobs == 1:
        collect(_soak_one(j) for j in jobs)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(args.jobs, initializer=_init_worker) as pool:
            collect(pool.imap_unordered(_soak_one, jobs, chunksize=8))
    elapsed = time.perf_counter() - start
    results.sort(key=lambda r: r.index)
    report = summarize(results, elapsed, args.seed)
    print(report["text"])
    failures = [r for r in results if r.exception or r.violations]
    for r in failures[: args.show]:
        print(f"\n--- study {r.index} (seed {study_seed(args.seed, r.index)}) ---")
        print(r.exception or "\n".join(r.violations))
    return 0 if not failures else 1


def _init_worker() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def summarize(results: Sequence[_Result], elapsed: float, seed: int) -> dict[str, Any]:
    """Totals of a soak run, and a printable summary."""
    n = len(results)
    totals: dict[str, Any] = {
        "studies": n,
        "exceptions": sum(r.exception is not None for r in results),
        "violations": sum(len(r.violations) for r in results),
        "decisions": sum(r.n_decisions for r in results),
        "pruned": sum(r.n_pruned for r in results),
        "predictions": sum(r.n_predictions for r in results),
        "fit_warnings": sum(r.fit_warnings for r in results),
        "studies_with_other_warnings": sum(bool(r.other_warnings) for r in results),
        "repro_checked": sum(r.repro_checked for r in results),
        "seconds": elapsed,
    }
    kinds: dict[str, int] = {}
    for r in results:
        for w in r.other_warnings:
            key = w[:100]
            kinds[key] = kinds.get(key, 0) + 1
    lines = [f"soak: seed={seed}"] + [
        f"  {k:<28} {v:.1f}" if isinstance(v, float) else f"  {k:<28} {v}"
        for k, v in totals.items()
    ]
    lines.append(f"  {'ms per study':<28} {1000 * elapsed / max(1, n):.1f}")
    failures: dict[str, list[int]] = {}
    for r in results:
        kinds_of_r = [r.exception.strip().splitlines()[-1]] if r.exception else []
        kinds_of_r += [
            re.sub(r"\(.*\)|[-+]?\b\d[\d.]*(?:e[-+]?\d+)?", "#", v)[:100] for v in r.violations
        ]
        for key in set(kinds_of_r):
            failures.setdefault(key, []).append(r.index)
    for key, indices in sorted(failures.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"  failure x{len(indices)}: {key}  (studies {indices[:5]})")
    for key, count in sorted(kinds.items(), key=lambda kv: -kv[1])[:10]:
        lines.append(f"  warning x{count}: {key}")
    totals["text"] = "\n".join(lines)
    return totals


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="optuna-srp-bench soak", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
