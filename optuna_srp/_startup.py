"""The start-up rule: what decides while the models have too few complete trials to learn from.

A successive-halving rung screens the search space, and a share of the steps trains trials
fully so that the models are fed complete curves, slow starters included (the paper's
fast-Hyperband trains part of each bracket fully for the same reason). Rungs alone would
starve the models: only the trials that lead at the rungs complete, and those are the fast
starters.

Without source trials there is one rung, at a quarter of the curve. Source trials of the same
search space can show that ranks settle much earlier (TaskSet's best runs lead from their first
report): then the rungs start where the source's best runs already led
(:func:`first_rung_fraction`) and go every ``REDUCTION_FACTOR`` up to a quarter.
"""

from __future__ import annotations

import bisect
import math
from typing import TYPE_CHECKING

import numpy as np
from optuna.trial import FrozenTrial


if TYPE_CHECKING:
    from collections.abc import Sequence

    from optuna.study import Study


# Whether a trial is in the full group (trained to the end unless the models call it
# hopeless), decided at its first check and kept in its system attributes so that every worker
# agrees.
FULL_KEY = "srp:full"
# The value (higher is better; None if not finite) a trial had at rung k (0 the first).
_RUNG_KEY = "srp:rung_{}"
# The full group's share of the steps: FastHyperbandPruner's default, chosen on the anytime
# benchmark (docs/fast_hyperband.md, round 1: a quarter of the steps, not of the trials).
FULL_FRACTION = 0.25
# The rung, as a fraction of the longest complete curve: before a quarter, the best runs of
# curves that cross are still behind most others (the best ResNet on CIFAR-10 behind 57% of all
# runs at a tenth of its curve, the learning-rate drop still ahead). A rung at a tenth lost
# the best ResNet in 12 of 30 held-out replays against 3 of 30 without start-up rungs; at a
# quarter, 3 of 40 over every ordering, as without (docs/benchmarks.md, issue 17).
RUNG_FRACTION = 0.25
# Optuna's default reduction factor: a trial goes on from the rung if it is in the top quarter.
REDUCTION_FACTOR = 4
# The earlier first rungs a source can show to be safe: Optuna's successive halving starts at
# about a hundredth of the curve; every REDUCTION_FACTOR from a 256th up to the quarter.
_EARLY_FRACTIONS = (1 / 256, 1 / 64, 1 / 16)
# The source's best runs that must all have led at a first rung: one run can be a fluke.
_N_SOURCE_TOP = 3


def in_full_group(study: Study, trial: FrozenTrial, full_fraction: float) -> bool:
    """Whether ``trial`` is in the full group: skips the rungs and is trained to the end unless
    the models call it hopeless.

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
        study._storage.set_trial_system_attr(trial._trial_id, FULL_KEY, full)
    return bool(full)


def startup_stops(
    study: Study,
    trial: FrozenTrial,
    complete: Sequence[FrozenTrial],
    sign: float,
    first_fraction: float = RUNG_FRACTION,
) -> bool:
    """Whether the start-up rule stops ``trial`` (``complete``: the study's complete trials;
    ``sign``: 1 to maximise, -1 to minimise; ``first_fraction``: where the first rung is, as a
    fraction of the curve, see :func:`first_rung_fraction`).

    Successive-halving rungs at ``first_fraction`` of the longest complete curve and every
    ``REDUCTION_FACTOR`` after it up to a quarter (one rung, at a quarter, by default): by
    position, not by step number, so that the decisions do not depend on where step numbering
    starts or on its unit (Optuna's :class:`~optuna.pruners.SuccessiveHalvingPruner` counts
    absolute steps). At each a trial goes on if its value is in the top quarter of the values
    every trial had there (the first to reach it always does), as in Optuna's successive
    halving; a trial in the full group records its value but always goes on. None past a
    quarter: a rung at the whole curve would stop trials that have cost all their steps and
    throw away the complete curves the models need. No trial meets a rung before one is
    complete, and each meets each rung once (at its first check at or past it).
    """
    step = trial.last_step
    assert step is not None
    full = in_full_group(study, trial, FULL_FRACTION)
    others: list[FrozenTrial] | None = None
    for k, rung in enumerate(rung_steps(complete, first_fraction)):
        key = _RUNG_KEY.format(k)
        if step < rung:
            break
        if key in trial.system_attrs:
            continue
        value = _value_from(trial, rung, sign)
        study._storage.set_trial_system_attr(trial._trial_id, key, value)
        if others is None:
            others = study.get_trials(deepcopy=False)
        at_rung = [
            t.system_attrs[key]
            for t in others
            if t.number != trial.number and key in t.system_attrs
        ]
        if not full and not _promotable(value, at_rung):
            return True
    return False


def rung_steps(
    complete: Sequence[FrozenTrial], first_fraction: float = RUNG_FRACTION
) -> list[int]:
    """The steps of the rungs (empty when there is none): the longest complete curve's reports
    at ``first_fraction`` of its reports and every ``REDUCTION_FACTOR`` after it up to a
    quarter (the lowest-numbered of the longest curves), none at its last report."""
    if not complete:
        return []
    reference = max(complete, key=lambda t: (len(t.intermediate_values), -t.number))
    steps = sorted(reference.intermediate_values)
    rungs: list[int] = []
    fraction = first_fraction
    while fraction <= RUNG_FRACTION * (1 + 1e-9):
        position = max(int(len(steps) * fraction), 1)
        if position < len(steps) and (not rungs or steps[position - 1] > rungs[-1]):
            rungs.append(steps[position - 1])
        fraction *= REDUCTION_FACTOR
    return rungs


def first_rung_fraction(source_trials: Sequence[FrozenTrial], sign: float) -> float:
    """Where the start-up rungs begin, as a fraction of the curve, on the evidence of source
    trials (complete trials of an earlier study of the same search space).

    The earliest of a 256th, a 64th and a 16th of the curve (by position in the longest source
    curve) at which the source's ``_N_SOURCE_TOP`` best runs were all in the top quarter of the
    source's values there; a quarter (``RUNG_FRACTION``, the rule without a source) if there is
    none, or fewer than ``4 * _N_SOURCE_TOP`` usable source curves. A rung there would have
    kept the source's best runs: how early ranks settle is a property of the training setup,
    which a re-tuned study shares with its earlier one.
    """
    curves = []
    for t in source_trials:
        steps = sorted(t.intermediate_values)
        values = np.array([t.intermediate_values[s] for s in steps], dtype=np.float64) * sign
        values[~np.isfinite(values)] = -np.inf
        if values.size >= 2:
            curves.append(values)
    if len(curves) < 4 * _N_SOURCE_TOP:
        return RUNG_FRACTION
    longest = max(c.size for c in curves)
    top = np.argsort([-c[-1] for c in curves], kind="stable")[:_N_SOURCE_TOP]
    for fraction in _EARLY_FRACTIONS:
        i = max(int(longest * fraction), 1) - 1
        at = np.array([c[min(i, c.size - 1)] for c in curves])
        bar = np.sort(at)[::-1][max(at.size // REDUCTION_FACTOR - 1, 0)]
        if bool(np.all(at[top] >= bar)):
            return fraction
    return RUNG_FRACTION


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
    ranked = sorted([value, *(-math.inf if v is None else v for v in others)], reverse=True)
    return value >= ranked[max(len(ranked) // REDUCTION_FACTOR - 1, 0)]
