"""Cost of a pruner as a study grows: seconds per refit, ms per should_prune, storage reads.

For each number of complete trials (``--n-complete``) and steps per curve (``--steps``) a study
is built in memory with ``study.add_trials`` from synthetic saturating curves: the complete
trials, as many PRUNED trials (cut at a uniformly random step), and nothing running. Then, for
each pruner (SRPPruner, MedianPruner, HyperbandPruner) on that same study:

* **refit s**: a fresh pruner replays one new trial over every step, then one more until it is
  pruned. Their calls, less the steady cost of as many calls, is the time to fit the models
  (SRPPruner fits lazily per decision checkpoint; all of them are fitted by the first trial)
  and to read every trial once (SRPPruner keeps each finished trial's curve for the study's
  life, read at the first decision that needs them all: in a study a one-time cost, counted
  here with each refit). Other pruners have none.
* **call ms (steady)**: ``--n-new`` new trials from ``study.ask()`` report their curves and
  call ``trial.should_prune()`` after each report, stopping when pruned; the mean over those
  calls. They are left RUNNING, so no refit happens among them (as between two refits).
* **call ms (amortised)**: steady + refit / calls-per-refit, with calls-per-refit
  ``ceil(0.1 * n_complete) * steps`` (SRPPruner refits when the complete trials have grown by
  a tenth): only the complete trials' own calls are counted between two refits (pruned trials
  make more), so this is an upper bound.
* **call ms (cycle)**: the amortised cost measured, not bounded: a study that goes on under the
  pruner (new trials told COMPLETE or PRUNED as it decides) from the moment its complete
  trials have grown by a tenth (a refit) until they have grown by a tenth again; every call of
  that cycle, its one refit and the pruned trials' calls included, over the calls. The
  pruner's first refit, which also reads every trial (**refit s**), falls before the cycle:
  this is a worker that has been running. ``--cycle`` chooses the study sizes that get it (it
  runs about ``0.2 * n_complete`` new complete trials, after the other passes).
* **reads/call**: calls to the storage's ``get_*`` methods per ``should_prune`` in the steady
  phase (``get_all_trials`` is the one that grows with the study); **writes/call** likewise
  for ``set_*`` (SRPPruner writes its prediction into user attributes).
* **peak MiB**: ``tracemalloc`` peak during the refit trial, in a separate pass (tracemalloc
  slows Python down, so it is not timed), and **kept MiB**, what the pruner still holds after.

``--sqlite N`` adds rows for N complete trials on a SQLite file (RDBStorage, as a worker of a
distributed study sees it), with SQL statements per call counted from the engine.

Usage::

    python -m optuna_srp.benchmark cost
    python -m optuna_srp.benchmark._cost --n-complete 100 1000 --steps 20 --markdown out.md
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
import gc
import json
import math
import os
import sys
import tempfile
import time
import tracemalloc
from typing import Any
import warnings

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.pruners import BasePruner
from optuna.pruners import HyperbandPruner
from optuna.pruners import MedianPruner
from optuna.storages import BaseStorage
from optuna.trial import create_trial
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_srp import FastHyperbandPruner
from optuna_srp import SRPPruner
from optuna_srp._pruner import _REFIT_FRACTION


PRUNERS = ("srp", "fast_hyperband", "median", "hyperband")
_DISTRIBUTIONS = {
    "x": FloatDistribution(0.0, 1.0),
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
}


@dataclass
class CostRow:
    pruner: str
    storage: str
    n_complete: int
    n_trials: int
    steps: int
    refit_s: float | None
    call_ms: float
    amortised_ms: float
    cycle_ms: float | None
    cycle_calls: int | None
    reads_per_call: float
    writes_per_call: float
    sql_per_call: float | None
    peak_mib: float | None
    kept_mib: float | None
    n_calls: int
    build_s: float


DESCRIPTION = (
    "Measure what the pruner costs as a study grows, on synthetic curves: seconds per refit, "
    "milliseconds and storage writes per should_prune call, memory; in memory and on a "
    "SQLite file, beside Optuna's MedianPruner and HyperbandPruner."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--n-complete", type=int, nargs="+", default=[100, 1000, 10000], metavar="N",
        help="numbers of complete trials (default: 100 1000 10000)",
    )  # fmt: skip
    parser.add_argument(
        "--steps", type=int, nargs="+", default=[20, 200], metavar="T",
        help="steps per curve (default: 20 200)",
    )  # fmt: skip
    parser.add_argument(
        "--pruners", nargs="+", choices=PRUNERS, default=list(PRUNERS),
        help="pruners to measure (default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--n-new", type=int, default=8,
        help="new trials replayed for the steady per-call cost (default: 8)",
    )  # fmt: skip
    parser.add_argument(
        "--sqlite", type=int, nargs="*", default=[1000], metavar="N",
        help="also measure these numbers of complete trials on a SQLite file, at the "
        "smallest --steps (default: 1000; none: skip)",
    )  # fmt: skip
    parser.add_argument(
        "--cycle", type=int, nargs="*", default=[100, 1000], metavar="N",
        help="measure a refit cycle for these numbers of complete trials, in memory "
        "(default: 100 1000; none: skip)",
    )  # fmt: skip
    parser.add_argument(
        "--srp-kwargs", type=json.loads, default={}, metavar="JSON",
        help='SRPPruner arguments, e.g. \'{"max_train_trials": 150}\' (default: none)',
    )  # fmt: skip
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the tracemalloc pass (default: run it)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the synthetic curves (default: 0)"
    )
    parser.add_argument(
        "--json", metavar="PATH", help="append one JSON line per row here (default: none)"
    )
    parser.add_argument(
        "--markdown", metavar="PATH", help="write the table here too (default: print only)"
    )


def run(args: argparse.Namespace) -> int:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    rows: list[CostRow] = []
    cells = [(n, t, "memory") for t in args.steps for n in args.n_complete]
    cells += [(n, min(args.steps), "sqlite") for n in (args.sqlite or [])]
    for n_complete, steps, storage_kind in cells:
        for name in args.pruners:
            row = measure(
                name,
                n_complete,
                steps,
                storage_kind=storage_kind,
                n_new=args.n_new,
                seed=args.seed,
                memory=not args.no_memory,
                srp_kwargs=args.srp_kwargs,
                cycle=storage_kind == "memory" and n_complete in (args.cycle or []),
            )
            rows.append(row)
            print(_format_row(row), file=sys.stderr, flush=True)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(asdict(row)) + "\n")
    table = format_table(rows)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")
    return 0


def make_pruner(name: str, srp_kwargs: dict[str, Any] | None = None) -> BasePruner:
    if name == "srp":
        return SRPPruner(**{"n_startup_trials": 10, "seed": 0, **(srp_kwargs or {})})
    if name == "fast_hyperband":
        return FastHyperbandPruner(seed=0, **(srp_kwargs or {}))
    if name == "median":
        return MedianPruner(n_startup_trials=10)
    if name == "hyperband":
        return HyperbandPruner(min_resource=1, reduction_factor=3)
    raise ValueError(f"unknown pruner {name!r}")


def synthetic_curve(rng: np.random.RandomState, steps: int) -> tuple[dict[str, float], np.ndarray]:
    """A saturating learning curve whose final value depends on the parameters, with noise."""
    x = float(rng.uniform(0.0, 1.0))
    lr = float(10 ** rng.uniform(-4.0, -1.0))
    final = 0.9 - 0.6 * (x - 0.7) ** 2 - 0.04 * (math.log10(lr) + 2.0) ** 2
    final += float(rng.normal(0.0, 0.01))
    tau = steps * (0.05 + 0.25 * (-1.0 - math.log10(lr)) / 3.0)
    t = np.arange(1, steps + 1)
    curve = final * (1.0 - np.exp(-t / tau)) + rng.normal(0.0, 0.005, steps)
    return {"x": x, "lr": lr}, curve


def build_trials(n_complete: int, steps: int, seed: int) -> list[FrozenTrial]:
    """``n_complete`` COMPLETE trials and as many PRUNED ones, interleaved."""
    rng = np.random.RandomState(seed)
    trials = []
    for i in range(2 * n_complete):
        params, curve = synthetic_curve(rng, steps)
        complete = i % 2 == 0
        last = steps if complete else int(rng.randint(1, steps))
        values = {s: float(curve[s]) for s in range(last)}
        trials.append(
            create_trial(
                state=TrialState.COMPLETE if complete else TrialState.PRUNED,
                value=float(curve[-1]) if complete else float(curve[last - 1]),
                params=params,
                distributions=dict(_DISTRIBUTIONS),
                intermediate_values=values,
            )
        )
    return trials


class _Counter:
    """Counts the calls of a storage instance's ``get_*`` and ``set_*`` methods."""

    def __init__(self, storage: BaseStorage) -> None:
        self.reads = 0
        self.writes = 0
        self.active = False  # counts only while set, i.e. inside should_prune
        for name in dir(type(storage)):
            if name.startswith(("get_", "set_")) and callable(getattr(storage, name, None)):
                setattr(storage, name, self._wrap(getattr(storage, name), name[:4] == "get_"))

    def _wrap(self, method: Callable[..., Any], read: bool) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            if not self.active:
                pass
            elif read:
                self.reads += 1
            else:
                self.writes += 1
            return method(*args, **kwargs)

        return counted


