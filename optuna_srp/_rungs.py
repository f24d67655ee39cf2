"""The rungs: successive halving beside the models (the paper's fast-Hyperband).

While the models have too few complete trials to learn from, a successive-halving rung at a
quarter of the curve screens the search space, and a share of the steps trains trials fully so
that the models are fed complete curves, slow starters included (the paper's fast-Hyperband
trains part of each bracket fully for the same reason). Rungs alone would starve the models:
only the trials that lead at the rungs complete, and those are the fast starters.

Until the first trials have shown where ranks settle, the start-up hedges as Hyperband does
between its brackets: every other trial outside the full group (the odd-numbered ones) meets
rungs from a 256th of the curve (the first report, on curves of under 512 reports), as in
Optuna's successive halving, and the others meet the one
at a quarter (:func:`startup_first_rung`). Where no curves cross, the early bracket finds the
good runs at a few reports each; where they do, the quarter's bracket and the full group still
train the slow starters. Where rungs begin before the quarter, the full group skips them but
meets the quarter's: the early rungs are what it insures against.

Where the evidence shows that ranks settle early, the rungs begin there instead and go every
``REDUCTION_FACTOR`` up to a quarter: as fast as successive halving where curves do not cross,
and no rung before a quarter where they do. Before the models are ready the evidence is the
first trials that reached the quarter rung (:func:`startup_rung_fraction`: their ranks early
on against their ranks at the quarter); afterwards, the study's best complete trials, or
source trials of the same search space before it has its own, if it has as many complete ones
(:func:`early_rung_fraction`: whether the best runs led early), and the rungs screen beside
the models or not at all.
"""

from __future__ import annotations

import bisect
import contextlib
import math
from typing import TYPE_CHECKING

import numpy as np
import optuna.exceptions
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import scipy.stats


if TYPE_CHECKING:
    from collections.abc import Sequence

    from optuna.study import Study


