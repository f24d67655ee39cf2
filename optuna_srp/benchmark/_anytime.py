"""``anytime``: what each pruner's study returns for a fixed training budget (anytime regret).

Users buy epochs, not trials. Each ordering replays a corpus as a real Optuna study, as
``replay`` does (each recorded value reported, ``should_prune()`` after each report, PRUNED
when told), until the largest budget is spent or the corpus runs out; then, at every budget, it
asks what the study would return.

Budgets are in full trainings: ``B`` means ``B x T`` steps, ``T`` the longest curve of the
corpus. Steps are counted in the order the trials ran (the replay is sequential); a trial that
starts before a budget and ends after it is trained to its end, but it counts at that budget
only for the secondary incumbent, with the steps it reported within the budget.

Workers (``--workers K``, the distributed case): ``K`` trials train at once, as ``K`` workers
sharing one study through its storage would, and each reports one step per tick, in worker
order; a worker whose trial ends asks for the next one at once, and its first report comes a
tick later. No new trial starts once the budget is spent; the running ones train to their end.
The budget counts every worker's steps (GPU hours, not wall time), so ``K`` workers get the
same budget as one; a trial counts at a budget once its last report is within it. Each pruner
sees the other workers' running trials as it would through a shared storage, which is where
asynchronous successive halving promotes the first trials to reach a rung against few peers.
With ``K = 1`` this is the sequential replay.

Metrics at a budget, all in the corpus's "higher is better" orientation:

- ``regret``: ``(true best - found) / (true best - median final)``, where *found* is the best
  final value of the COMPLETE trials finished within the budget (what ``study.best_trial``
  returns: a pruned trial's model was not trained to the end), *true best* and *median final*
  are over every configuration of the corpus (diverged runs ignored). 0: the study returns the
  corpus's best; 1: no better than a typical configuration. NaN while no trial has completed.
- ``hit``: *found* is as good as the corpus's best (relative tolerance 1e-9).
- ``started``: configurations started within the budget.
- ``incumbent_regret`` (secondary): the same regret for the incumbent DPL and ifBO use, the
  best value reported at any step of any trial within the budget. It can be negative: a curve
  can peak above the best final value.

Samplers:

- ``random``: ordering ``k`` replays ``numpy.random.default_rng(k).permutation(n_configs)`` as
  ``replay`` does (each configuration enqueued with its recorded parameters).
- ``tpe``: Optuna's ``TPESampler(seed=k)`` proposes each trial's parameters from the corpus's
  distributions; the study trains the nearest recorded configuration not yet used in that study
  (see :class:`NearestUnusedSampler`) and the trial carries that configuration's recorded
  parameters, so TPE models what was actually trained.

Warm starts (``SRPPruner(source_trials=...)``, the re-tuning case):

- ``--split half``: ordering ``k`` splits the corpus into two random halves (a permutation
  seeded by ``[k, 2]``, apart from the ordering's own); the study replays only the second half,
  and its regret is measured against the second half's best and median.
- ``--source half`` (with ``--split half``): the first half's complete curves are the source
  trials, as an earlier study of the same task would leave them unpruned. ``--source
  pruned-half``: the complete and pruned trials that an earlier study of the first half, pruned
  by ``SRPPruner()``, left after the largest budget (:func:`pruned_study_trials`): a user's old
  study was pruned, its complete trials are mostly its better runs, and its pruned trials'
  curves end where they were stopped; ``--source pruned-half:PRUNER`` prunes the earlier study
  with another pruner spec (e.g. ``successive_halving``, what many old studies used).
  ``--source PATH``: every configuration of another corpus (a related task, another model
  class). Only pruners that take ``source_trials`` (``srp``) get them, labelled
  ``LABEL+source``; diverged source runs are left out.

The objective's own early stopping (``--early-stopping PATIENCE``): each curve, the source's
too, ends after ``PATIENCE`` reports without a new best (:meth:`Corpus.with_early_stopping`),
so that complete trials end at different steps; the corpus is named ``NAME+early-stopP``, and
budgets stay in full trainings of the longest recorded curve.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import dataclasses
import math
from pathlib import Path
import sys
import time
from typing import Any
import warnings

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_srp.benchmark._corpus import Config
from optuna_srp.benchmark._corpus import Corpus
from optuna_srp.benchmark._corpus import load_corpus
from optuna_srp.benchmark._pruners import parse_pruner_spec
from optuna_srp.benchmark._pruners import PrunerSpec
from optuna_srp.benchmark._replay import add_early_stopping_argument
from optuna_srp.benchmark._replay import add_output_arguments
from optuna_srp.benchmark._replay import add_study_arguments
from optuna_srp.benchmark._replay import config_distributions
from optuna_srp.benchmark._replay import create_replay_study
from optuna_srp.benchmark._replay import load_inputs
from optuna_srp.benchmark._replay import ordering_indices
from optuna_srp.benchmark._replay import play_workers
from optuna_srp.benchmark._replay import regret_scale
from optuna_srp.benchmark._replay import resolve_pruner
from optuna_srp.benchmark._replay import results_path
from optuna_srp.benchmark._replay import run_studies


DEFAULT_BUDGETS = (10.0, 25.0, 50.0, 100.0)
SAMPLERS = ("random", "tpe")
SOURCE_AWARE = ("srp",)
"""Pruner names whose constructor takes ``source_trials``."""
REFERENCE_BUDGET = 20.0
"""LC-PFN's reference: the regret no pruning has after this many full trainings."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``anytime`` options to ``parser``."""
    add_study_arguments(parser, orderings=10)
    parser.add_argument(
        "--budgets",
        nargs="+",
        type=float,
        default=list(DEFAULT_BUDGETS),
        metavar="B",
        help="budgets in full trainings (multiples of the longest curve); default 10 25 50 100",
    )
    parser.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default="random",
        help="random: seeded permutations of the corpus; tpe: TPESampler's proposals, each "
        "trained as the nearest recorded configuration not yet used",
    )
    parser.add_argument(
        "--split",
        choices=("none", "half"),
        default="none",
        help="half: replay a random half of each corpus (per ordering) and measure regret on "
        "it; default none (the whole corpus)",
    )
    parser.add_argument(
        "--source",
        default=None,
        metavar="half|pruned-half[:PRUNER]|PATH",
        help="source trials for SRP pruners (with --split half): 'half' (the other half's "
        "complete curves) or 'pruned-half' (the complete and pruned trials an SRPPruner() "
        "study of the other half left; 'pruned-half:PRUNER' for another pruner spec); or a "
        "corpus file whose configurations serve as an earlier study's; default none",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="K",
        help="trials that train at once on one study, as K workers sharing its storage would "
        "(one step each per tick; budgets count every worker's steps); default 1, sequential",
    )
    add_early_stopping_argument(parser)
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run ``anytime`` from parsed arguments; returns the exit status."""
    from optuna_srp.benchmark import _report

    inputs = load_inputs(args)
    if inputs is None:
        return 2
    specs, corpora = inputs
    bad = [b for b in args.budgets if not (math.isfinite(b) and b > 0)]
    if bad:
        print(f"error: --budgets must be positive, got {bad[0]}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print(f"error: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return 2
    source: Corpus | str | None = args.source
    if _is_half(args.source):
        if args.split != "half":
            print(f"error: --source {args.source} needs --split half", file=sys.stderr)
            return 2
        try:
            _old_pruner(args.source)
        except ValueError as e:
            print(f"error: --source: {e}", file=sys.stderr)
            return 2
    elif args.source is not None:
        try:
            source = load_corpus(Path(args.source))
        except (ValueError, FileNotFoundError) as e:
            print(f"error: --source: {e}", file=sys.stderr)
            return 2
    out: Path | None = args.out
    results_file = results_path(out)
    start = time.perf_counter()
    rows = run_anytime(
        corpora,
        specs,
        budgets=args.budgets,
        orderings=args.orderings,
        first_ordering=args.first_ordering,
        sampler=args.sampler,
        jobs=args.jobs,
        progress=not args.no_progress,
        results_file=results_file,
        split=args.split,
        source=source,
        early_stopping=args.early_stopping,
        workers=args.workers,
    )
    wall = time.perf_counter() - start
    text = _report.anytime_report(rows)
    print(text)
    print(f"{len(rows)} studies in {wall:.0f} s with --jobs {args.jobs}", file=sys.stderr)
    if out is not None:
        (out / "summary.md").write_text(text + "\n")
        if not args.no_plots:
            for written in _report.anytime_plots(rows, out):
                print(f"wrote {written}", file=sys.stderr)
        print(f"wrote {results_file} and {out / 'summary.md'}", file=sys.stderr)
    return 0


def run_anytime(
    corpora: Sequence[Corpus],
    specs: Sequence[PrunerSpec],
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    orderings: int = 10,
    first_ordering: int = 0,
    sampler: str = "random",
    jobs: int = 1,
    progress: bool = False,
    results_file: Path | None = None,
    split: str = "none",
    source: Corpus | str | None = None,
    early_stopping: int | None = None,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """Run an anytime study for every (corpus, pruner, ordering).

    Args:
        corpora: The corpora.
        specs: The pruners.
        budgets: Budgets in full trainings.
        orderings: Orderings per corpus, seeded ``first_ordering..first_ordering+orderings-1``.
        first_ordering: The seed of the first ordering.
        sampler: ``"random"`` or ``"tpe"``.
        jobs: Worker processes; 1 runs in this process.
        progress: Show a progress bar.
        results_file: If given, append each study's result to it as a JSON line as it ends.
        split: ``"none"`` or ``"half"`` (see the module docstring).
        source: ``None``, ``"half"``, ``"pruned-half"``, ``"pruned-half:PRUNER"`` or a
            corpus whose configurations are source trials.
        early_stopping: ``None``, or the patience of the objective's own early stopping
            (:meth:`~optuna_srp.benchmark.Corpus.with_early_stopping`).
        workers: Trials that train at once in each study (see the module docstring).

    Returns:
        One result per study (see :func:`anytime_study`), sorted by corpus, pruner, ordering.
    """
    specs = [_with_source_label(s) if source is not None else s for s in specs]
    tasks = [
        (ci, si, (specs[si], k, sampler, tuple(budgets), split, source, early_stopping, workers))
        for ci in range(len(corpora))
        for si in range(len(specs))
        for k in range(first_ordering, first_ordering + orderings)
    ]

    def describe(r: dict[str, Any]) -> str:
        last = r["at_budget"][-1]["regret"]
        return f"{r['corpus']} {r['pruner']} {r['sampler']} #{r['ordering']} regret {last:.3f}"

    return run_studies(
        corpora,
        specs,
        tasks,
        anytime_study,
        jobs=jobs,
        progress=progress,
        results_file=results_file,
        describe=describe,
    )


def anytime_study(
    corpus: Corpus,
    pruner: PrunerSpec | BasePruner,
    ordering: int = 0,
    sampler: str = "random",
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    split: str = "none",
    source: Corpus | str | None = None,
    early_stopping: int | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Replay one study until ``max(budgets)`` full trainings are spent, and measure it.

    Args:
        corpus: The corpus.
        pruner: A pruner spec or a pruner instance (used as is).
        ordering: The ordering's seed (the permutation's, or TPE's).
        sampler: ``"random"`` or ``"tpe"`` (see the module docstring).
        budgets: Budgets in full trainings.
        split: ``"none"``, or ``"half"`` to replay a random half (see the module docstring).
        source: ``None``, ``"half"``, ``"pruned-half"`` or ``"pruned-half:PRUNER"`` (the
            other half, with ``split="half"``, see the module docstring) or a corpus: the
            source trials of the pruners that take them.
        early_stopping: ``None``, or the patience of the objective's own early stopping,
            applied to the corpus (before the split) and to a source corpus
            (:meth:`~optuna_srp.benchmark.Corpus.with_early_stopping`); the result's corpus is
            the one renamed there.
        workers: Trials that train at once (see the module docstring); 1 is sequential.

    Returns:
        A JSON-serialisable dict: the settings; ``n_steps`` (T), ``true_best``, ``median_final``
        and ``scale`` (the regret's unit) of the corpus; ``at_budget``, the metrics of
        :func:`budget_metrics` at each budget; ``epochs_spent``; ``exhausted`` (the corpus ran
        out before the largest budget); and ``trials``, a list of ``[config id, steps trained,
        "C"|"P"|"F", final value (higher is better) or None]`` in trial order, with workers
        a fifth item: the steps spent (every worker's) when the trial ended.

    Raises:
        ValueError: If ``sampler``, a budget or ``workers`` is invalid.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if not budgets or not all(math.isfinite(b) and b > 0 for b in budgets):
        raise ValueError(f"budgets must be positive numbers, got {list(budgets)}")
    if split not in ("none", "half"):
        raise ValueError(f"split must be 'none' or 'half', got {split!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer of at least 1, got {workers!r}")
    if _is_half(source) and split != "half":
        raise ValueError(f"source={source!r} needs split='half'")
    source_corpus: Corpus | None = source if isinstance(source, Corpus) else None
    source_list: list[FrozenTrial] | None = None
    old_pruner: str | None = None
    # A full training is the longest recorded curve, with or without early stopping: what the
    # user's objective trains at most.
    n_steps = max(c.curve.size for c in corpus.configs)
    if early_stopping is not None:
        corpus = corpus.with_early_stopping(early_stopping)
        if source_corpus is not None:
            source_corpus = source_corpus.with_early_stopping(early_stopping)
    if split == "half":
        earlier, corpus = split_halves(corpus, ordering)
        if _is_half(source):
            source_corpus = earlier
    if source_corpus is not None and isinstance(pruner, PrunerSpec):
        if pruner.name in SOURCE_AWARE:
            if isinstance(source, str):
                old_pruner = _old_pruner(source)
            source_list = (
                pruned_study_trials(source_corpus, ordering, max(budgets), old_pruner)
                if old_pruner is not None
                else source_trials(source_corpus)
            )
            pruner = dataclasses.replace(
                _with_source_label(pruner),
                kwargs={**pruner.kwargs, "source_trials": source_list},
            )
    label, instance = resolve_pruner(pruner)
    limit = max(budgets) * n_steps
    steps = corpus.step_values
    chooser: NearestUnusedSampler | None = None
    queue = iter(ordering_indices(len(corpus.configs), ordering) if sampler == "random" else [])
    if sampler == "random":
        study_sampler: BaseSampler = optuna.samplers.RandomSampler(seed=ordering)
    else:
        chooser = NearestUnusedSampler(corpus, optuna.samplers.TPESampler(seed=ordering))
        study_sampler = chooser

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    start = time.perf_counter()

    def start_trial() -> tuple[optuna.Trial, Config]:
        if chooser is None:
            config = corpus.configs[next(queue)]
            study.enqueue_trial(dict(config.params))
            trial = study.ask(fixed_distributions=config_distributions(corpus, config))
        else:
            trial = study.ask(fixed_distributions=chooser.common_distributions)
            config = chooser.config_of(trial.number)
            for name, dist in config_distributions(corpus, config).items():
                _suggest(trial, name, dist)  # the parameters not every config has
        return trial, config

    with warnings.catch_warnings():
        # Wilcoxon warns on NaN; Optuna on FAIL; SRPPruner on a failed fit. None matter here.
        warnings.simplefilter("ignore")
        study = create_replay_study(
            corpus, f"{label}|{sampler}|{ordering}", instance, study_sampler
        )
        played_trials = play_workers(
            study, start_trial, steps, workers, limit, len(corpus.configs)
        )
    wall = time.perf_counter() - start
    spent = sum(len(p.report_ends) for p in played_trials)
    trials: list[list[Any]] = []
    for p in played_trials:
        final = p.config.final * corpus.sign
        trials.append(
            [p.config.id, len(p.report_ends), p.state, final if math.isfinite(final) else None]
        )
        if workers > 1:
            trials[-1].append(p.report_ends[-1])

    finals = corpus.finals() * corpus.sign
    finite = finals[np.isfinite(finals)]
    true_best = float(finite.max()) if finite.size else math.nan
    scale = regret_scale(finals)
    curves = [p.config.curve * corpus.sign for p in played_trials]
    steps_run = [t[1] for t in trials]
    completed = [t[2] == "C" for t in trials]
    report_ends = [p.report_ends for p in played_trials]
    return {
        "kind": "anytime",
        "corpus": corpus.name,
        "corpus_path": str(corpus.path) if corpus.path is not None else None,
        "pruner": label,
        "sampler": sampler,
        "ordering": ordering,
        "split": split,
        "workers": workers,
        "early_stopping": early_stopping,
        "source": source_corpus.name if label.endswith("+source") and source_corpus else None,
        "n_source": sum(t.state == TrialState.COMPLETE for t in source_list)
        if source_list is not None
        else None,
        "n_source_pruned": sum(t.state == TrialState.PRUNED for t in source_list)
        if source_list is not None
        else None,
        "source_pruner": old_pruner,
        # Whether the source check dropped the source (the key SRPPruner stores in the study).
        "source_dropped": any(
            key.startswith("srp:source_dropped@")
            for key in study._storage.get_study_system_attrs(study._study_id)
        )
        if source_list is not None
        else None,
        "direction": corpus.direction,
        "n_configs": len(corpus.configs),
        "n_steps": n_steps,
        "true_best": true_best,
        "median_final": float(np.median(finite)) if finite.size else math.nan,
        "scale": scale,
        "budgets": [float(b) for b in budgets],
        "at_budget": [
            budget_metrics(
                curves, steps_run, completed, b * n_steps, true_best, scale, report_ends
            )
            for b in budgets
        ],
        "epochs_spent": spent,
        "exhausted": spent < limit,
        "wall_s": wall,
        "trials": trials,
    }


def _with_source_label(spec: PrunerSpec) -> PrunerSpec:
    if spec.name not in SOURCE_AWARE or spec.label.endswith("+source"):
        return spec
    return dataclasses.replace(spec, label=f"{spec.label}+source")


def _is_half(source: object) -> bool:
    """Whether ``source`` takes the other half of a ``split="half"`` corpus."""
    return isinstance(source, str) and (
        source in ("half", "pruned-half") or source.startswith("pruned-half:")
    )


def _old_pruner(source: str) -> str | None:
    """The pruner spec of the earlier study a ``pruned-half`` source replays; None for
    ``half``.

    Raises:
        ValueError: If the spec after ``pruned-half:`` is not a pruner spec.
    """
    if source == "half":
        return None
    spec = "srp" if source == "pruned-half" else source.split(":", 1)[1]
    parse_pruner_spec(spec)
    return spec


def pruned_study_trials(
    corpus: Corpus, ordering: int, budget: float, pruner: str = "srp"
) -> list[FrozenTrial]:
    """The complete and pruned trials that a study of ``corpus`` pruned by ``pruner`` (a
    pruner spec, ``SRPPruner()`` by default) leaves, replaying it in ordering ``ordering``
    (random sampler) for ``budget`` full trainings or until every configuration has run: what
    a user's old study passes as source trials. A pruned trial's curve ends where it was
    stopped; failed trials are left out, and so are pruned ones without a finite value in
    their curve (see :func:`source_trials`)."""
    old = anytime_study(corpus, parse_pruner_spec(pruner), ordering, budgets=(budget,))
    by_id = {c.id: c for c in corpus.configs}
    trials = [
        _as_trial(corpus, by_id[config_id], n_run if state == "P" else None)
        for config_id, n_run, state, _ in old["trials"]
        if state in ("C", "P")
    ]
    return [t for t in trials if t.intermediate_values]


def split_halves(corpus: Corpus, ordering: int) -> tuple[Corpus, Corpus]:
    """Ordering ``ordering``'s two random halves of ``corpus``: the earlier study's
    configurations and the ones the study replays (each in file order)."""
    perm = np.random.default_rng([ordering, 2]).permutation(len(corpus.configs))
    half = len(perm) // 2
    first, second = np.sort(perm[:half]), np.sort(perm[half:])
    return (
        dataclasses.replace(corpus, configs=[corpus.configs[i] for i in first]),
        dataclasses.replace(corpus, configs=[corpus.configs[i] for i in second]),
    )


def source_trials(corpus: Corpus) -> list[FrozenTrial]:
    """The corpus's configurations as complete trials of an earlier study: recorded
    parameters, the curve as intermediate values at the corpus's steps, the last value as the
    trial's value. Diverged runs (a non-finite final value) are left out, and so are the
    non-finite points of the others' curves."""
    return [_as_trial(corpus, c) for c in corpus.configs if math.isfinite(c.final)]