class _SqlCounter:
    def __init__(self, storage: BaseStorage) -> None:
        self.n = 0
        self.active = False
        engine = _find_engine(storage)
        if engine is not None:
            from sqlalchemy import event

            event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *args: Any, **kwargs: Any) -> None:
        self.n += self.active


def _find_engine(storage: Any) -> Any:
    for obj in (storage, getattr(storage, "_backend", None)):
        engine = getattr(obj, "engine", None)
        if engine is not None:
            return engine
    return None


def _make_study(
    trials: Sequence[FrozenTrial], storage_kind: str, tmpdir: str, pruner: BasePruner
) -> optuna.Study:
    storage: str | BaseStorage
    if storage_kind == "memory":
        storage = optuna.storages.InMemoryStorage()
    else:
        storage = f"sqlite:///{os.path.join(tmpdir, 'cost.db')}"
    study = optuna.create_study(
        storage=storage,
        study_name="cost",
        direction="maximize",
        pruner=pruner,
        sampler=optuna.samplers.RandomSampler(seed=0),
        load_if_exists=True,
    )
    if not study.trials:
        study.add_trials(trials)
    return study


def _ask(study: optuna.Study, params: dict[str, float]) -> optuna.Trial:
    """A new RUNNING trial with ``params`` set (as if it had suggested them)."""
    trial = study.ask()
    for name in params:
        study._storage.set_trial_param(
            trial._trial_id, name, _DISTRIBUTIONS[name].to_internal_repr(params[name]),
            _DISTRIBUTIONS[name],
        )  # fmt: skip
    return optuna.trial.Trial(study, trial._trial_id)