# Optuna 4.3 added UpdateFinishedTrialError; before it, writing to a finished trial raised the
# RuntimeError it subclasses.
_UpdateFinishedTrialError: type[Exception] = getattr(
    optuna.exceptions, "UpdateFinishedTrialError", RuntimeError
)
# Whether a trial is in the full group (no rung before the quarter, trained to the end unless
# the models call it hopeless or it trails at the quarter's rung where rungs begin earlier),
# decided at its first check and kept in its system attributes so that every worker
# agrees.
FULL_KEY = "srp:full"
# The value (higher is better; None if not finite) a trial had at the rung at a step: keyed by
# the step, so that only values at the same step compete when the rungs move.
_RUNG_KEY = "srp:rung@{}"
# The system attribute by which Optuna's RetryHeartbeatStaleTrialCallback (RetryFailedTrialCallback
# before Optuna 4.9) marks a re-queued trial (what its retried_trial_number reads; calling it
# warns ExperimentalWarning each time). Such a trial carries its failed attempt's system
# attributes, rung values included, whatever it reports itself (_own_rung_value).
_RETRY_KEY = "failed_trial"
# The full group's share of the steps: FastHyperbandPruner's default, chosen on the anytime
# benchmark (docs/fast_hyperband.md, round 1: a quarter of the steps, not of the trials).
FULL_FRACTION = 0.25
# The rung, as a fraction of the longest complete curve: before a quarter, the best runs of
# curves that cross are still behind most others (the best ResNet on CIFAR-10 behind 57% of all
# runs at a tenth of its curve, the learning-rate drop still ahead). A rung at a tenth lost
# the best ResNet in 12 of 30 held-out replays against 3 of 30 without start-up rungs; at a
# quarter, 3 of 40 over every ordering, as without (docs/benchmarks-log.md, issue 17).
RUNG_FRACTION = 0.25
# Optuna's default reduction factor: a trial goes on from the rung if it is in the top quarter.
REDUCTION_FACTOR = 4
# The earlier first rungs the evidence can show to be safe: Optuna's successive halving starts
# at about a hundredth of the curve; every REDUCTION_FACTOR from a 256th up to the quarter.
_EARLY_FRACTIONS = (1 / 256, 1 / 64, 1 / 16)
# The fewest best runs that must have led at an early first rung. With 3, the study's own
# evidence moved the rungs of some ResNets studies early and lost their best run (regret .06 at
# 100 full trainings against .01); with 5, .02 (docs/benchmarks-log.md, issue 17).
_N_TOP = 5
# Where there are more complete trials (a source of hundreds), the best twentieth of them is the
# evidence, and a rung is placed where at least _N_TOP of them led and, with 75% confidence, a
# majority did (:func:`_mostly_led`). Of 5 that is all 5, as before. "All of the best 5" is a
# coin toss where a rung keeps four in five of the best runs: on random halves of one corpus the
# source's rungs went from the first report to none and back. Held-out re-tuning, summed regret
# 3.94 against 4.49; the best fortieth 3.83, the best tenth 4.71 (it reaches runs that rank at
# random early, and placed no rungs on TaskSet GRU128). At 90% confidence a source of 500 runs
# needed 17 of its best 25 (two thirds) for a majority, and TaskSet patch128 and embed128, whose
# best twentieth leads at the first report at a share of .62-.64, screened from a 16th (three
# times the steps per stopped run) in 12-13 of 20 halves; at 75%, 15 of 25: 3.64 against 3.94,
# and 3.26 against 3.35 on the other orderings (docs/benchmarks-log.md, issue 19).
_TOP_SHARE = 1 / 20
_MIN_LED_SHARE = 0.5
_LED_CONFIDENCE = 0.75
# Before the models are ready, the evidence is the first trials that reached the quarter rung
# (nothing screened them before it): this many, and the rank correlation their values at an
# early rung must have had with their values at the quarter. With 8 trials the correlation
# passed on LSTM and ResNets in some held-out orderings and lost their best runs (LSTM regret
# .10 at 100 full trainings against .00); with 12, .01. At 0.8, the typical LSTM runs ranked
# alike at a 16th and at a quarter often enough that the rungs lost the best one, a slow
# starter, in 6 more fixed-trial replays of 40; at 0.9, in 2 (docs/benchmarks-log.md, issue 17).
_N_RANKED = 12
_MIN_RANK_CORRELATION = 0.9


def report_index(n_reports: int, fraction: float) -> int:
    """The index, among ``n_reports`` reports, of the report at ``fraction`` of the curve:
    by position, never before the first, so that rungs and checkpoints do not depend on step
    numbering or units."""
    return max(int(n_reports * fraction), 1) - 1


def in_full_group(study: Study, trial: FrozenTrial, full_fraction: float) -> bool:
    """Whether ``trial`` is in the full group: it skips the rungs before the quarter (it meets
    the quarter's only where rungs begin earlier, :func:`rung_stops`) and is trained to the end
    unless the models call it hopeless.

    Decided at the trial's first check and kept in its system attributes: it joins the group
    while the group's steps are at most ``full_fraction`` of all the steps the study has
    trained (so the first trial joins it).
    """
    full = trial.system_attrs.get(FULL_KEY)
    if full is None:
        spent = spent_full = 0
        for other in study.get_trials(deepcopy=False):
            if other.number == trial.number:
                continue
            n = len(other.intermediate_values)
            spent += n
            if other.system_attrs.get(FULL_KEY):
                spent_full += n
        full = full_fraction > 0.0 and spent_full <= full_fraction * spent
        # Another worker (e.g. a heartbeat check) may have finished the trial: the decision is
        # the one its data calls for all the same, as for the other writes of a check.
        with contextlib.suppress(_UpdateFinishedTrialError):
            study._storage.set_trial_system_attr(trial._trial_id, FULL_KEY, full)
    return bool(full)


