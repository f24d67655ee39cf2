"""SRPPruner's rungs: the start-up rule (one rung at a quarter of the curve, and a full group),
and rungs from earlier where the evidence (the study's own trials, or a source) shows that
ranks settle early."""

from __future__ import annotations

from typing import Any
from typing import Literal
import warnings

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from optuna_srp import SRPPruner
import optuna_srp._pruner
from optuna_srp._rungs import _best_complete
from optuna_srp._rungs import _promotable
from optuna_srp._rungs import early_rung_fraction
from optuna_srp._rungs import FULL_KEY
from optuna_srp._rungs import RUNG_FRACTION
from optuna_srp._rungs import rung_steps
from optuna_srp._rungs import rung_stops
from optuna_srp._rungs import startup_rung_fraction
from tests._synthetic import add_complete_trials
from tests._synthetic import journal_workers
from tests._synthetic import N_STEPS
from tests._synthetic import objective


Direction = Literal["minimize", "maximize"]
RUNG = N_STEPS // 4  # the rung's position in the 20-step curves
# The rung value a trial records at the first report: only the early bracket's trials meet
# a rung there while the start-up is undecided.
EARLY_RUNG_KEY = "srp:rung@1"


def _complete(steps: Any, number: int = 0) -> FrozenTrial:
    trial = optuna.trial.create_trial(
        value=1.0, intermediate_values={int(s): 1.0 for s in steps}, state=TrialState.COMPLETE
    )
    trial.number = number
    return trial


@pytest.mark.parametrize(
    "curves,expected",
    [
        ([range(1, 21)], [5]),
        ([range(0, 20)], [4]),  # steps from 0
        ([range(200, 4001, 200)], [1000]),  # steps in another unit
        ([range(1, 11), range(1, 21), range(1, 15)], [5]),  # the longest curve
        ([[1, 2, 7, 30]], [1]),  # irregular steps: by position
        ([[3, 4, 5]], [3]),  # a quarter of 3 reports rounds down, but the rung is at least one
        ([[7]], []),  # a rung at the last report would save nothing
        ([], []),
    ],
)
def test_the_rung_is_at_a_quarter_of_the_longest_complete_curve(
    curves: list[Any], expected: list[int]
) -> None:
    assert rung_steps([_complete(c, n) for n, c in enumerate(curves)]) == expected


def _study(direction: Direction = "maximize", **kwargs: Any) -> optuna.Study:
    study = optuna.create_study(
        direction=direction, pruner=SRPPruner(n_startup_trials=10, **kwargs)
    )
    add_complete_trials(study, 2)  # the rung's position; the models need 10
    return study


def _rung_decisions(
    study: optuna.Study, values: Any, full: bool = False, steps: Any = None, sign: float = 1.0
) -> list[bool]:
    """Each value is one trial's flat curve up to the rung; should_prune() there, which must
    be False before it. Each trial is even-numbered: until the first trials show where ranks
    settle, the odd-numbered ones meet the start-up's early bracket (its own tests below)."""
    steps = list(range(1, RUNG + 1)) if steps is None else list(steps)
    decisions = []
    for v in values:
        if len(study.trials) % 2 == 1:
            study.tell(study.ask(), state=TrialState.FAIL)
        trial = study.ask({"x": FloatDistribution(0, 1)})
        study._storage.set_trial_system_attr(trial._trial_id, FULL_KEY, full)
        for step in steps[:-1]:
            trial.report(sign * v, step)
            assert not trial.should_prune()
        trial.report(sign * v, steps[-1])
        decisions.append(trial.should_prune())
        study.tell(trial, state=TrialState.PRUNED if decisions[-1] else TrialState.FAIL)
    return decisions


def test_before_the_models_a_trial_outside_the_top_quarter_at_the_rung_is_stopped() -> None:
    study = _study()
    # The first at the rung goes on; while fewer than four are there, only the best does.
    assert _rung_decisions(study, [0.9, 0.8, 0.95, 0.7, 0.96]) == [
        False,
        True,
        False,
        True,
        False,
    ]
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert [t.user_attrs["srp:decision"] for t in pruned] == ["pruned:rung"] * 2
    assert all(
        t.user_attrs["srp:reason"].startswith(f"pruned at step {RUNG}: not in the top quarter")
        for t in pruned
    )
    assert all("srp:probability" not in t.user_attrs for t in pruned)  # no model yet


def test_a_trial_in_the_full_group_is_never_stopped_at_the_rung() -> None:
    assert _rung_decisions(_study(), [0.9, 0.1, 0.0], full=True) == [False] * 3