def _as_trial(corpus: Corpus, config: Config, n_reports: int | None = None) -> FrozenTrial:
    """``config`` as a complete trial, or, given ``n_reports``, as a trial pruned after its
    first ``n_reports`` reports (see :func:`source_trials`)."""
    steps = corpus.step_values[: config.curve.size if n_reports is None else n_reports]
    curve = {step: float(v) for step, v in zip(steps, config.curve) if math.isfinite(v)}
    if n_reports is not None:
        return optuna.trial.create_trial(
            state=TrialState.PRUNED,
            params=dict(config.params),
            distributions=config_distributions(corpus, config),
            intermediate_values=curve,
        )
    return optuna.trial.create_trial(
        params=dict(config.params),
        distributions=config_distributions(corpus, config),
        value=float(config.final),
        intermediate_values=curve,
    )


def budget_metrics(
    curves: Sequence[np.ndarray],
    steps_run: Sequence[int],
    completed: Sequence[bool],
    budget_steps: float,
    true_best: float,
    scale: float,
    report_ends: Sequence[Sequence[int]] | None = None,
) -> dict[str, Any]:
    """What a study returns after ``budget_steps`` steps.

    Args:
        curves: Each trial's recorded curve in trial order, higher is better, NaN if diverged.
        steps_run: The steps each trial trained.
        completed: Whether each trial completed (not pruned, not failed).
        budget_steps: The budget in steps.
        true_best: The corpus's best final value (higher is better).
        scale: The regret's unit (``true best - median final``).
        report_ends: The steps spent (every worker's) after each report of each trial, where
            trials ran at once (:func:`play_workers`); None for a sequential study, whose
            trials ran one after the other in the order given.

    Returns:
        ``regret``, ``found``, ``hit``, ``started``, ``finished``, ``incumbent`` and
        ``incumbent_regret`` as in the module docstring; NaN where undefined.
    """
    run = np.asarray(steps_run, dtype=np.int64)
    if report_ends is None:
        ends = np.cumsum(run)
        report_ends = [range(e - n + 1, e + 1) for e, n in zip(ends.tolist(), run.tolist())]
    # A trial started when its first step began, one step before its first report ended.
    starts = np.array([r[0] - 1 for r in report_ends])
    ends = np.array([r[-1] for r in report_ends])
    finished = ends <= budget_steps
    found = math.nan
    incumbent = math.nan
    for curve, reports, start, done, complete in zip(
        curves, report_ends, starts, finished, completed
    ):
        if start >= budget_steps:
            continue
        n_seen = int(np.searchsorted(np.asarray(reports), budget_steps, side="right"))
        seen = np.asarray(curve[:n_seen], dtype=np.float64)
        seen = seen[np.isfinite(seen)]
        if seen.size:
            incumbent = float(seen.max()) if math.isnan(incumbent) else max(incumbent, seen.max())
        final = float(curve[len(reports) - 1])
        if done and complete and math.isfinite(final):
            found = final if math.isnan(found) else max(found, final)
    tol = 1e-9 * max(1.0, abs(true_best)) if math.isfinite(true_best) else 0.0
    return {
        "regret": (true_best - found) / scale,
        "found": found,
        "hit": bool(math.isfinite(found) and found >= true_best - tol),
        "started": int(np.sum(starts < budget_steps)),
        "finished": int(np.sum(finished)),
        "incumbent": incumbent,
        "incumbent_regret": (true_best - incumbent) / scale,
    }