def startup_first_rung(study: Study, trial: FrozenTrial) -> float:
    """Where ``trial``'s rungs begin, as a fraction of the curve, while the start-up's
    evidence is undecided (:func:`startup_rung_fraction` returned None).

    Odd-numbered trials outside the full group meet the early bracket, rungs from the first
    report (the earliest that the evidence could choose); the others, the rung at a quarter.
    The number decides, so every worker agrees without a write, and the rung values a trial
    recorded show afterwards that it met the bracket (:func:`startup_rung_fraction`). Like
    Hyperband, it hedges between brackets it cannot rank in advance, but it gives them equal
    numbers of trials, not equal budgets. With equal budgets the early bracket took most
    trials, and LSTM and LCBench balanced lost more than TaskSet gained. With the early bracket
    against the quarter alone (random sampler, 11 corpora), summed regret fell on each set of
    10 orderings: 6.89 against 7.45, 7.57 against 7.78, 6.67 against 7.34, most of it at 10
    full trainings. With TPE it fell from 6.08 to 5.05. The best was kept in 400 of 440
    fixed-trial replays, with and without (docs/benchmarks-log.md, issue 17).
    """
    if trial.number % 2 == 0 or in_full_group(study, trial, FULL_FRACTION):
        return RUNG_FRACTION
    return _EARLY_FRACTIONS[0]


def rung_stops(
    study: Study,
    trial: FrozenTrial,
    complete: Sequence[FrozenTrial],
    sign: float,
    first_fraction: float = RUNG_FRACTION,
    record_only: bool = False,
    by_position: bool = False,
) -> int | None:
    """The step of the rung that stops ``trial``, or None where none does (``complete``: the
    complete trials whose longest curve places the rungs, the study's, or a source's before
    the study has one; ``sign``: 1 to maximise, -1 to minimise; ``first_fraction``: where the
    first rung is, as a fraction of the curve, see :func:`early_rung_fraction`;
    ``record_only``: ``trial`` was stopped by another rule, and only records its values at the
    rungs it reached, as a peer of the trials that meet them later: None is returned;
    ``by_position``: ``complete`` are another study's, whose step numbers may differ, and a
    rung at the reference's ``k``-th report is at ``trial``'s ``k``-th).

    Successive-halving rungs at ``first_fraction`` of the longest complete curve and every
    ``REDUCTION_FACTOR`` after it up to a quarter (one rung, at a quarter, by default): by
    position, not by step number, so that the decisions do not depend on where step numbering
    starts or on its unit (Optuna's :class:`~optuna.pruners.SuccessiveHalvingPruner` counts
    absolute steps). At each a trial goes on if its value is in the top quarter of the values
    every trial had there (the first to reach it always does), as in Optuna's successive
    halving. A trial in the full group records its value at every rung but goes on from the
    ones before the quarter: they are what the group insures against, where the evidence that
    placed them is wrong. It meets the quarter's, which every other trial of the start-up
    meets and which keeps the slow starters of curves that cross (``RUNG_FRACTION``): summed
    regret 6.59 against 6.66 on random orderings 0-9 and 6.89 against 7.12 held out, most of
    it at 10 full trainings on TaskSet (docs/benchmarks-log.md, issue 17). None past a quarter: a
    rung at the whole curve would stop trials that have cost all their steps and throw away
    the complete curves the models need. No trial meets a rung before a trial of ``complete``
    is, and each meets each rung once (at its first check at or past it).
    """
    step = trial.last_step
    assert step is not None
    full = not record_only and in_full_group(study, trial, FULL_FRACTION)
    others: list[FrozenTrial] | None = None
    rungs, n_rungs = _rungs_of(complete, first_fraction, trial if by_position else None)
    for i, rung in enumerate(rungs):
        key = _RUNG_KEY.format(rung)
        if step < rung:
            break
        if _own_rung_value(trial, key, rung, sign):
            continue  # met it already
        value = _value_from(trial, rung, sign)
        study._storage.set_trial_system_attr(trial._trial_id, key, value)
        if record_only:
            continue
        if others is None:
            others = study.get_trials(deepcopy=False)
        at_rung = [
            t.system_attrs[key]
            for t in others
            if t.number != trial.number and _own_rung_value(t, key, rung, sign)
        ]
        # The last rung is the quarter's (rung_steps).
        screened = not full or (first_fraction < RUNG_FRACTION and i == n_rungs - 1)
        if screened and not _promotable(value, at_rung):
            return rung
    return None