def test_a_non_finite_value_at_the_rung_is_the_worst() -> None:
    # A trial whose last value is not finite is stopped before the rung (diverged, in
    # test_pruner.py); one that recovered after the rung meets it there with that value.
    assert not _promotable(None, [])
    assert not _promotable(None, [None, 0.1])
    assert _promotable(0.1, [None, None, None])


@pytest.mark.parametrize("offset,unit", [(0, 1), (-1, 1), (1000, 1), (0, 200)])
def test_the_decisions_do_not_depend_on_step_numbering_or_direction(
    offset: int, unit: int
) -> None:
    values = [0.5, 0.9, 0.4, 0.95, 0.3, 0.99, 0.2]
    expected = _rung_decisions(_study(), values)
    assert any(expected) and not all(expected)
    directions: tuple[tuple[Direction, float], ...] = (("maximize", 1.0), ("minimize", -1.0))
    for direction, sign in directions:
        study = optuna.create_study(direction=direction, pruner=SRPPruner(n_startup_trials=10))
        rng = np.random.default_rng(0)
        for x in rng.uniform(0, 1, 2):
            study.add_trial(
                optuna.trial.create_trial(
                    params={"x": float(x)},
                    distributions={"x": FloatDistribution(0, 1)},
                    value=sign * 0.5,
                    intermediate_values={offset + unit * s: sign * 0.5 for s in range(1, 21)},
                )
            )
        steps = [offset + unit * s for s in range(1, RUNG + 1)]
        assert _rung_decisions(study, values, steps=steps, sign=sign) == expected


def _share_of_full_steps(study: optuna.Study) -> float:
    steps = [len(t.intermediate_values) for t in study.trials]
    full = [n for n, t in zip(steps, study.trials) if t.system_attrs.get(FULL_KEY)]
    return sum(full) / sum(steps)