def _replay_new_trials(
    study: optuna.Study,
    curves: Sequence[tuple[dict[str, float], np.ndarray]],
    stop_when_pruned: bool = True,
    counters: Sequence[_Counter | _SqlCounter] = (),
    tell: bool = False,
) -> list[float]:
    """Each curve as a new RUNNING trial: report, then time should_prune; stop when pruned
    (or go on to the last step, so that every decision checkpoint is reached). With ``tell``,
    each trial is then told PRUNED or COMPLETE (its last value), as a study goes on."""
    times = []
    for params, curve in curves:
        trial = _ask(study, params)
        pruned = False
        for step, value in enumerate(curve):
            trial.report(float(value), step)
            for c in counters:
                c.active = True
            t0 = time.process_time()
            pruned = trial.should_prune()
            times.append(time.process_time() - t0)
            for c in counters:
                c.active = False
            if pruned and stop_when_pruned:
                break
        if tell and pruned:
            study.tell(trial, state=TrialState.PRUNED)
        elif tell:
            study.tell(trial, float(curve[-1]))
    return times


def _run_cycle(
    study: optuna.Study, rng: np.random.RandomState, steps: int, n_complete: int
) -> list[float]:
    """The times of every ``should_prune`` call of one refit cycle (see the module docstring).

    New trials report until pruned or complete, and are told so. The first tenth of new
    complete trials brings the pruner, whatever it had fitted on, to a refit; the calls from
    there until the complete trials have grown by a tenth again are returned.
    """

    def n_done() -> int:
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    at_refit = n_done() + max(1, math.ceil(_REFIT_FRACTION * n_complete))
    times: list[float] = []
    for target in (at_refit, at_refit + max(1, math.ceil(_REFIT_FRACTION * at_refit))):
        times = []
        while n_done() < target:
            times += _replay_new_trials(study, [synthetic_curve(rng, steps)], tell=True)
    return times


