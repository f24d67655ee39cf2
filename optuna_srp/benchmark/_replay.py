"""``replay``: real Optuna studies over recorded learning curves, per (corpus, pruner, ordering).

Each configuration of a corpus becomes a trial of an in-memory study: its real
hyper-parameters are enqueued and asked with the corpus's distributions, so a pruner sees the
trials a user's study would hold. The objective reports the recorded curve step by step (at the
corpus's ``step_values``, else 1..T), calls ``should_prune()`` after every report and stops
when it says so (the trial is told PRUNED); a trial that runs to the end is told its last value,
or FAIL when that value is missing (a diverged run).

Ordering ``k`` is ``numpy.random.default_rng(k).permutation(n_configs)``, cut to ``--n-trials``;
every pruner replays the same orderings.

Metrics of one study (all in the corpus's "higher is better" orientation):

- ``speedup``: steps a study without pruning would train (sum of the replayed curves' lengths)
  divided by the steps trained.
- ``hit``: the study's best complete trial is as good as the best configuration replayed.
- ``best_completed``: every replayed configuration with the best final value was completed
  (differs from ``hit`` only when several configurations tie for the best).
- ``top5_completed``: the fraction of the 5 best replayed configurations that were completed.
- ``regret``: ``(true best - found best) / (true best - median final)``, finals of the replayed
  configurations; 0 is the best, 1 no better than a typical configuration; NaN if nothing
  completed.
- ``epochs_to_best``: steps trained (over all trials, in order) until the study first holds a
  trial as good as the true best; None when it never does.
- ``prune_ms_*``: wall-clock milliseconds per ``trial.should_prune()`` call (the pruner plus
  Optuna's own overhead).
- ``fit_calls``/``fit_s``: a proxy for model refits, as the public API exposes no refit
  counter: calls slower than ``max(20 x median call, 5 ms)``, their count and total seconds.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
from concurrent.futures import as_completed
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from dataclasses import field
import json
import math
import os
from pathlib import Path
import sys
import time
from typing import Any
import warnings

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.pruners import BasePruner
from optuna.study import StudyDirection
from optuna.trial import TrialState

from optuna_srp.benchmark._corpus import Config
from optuna_srp.benchmark._corpus import Corpus
from optuna_srp.benchmark._corpus import find_corpus_files
from optuna_srp.benchmark._corpus import load_corpus
from optuna_srp.benchmark._pruners import parse_pruner_spec
from optuna_srp.benchmark._pruners import PRUNER_NAMES
from optuna_srp.benchmark._pruners import PrunerSpec


TOP_K = 5
_SLOW_CALL_FACTOR = 20.0
_SLOW_CALL_MIN_S = 0.005
_STATE_CODES = {TrialState.COMPLETE: "C", TrialState.PRUNED: "P", TrialState.FAIL: "F"}


DESCRIPTION = (
    "Replay real Optuna studies over recorded learning curves, in random orderings (each "
    "ordering's configurations enqueued in turn, RandomSampler seeded by the ordering): each "
    "trial is a recorded configuration whose curve is reported step by step, and each pruner "
    "decides as in a live study. One row per (corpus, pruner, ordering): epochs saved, whether "
    "the best configuration was kept. Get corpora with the fetch command."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``replay`` options to ``parser``."""
    add_study_arguments(parser, orderings=5)
    parser.add_argument(
        "--n-trials",
        type=int,
        default=None,
        help="replay the first N configs of each ordering (default: all)",
    )
    add_early_stopping_argument(parser)
    add_output_arguments(parser)