def test_the_full_group_holds_a_quarter_of_the_steps_and_completes() -> None:
    # The models are never ready: the start-up rule decides every trial.
    study = optuna.create_study(
        direction="maximize",
        pruner=SRPPruner(n_startup_trials=1000),
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.optimize(objective, n_trials=80)
    full = [t for t in study.trials if t.system_attrs.get(FULL_KEY)]
    assert study.trials[0] in full
    assert all(t.state == TrialState.COMPLETE for t in full)
    rung_group = [t for t in study.trials if t not in full]
    assert any(t.state == TrialState.PRUNED for t in rung_group)

    # The quarter's bracket is stopped at the quarter rung: the synthetic runs rank alike
    # early, but the best complete one started slowly, so the start-up's rungs do not move
    # earlier. Until that was shown, the early bracket met a rung at the first report too.
    def stopped_at(early: bool) -> set[int]:
        return {
            len(t.intermediate_values)
            for t in rung_group
            if t.state != TrialState.COMPLETE and (EARLY_RUNG_KEY in t.system_attrs) == early
        }

    assert stopped_at(False) == {RUNG}
    assert 1 in stopped_at(True) and stopped_at(True) <= {1, RUNG}
    assert all(t.number % 2 == 1 for t in rung_group if EARLY_RUNG_KEY in t.system_attrs)
    total = sum(len(t.intermediate_values) for t in study.trials)
    # Each joins while the group is at most its share; the last can overshoot by one curve.
    assert abs(_share_of_full_steps(study) - 0.25) <= N_STEPS / total


def test_a_nop_wrapped_pruner_trains_every_start_up_trial_fully() -> None:
    study = optuna.create_study(
        direction="maximize",
        pruner=SRPPruner(n_startup_trials=1000, wrapped_pruner=optuna.pruners.NopPruner()),
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.optimize(objective, n_trials=20)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert not any(FULL_KEY in t.system_attrs for t in study.trials)


def test_once_the_models_are_ready_the_rung_no_longer_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    original = rung_stops  # the pruner calls it by its name in optuna_srp._pruner, patched below

    def counted(study: optuna.Study, trial: FrozenTrial, *args: Any, **kwargs: Any) -> int | None:
        calls.append(trial.number)
        return original(study, trial, *args, **kwargs)

    monkeypatch.setattr(optuna_srp._pruner, "rung_stops", counted)
    study = optuna.create_study(direction="maximize", pruner=SRPPruner(n_startup_trials=10))
    add_complete_trials(study, 9)
    _rung_decisions(study, [0.9])
    assert calls
    calls.clear()
    add_complete_trials(study, 1, seed=1)
    trial = study.ask({"x": FloatDistribution(0, 1)})
    for step in range(1, RUNG + 1):
        trial.report(0.0, step)
        trial.should_prune()
    assert not calls
    assert study._storage.get_trial(trial._trial_id).user_attrs["srp:decision"] != "pruned:rung"


def test_workers_share_the_rung_through_storage(tmp_path: Any) -> None:
    workers = journal_workers(
        str(tmp_path / "journal.log"), lambda: SRPPruner(n_startup_trials=10)
    )
    add_complete_trials(workers[0], 2)
    # A rung value one worker recorded is the other's competitor.
    assert _rung_decisions(workers[0], [0.9]) == [False]
    assert _rung_decisions(workers[1], [0.8]) == [True]
    assert _rung_decisions(workers[0], [0.95]) == [False]


def test_with_source_trials_the_models_decide_from_the_first_own_complete_trial() -> None:
    # The source makes the models ready at the first own complete trial, and the start-up
    # rule gives way to them: with it, a source and the rung's fast-start sample together lost
    # the best ResNet (docs/benchmarks-log.md, warm start).
    earlier = optuna.create_study(direction="maximize")
    add_complete_trials(earlier, 20, seed=3)
    study = _study(source_trials=earlier.get_trials(states=(TrialState.COMPLETE,)))
    pruner = study.pruner
    assert isinstance(pruner, SRPPruner)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert pruner._model_ready(pruner._state(study), complete)
    # Level with the best at the rung: the rung would stop the second, the models keep both.
    _rung_decisions(study, [0.9, 0.8])
    decisions = [t.user_attrs.get("srp:decision") for t in study.trials[2:]]
    assert "pruned:rung" not in decisions
    assert all(
        "srp:probability" in t.user_attrs for t in study.trials[2:] if t.intermediate_values
    )


def _source(finals: Any, slow: Any = (), n_steps: int = 64, name: str = "x") -> list[FrozenTrial]:
    """Complete trials of an earlier study: saturating curves ending at ``finals``; the trials
    whose index is in ``slow`` sit at the worst value until the last quarter of the curve."""
    trials = []
    steps = np.arange(1, n_steps + 1)
    for i, final in enumerate(finals):
        values = final * (1.0 - np.exp(-steps / 3.0))
        if i in slow:
            values = np.where(steps <= n_steps * 3 // 4, 0.0, values)
        trial = optuna.trial.create_trial(
            params={name: i / len(finals)},
            distributions={name: FloatDistribution(0, 1)},
            value=float(values[-1]),
            intermediate_values={int(s): float(v) for s, v in zip(steps, values)},
        )
        trials.append(trial)
    return trials


FINALS = np.linspace(0.1, 0.9, 20)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_where_the_best_runs_lead_early_the_first_rung_is_early(sign: float) -> None:
    source = _source(sign * FINALS)
    assert early_rung_fraction(source, sign) == 1 / 256
    # Its best runs start last: no rung before a quarter would have kept them.
    assert early_rung_fraction(_source(sign * FINALS, slow=(17, 18, 19)), sign) is None
    # One slow run among the five best is enough to keep every rung away ...
    assert early_rung_fraction(_source(sign * FINALS, slow=(15,)), sign) is None
    # ... but not a slow run outside them.
    assert early_rung_fraction(_source(sign * FINALS, slow=(14,)), sign) == 1 / 256
    # Too few curves say nothing.
    assert early_rung_fraction(source[:19], sign) is None


@pytest.mark.parametrize(
    "slow,expected",
    [
        ((199,), 1 / 256),  # 9 of the best 10 led: a lower bound of .75 on their share
        ((199, 195), 1 / 256),  # 8 of 10: .65
        ((199, 195, 192), 1 / 256),  # 7 of 10: .54 (at 90% confidence .45: no rung)
        ((199, 195, 192, 190), None),  # 6 of 10: .45, no longer a majority
        ((189, 185, 182, 180), 1 / 256),  # slow runs outside the best twentieth
    ],
)
def test_with_many_complete_trials_a_majority_of_the_best_twentieth_must_have_led(
    slow: tuple[int, ...], expected: float | None
) -> None:
    # With 20 trials one slow run among the best 5 keeps every rung away (above); with 200
    # (a source of an earlier study) the evidence is the best 10, and most of them must lead.
    source = _source(np.linspace(0.1, 0.9, 200), slow=slow)
    assert early_rung_fraction(source, 1.0) == expected


def test_the_study_s_own_trials_are_evidence_of_early_rungs() -> None:
    # Pruned trials count at the positions they reached; only complete trials are the best.
    trials = _source(FINALS)
    for t in trials[:5]:
        t.state = TrialState.PRUNED
        t.intermediate_values = dict.fromkeys(range(1, 5), 0.95)  # ahead, then stopped
    assert early_rung_fraction(trials, 1.0) is None  # they fill the top quarter early
    for t in trials[:5]:
        t.intermediate_values = dict.fromkeys(range(1, 5), 0.0)
    assert early_rung_fraction(trials, 1.0) == 1 / 256
    # One of the five best was last at the first report (a 64th of 64 steps is the same
    # report); by the fourth (a 16th) they all led.
    trials[15].intermediate_values[1] = -1.0
    assert early_rung_fraction(trials, 1.0) == 1 / 16


@pytest.mark.parametrize(
    "first_fraction,expected",
    [(1 / 256, [1, 4, 16]), (1 / 16, [4, 16]), (RUNG_FRACTION, [16])],
)
def test_rungs_go_every_four_from_the_first_up_to_a_quarter(
    first_fraction: float, expected: list[int]
) -> None:
    # 64 reports: a 256th and a 64th both fall on the first (one rung), a 16th on the fourth.
    assert rung_steps([_complete(range(1, 65))], first_fraction) == expected


@pytest.mark.parametrize("name,rung", [("x", True), ("y", False)])
def test_a_source_of_the_same_search_space_screens_at_its_early_rung(
    name: str, rung: bool
) -> None:
    # With another search space (another training setup), the models decide alone.
    source = _source(FINALS, n_steps=N_STEPS, name=name)
    study = _study(source_trials=source)
    # Two trials at the first report (a rung there, from the source): the second is behind.
    _rung_decisions(study, [0.9, 0.8], steps=[1])
    decisions = [
        t.user_attrs.get("srp:decision") for t in study.trials[2:] if t.intermediate_values
    ]
    assert (decisions[1] == "pruned:rung") is rung, decisions
    assert decisions[0] != "pruned:rung"


@pytest.mark.parametrize("stopped_too,rung", [(True, True), (False, False)])
def test_a_pruned_source_s_stopped_trials_are_evidence_of_its_rungs(
    stopped_too: bool, rung: bool
) -> None:
    # An earlier study that was pruned: its 12 best ran to the end, the 8 others were stopped
    # at the 4th report. Its complete trials alone are too few to show where ranks settle;
    # with the stopped trials' curves, its best runs led from the first report.
    whole = _source(FINALS, n_steps=N_STEPS)
    source = whole[8:] + (_stopped(whole[:8]) if stopped_too else [])
    assert (early_rung_fraction(source, 1.0) == 1 / 256) is rung
    study = _study(source_trials=source)
    _rung_decisions(study, [0.9, 0.8], steps=[1])
    decisions = [
        t.user_attrs.get("srp:decision") for t in study.trials[2:] if t.intermediate_values
    ]
    assert (decisions[1] == "pruned:rung") is rung, decisions


def _stopped(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials as pruned at their 4th report."""
    return [
        optuna.trial.create_trial(
            state=TrialState.PRUNED,
            params=t.params,
            distributions=t.distributions,
            intermediate_values={s: v for s, v in t.intermediate_values.items() if s <= 4},
        )
        for t in trials
    ]


@pytest.mark.parametrize("n_complete,rung", [(9, False), (10, True)])
def test_a_source_places_rungs_only_with_as_many_complete_trials_as_the_study_needs(
    n_complete: int, rung: bool
) -> None:
    # An earlier study pruned by successive halving: only runs that led went on, so its few
    # complete trials led early whether or not the best runs of its setup do. With fewer
    # complete trials than the study's own evidence needs (n_startup_trials, 10), the
    # start-up's rungs stand in: an even-numbered trial meets only the quarter's.
    whole = _source(FINALS, n_steps=N_STEPS)
    source = whole[20 - n_complete :] + _stopped(whole[: 20 - n_complete])
    assert early_rung_fraction(source, 1.0) == 1 / 256
    study = _study(source_trials=source)
    _rung_decisions(study, [0.9, 0.8], steps=[1])
    decisions = [
        t.user_attrs.get("srp:decision") for t in study.trials[2:] if t.intermediate_values
    ]
    assert (decisions[1] == "pruned:rung") is rung, decisions
    # Odd-numbered trials meet the start-up's early bracket, and the reason says why.
    for value in (0.95, 0.7):
        if len(study.trials) % 2 == 0:
            study.tell(study.ask(), state=TrialState.FAIL)
        trial = study.ask({"x": FloatDistribution(0, 1)})
        study._storage.set_trial_system_attr(trial._trial_id, FULL_KEY, False)
        trial.report(value, 1)
        assert trial.should_prune() is (value == 0.7)
    reason = study._storage.get_trial(trial._trial_id).user_attrs["srp:reason"]
    assert ("too few to place them" in reason) is not rung, reason
    # The source's models decide beside those rungs: the reason does not say they wait.
    assert "for the models" not in reason, reason


@pytest.mark.parametrize(
    "slow,wrapped,rung",
    [
        ((), None, True),
        ((23,), None, False),  # the best run started last
        ((), optuna.pruners.NopPruner(), False),
    ],
)
def test_once_the_models_are_ready_the_study_s_own_best_runs_place_the_rungs(
    slow: tuple[int, ...], wrapped: optuna.pruners.BasePruner | None, rung: bool
) -> None:
    study = optuna.create_study(
        direction="maximize",
        pruner=SRPPruner(n_startup_trials=10, wrapped_pruner=wrapped),
    )
    # 24 complete trials: the top quarter at a report (6 of 25) holds the five best and the
    # trial being checked.
    for t in _source(np.linspace(0.1, 0.9, 24), slow=slow, n_steps=N_STEPS):
        study.add_trial(t)
    # Both are far above every complete trial at the first report: the models and the median
    # rule keep them; a rung there (where the five best led) stops the second.
    _rung_decisions(study, [0.9, 0.8], steps=[1])
    decisions = [t.user_attrs.get("srp:decision") for t in study.trials if t.intermediate_values]
    decisions = decisions[-2:]
    assert decisions[0] != "pruned:rung"
    assert (decisions[1] == "pruned:rung") is rung, decisions
    if rung:
        attrs = study.trials[-1].user_attrs
        reason = attrs["srp:reason"]
        assert (
            "rungs at steps 1, " in reason
            and "where the best complete trials already led" in reason
        )
        # The other rules kept it at this check, and the reason says which, with the
        # prediction stored beside it.
        assert "; the other rules kept it (kept:" in reason
        assert f"predicted {attrs['srp:predicted_value']:.4g} ± " in reason
        assert attrs["srp:step"] == 1


def test_a_trial_stopped_at_a_rung_beside_the_models_stores_this_check_s_prediction() -> None:
    study = optuna.create_study(direction="maximize", pruner=SRPPruner(n_startup_trials=10))
    # As above: the five best complete trials led from the first report, rungs at steps 1, 5.
    for t in _source(np.linspace(0.1, 0.9, 24), n_steps=N_STEPS):
        study.add_trial(t)
    steps = np.arange(1, 6)
    ahead = 0.95 * (1.0 - np.exp(-steps / 3.0)) + 0.3
    for values in (ahead, ahead, ahead, [1.5, 1.4, 1.3, 1.2, 1.0]):
        trial = study.ask({"x": FloatDistribution(0, 1)})
        study._storage.set_trial_system_attr(trial._trial_id, FULL_KEY, False)
        for step, value in zip(steps, values):
            trial.report(float(value), int(step))
            if trial.should_prune():
                break
    # The last led every complete trial from its first report (kept there, the prediction of
    # step 1 stored), and trailed the three others at the rung at step 5.
    attrs = study.trials[-1].user_attrs
    assert attrs["srp:decision"] == "pruned:rung"
    assert attrs["srp:reason"].startswith("pruned at step 5: ")
    assert "; the other rules kept it (kept:incumbent): predicted " in attrs["srp:reason"]
    assert attrs["srp:step"] == 5  # not the step-1 prediction the models last wrote


def test_a_trial_the_models_stop_at_a_rung_is_a_peer_there() -> None:
    study = optuna.create_study(direction="maximize", pruner=SRPPruner(n_startup_trials=10))
    # As above: the five best complete trials led from the first report, a rung there.
    for t in _source(np.linspace(0.1, 0.9, 24), n_steps=N_STEPS):
        study.add_trial(t)
    assert _rung_decisions(study, [0.9], steps=[1]) == [False]
    # Six trials far below every complete one at the first report: the models stop them
    # there. Each records its value at the rung, and does not join the full group.
    for _ in range(6):
        trial = study.ask({"x": FloatDistribution(0, 1)})
        trial.report(-1.0, 1)
        assert trial.should_prune()
        study.tell(trial, state=TrialState.PRUNED)
        frozen = study.trials[-1]
        assert frozen.user_attrs["srp:decision"] != "pruned:rung"
        assert frozen.system_attrs[EARLY_RUNG_KEY] == -1.0
        assert FULL_KEY not in frozen.system_attrs
    # With them, 0.8 is second of eight at the rung: in the top quarter. Were the peers only
    # the trials the models kept, it would be behind the one trial there (0.9).
    assert _rung_decisions(study, [0.8], steps=[1]) == [False]


def _retry(study: optuna.Study, failed: FrozenTrial) -> None:
    """Re-queue ``failed`` as Optuna's heartbeat callback does (its system attributes copied)."""
    callback = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if callback is None:  # Optuna < 4.9
        callback = optuna.storages.RetryFailedTrialCallback
    callback()(study, failed)


def test_a_retried_trial_meets_the_rungs_on_its_own_values() -> None:
    study = _study()
    _rung_decisions(study, [0.5, 0.4, 0.3, 0.2, 0.1, 0.6])
    # A worker dies after its trial passed the rung at 0.99; the trial is re-queued with the
    # failed attempt's system attributes, its value at the rung among them.
    _rung_decisions(study, [0.99])
    failed = study.trials[-1]
    assert failed.system_attrs[f"srp:rung@{RUNG}"] == 0.99
    if len(study.trials) % 2 == 1:
        study.tell(study.ask(), state=TrialState.FAIL)
    _retry(study, failed)
    retried = study.ask()
    copied = study._storage.get_trial(retried._trial_id).system_attrs
    assert copied[f"srp:rung@{RUNG}"] == 0.99
    retried.report(0.05, 1)
    assert not retried.should_prune()
    # Before the retried trial reaches the rung, its copy is not a peer there: 0.98 is second
    # of eight (six trials, the failed attempt and itself), in the top quarter.
    assert _rung_decisions(study, [0.98]) == [False]
    # At the rung the retried trial is judged on what it reports, not on the copy.
    for step in range(2, RUNG + 1):
        retried.report(0.05, step)
    assert retried.should_prune()
    assert study.trials[retried.number].system_attrs[f"srp:rung@{RUNG}"] == 0.05


def _partial(rows: Any, sign: float = 1.0, first_number: int = 0) -> list[FrozenTrial]:
    """Trials stopped after their curve (one row each, steps from 1), numbered in order."""
    trials = []
    for n, row in enumerate(rows):
        trial = optuna.trial.create_trial(
            state=TrialState.PRUNED,
            intermediate_values={s + 1: sign * float(v) for s, v in enumerate(row)},
        )
        trial.number = first_number + n
        trials.append(trial)
    return trials


# 12 trials up to the quarter rung of 64-report curves (the 16th report), each on its own
# level from the first report: their ranks there are their ranks at the quarter.
LEVELS = np.linspace(0.1, 0.9, 12)
SETTLED = np.repeat(LEVELS[:, None], 16, axis=1)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_start_up_rungs_move_early_where_the_first_ranks_are_the_quarter_s(
    sign: float,
) -> None:
    assert startup_rung_fraction(_partial(SETTLED, sign), 64, sign) == 1 / 256
    # Reversed before the quarter (slow starters lead there): the rung stays at the quarter.
    crossing = SETTLED.copy()
    crossing[:, :15] = LEVELS[::-1, None]
    assert startup_rung_fraction(_partial(crossing, sign), 64, sign) == RUNG_FRACTION
    # Reversed up to the third report only: from the 16th of the curve (the fourth report).
    late_settled = SETTLED.copy()
    late_settled[:, :3] = LEVELS[::-1, None]
    assert startup_rung_fraction(_partial(late_settled, sign), 64, sign) == 1 / 16


@pytest.mark.parametrize("swapped,expected", [(3, 1 / 256), (5, RUNG_FRACTION)])
def test_the_start_up_rungs_need_a_rank_correlation_of_0_9(swapped: int, expected: float) -> None:
    # The worst trial swaps places with another until the quarter: with the fourth worst a
    # rank correlation of 0.94, with the sixth 0.83.
    rows = SETTLED.copy()
    rows[[0, swapped], :15] = rows[[swapped, 0], :15]
    assert startup_rung_fraction(_partial(rows), 64, 1.0) == expected


def test_the_start_up_rungs_need_the_best_complete_trial_to_have_led() -> None:
    # Typical runs that rank alike early say nothing of a best run that starts slowly.
    def complete(first: float, last: float, number: int) -> FrozenTrial:
        trial = optuna.trial.create_trial(
            value=last, intermediate_values={1: first, **dict.fromkeys(range(2, 65), last)}
        )
        trial.number = number
        return trial

    settled = _partial(SETTLED)
    assert startup_rung_fraction([*settled, complete(0.95, 0.95, 12)], 64, 1.0) == 1 / 256
    # Last at the first report (a 256th and a 64th), ahead from the second on: from a 16th.
    assert startup_rung_fraction([*settled, complete(0.0, 0.95, 12)], 64, 1.0) == 1 / 16
    # A slow run that is not the best does not matter.
    slow = complete(0.0, 0.5, 13)
    assert startup_rung_fraction([*settled, complete(0.95, 0.95, 12), slow], 64, 1.0) == 1 / 256


def test_start_up_trials_level_early_show_nothing_and_raise_no_warning() -> None:
    # All at chance level at the first reports (a common start): nothing ranks them there.
    level = SETTLED.copy()
    level[:, :15] = 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert startup_rung_fraction(_partial(level), 64, 1.0) == RUNG_FRACTION


def test_the_start_up_evidence_is_the_first_trials_that_reached_the_quarter() -> None:
    # Undecided with 11 of them; trials stopped before the quarter are no evidence.
    short = _partial(SETTLED[:, :8][:, ::-1], first_number=100)
    assert startup_rung_fraction(_partial(SETTLED[:11]) + short, 64, 1.0) is None
    assert startup_rung_fraction(_partial(SETTLED) + short, 64, 1.0) == 1 / 256
    # Later trials do not change a decision: the early rung screened the ones that reach the
    # quarter after it, so they would only confirm it.
    crossing = SETTLED.copy()
    crossing[:, :15] = LEVELS[::-1, None]
    later = _partial(crossing, first_number=12)
    assert startup_rung_fraction(later + _partial(SETTLED), 64, 1.0) == 1 / 256
    # Non-finite values rank last.
    broken = SETTLED.copy()
    broken[0, :] = np.nan
    assert startup_rung_fraction(_partial(broken), 64, 1.0) == 1 / 256


def _study_with_first_ranks(settled: bool) -> optuna.Study:
    """12 trials that reached the quarter (their ranks at the first report the quarter's if
    ``settled``, else reversed) and 2 complete trials of 20 reports (the quarter rung at the
    5th); the best complete trial led from its first report."""
    study = optuna.create_study(direction="maximize", pruner=SRPPruner(n_startup_trials=10))
    levels = np.linspace(0.1, 0.9, 12)
    for i, level in enumerate(levels):
        first = level if settled else levels[-1 - i]
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.PRUNED,
                intermediate_values={1: first, **dict.fromkeys(range(2, RUNG + 1), level)},
            )
        )
    for final in (0.95, 0.05):
        study.add_trial(
            optuna.trial.create_trial(
                value=final, intermediate_values=dict.fromkeys(range(1, 21), final)
            )
        )
    return study


@pytest.mark.parametrize("settled", [True, False])
def test_before_the_models_the_first_trials_ranks_move_the_rungs(settled: bool) -> None:
    study = _study_with_first_ranks(settled)
    # At the first report, the second is behind the first: a rung there stops it.
    assert _rung_decisions(study, [0.9, 0.8], steps=[1]) == [False, settled]
    if settled:
        reason = study.trials[-1].user_attrs["srp:reason"]
        assert reason.startswith("pruned at step 1: not in the top quarter")
        assert "where the first trials ranked as at a quarter" in reason


@pytest.mark.parametrize("settled", [True, False])
def test_where_the_rungs_begin_early_the_full_group_meets_the_quarter_s(settled: bool) -> None:
    # The second trial of the full group is behind the first from its first report: it goes
    # on from the early rung (what the group insures against) and, where the rungs begin
    # early, is stopped at the quarter's (the 5th report), which the other trials meet too.
    study = _study_with_first_ranks(settled)
    assert _rung_decisions(study, [0.9, 0.1], full=True, steps=range(1, RUNG + 1)) == [
        False,
        settled,
    ]
    if settled:
        reason = study.trials[-1].user_attrs["srp:reason"]
        assert reason.startswith(f"pruned at step {RUNG}: not in the top quarter")
    # It recorded its value at both rungs.
    assert {k for k in study.trials[-1].system_attrs if k.startswith("srp:rung@")} == (
        {"srp:rung@1", f"srp:rung@{RUNG}"} if settled else {f"srp:rung@{RUNG}"}
    )


def test_until_the_first_ranks_are_known_every_other_trial_meets_rungs_from_the_first_report() -> (
    None
):
    study = _study()  # 2 complete trials of 20 reports; nothing reached the quarter yet
    decisions = {}
    for number, value in [(2, 0.9), (3, 0.95), (4, 0.1), (5, 0.1), (6, 0.1), (7, 0.1)]:
        trial = study.ask({"x": FloatDistribution(0, 1)})
        assert trial.number == number
        study._storage.set_trial_system_attr(trial._trial_id, FULL_KEY, False)
        trial.report(value, 1)
        decisions[number] = trial.should_prune()
        study.tell(trial, state=TrialState.PRUNED if decisions[number] else TrialState.FAIL)
    # The odd-numbered ones meet a rung at the first report (the first there goes on; the
    # later ones are behind it); the even-numbered ones only the quarter's.
    assert decisions == {2: False, 3: False, 4: False, 5: True, 6: False, 7: True}
    trials = study.trials
    assert [n for n in decisions if EARLY_RUNG_KEY in trials[n].system_attrs] == [3, 5, 7]
    reason = trials[5].user_attrs["srp:reason"]
    assert reason.startswith("pruned at step 1: not in the top quarter")
    assert "the early bracket" in reason
    # A trial in the full group never meets it.
    study.tell(study.ask(), state=TrialState.FAIL)
    trial = study.ask({"x": FloatDistribution(0, 1)})
    assert trial.number % 2 == 1
    study._storage.set_trial_system_attr(trial._trial_id, FULL_KEY, True)
    trial.report(0.0, 1)
    assert not trial.should_prune()
    assert EARLY_RUNG_KEY not in study.trials[-1].system_attrs


def test_the_early_bracket_is_no_evidence_for_the_start_up_rungs() -> None:
    # Screened before the quarter (a rung value recorded at the first report), its trials
    # would show ranks that settle early whatever the curves do; without them 11 trials
    # reached the quarter, one short.
    trials = _partial(SETTLED)
    assert startup_rung_fraction(trials, 64, 1.0) == 1 / 256
    trials[4].system_attrs[EARLY_RUNG_KEY] = 0.5
    assert startup_rung_fraction(trials, 64, 1.0) is None


def test_a_start_up_stop_says_when_the_models_could_not_read_the_complete_trials() -> None:
    def unreadable(trial: FrozenTrial) -> list[float]:
        raise KeyError("n_weights")

    study = optuna.create_study(
        direction="maximize", pruner=SRPPruner(n_startup_trials=10, extra_features=unreadable)
    )
    add_complete_trials(study, 12)
    with pytest.warns(RuntimeWarning, match="could not read trial"):
        assert _rung_decisions(study, [0.9, 0.1]) == [False, True]
    reason = study.trials[-1].user_attrs["srp:reason"]
    assert "start-up: the models could read 0 of the 12 complete trials and need 10" in reason


def test_every_worker_keeps_the_first_start_up_decision_in_storage() -> None:
    study = optuna.create_study(direction="maximize", pruner=SRPPruner(n_startup_trials=10))
    # Trial 0 runs slowly: last at its first report, it has not reached the quarter yet.
    slow = study.ask({"x": FloatDistribution(0, 1)})
    slow.report(0.0, 1)
    for level in np.linspace(0.1, 0.9, 12):
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.PRUNED,
                intermediate_values=dict.fromkeys(range(1, RUNG + 1), level),
            )
        )
    for final in (0.95, 0.05):
        study.add_trial(
            optuna.trial.create_trial(
                value=final, intermediate_values=dict.fromkeys(range(1, 21), final)
            )
        )
    # The first worker decides on trials 1-12, which ranked alike: rungs from the first report.
    assert _rung_decisions(study, [0.9, 0.8], steps=[1]) == [False, True]
    # Trial 0 then reaches the quarter first among them all, though last at its first report:
    # among the first 12 by number now, the ranks no longer agree.
    for step in range(2, RUNG + 1):
        slow.report(1.0, step)
    study.tell(slow, state=TrialState.PRUNED)
    trials = study.get_trials(deepcopy=False)
    assert startup_rung_fraction(trials, N_STEPS, 1.0) == RUNG_FRACTION
    # A second worker (a fresh pruner) keeps the first decision.
    study.pruner = SRPPruner(n_startup_trials=10)
    assert _rung_decisions(study, [0.9, 0.8], steps=[1]) == [False, True]


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_best_complete_trials_rank_ties_by_trial_order(sign: float) -> None:
    # LCBench's and MetaQNN's accuracies tie often; which tied run counts as the best decides
    # whether the rungs' evidence passes, so ties must go one fixed way (the later trial).
    values = [0.5, 0.9, float("inf"), 0.9, 0.7]  # Optuna refuses a NaN value, not inf
    trials = [
        optuna.trial.create_trial(value=sign * v, intermediate_values={1: sign * v})
        for v in values
    ]
    assert _best_complete(trials, sign, 1) == [3]
    assert _best_complete(trials, sign, 3) == [3, 1, 4]
    assert _best_complete(trials, sign, 5)[-1] == 2  # not finite, even +inf: last


def test_a_trial_another_process_finished_before_its_first_check_is_not_pruned() -> None:
    # A heartbeat check fails the trial between its report and its first check: its group,
    # which its bracket depends on, cannot be written, and the check says "go on" instead of
    # raising.
    study = _study()
    study.tell(study.ask(), state=TrialState.FAIL)
    trial = study.ask({"x": FloatDistribution(0, 1)})
    assert trial.number % 2 == 1
    trial.report(0.1, 1)
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    assert trial.should_prune() is False
