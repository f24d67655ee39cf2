"""What SRPPruner writes to a trial: the decision, a one-line reason, and the prediction, each
written when the decision changes and not at every check."""

from __future__ import annotations

from typing import Any
from typing import cast
from typing import Literal

import numpy as np
import optuna
import pytest

from optuna_srp import SRPPruner
from optuna_srp._pruner import _Decision
from tests._synthetic import add_complete_trials
from tests._synthetic import curve


Direction = Literal["minimize", "maximize"]


def _ask(study: optuna.Study, x: float) -> optuna.trial.Trial:
    study.enqueue_trial({"x": x})
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    return trial


def _count_writes(study: optuna.Study) -> list[tuple[object, ...]]:
    writes: list[tuple[object, ...]] = []
    original = study._storage.set_trial_user_attr

    def counting(*args: object) -> None:
        writes.append(args)
        original(*args)  # type: ignore[arg-type]

    study._storage.set_trial_user_attr = counting  # type: ignore[method-assign,assignment]
    return writes


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_a_pruned_trial_says_why_in_the_studys_units(direction: Direction) -> None:
    sign = 1.0 if direction == "maximize" else -1.0
    study = optuna.create_study(direction=direction, pruner=SRPPruner(n_startup_trials=10, seed=0))
    add_complete_trials(study, 30)
    trial = _ask(study, 0.0)
    for step, v in enumerate(curve(0.0, np.random.default_rng(1))[:5], start=1):
        trial.report(sign * v, step)
    assert trial.should_prune()

    attrs = study.trials[-1].user_attrs
    assert attrs["srp:decision"] in ("pruned:model", "pruned:laggard")
    reason = attrs["srp:reason"]
    assert reason.startswith("pruned at step 5: ")
    # The reason quotes the stored prediction and the best complete value, signs included.
    assert f"predicted {attrs['srp:predicted_value']:.4g} ± " in reason
    assert f"the best ({study.best_value:.4g})" in reason
    assert sign * attrs["srp:predicted_value"] < sign * study.best_value


def test_a_trial_that_reached_the_best_is_kept_and_says_so() -> None:
    study = optuna.create_study(direction="maximize", pruner=SRPPruner(n_startup_trials=10))
    add_complete_trials(study, 30)
    trial = _ask(study, 0.0)
    # Terrible at first, then once better than the best: the model predicts low, yet the
    # keep rule holds. The probability alone (1.0 beside a low prediction) looked contradictory.
    for step, v in enumerate([0.0, 0.0, 0.0, 0.0, study.best_value + 0.01, 0.0], start=1):
        trial.report(v, step)
    assert not trial.should_prune()

    attrs = study.trials[-1].user_attrs
    assert attrs["srp:decision"] == "kept:reached-best"
    assert attrs["srp:reason"].startswith("kept at step 6: has already reached the best")
    assert attrs["srp:probability"] == 1.0


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_a_trial_level_with_the_incumbent_quotes_the_incumbent_s_value_at_its_step(
    direction: Direction,
) -> None:
    study = optuna.create_study(direction=direction, pruner=SRPPruner(n_startup_trials=10))
    add_complete_trials(study, 30)
    best = study.best_trial
    step = sorted(best.intermediate_values)[2]
    there = best.intermediate_values[step]
    trial = _ask(study, 0.0)
    for s in sorted(best.intermediate_values)[:3]:
        trial.report(best.intermediate_values[s], s)
    assert not trial.should_prune()

    attrs = study.trials[-1].user_attrs
    assert attrs["srp:decision"] == "kept:incumbent"
    reason = attrs["srp:reason"]
    # The value the trial was level with is the incumbent's at this step, not its final.
    assert f"({there:.4g} there; it ended at {study.best_value:.4g})" in reason, reason
    assert there != study.best_value


def test_attributes_are_written_when_the_decision_changes_only() -> None:
    study = optuna.create_study(
        direction="maximize", pruner=SRPPruner(n_startup_trials=10, seed=0)
    )
    add_complete_trials(study, 30)
    writes = _count_writes(study)
    trial = _ask(study, 0.7)
    good = curve(0.7, np.random.default_rng(2))
    trial.report(good[0], 1)
    assert not trial.should_prune()
    first = len(writes)
    assert first > 0
    assert study.trials[-1].user_attrs["srp:decision"].startswith("kept:")

    # The same decision at later checks, with other predictions: no write.
    for step in range(2, 7):
        trial.report(good[step - 1], step)
        assert not trial.should_prune()
    assert study.trials[-1].user_attrs["srp:decision"].startswith("kept:")
    assert len(writes) == first

    # A collapse changes the decision: written once, with the prediction that made it.
    trial.report(0.0, 7)
    trial.report(0.0, 8)
    assert trial.should_prune()
    attrs = study.trials[-1].user_attrs
    assert attrs["srp:decision"].startswith("pruned:")
    assert attrs["srp:reason"].startswith("pruned at step 8: ")
    assert len(writes) > first
    assert {w[1] for w in writes[first:]} >= {"srp:decision", "srp:reason", "srp:probability"}