def rung_peers(study: Study, trial: FrozenTrial, rung: int, sign: float) -> int:
    """How many other trials have a value recorded at the rung at step ``rung`` (0: ``trial``
    was the first to reach it, and went on as the first always does)."""
    key = _RUNG_KEY.format(rung)
    return sum(
        t.number != trial.number and _own_rung_value(t, key, rung, sign)
        for t in study.get_trials(deepcopy=False)
    )


def _rungs_of(
    complete: Sequence[FrozenTrial], first_fraction: float, by_position_of: FrozenTrial | None
) -> tuple[list[int], int]:
    """The steps of the rungs that can be named, and how many rungs there are: the longest
    complete curve's reports at ``first_fraction`` of its reports and every
    ``REDUCTION_FACTOR`` after it up to a quarter, or, with ``by_position_of``, that trial's
    reports at the same positions as far as it has reported."""
    if not complete:
        return [], 0
    reference = sorted(_reference(complete).intermediate_values)
    indices = _rung_indices(len(reference), first_fraction)
    # A source's curves place the first wave's rungs before the study has a complete trial:
    # an old study may have counted steps from 0 or in iterations where this one counts epochs,
    # and its step numbers would put every rung at another report, or all at the first.
    named = reference if by_position_of is None else sorted(by_position_of.intermediate_values)
    return [named[index] for index in indices if index < len(named)], len(indices)


def rung_steps(
    complete: Sequence[FrozenTrial], first_fraction: float = RUNG_FRACTION
) -> list[int]:
    """The steps of the rungs (empty when there is none): the longest complete curve's reports
    at ``first_fraction`` of its reports and every ``REDUCTION_FACTOR`` after it up to a
    quarter (the lowest-numbered of the longest curves), none at its last report."""
    return _rungs_of(complete, first_fraction, None)[0]


def _reference(complete: Sequence[FrozenTrial]) -> FrozenTrial:
    """The curve that places the rungs: the lowest-numbered of the longest in ``complete``."""
    return max(complete, key=lambda t: (len(t.intermediate_values), -t.number))


def _rung_indices(n_reports: int, first_fraction: float) -> list[int]:
    """The rungs of :func:`rung_steps` as indices among a curve's ``n_reports`` reports."""
    indices: list[int] = []
    fraction = first_fraction
    while fraction <= RUNG_FRACTION * (1 + 1e-9):
        index = report_index(n_reports, fraction)
        if index < n_reports - 1 and (not indices or index > indices[-1]):
            indices.append(index)
        fraction *= REDUCTION_FACTOR
    return indices


def early_rung_fraction(trials: Sequence[FrozenTrial], sign: float) -> float | None:
    """Where successive-halving rungs can begin, as a fraction of the curve, on the evidence of
    ``trials``: a study's trials (any state) or the complete trials of an earlier one.

    The earliest of a 256th, a 64th and a 16th of the longest complete curve (by position) at
    which the best complete trials (the best twentieth, at least ``_N_TOP``) were mostly in the
    top quarter of the trials that reported there (:func:`_mostly_led`; of 5, all 5); None if
    at none of them, or if fewer than ``4 * _N_TOP`` trials reported there. A rung at that
    point would have kept most of the best runs: their ranks had settled. Where curves cross (a
    learning-rate drop ahead) the best runs are behind early and there is no such point before
    a quarter.
    """
    curves = [_curve(t, sign) for t in trials]
    longest = max(
        (c.size for c, t in zip(curves, trials) if t.state == TrialState.COMPLETE), default=0
    )
    n_complete = sum(t.state == TrialState.COMPLETE for t in trials)
    top = _best_complete(trials, sign, max(_N_TOP, int(n_complete * _TOP_SHARE)))
    if len(top) < _N_TOP:
        return None
    for fraction in _EARLY_FRACTIONS:
        position = report_index(longest, fraction)
        reported = sum(c.size > position for c in curves)
        if reported >= 4 * _N_TOP and _mostly_led(curves, top, position):
            return fraction
    return None