def add_study_arguments(parser: argparse.ArgumentParser, orderings: int) -> None:
    """Add the corpora, ``--pruners``, ``--orderings`` and ``--first-ordering``."""
    parser.add_argument("corpora", nargs="+", help="corpus files (.jsonl.gz) or folders of them")
    parser.add_argument(
        "--pruners",
        nargs="+",
        default=list(PRUNER_NAMES),
        metavar="SPEC",
        help="pruners: " + ", ".join(PRUNER_NAMES) + "; SRP variants as "
        "srp:threshold=0.05,n_startup_trials=20 (default: all)",
    )
    parser.add_argument(
        "--orderings",
        type=int,
        default=orderings,
        help=f"random orderings, seeds 0..k-1 (default: {orderings})",
    )
    parser.add_argument(
        "--first-ordering",
        type=int,
        default=0,
        help="seed of the first ordering (e.g. 5 with --orderings 5 replays seeds 5..9, "
        "held out from choices made on 0..4; default: 0)",
    )


def add_early_stopping_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--early-stopping`` (validated by :func:`load_inputs`)."""
    parser.add_argument(
        "--early-stopping",
        type=int,
        default=None,
        metavar="PATIENCE",
        help="the objective's own early stopping: each curve (a source's too) ends after "
        "PATIENCE reports without a new best, as in Lightning's EarlyStopping; default none",
    )


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--jobs``, ``--out``, ``--no-plots`` and ``--no-progress``."""
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default: 1)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for results.jsonl, summary.md and plots (default: none, print only)",
    )
    parser.add_argument(
        "--no-plots", action="store_true", help="do not draw plots (default: draw them)"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (default: show one)"
    )


def load_inputs(args: argparse.Namespace) -> tuple[list[PrunerSpec], list[Corpus]] | None:
    """The pruners and corpora of ``args``, all validated before anything runs; None (after
    printing why) when one is invalid or ``--orderings``, ``--jobs``, ``--first-ordering`` or
    ``--early-stopping`` is out of range."""
    try:
        specs = [parse_pruner_spec(s) for s in args.pruners]
        corpora = [load_corpus(f) for f in find_corpus_files(args.corpora)]
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return None
    if args.orderings < 1 or args.jobs < 1:
        print(
            f"error: --orderings and --jobs must be >= 1, got {args.orderings} and {args.jobs}",
            file=sys.stderr,
        )
        return None
    if args.first_ordering < 0:
        print(f"error: --first-ordering must be >= 0, got {args.first_ordering}", file=sys.stderr)
        return None
    if args.early_stopping is not None and args.early_stopping < 1:
        print(f"error: --early-stopping must be >= 1, got {args.early_stopping}", file=sys.stderr)
        return None
    return specs, corpora


def results_path(out: Path | None) -> Path | None:
    """``out/results.jsonl``, emptied (``out`` created), or None without ``out``."""
    if out is None:
        return None
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "results.jsonl"
    results_file.write_text("")
    return results_file


