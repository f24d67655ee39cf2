"""The start-up rule: what decides while the models have too few complete trials to learn from.

A successive-halving rung screens the search space, and a share of the steps trains trials
fully so that the models are fed complete curves, slow starters included (the paper's
fast-Hyperband trains part of each bracket fully for the same reason). Rungs alone would
starve the models: only the trials that lead at the rungs complete, and those are the fast
starters.
"""

from __future__ import annotations

import bisect
import math
from typing import TYPE_CHECKING

from optuna.trial import FrozenTrial


if TYPE_CHECKING:
    from collections.abc import Sequence

    from optuna.study import Study


# Whether a trial is in the full group (trained to the end unless the models call it
# hopeless), decided at its first check and kept in its system attributes so that every worker
# agrees.
FULL_KEY = "srp:full"
# The value (higher is better; None if not finite) a trial had at the rung.
_RUNG_KEY = "srp:rung_0"
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
    study: Study, trial: FrozenTrial, complete: Sequence[FrozenTrial], sign: float
) -> bool:
    """Whether the start-up rule stops ``trial`` (``complete``: the study's complete trials;
    ``sign``: 1 to maximise, -1 to minimise).

    One successive-halving rung, at the step of the longest complete curve at a quarter of its
    reports: by position, not by step number, so that the decisions do not depend on where step
    numbering starts or on its unit (Optuna's :class:`~optuna.pruners.SuccessiveHalvingPruner`
    counts absolute steps). There a trial goes on if its value is in the top quarter of the
    values every trial had there (the first to reach it always does), as in Optuna's successive
    halving; a trial in the full group records its value but always goes on. One rung only: a
    second, at the whole curve, would stop trials that have cost all their steps and throw away
    the complete curves the models need. No trial meets the rung before one is complete, and
    each meets it once (at its first check at or past it).
    """
    step = trial.last_step
    assert step is not None
    full = in_full_group(study, trial, FULL_FRACTION)
    rungs = rung_steps(complete)
    if not rungs or step < rungs[0] or _RUNG_KEY in trial.system_attrs:
        return False
    value = _value_from(trial, rungs[0], sign)
    study._storage.set_trial_system_attr(trial._trial_id, _RUNG_KEY, value)
    others = [
        t.system_attrs[_RUNG_KEY]
        for t in study.get_trials(deepcopy=False)
        if t.number != trial.number and _RUNG_KEY in t.system_attrs
    ]
    return not full and not _promotable(value, others)


def rung_steps(complete: Sequence[FrozenTrial]) -> list[int]:
    """The step of the rung (a list, empty when there is none): the longest complete curve's
    report at a quarter of its reports (the lowest-numbered of the longest), if it is not its
    last."""
    if not complete:
        return []
    reference = max(complete, key=lambda t: (len(t.intermediate_values), -t.number))
    steps = sorted(reference.intermediate_values)
    position = max(int(len(steps) * RUNG_FRACTION), 1)
    return [steps[position - 1]] if position < len(steps) else []


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