def startup_rung_fraction(
    trials: Sequence[FrozenTrial], longest: int, sign: float
) -> float | None:
    """Where the start-up's rungs begin, as a fraction of the curve (``trials``: the study's
    trials, any state; ``longest``: the number of reports of its longest complete curve).

    The first ``_N_RANKED`` trials (by number) that reported at the quarter rung and met no
    rung before it (not the early bracket's, :func:`startup_first_rung`) are the evidence: it
    is the earliest of a 256th, a 64th and a 16th at which the ranks of their values had a rank
    (Spearman) correlation of at least ``_MIN_RANK_CORRELATION`` with the ranks of their values
    at the quarter, so that an earlier rung stops mostly the trials that the quarter rung would
    stop, and at which the best complete trial was in the top quarter of the trials that
    reported there; the quarter at none of them, and None (undecided) while fewer trials
    reported at the quarter. Unlike :func:`early_rung_fraction` it needs no complete trial but
    the one that places the rungs, and it says nothing about what happens after the quarter.
    """
    quarter = report_index(longest, RUNG_FRACTION)
    ranked = sorted(
        (
            i
            for i, t in enumerate(trials)
            if len(t.intermediate_values) > quarter and not _screened_before(t, quarter)
        ),
        key=lambda i: trials[i].number,
    )[:_N_RANKED]
    if len(ranked) < _N_RANKED:
        return None
    curves = [_curve(t, sign) for t in trials]
    at_quarter = [curves[i][quarter] for i in ranked]
    best = _best_complete(trials, sign, 1)
    for fraction in _EARLY_FRACTIONS:
        position = report_index(longest, fraction)
        if position >= quarter:
            break
        early = [curves[i][position] for i in ranked]
        # Typical runs can rank alike early while the best ones start slowly (LSTM, or runs
        # whose speed depends on the learning rate): the best complete run must have led too.
        if _rank_correlation(early, at_quarter) >= _MIN_RANK_CORRELATION and _led(
            curves, best, position
        ):
            return fraction
    return RUNG_FRACTION


def _screened_before(trial: FrozenTrial, index: int) -> bool:
    """Whether ``trial`` met a rung before its report at ``index`` (the early bracket's, or
    rungs that began earlier): its rank there was then selected, so it is no evidence of how
    ranks there relate to ranks earlier."""
    at_index = sorted(trial.intermediate_values)[index]
    prefix = _RUNG_KEY.format("")
    return any(
        key.startswith(prefix) and int(key[len(prefix) :]) < at_index for key in trial.system_attrs
    )


def _best_complete(trials: Sequence[FrozenTrial], sign: float, n: int) -> list[int]:
    """The indices in ``trials`` of the ``n`` best complete trials by final value (a
    non-finite one last; among equal values, the later in ``trials`` first: ties are common
    on LCBench and MetaQNN, and breaking them the other way changed 23 of 440 benchmark
    studies)."""
    finals: list[tuple[float, int]] = []
    for i, t in enumerate(trials):
        if t.state == TrialState.COMPLETE and t.value is not None:
            final = sign * float(t.value)
            finals.append((final if math.isfinite(final) else -math.inf, i))
    return [i for _, i in sorted(finals, reverse=True)[:n]]