def run(args: argparse.Namespace) -> int:
    """Run ``replay`` from parsed arguments; returns the exit status."""
    from optuna_srp.benchmark import _report

    inputs = load_inputs(args)
    if inputs is None:
        return 2
    specs, corpora = inputs
    if args.n_trials is not None and args.n_trials < 1:
        print(f"error: --n-trials must be >= 1, got {args.n_trials}", file=sys.stderr)
        return 2
    out: Path | None = args.out
    results_file = results_path(out)
    rows = run_replay(
        corpora,
        specs,
        orderings=args.orderings,
        first_ordering=args.first_ordering,
        n_trials=args.n_trials,
        jobs=args.jobs,
        progress=not args.no_progress,
        results_file=results_file,
        early_stopping=args.early_stopping,
    )
    summary = _report.aggregate_replay(rows)
    table = _report.replay_table(summary)
    print(table)
    if out is not None:
        (out / "summary.md").write_text(
            _report.replay_header(args.orderings, args.n_trials, args.first_ordering)
            + "\n"
            + table
            + "\n"
        )
        (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        if not args.no_plots:
            if args.early_stopping is not None:
                corpora = [c.with_early_stopping(args.early_stopping) for c in corpora]
            for written in _report.replay_plots(rows, out, corpora):
                print(f"wrote {written}", file=sys.stderr)
        print(f"wrote {out / 'results.jsonl'} and {out / 'summary.md'}", file=sys.stderr)
    return 0


def run_replay(
    corpora: Sequence[Corpus],
    specs: Sequence[PrunerSpec],
    orderings: int = 5,
    n_trials: int | None = None,
    jobs: int = 1,
    first_ordering: int = 0,
    progress: bool = False,
    results_file: Path | None = None,
    early_stopping: int | None = None,
) -> list[dict[str, Any]]:
    """Replay every (corpus, pruner, ordering).

    Args:
        corpora: The corpora.
        specs: The pruners.
        orderings: Orderings per corpus, the same for every pruner.
        n_trials: Replay only the first ``n_trials`` configurations of each ordering.
        jobs: Worker processes; 1 runs in this process.
        progress: Show a progress bar (tqdm if installed, else a line per study on stderr).
        results_file: If given, append each study's result to it as a JSON line as it ends.
        first_ordering: The seed of the first ordering; they are seeded
            ``first_ordering..first_ordering + orderings - 1``.
        early_stopping: ``None``, or the patience of the objective's own early stopping
            (:meth:`~optuna_srp.benchmark.Corpus.with_early_stopping`).

    Returns:
        One result per study (see :func:`replay_study`), sorted by corpus, pruner, ordering.
    """
    tasks = [
        (ci, si, k)
        for ci in range(len(corpora))
        for si in range(len(specs))
        for k in range(first_ordering, first_ordering + orderings)
    ]
    return run_studies(
        corpora,
        specs,
        [(ci, si, (specs[si], k, n_trials, early_stopping)) for ci, si, k in tasks],
        replay_study,
        jobs=jobs,
        progress=progress,
        results_file=results_file,
        describe=lambda r: f"{r['corpus']} {r['pruner']} #{r['ordering']} {r['speedup']:.2f}x",
    )


def run_studies(
    corpora: Sequence[Corpus],
    specs: Sequence[PrunerSpec],
    tasks: Sequence[tuple[int, int, tuple[Any, ...]]],
    study: Callable[..., dict[str, Any]],
    jobs: int = 1,
    progress: bool = False,
    results_file: Path | None = None,
    describe: Callable[[dict[str, Any]], str] = lambda r: str(r["corpus"]),
) -> list[dict[str, Any]]:
    """Run ``study(corpora[ci], *args)`` for every task ``(ci, si, args)``, in processes.

    Args:
        corpora: The corpora.
        specs: The pruners; ``si`` indexes them, for the order of the results.
        tasks: ``(corpus index, spec index, arguments after the corpus)``.
        study: A module-level function (workers import it) returning a result with ``corpus``,
            ``pruner`` and ``ordering``.
        jobs: Worker processes; 1 runs in this process.
        progress: Show a progress bar (tqdm if installed, else a line per study on stderr).
        results_file: If given, append each study's result to it as a JSON line as it ends.
        describe: The progress message of a result.

    Returns:
        The results, sorted by corpus, pruner, ordering.
    """
    # Expensive pruners first, so that the last tasks of a parallel run are short ones.
    tasks = sorted(tasks, key=lambda t: (specs[t[1]].name != "srp", t[0], t[1]))
    # Each row with its task's corpus and spec indices, for the order of the results: a study
    # may report a corpus under another name (e.g. anytime's early stopping).
    rows: list[tuple[int, int, dict[str, Any]]] = []
    bar = _progress_bar(len(tasks), progress)

    def done(ci: int, si: int, row: dict[str, Any]) -> None:
        rows.append((ci, si, row))
        if results_file is not None:
            with open(results_file, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        bar(describe(row))

    if jobs <= 1:
        for ci, si, task_args in tasks:
            done(ci, si, study(corpora[ci], *task_args))
    else:
        paths = [c.path for c in corpora]
        if any(p is None for p in paths):
            raise ValueError("parallel runs need corpora read from files")
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {
                pool.submit(_corpus_task, str(paths[ci]), study, task_args): (ci, si)
                for ci, si, task_args in tasks
            }
            for fut in as_completed(futures):
                done(*futures[fut], fut.result())
    bar(None)
    rows.sort(key=lambda r: (r[0], r[1], r[2]["ordering"]))
    return [row for _, _, row in rows]


def ordering_indices(n_configs: int, ordering: int, n_trials: int | None = None) -> np.ndarray:
    """The configurations replayed by ordering ``ordering``: a seeded permutation, cut."""
    perm = np.random.default_rng(ordering).permutation(n_configs)
    return perm if n_trials is None else perm[:n_trials]


def replay_study(
    corpus: Corpus,
    pruner: PrunerSpec | BasePruner | Callable[[], BasePruner],
    ordering: int = 0,
    n_trials: int | None = None,
    early_stopping: int | None = None,
) -> dict[str, Any]:
    """Replay one study and measure it.

    Args:
        corpus: The corpus.
        pruner: A pruner spec, a pruner instance (used as is) or a factory.
        ordering: The ordering's seed.
        n_trials: Replay only the first ``n_trials`` configurations of the ordering.
        early_stopping: ``None``, or the patience of the objective's own early stopping: the
            corpus is replayed as :meth:`~optuna_srp.benchmark.Corpus.with_early_stopping`
            returns it, and the epochs no pruning spends are those of the stopped curves.

    Returns:
        A JSON-serialisable dict: the study's metrics (see the module docstring), its settings
        and ``trials``, a list of ``[config id, steps trained, "C"|"P"|"F"]`` in trial order.
    """
    if early_stopping is not None:
        corpus = corpus.with_early_stopping(early_stopping)
    label, instance = resolve_pruner(pruner)
    indices = ordering_indices(len(corpus.configs), ordering, n_trials)
    configs = [corpus.configs[i] for i in indices]
    steps = corpus.step_values

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    start = time.perf_counter()
    durations: list[float] = []
    with warnings.catch_warnings():
        # Wilcoxon warns on NaN; Optuna on FAIL; SRPPruner on a failed fit. None matter here.
        warnings.simplefilter("ignore")
        study = create_replay_study(
            corpus, f"{label}|{ordering}", instance, optuna.samplers.RandomSampler(seed=ordering)
        )

        queue = iter(configs)

        def start_trial() -> tuple[optuna.Trial, Config]:
            config = next(queue)
            study.enqueue_trial(dict(config.params))
            return study.ask(fixed_distributions=config_distributions(corpus, config)), config

        played = play_workers(study, start_trial, steps, 1, math.inf, len(configs), durations)
    trials = [[p.config.id, len(p.report_ends), p.state] for p in played]
    wall = time.perf_counter() - start

    metrics = study_metrics(
        finals=np.array([c.final for c in configs]) * corpus.sign,
        lengths=np.array([c.curve.size for c in configs]),
        steps_run=np.array([t[1] for t in trials]),
        completed=np.array([t[2] == "C" for t in trials]),
    )
    if metrics["n_complete"]:
        # Cross-check with the study's own notion of its best trial.
        study_best = study.best_value * corpus.sign
        assert math.isclose(study_best, metrics["found_best"], rel_tol=1e-9, abs_tol=1e-12)
    d = np.array(durations) if durations else np.zeros(1)
    slow = d > max(_SLOW_CALL_FACTOR * float(np.median(d)), _SLOW_CALL_MIN_S)
    return {
        "corpus": corpus.name,
        "corpus_path": str(corpus.path) if corpus.path is not None else None,
        "pruner": label,
        "ordering": ordering,
        "n_trials": len(configs),
        "early_stopping": early_stopping,
        "direction": corpus.direction,
        **metrics,
        "prune_calls": len(durations),
        "prune_s": float(np.sum(durations)),
        "prune_ms_mean": 1e3 * float(np.mean(d)),
        "prune_ms_p50": 1e3 * float(np.median(d)),
        "prune_ms_max": 1e3 * float(np.max(d)),
        "fit_calls": int(slow.sum()),
        "fit_s": float(d[slow].sum()),
        "wall_s": wall,
        "trials": trials,
    }


def resolve_pruner(
    pruner: PrunerSpec | BasePruner | Callable[[], BasePruner],
) -> tuple[str, BasePruner]:
    """The label and a fresh instance of a pruner spec, an instance (used as is) or a factory."""
    if isinstance(pruner, PrunerSpec):
        return pruner.label, pruner.build()
    if isinstance(pruner, BasePruner):
        return type(pruner).__name__, pruner
    instance = pruner()
    return type(instance).__name__, instance


def create_replay_study(
    corpus: Corpus, name: str, pruner: BasePruner, sampler: optuna.samplers.BaseSampler
) -> optuna.Study:
    """An in-memory study in the corpus's direction."""
    return optuna.create_study(
        study_name=f"{corpus.name}|{name}",
        direction=(StudyDirection.MAXIMIZE if corpus.sign > 0 else StudyDirection.MINIMIZE),
        pruner=pruner,
        sampler=sampler,
    )


def config_distributions(corpus: Corpus, config: Config) -> dict[str, BaseDistribution]:
    """The distributions of the parameters ``config`` holds."""
    return {name: corpus.distributions[name] for name in config.params}


@dataclass
class PlayedTrial:
    """A trial of :func:`play_workers`: its configuration, the steps spent (every worker's)
    after each of its reports, and how it ended (``"C"``, ``"P"``, ``"F"``; ``"?"`` while
    running)."""

    config: Config
    trial: optuna.Trial
    report_ends: list[int] = field(default_factory=list)
    state: str = "?"


def play_workers(
    study: optuna.Study,
    start_trial: Callable[[], tuple[optuna.Trial, Config]],
    steps: Sequence[int],
    workers: int,
    limit: float,
    n_configs: int,
    durations: list[float] | None = None,
) -> list[PlayedTrial]:
    """Train trials ``workers`` at a time until ``limit`` steps are spent or ``n_configs``
    trials have started (workers as in :mod:`optuna_srp.benchmark._anytime`); returns them in
    the order they started.

    Each tick, every idle worker starts a trial (``start_trial``: ask the study, return the
    trial and its configuration), unless the budget is spent or the configurations are used up;
    then every running trial, in worker order, reports its next value and asks
    ``should_prune()``, and is told when pruned or at its curve's end (PRUNED, its final
    value, or FAIL when that is not finite: a diverged run). With one worker, each trial
    trains to its end before the next starts. ``durations``, if given, gets the seconds of
    each ``should_prune()`` call.
    """
    played: list[PlayedTrial] = []
    running: list[PlayedTrial | None] = [None] * workers
    spent = 0
    while True:
        for w in range(workers):
            if running[w] is None and spent < limit and len(played) < n_configs:
                trial, config = start_trial()
                started = PlayedTrial(config, trial)
                running[w] = started
                played.append(started)
        if all(p is None for p in running):
            return played
        for w, p in enumerate(running):
            if p is None:
                continue
            i = len(p.report_ends)
            p.trial.report(float(p.config.curve[i]), steps[i])
            spent += 1
            p.report_ends.append(spent)
            t0 = time.perf_counter()
            pruned = p.trial.should_prune()
            if durations is not None:
                durations.append(time.perf_counter() - t0)
            if pruned or i + 1 == p.config.curve.size:
                p.state = _tell(study, p.trial, p.config, pruned)
                running[w] = None


def _tell(study: optuna.Study, trial: optuna.Trial, config: Config, pruned: bool) -> str:
    """Tell the study how ``trial`` ended: PRUNED if ``pruned``, else ``config``'s final value,
    or FAIL when that is not finite (a diverged run); returns ``"C"``, ``"P"`` or ``"F"``."""
    if pruned:
        frozen = study.tell(trial, state=TrialState.PRUNED)
    elif math.isfinite(config.final):
        frozen = study.tell(trial, config.final)
    else:
        frozen = study.tell(trial, state=TrialState.FAIL)
    return _STATE_CODES.get(frozen.state, "?")


def regret_scale(finals: np.ndarray) -> float:
    """The regret's unit: best final - median final (higher is better; NaN ignored).

    Falls back to best - worst, then to 1, when the finals leave no positive spread.
    """
    finals = np.asarray(finals, dtype=np.float64)
    finite = finals[np.isfinite(finals)]
    if not finite.size:
        return 1.0
    best = float(finite.max())
    scale = best - float(np.median(finite))
    if not scale > 0:
        scale = best - float(finite.min())
    return scale if scale > 0 else 1.0


def study_metrics(
    finals: np.ndarray, lengths: np.ndarray, steps_run: np.ndarray, completed: np.ndarray
) -> dict[str, Any]:
    """The metrics of one replayed study, from its trials in order.

    Args:
        finals: True final value of each trial's configuration, higher is better, NaN when
            diverged.
        lengths: The number of steps of each configuration's curve.
        steps_run: Steps each trial trained.
        completed: Whether each trial was completed (not pruned, not failed).

    Returns:
        ``epochs_full``, ``epochs_spent``, ``speedup``, ``n_complete``, ``n_pruned_or_failed``,
        ``true_best``, ``found_best``, ``hit``, ``best_completed``, ``top5_completed``,
        ``regret`` and ``epochs_to_best``; best values in the higher-is-better orientation.
    """
    finals = np.asarray(finals, dtype=np.float64)
    completed = np.asarray(completed, dtype=bool)
    steps_run = np.asarray(steps_run, dtype=np.int64)
    full = int(np.sum(lengths))
    spent = int(np.sum(steps_run))
    finite = np.isfinite(finals)
    true_best = float(finals[finite].max()) if finite.any() else math.nan
    ok = completed & finite
    found_best = float(finals[ok].max()) if ok.any() else math.nan
    tol = 1e-9 * max(1.0, abs(true_best)) if math.isfinite(true_best) else 0.0
    is_best = finite & (finals >= true_best - tol)
    hit = bool(ok.any() and found_best >= true_best - tol)

    order = np.argsort(-np.where(finite, finals, -np.inf), kind="stable")
    top = order[: min(TOP_K, int(finite.sum()))]
    top_completed = float(completed[top].mean()) if top.size else math.nan

    scale = regret_scale(finals)
    regret = (true_best - found_best) / scale if ok.any() else math.nan

    epochs_to_best = None
    if hit:
        cum = np.cumsum(steps_run)
        first = int(np.flatnonzero(ok & is_best)[0])
        epochs_to_best = int(cum[first])
    return {
        "epochs_full": full,
        "epochs_spent": spent,
        "speedup": full / spent if spent else math.inf,
        "n_complete": int(completed.sum()),
        "n_pruned_or_failed": int((~completed).sum()),
        "true_best": true_best,
        "found_best": found_best,
        "hit": hit,
        "best_completed": bool(completed[is_best].all()) if is_best.any() else False,
        "top5_completed": top_completed,
        "regret": regret,
        "epochs_to_best": epochs_to_best,
    }


_WORKER_CORPORA: dict[str, Corpus] = {}


def _corpus_task(
    path: str, study: Callable[..., dict[str, Any]], args: tuple[Any, ...]
) -> dict[str, Any]:
    corpus = _WORKER_CORPORA.get(path)
    if corpus is None:
        corpus = _WORKER_CORPORA[path] = load_corpus(path)
    return study(corpus, *args)


def _progress_bar(total: int, enabled: bool) -> Callable[[str | None], None]:
    """A callable to call once per finished task with a message, and with None at the end."""
    if not enabled:
        return lambda msg: None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        count = [0]

        def plain(msg: str | None) -> None:
            if msg is not None:
                count[0] += 1
                print(f"[{count[0]}/{total}] {msg}", file=sys.stderr, flush=True)

        return plain
    bar = tqdm(total=total, unit="study", file=sys.stderr, dynamic_ncols=True)

    def update(msg: str | None) -> None:
        if msg is None:
            bar.close()
        else:
            bar.set_postfix_str(msg, refresh=False)
            bar.update(1)

    return update


def default_jobs() -> int:
    """The number of CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