class NearestUnusedSampler(BaseSampler):
    """Trains the recorded configuration nearest to another sampler's proposal, once each.

    Tabular benchmarks hold a finite set of configurations; a continuous sampler's proposal is
    mapped to the nearest recorded one that this study has not used yet. Numeric parameters are
    normalised to [0, 1] over their distribution's range (on the log scale where the
    distribution is log) and compared by Euclidean distance; categorical ones must match: each
    mismatch costs more than any numeric distance, so a configuration matching every categorical
    proposal is always preferred. Ties go to the configuration first in the corpus.

    It works through Optuna's relative sampling: the proposal and the lookup happen in
    :meth:`sample_relative`, which returns the chosen configuration's recorded parameters, so
    the trial carries those, and the proposer (TPE) later models what was actually trained. The
    proposer sees the same study, filtered by the pruner (e.g. by ``HyperbandPruner``'s
    brackets), as it would in a user's study.

    Args:
        corpus: The corpus.
        proposer: The sampler whose ``sample_independent`` proposes each parameter.
    """

    def __init__(self, corpus: Corpus, proposer: BaseSampler) -> None:
        self._corpus = corpus
        self._proposer = proposer
        self._space = dict(corpus.distributions)
        self._numeric = [
            n for n, d in self._space.items() if not isinstance(d, CategoricalDistribution)
        ]
        self._categorical = [
            n for n, d in self._space.items() if isinstance(d, CategoricalDistribution)
        ]
        self._x = np.array([self._normalised(c.params) for c in corpus.configs])
        self._codes = np.array([self._category_codes(c.params) for c in corpus.configs])
        self._used = np.zeros(len(corpus.configs), dtype=bool)
        self._chosen: dict[int, int] = {}
        names = set(self._space)
        for c in corpus.configs:
            names &= set(c.params)
        self.common_distributions = {n: d for n, d in self._space.items() if n in names}
        if not self.common_distributions:
            raise ValueError(
                f"corpus {corpus.name!r}: no parameter is held by every configuration, which "
                "the lookup needs to start a trial"
            )

    def nearest(self, params: dict[str, Any]) -> int:
        """The index of the unused configuration nearest to ``params``.

        Raises:
            ValueError: If every configuration has been used.
        """
        if self._used.all():
            raise ValueError(f"every configuration of {self._corpus.name!r} has been used")
        x = self._normalised(params)
        gap = np.where(np.isnan(self._x), 1.0, self._x - x) if self._x.size else self._x
        dist = np.sum(np.square(gap), axis=1) if self._x.size else np.zeros(len(self._used))
        if self._codes.size:
            mismatches = np.sum(self._codes != self._category_codes(params), axis=1)
            dist = dist + mismatches * (len(self._numeric) + 1.0)
        dist[self._used] = np.inf
        return int(np.argmin(dist))

    def config_of(self, trial_number: int) -> Config:
        """The configuration chosen for trial ``trial_number``."""
        return self._corpus.configs[self._chosen[trial_number]]

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self._space)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        proposal = {
            name: self._proposer.sample_independent(study, trial, name, dist)
            for name, dist in self._space.items()
        }
        index = self.nearest(proposal)
        self._used[index] = True
        self._chosen[trial.number] = index
        return dict(self._corpus.configs[index].params)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._proposer.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._proposer.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._proposer.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._proposer.reseed_rng()

    def _normalised(self, params: dict[str, Any]) -> list[float]:
        out = []
        for name in self._numeric:
            dist = self._space[name]
            assert isinstance(dist, (FloatDistribution, IntDistribution))
            value = params.get(name)
            if value is None:
                out.append(math.nan)
                continue
            low, high, v = float(dist.low), float(dist.high), float(value)
            if dist.log:
                low, high, v = math.log(low), math.log(high), math.log(v)
            out.append((v - low) / (high - low) if high > low else 0.0)
        return out

    def _category_codes(self, params: dict[str, Any]) -> list[int]:
        codes = []
        for name in self._categorical:
            dist = self._space[name]
            assert isinstance(dist, CategoricalDistribution)
            codes.append(dist.choices.index(params[name]) if name in params else -1)
        return codes


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    raise TypeError(f"parameter {name!r}: unsupported distribution {dist!r}")