def measure(
    name: str,
    n_complete: int,
    steps: int,
    *,
    storage_kind: str = "memory",
    n_new: int = 8,
    seed: int = 0,
    memory: bool = True,
    srp_kwargs: dict[str, Any] | None = None,
    cycle: bool = False,
) -> CostRow:
    """Measure one pruner on one synthetic study (see the module docstring)."""
    t0 = time.process_time()
    trials = build_trials(n_complete, steps, seed)
    rng = np.random.RandomState(seed + 1)
    refit_curve = [synthetic_curve(rng, steps)]
    new_curves = [synthetic_curve(rng, steps) for _ in range(n_new)]
    warm_curve = [synthetic_curve(rng, steps)]
    with tempfile.TemporaryDirectory() as tmpdir:
        study = _make_study(trials, storage_kind, tmpdir, make_pruner(name, srp_kwargs))
        build_s = time.process_time() - t0

        # Refit pass: a fresh pruner, one trial over every step, one until pruned.
        gc.collect()
        refit_times = _replay_new_trials(study, refit_curve, stop_when_pruned=False)
        refit_times += _replay_new_trials(study, warm_curve)
        # Steady pass: the same pruner, fitted; count storage reads.
        counter = _Counter(study._storage)
        sql = _SqlCounter(study._storage)
        steady = _replay_new_trials(study, new_curves, counters=(counter, sql))
        n_calls = len(steady)
        call_s = float(np.mean(steady))
        refit_s: float | None = None
        if name in ("srp", "fast_hyperband"):
            refit_s = max(0.0, float(np.sum(refit_times)) - len(refit_times) * call_s)
        amortised_s = call_s
        if refit_s is not None:
            # FastHyperbandPruner refits the SRPPruner it holds, on the same schedule.
            calls_per_refit = max(1, math.ceil(_REFIT_FRACTION * n_complete)) * steps
            amortised_s += refit_s / calls_per_refit

        peak = kept = None
        if memory:
            study.pruner = make_pruner(name, srp_kwargs)
            gc.collect()
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
                _replay_new_trials(study, refit_curve, stop_when_pruned=False)
                gc.collect()
                current, peak_bytes = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            peak = (peak_bytes - base) / 2**20
            kept = (current - base) / 2**20
        cycle_s = cycle_calls = None
        if cycle:
            study.pruner = make_pruner(name, srp_kwargs)
            cycle_times = _run_cycle(study, rng, steps, n_complete)
            cycle_s, cycle_calls = float(np.mean(cycle_times)), len(cycle_times)

        label = name
        if name == "srp" and srp_kwargs:
            label += "(" + ", ".join(f"{k}={v}" for k, v in srp_kwargs.items()) + ")"
        row = CostRow(
            pruner=label,
            storage=storage_kind,
            n_complete=n_complete,
            n_trials=2 * n_complete,
            steps=steps,
            refit_s=refit_s,
            call_ms=1e3 * call_s,
            amortised_ms=1e3 * amortised_s,
            cycle_ms=None if cycle_s is None else 1e3 * cycle_s,
            cycle_calls=cycle_calls,
            reads_per_call=counter.reads / max(1, n_calls),
            writes_per_call=counter.writes / max(1, n_calls),
            sql_per_call=sql.n / max(1, n_calls) if storage_kind != "memory" else None,
            peak_mib=peak,
            kept_mib=kept,
            n_calls=n_calls,
            build_s=build_s,
        )
        del study
        gc.collect()
    return row


_HEADER = (
    "| pruner | storage | complete | steps | refit s | call ms (steady) | call ms (amortised) "
    "| call ms (cycle) | calls/cycle | reads/call | writes/call | SQL/call | peak MiB | kept MiB |"
)


def _fmt(x: float | None, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def _format_row(r: CostRow) -> str:
    return (
        f"| {r.pruner} | {r.storage} | {r.n_complete:,} | {r.steps} | {_fmt(r.refit_s, '.2f')} "
        f"| {r.call_ms:.2f} | {r.amortised_ms:.2f} | {_fmt(r.cycle_ms, '.2f')} "
        f"| {_fmt(r.cycle_calls, ',')} | {r.reads_per_call:.2f} "
        f"| {r.writes_per_call:.2f} | {_fmt(r.sql_per_call, '.1f')} | {_fmt(r.peak_mib, '.1f')} "
        f"| {_fmt(r.kept_mib, '.1f')} |"
    )


def format_table(rows: Sequence[CostRow]) -> str:
    lines = [_HEADER, "|" + "---|" * (_HEADER.count("|") - 1)]
    lines += [_format_row(r) for r in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m optuna_srp.benchmark._cost")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