def _n_led(curves: Sequence[np.ndarray], indices: Sequence[int], position: int) -> int:
    """How many of the curves at ``indices`` reported at ``position`` and were in the top
    quarter of every curve that reported there."""
    bar = _top_quarter_bar([c[position] for c in curves if c.size > position])
    return sum(curves[i].size > position and curves[i][position] >= bar for i in indices)


def _led(curves: Sequence[np.ndarray], indices: Sequence[int], position: int) -> bool:
    """Whether the curves at ``indices`` all led at ``position`` (:func:`_n_led`)."""
    return _n_led(curves, indices, position) == len(indices)


def _mostly_led(curves: Sequence[np.ndarray], indices: Sequence[int], position: int) -> bool:
    """Whether a rung at ``position`` keeps a majority of the curves at ``indices``: at least
    ``_N_TOP`` of them led there (:func:`_n_led`), and with ``_LED_CONFIDENCE`` the one-sided
    Clopper-Pearson lower bound of the share that led is at least ``_MIN_LED_SHARE``. For 5
    curves that needs all 5 (the count; 4 of 5 would give a bound of .55), for 10 it needs 7,
    for 25 15, for 50 28."""
    led = _n_led(curves, indices, position)
    if led < _N_TOP:
        return False
    lower = scipy.stats.beta.ppf(1.0 - _LED_CONFIDENCE, led, len(indices) - led + 1)
    return float(lower) >= _MIN_LED_SHARE


def _rank_correlation(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (ties averaged, -inf ties with -inf); 0 where either side
    is constant (nothing ranks them, and NumPy would warn on the division by zero)."""
    ra, rb = scipy.stats.rankdata(a), scipy.stats.rankdata(b)
    if np.ptp(ra) == 0.0 or np.ptp(rb) == 0.0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _curve(trial: FrozenTrial, sign: float) -> np.ndarray:
    """The trial's values in step order, higher is better, -inf where not finite."""
    steps = sorted(trial.intermediate_values)
    values = np.array([trial.intermediate_values[s] for s in steps], dtype=np.float64) * sign
    values[~np.isfinite(values)] = -np.inf
    return values


def _own_rung_value(trial: FrozenTrial, key: str, rung: int, sign: float) -> bool:
    """Whether ``trial`` has a value recorded under ``key`` (the rung at step ``rung``) that
    its own curve gave: a retried trial's copy of its failed attempt's value is not, until it
    meets the rung itself (:func:`rung_stops` then records its own). Only a retried trial's
    curve is read, so the check costs nothing on the path of other trials."""
    if key not in trial.system_attrs:
        return False
    if _RETRY_KEY not in trial.system_attrs:
        return True
    return (
        bool(trial.intermediate_values)
        and max(trial.intermediate_values) >= rung
        and trial.system_attrs[key] == _value_from(trial, rung, sign)
    )


def _value_from(trial: FrozenTrial, step: int, sign: float) -> float | None:
    """The trial's value (higher is better) at its first report at or after ``step``; None
    when it is not finite."""
    steps = sorted(trial.intermediate_values)
    i = bisect.bisect_left(steps, step)
    value = sign * float(trial.intermediate_values[steps[min(i, len(steps) - 1)]])
    return value if math.isfinite(value) else None


def _promotable(value: float | None, others: Sequence[float | None]) -> bool:
    """Optuna's successive-halving rule: in the top ``1 / REDUCTION_FACTOR`` of the values at
    the rung (``value`` among them), the best one while fewer than ``REDUCTION_FACTOR`` are
    there. Non-finite values (None) are the worst."""
    if value is None:
        return False
    return value >= _top_quarter_bar([value, *(-math.inf if v is None else v for v in others)])


def _top_quarter_bar(values: Sequence[float]) -> float:
    """The lowest value in the top ``1 / REDUCTION_FACTOR`` of ``values`` (the best one while
    there are fewer than ``REDUCTION_FACTOR``)."""
    ranked = sorted(values, reverse=True)
    return ranked[max(len(ranked) // REDUCTION_FACTOR - 1, 0)]