def test_a_trial_the_start_up_trains_to_the_end_says_once_why() -> None:
    study = optuna.create_study(direction="maximize", pruner=SRPPruner(seed=0))
    writes = _count_writes(study)
    first = _ask(study, 0.5)
    for step in range(1, 9):
        first.report(0.1, step)  # a run at chance: nothing said why it went on
        assert not first.should_prune()
    attrs = study.trials[0].user_attrs
    assert attrs["srp:decision"] == "kept:full"
    assert attrs["srp:reason"].startswith("kept at step 1: in the full group")
    assert "(0 at this check)" in attrs["srp:reason"]
    assert len(writes) == 2  # at its first check only
    study.tell(first, 0.1)

    # The full group now holds every step trained: trial 1 meets the early bracket's rungs
    # (the first report, then a quarter of the curve: steps 1 and 2 of 8).
    second = _ask(study, 0.6)
    second.report(0.5, 1)
    assert not second.should_prune()
    assert "srp:decision" not in study.trials[1].user_attrs  # a rung is still ahead
    for step in range(2, 5):
        second.report(0.5, step)
        assert not second.should_prune()
    attrs = study.trials[1].user_attrs
    assert attrs["srp:decision"] == "kept:rung"
    # Worse than trial 0, which ran before the rungs were placed: it went on as the first to
    # reach the rung, and the reason says so, not "in the top quarter".
    assert attrs["srp:reason"].startswith("kept at step 2: the first trial to reach")
    assert "(1 at this check)" in attrs["srp:reason"]
    assert len(writes) == 4
    study.tell(second, 0.5)

    # The next to reach it, better than trial 1 there, goes on as the best of fewer than four.
    if len(study.trials) % 2 == 0:
        study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)
    third = _ask(study, 0.7)
    for step in range(1, 4):
        third.report(0.6, step)
        assert not third.should_prune()
    assert (
        study.trials[-1]
        .user_attrs["srp:reason"]
        .startswith("kept at step 2: in the top quarter of the trials at the start-up's last rung")
    )


def test_the_last_report_keeps_the_decision_that_kept_the_trial_there() -> None:
    # Every trial as long as the complete ones meets kept:end at its last report; the rule that
    # kept it until then (here the models') is what says why it ran to the end.
    study = optuna.create_study(direction="maximize", pruner=SRPPruner(n_startup_trials=10))
    add_complete_trials(study, 30)
    n_steps = len(study.trials[0].intermediate_values)
    writes = _count_writes(study)
    trial = _ask(study, 0.7)
    good = curve(0.7, np.random.default_rng(2))
    for step in range(1, n_steps):
        trial.report(good[step - 1], step)
        assert not trial.should_prune()
    kept = dict(study.trials[-1].user_attrs)
    assert kept["srp:decision"].startswith("kept:") and kept["srp:decision"] != "kept:end"
    n_writes = len(writes)
    trial.report(good[n_steps - 1], n_steps)
    assert not trial.should_prune()
    assert study.trials[-1].user_attrs == kept
    assert len(writes) == n_writes

    # A trial whose first check is at the last report has no other decision: kept:end says why.
    late = _ask(study, 0.7)
    late.report(good[n_steps - 1], n_steps)
    assert not late.should_prune()
    assert study.trials[-1].user_attrs["srp:decision"] == "kept:end"


def test_a_first_wave_trial_says_no_rung_was_placed_until_one_is() -> None:
    # Workers that start at once: trial 1 reports before any trial is complete, when no rung
    # exists, and would otherwise end without a decision.
    study = optuna.create_study(direction="maximize", pruner=SRPPruner(seed=0))
    first, second = _ask(study, 0.5), _ask(study, 0.6)
    for step in range(1, 5):
        for trial in (first, second):
            trial.report(0.1 * step, step)
            assert not trial.should_prune()
    attrs = study.trials[1].user_attrs
    assert study.trials[0].user_attrs["srp:decision"] == "kept:full"
    assert attrs["srp:decision"] == "kept:no-rung"
    assert attrs["srp:reason"].startswith("kept at step 1: no trial is complete yet")
    for step in range(5, 9):
        first.report(0.1 * step, step)
    study.tell(first, 0.8)

    # Once the rungs are placed it is judged by them, past the last as the first to reach it.
    second.report(0.5, 5)
    assert not second.should_prune()
    attrs = study.trials[1].user_attrs
    assert attrs["srp:decision"] == "kept:rung"
    assert attrs["srp:reason"].startswith("kept at step 5: the first trial to reach")


def test_a_rung_met_after_the_trial_passed_its_step_is_named_by_its_step() -> None:
    study = optuna.create_study(direction="maximize", pruner=SRPPruner(seed=0))
    first, late = _ask(study, 0.5), _ask(study, 0.1)
    first.report(0.5, 1)
    first.should_prune()  # the full group's
    for step in range(1, 7):
        late.report(0.01, step)  # far behind, before any rung exists
        assert not late.should_prune()
    for step in range(2, 9):
        first.report(0.5, step)
        first.should_prune()
    study.tell(first, 0.5)
    for x in (0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9):
        peer = _ask(study, x)
        for step in range(1, 9):
            peer.report(0.5, step)
            if peer.should_prune():
                break
        study.tell(peer, 0.5)
    late.report(0.01, 7)
    assert late.should_prune()
    attrs = study.trials[1].user_attrs
    assert attrs["srp:decision"] == "pruned:rung"
    assert attrs["srp:reason"].startswith(
        "pruned at step 7: not in the top quarter of the trials at the rung at step"
    )


@pytest.mark.parametrize("mean", [0.5994496, -0.5994496, 12.3449996])
def test_the_reason_s_prediction_reads_as_the_value_stored_beside_it(mean: float) -> None:
    # At a rounding boundary: 0.5994496 stored to 6 digits is 0.59945, which is "0.5995" to 4,
    # where the unrounded mean reads "0.5994".
    decision = _Decision("kept:model", mean, 0.01, 0.5, 1, 1, cast(Any, None))
    for sign in (1.0, -1.0):
        stored = decision.prediction_attrs(sign)["predicted_value"]
        assert decision._predicted(sign).startswith(f"predicted {stored:.4g} ± ")
