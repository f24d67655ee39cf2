from __future__ import annotations

import copy
import math
import pickle
import textwrap
from typing import Any
from typing import Literal

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
import pytest
from scipy.special import stdtr

from optuna_srp import _pruner
from optuna_srp import SRPPruner
from optuna_srp._rungs import FULL_KEY
from tests._synthetic import add_complete_trials
from tests._synthetic import curve
from tests._synthetic import final_value
from tests._synthetic import N_STEPS
from tests._synthetic import objective


Direction = Literal["minimize", "maximize"]


def _ask(study: optuna.Study, x: float) -> optuna.trial.Trial:
    study.enqueue_trial({"x": x})
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    return trial


def _report(trial: optuna.trial.Trial, values: list[float], sign: float = 1.0) -> None:
    for step, v in enumerate(values, start=1):
        trial.report(sign * v, step)


def _sign(direction: Direction) -> float:
    return 1.0 if direction == "maximize" else -1.0


def test_defaults_wait_for_ten_complete_trials_then_prune_a_hopeless_one() -> None:
    pruner = SRPPruner()
    study = optuna.create_study(direction="maximize", pruner=pruner)
    add_complete_trials(study, 9)
    hopeless = curve(0.0, np.random.default_rng(1))[:5]
    trial = _ask(study, 0.0)
    _report(trial, hopeless)
    assert not trial.should_prune()
    # No prediction yet; the trials added without checks hold no steps of the full group.
    attrs = study.trials[-1].user_attrs
    assert "srp:probability" not in attrs
    assert attrs["srp:decision"] == "kept:full"
    study.tell(trial, state=TrialState.PRUNED)
    add_complete_trials(study, 21, seed=1)
    trial = _ask(study, 0.0)
    _report(trial, hopeless)
    assert trial.should_prune()
    assert study.trials[-1].user_attrs["srp:probability"] < 0.02


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_startup_trials": 1},
        {"n_warmup_steps": -1},
        {"interval_steps": 0},
        {"threshold": -0.1},
        {"threshold": 1.5},
        {"threshold": float("nan")},
        {"n_estimators": 0},
        {"max_train_trials": 5},
    ],
)
def test_invalid_values_raise_value_error(kwargs: dict) -> None:
    name, value = next(iter(kwargs.items()))
    with pytest.raises(ValueError, match=name):
        SRPPruner(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_startup_trials": 2.5},
        {"threshold": "0.1"},
        {"seed": 1.5},
        {"wrapped_pruner": "median"},
        {"extra_features": 3},
    ],
)
def test_invalid_types_raise_type_error(kwargs: dict) -> None:
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        SRPPruner(**kwargs)


def test_no_report_no_prune() -> None:
    study = optuna.create_study(direction="maximize", pruner=SRPPruner(n_startup_trials=5))
    add_complete_trials(study, 20)
    trial = _ask(study, 0.0)
    assert not trial.should_prune()


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_no_prune_before_startup_trials(direction: Direction) -> None:
    study = optuna.create_study(direction=direction, pruner=SRPPruner(n_startup_trials=10))
    add_complete_trials(study, 9)
    trial = _ask(study, 0.0)
    _report(trial, [0.0] * 10, _sign(direction))
    assert not trial.should_prune()
    assert SRPPruner(n_startup_trials=10).predict(study, study.trials[-1]) is None


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_hopeless_trial_is_pruned_and_explained(direction: Direction) -> None:
    study = optuna.create_study(direction=direction, pruner=SRPPruner(n_startup_trials=10, seed=0))
    add_complete_trials(study, 30)
    trial = _ask(study, 0.0)
    rng = np.random.default_rng(1)
    _report(trial, curve(0.0, rng)[:5], _sign(direction))
    assert trial.should_prune()
    attrs = study.trials[-1].user_attrs
    assert attrs["srp:probability"] < 0.01
    assert attrs["srp:step"] == 5
    assert math.isfinite(attrs["srp:predicted_value"]) and attrs["srp:predicted_std"] > 0
    # The prediction is reported in the study's own units.
    assert _sign(direction) * attrs["srp:predicted_value"] < final_value(0.7)


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_the_leader_is_not_pruned(direction: Direction) -> None:
    study = optuna.create_study(direction=direction, pruner=SRPPruner(n_startup_trials=10, seed=0))
    add_complete_trials(study, 30)
    rng = np.random.default_rng(2)
    for n_steps in (2, 5, 10, N_STEPS - 1):
        trial = _ask(study, 0.7)
        _report(trial, curve(0.7, rng)[:n_steps], _sign(direction))
        assert not trial.should_prune(), n_steps
        study.tell(trial, state=TrialState.PRUNED)


def test_a_trial_that_already_beats_the_best_is_never_pruned() -> None:
    study = optuna.create_study(direction="maximize", pruner=SRPPruner(n_startup_trials=10))
    add_complete_trials(study, 30)
    trial = _ask(study, 0.0)
    # A shape no complete trial has: terrible at first, then better than the best.
    _report(trial, [0.0, 0.0, 0.0, 0.0, study.best_value + 0.01])
    assert not trial.should_prune()
    assert study.trials[-1].user_attrs["srp:probability"] == 1.0


def test_no_prune_during_warmup() -> None:
    pruner = SRPPruner(n_startup_trials=10, n_warmup_steps=5, seed=0)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    add_complete_trials(study, 30)
    trial = _ask(study, 0.0)
    values = curve(0.0, np.random.default_rng(1))
    for step in range(1, 5):
        trial.report(values[step - 1], step)
        assert not trial.should_prune()
    trial.report(values[4], 5)
    assert trial.should_prune()


@pytest.mark.parametrize(
    "n_warmup_steps,interval_steps,report_steps,expected_prune_steps",
    [
        (0, 1, 1, [0, 1, 2, 3, 4, 5]),
        (1, 2, 1, [1, 3, 5]),
        (0, 3, 10, list(range(29))),
        (2, 3, 10, list(range(10, 29))),
        (0, 10, 3, [0, 1, 2, 12, 13, 14, 21, 22, 23]),
        (2, 10, 3, [3, 4, 5, 12, 13, 14, 24, 25, 26]),
    ],
)
def test_interval_steps(
    n_warmup_steps: int,
    interval_steps: int,
    report_steps: int,
    expected_prune_steps: list[int],
) -> None:
    # The same table as Optuna's MedianPruner tests: a hopeless trial is pruned exactly at the
    # first report at or after each checkpoint.
    pruner = SRPPruner(
        n_startup_trials=10, n_warmup_steps=n_warmup_steps, interval_steps=interval_steps
    )
    study = optuna.create_study(direction="maximize", pruner=pruner)
    rng = np.random.default_rng(0)
    for x in rng.uniform(0.4, 1.0, 12):
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": float(x)},
                distributions={"x": FloatDistribution(0, 1)},
                value=1.0 + float(x),
                intermediate_values={s: 1.0 + float(x) * s / 30 for s in range(30)},
            )
        )
    trial = _ask(study, 0.0)
    pruned_steps: list[int] = []
    for step in range(30):
        if step % report_steps == 0:
            trial.report(-10.0, step)
        if trial.should_prune():
            pruned_steps.append(step)
    assert pruned_steps[: len(expected_prune_steps)] == expected_prune_steps[: len(pruned_steps)]
    assert pruned_steps[: len(expected_prune_steps)] == expected_prune_steps


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("direction", ["minimize", "maximize"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_curves_are_read_as_diverged(direction: Direction, bad: float) -> None:
    study = optuna.create_study(direction=direction, pruner=SRPPruner(n_startup_trials=10))
    add_complete_trials(study, 30)
    rng = np.random.default_rng(3)
    sign = _sign(direction)
    # Diverged complete trials in the training set are fine too.
    for _ in range(3):
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": 0.1},
                distributions={"x": FloatDistribution(0, 1)},
                value=-sign * 1e18,
                intermediate_values={1: 0.1, 2: bad, 3: bad, N_STEPS: -sign * 1e18},
            )
        )
    diverged = _ask(study, 0.2)
    _report(diverged, [0.1, bad, bad, bad, bad])
    assert diverged.should_prune()
    study.tell(diverged, state=TrialState.PRUNED)
    leader = _ask(study, 0.7)
    _report(leader, curve(0.7, rng)[:5], sign)
    assert not leader.should_prune()


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_diverged_trial_is_stopped_in_the_start_up_even_in_the_full_group(
    direction: Direction, bad: float
) -> None:
    # Before the models: the full group would train it to the end, for a failed trial.
    study = optuna.create_study(direction=direction, pruner=SRPPruner(n_startup_trials=10))
    add_complete_trials(study, 2)
    trial = _ask(study, 0.5)
    study._storage.set_trial_system_attr(trial._trial_id, FULL_KEY, True)
    _report(trial, [0.1, 0.2], _sign(direction))
    assert not trial.should_prune()
    trial.report(bad, 3)
    assert trial.should_prune()
    study.tell(trial, state=TrialState.PRUNED)
    decision = study.trials[-1].user_attrs
    assert decision["srp:decision"] == "pruned:diverged"
    assert decision["srp:reason"] == (
        f"pruned at step 3: it reported {bad!r} (not finite: a diverged run, or a metric that "
        "cannot be computed), where finite values had been reported by this step"
    )


def test_a_diverged_trial_that_reached_the_best_complete_value_keeps_it() -> None:
    # An objective that returns its best value so far would complete with the best value.
    study = optuna.create_study(direction="maximize", pruner=SRPPruner(n_startup_trials=10))
    add_complete_trials(study, 2)
    best = max(t.value for t in study.trials if t.value is not None)
    trial = _ask(study, 0.5)
    study._storage.set_trial_system_attr(trial._trial_id, FULL_KEY, True)
    _report(trial, [0.1, best + 0.01, float("nan")])
    assert not trial.should_prune()
    below = _ask(study, 0.6)
    study._storage.set_trial_system_attr(below._trial_id, FULL_KEY, True)
    _report(below, [0.1, best - 0.01, float("nan")])
    assert below.should_prune()


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_a_first_trial_that_diverges_after_finite_values_is_stopped(direction: Direction) -> None:
    # No other trial to compare with: its own finite values show that the metric is defined.
    study = optuna.create_study(direction=direction, pruner=SRPPruner())
    first = _ask(study, 0.5)
    _report(first, [0.1, 0.2], _sign(direction))
    assert not first.should_prune()
    first.report(float("nan"), 3)
    assert first.should_prune()
    study.tell(first, state=TrialState.PRUNED)
    assert study.trials[-1].user_attrs["srp:decision"] == "pruned:diverged"


def test_a_value_that_no_trial_has_finite_yet_is_no_divergence() -> None:
    study = optuna.create_study(direction="minimize", pruner=SRPPruner(n_startup_trials=2))
    # The first trial has no other to compare with: it goes on, and its curve recovers (a
    # metric undefined at the first step, by design).
    first = _ask(study, 0.5)
    first.report(float("nan"), 1)
    assert not first.should_prune()
    for step in range(2, 13):
        first.report(1.0 / step, step)
    study.tell(first, 1.0 / 12)
    # The next one (in the full group: no rung stops it) reports NaN where the first did: not
    # pruned there, but where the first was finite.
    second = _ask(study, 0.6)
    study._storage.set_trial_system_attr(second._trial_id, FULL_KEY, True)
    second.report(float("nan"), 1)
    assert not second.should_prune()
    second.report(float("nan"), 2)
    assert second.should_prune()
    study.tell(second, state=TrialState.PRUNED)
    assert study.trials[-1].user_attrs["srp:decision"] == "pruned:diverged"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_diverged_complete_trials_do_not_blind_the_models(direction: Direction) -> None:
    # A fifth of the complete trials diverged to huge finite values (TaskSet losses reach
    # 1e16). A scale that reached into them made every other target about 0, and the models
    # predicted 1e11 for every trial.
    study = optuna.create_study(direction=direction, pruner=SRPPruner(seed=0))
    add_complete_trials(study, 24)
    sign = _sign(direction)
    for i in range(6):
        huge = -sign * 10.0 ** (12 + i)
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": 0.05},
                distributions={"x": FloatDistribution(0, 1)},
                value=huge,
                intermediate_values={s: (0.1 * sign if s < 3 else huge) for s in range(1, 31)},
            )
        )
    rng = np.random.default_rng(5)
    leader = _ask(study, 0.9)
    _report(leader, curve(0.9, rng)[:8], sign)
    prediction = study.pruner.predict(study, study.trials[-1])  # type: ignore[attr-defined]
    assert prediction is not None
    assert final_value(0.0) - 0.5 < sign * prediction[0] < final_value(0.7) + 0.5
    assert not leader.should_prune()
    hopeless = _ask(study, 0.0)
    _report(hopeless, curve(0.0, rng)[:8], sign)
    assert hopeless.should_prune()


def test_irregular_sparse_steps_from_zero() -> None:
    pruner = SRPPruner(n_startup_trials=10, seed=0)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    rng = np.random.default_rng(0)
    for x in rng.uniform(0, 1, 30):
        values = curve(float(x), rng)
        steps = sorted(rng.choice(np.arange(0, 200), size=N_STEPS, replace=False))
        steps[-1] = 200
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": float(x)},
                distributions={"x": FloatDistribution(0, 1)},
                value=values[-1],
                intermediate_values=dict(zip(map(int, steps), values)),
            )
        )
    hopeless = _ask(study, 0.0)
    for step, v in zip((0, 7, 33, 60), curve(0.0, rng)):
        hopeless.report(v, step)
    assert hopeless.should_prune()
    good = _ask(study, 0.7)
    for step, v in zip((0, 7, 33, 60), curve(0.7, rng)):
        good.report(v, step)
    assert not good.should_prune()


def test_conditional_and_categorical_parameters() -> None:
    study = optuna.create_study(direction="maximize", pruner=SRPPruner(n_startup_trials=10))
    rng = np.random.default_rng(0)

    def suggest(trial: optuna.trial.Trial) -> float:
        kind = trial.suggest_categorical("kind", ["a", "b", None, True])
        if kind == "a":
            return trial.suggest_float("x", 0, 1)
        return trial.suggest_int("n", 1, 100, log=True) / 100

    for _ in range(30):
        trial = study.ask()
        x = suggest(trial)
        values = curve(x, rng)
        _report(trial, values)
        study.tell(trial, values[-1])
    trial = study.ask()
    x = suggest(trial)
    _report(trial, curve(x, rng)[:5])
    trial.should_prune()
    assert math.isfinite(study.trials[-1].user_attrs["srp:predicted_value"])


def test_predictions_are_accurate_and_intervals_cover() -> None:
    pruner = SRPPruner(n_startup_trials=10, seed=0)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    add_complete_trials(study, 100, seed=0)
    rng = np.random.default_rng(42)
    errors, inside = [], []
    truths = []
    for x in rng.uniform(0, 1, 60):
        values = curve(float(x), rng)
        trial = _ask(study, float(x))
        _report(trial, values[:5])
        prediction = pruner.predict(study, study.trials[-1])
        assert prediction is not None
        mean, std = prediction
        errors.append(mean - values[-1])
        truths.append(values[-1])
        inside.append(abs(mean - values[-1]) <= 1.645 * std)
        study.tell(trial, state=TrialState.PRUNED)
    r2 = 1 - np.mean(np.square(errors)) / np.var(truths)
    assert r2 > 0.9
    assert 0.8 <= np.mean(inside) <= 1.0


def test_wrapped_pruner_is_used_only_before_models_are_ready() -> None:
    class PruneAll(optuna.pruners.BasePruner):
        def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
            return True

    pruner = SRPPruner(n_startup_trials=10, wrapped_pruner=PruneAll())
    study = optuna.create_study(direction="maximize", pruner=pruner)
    add_complete_trials(study, 9)
    trial = _ask(study, 0.7)
    _report(trial, curve(0.7, np.random.default_rng(0))[:3])
    assert trial.should_prune()
    # Its stop is written to the trial, as the start-up rule's are.
    attrs = study.trials[-1].user_attrs
    assert attrs["srp:decision"] == "pruned:wrapped"
    assert "PruneAll (wrapped_pruner)" in attrs["srp:reason"] and "9 of 10" in attrs["srp:reason"]
    study.tell(trial, state=TrialState.PRUNED)
    add_complete_trials(study, 21, seed=1)
    trial = _ask(study, 0.7)
    _report(trial, curve(0.7, np.random.default_rng(0))[:3])
    assert not trial.should_prune()


def _distance_to_best(trial: optuna.trial.FrozenTrial) -> list[float]:
    return [abs(trial.params["x"] - 0.7)]


def test_extra_features_are_used() -> None:
    # The models get one more column, filled with the callable's values: the prediction
    # changes with it.
    study = optuna.create_study(direction="maximize")
    add_complete_trials(study, 20)
    trial = _ask(study, 0.1)
    _report(trial, curve(0.1, np.random.default_rng(0))[:4])
    frozen = study.trials[-1]
    with_extra = SRPPruner(n_startup_trials=10, seed=0, extra_features=_distance_to_best)
    without = SRPPruner(n_startup_trials=10, seed=0)
    predictions = [p.predict(study, frozen) for p in (with_extra, without)]
    assert predictions[0] is not None and predictions[0] != predictions[1]
    widths = []
    for pruner in (with_extra, without):
        fit = pruner._fit_for(study)
        assert fit is not None
        (step_model,) = fit.step_models.values()
        X = step_model.featurizer.transform(fit.records)
        widths.append(X.shape[1])
        if pruner is with_extra:
            expected = [abs(r.params["x"] - 0.7) for r in fit.records]
            np.testing.assert_allclose(X[:, -1], expected)
    assert widths[0] == widths[1] + 1


def test_models_are_reused_until_a_tenth_more_trials_complete() -> None:
    # 20 complete trials: refitted when 2 more have completed, not 1.
    pruner = SRPPruner(n_startup_trials=10)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    add_complete_trials(study, 20)
    trial = _ask(study, 0.5)
    _report(trial, curve(0.5, np.random.default_rng(0))[:4])
    trial.should_prune()
    first = pruner._fit_for(study)
    add_complete_trials(study, 1, seed=3)
    trial.should_prune()
    assert pruner._fit_for(study) is first
    add_complete_trials(study, 1, seed=4)
    trial.should_prune()
    assert pruner._fit_for(study) is not first


def test_at_max_train_trials_the_kernel_is_chosen_again_once_the_study_doubles() -> None:
    # max_train_trials 10: from 10 complete trials on, a refit redraws 10 of them. The kernel
    # chosen by cross-validation at 12 complete trials is kept at 14 (a refit, fewer than 24),
    # and chosen again at 24. Below the cap every refit chooses.
    pruner = SRPPruner(n_startup_trials=2, max_train_trials=10, seed=0)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    trial = _ask(study, 0.5)
    _report(trial, curve(0.5, np.random.default_rng(0))[:4])

    def refit_after(n: int, seed: int) -> Any:
        add_complete_trials(study, n, seed=seed)
        before = pruner._fit_for(study)
        trial.should_prune()
        fit = pruner._fit_for(study)
        assert fit is not None and fit is not before
        (model,) = [m.model for m in fit.step_models.values()]
        return model

    below = refit_after(8, 1)  # 8 complete: below the cap
    assert below.C is None
    chosen = refit_after(4, 2)  # 12: the grid runs
    assert chosen.C is None
    kept = refit_after(2, 3)  # 14: a refit with the kernel of 12
    assert kept.C == chosen.best_params_["C"] and kept.gamma == chosen.best_params_["gamma"]
    assert kept.best_params_ == chosen.best_params_
    again = refit_after(10, 4)  # 24: twice 12
    assert again.C is None


def test_no_storage_write_when_nothing_changed() -> None:
    pruner = SRPPruner(n_startup_trials=10)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    add_complete_trials(study, 20)
    trial = _ask(study, 0.5)
    _report(trial, curve(0.5, np.random.default_rng(0))[:4])
    trial.should_prune()
    writes: list[tuple] = []
    original = study._storage.set_trial_user_attr

    def counting(*args: object) -> None:
        writes.append(args)
        original(*args)  # type: ignore[arg-type]

    study._storage.set_trial_user_attr = counting  # type: ignore[method-assign,assignment]
    trial.should_prune()
    assert writes == []


@pytest.mark.parametrize("roundtrip", [pickle.loads, copy.deepcopy])
def test_pickle_and_deepcopy(roundtrip: object) -> None:
    pruner = SRPPruner(n_startup_trials=10, seed=0)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    add_complete_trials(study, 20)
    trial = _ask(study, 0.3)
    _report(trial, curve(0.3, np.random.default_rng(0))[:4])
    before = pruner.predict(study, study.trials[-1])
    if roundtrip is pickle.loads:
        study2 = pickle.loads(pickle.dumps(study))
    else:
        study2 = copy.deepcopy(study)
    after = study2.pruner.predict(study2, study2.trials[-1])  # type: ignore[attr-defined]
    assert before == after
    assert study2.trials[-1].number == trial.number


def test_same_seed_same_decisions() -> None:
    predictions = []
    for _ in range(2):
        pruner = SRPPruner(n_startup_trials=10, seed=7)
        study = optuna.create_study(direction="maximize", pruner=pruner)
        add_complete_trials(study, 25)
        trial = _ask(study, 0.4)
        _report(trial, curve(0.4, np.random.default_rng(0))[:6])
        predictions.append(pruner.predict(study, study.trials[-1]))
    assert predictions[0] == predictions[1]


def test_n_jobs_threads() -> None:
    pruner = SRPPruner(n_startup_trials=5, seed=0)
    study = optuna.create_study(
        direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(0)
    )

    study.optimize(objective, n_trials=40, n_jobs=2)
    states = [t.state for t in study.trials]
    assert len(states) == 40
    assert set(states) <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert TrialState.PRUNED in states


def test_multi_objective_is_a_clear_error() -> None:
    study = optuna.create_study(directions=["minimize", "maximize"], pruner=SRPPruner())
    trial = study.ask()
    with pytest.raises(NotImplementedError, match="single-objective"):
        study.pruner.prune(study, study.trials[trial.number])
    with pytest.raises(NotImplementedError):
        trial.should_prune()


@pytest.mark.parametrize("max_train_trials", [150, 10])
@pytest.mark.parametrize("offset,decision", [(0.0, "kept:median"), (-0.01, "pruned:model")])
def test_median_guard_keeps_what_the_median_rule_keeps(
    offset: float, decision: str, max_train_trials: int
) -> None:
    # A trial the models would prune is still kept while it is at least as good as the median
    # of the complete trials at its step; just below it, it is pruned. (The threshold is
    # raised so that the models' verdict does not depend on how sure they are.) With more
    # complete trials than the models learn from, the median is still all of theirs, not that
    # of the models' subsample, whose best quarter puts it higher.
    pruner = SRPPruner(n_startup_trials=10, threshold=0.5, max_train_trials=max_train_trials)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    add_complete_trials(study, 30)
    median_at_3 = float(np.median([t.intermediate_values[3] for t in study.trials]))
    trial = _ask(study, 0.0)
    _report(trial, [median_at_3 + offset] * 3)
    prediction = pruner.predict(study, study.trials[-1])
    assert prediction is not None and prediction[0] < study.best_value
    assert trial.should_prune() is (decision != "kept:median")
    assert study.trials[-1].user_attrs["srp:decision"] == decision


def test_a_run_that_ended_far_below_its_prediction_does_not_keep_the_runs_at_chance() -> None:
    # TaskSet: most runs sit at chance (a loss of ln 2) for their whole curve, a few learn, and
    # one at chance ended far worse (1.3). That one is no evidence that a run at chance may end
    # above the best: late in its curve, a run at chance has next to no chance of beating it.
    pruner = SRPPruner(n_startup_trials=10, seed=0)
    study = optuna.create_study(direction="minimize", pruner=pruner)
    rng = np.random.default_rng(0)
    chance = math.log(2)
    for i in range(12):
        if i % 4 == 0:
            values = list(chance - 0.2 * np.linspace(0.1, 1.0, N_STEPS) + rng.normal(0, 0.01, 20))
        else:
            values = list(chance + rng.normal(0, 1e-4, N_STEPS))
        if i == 5:
            values[-1] = 1.3
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": i / 12},
                distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
                value=values[-1],
                intermediate_values=dict(enumerate(values, start=1)),
            )
        )
    trial = _ask(study, 0.99)
    _report(trial, list(chance + rng.normal(0, 1e-4, 16)))
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    prediction = pruner._predict(study, pruner._state(study), study.trials[-1], complete)
    assert prediction is not None
    assert prediction[2] < 0.02  # the default threshold; 0.12 with both sides of the residuals


def test_median_guard_reads_the_current_value_not_the_best_so_far() -> None:
    # A run on a plateau whose jitter once took it above the median: MedianPruner keeps it on
    # its best value so far, the guard looks at where it is now and lets the models prune it.
    pruner = SRPPruner(n_startup_trials=10, threshold=0.5)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    add_complete_trials(study, 30)
    median_at_3 = float(np.median([t.intermediate_values[3] for t in study.trials]))
    trial = _ask(study, 0.0)
    _report(trial, [median_at_3 + 0.01, median_at_3 - 0.01, median_at_3 - 0.01])
    assert not optuna.pruners.MedianPruner().prune(study, study.trials[-1])
    assert trial.should_prune()


def test_probability_is_a_student_t_tail_with_the_residual_dof() -> None:
    # Few complete trials: the std rests on 10 residuals, whose variance is often too small;
    # the t tail (9 dof) is heavier than the Gaussian one.
    pruner = SRPPruner(n_startup_trials=10, seed=0)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    add_complete_trials(study, 12)
    trial = _ask(study, 0.2)
    _report(trial, [0.3, 0.4, 0.45, 0.5, 0.5])
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    prediction = pruner._predict(study, pruner._state(study), study.trials[-1], complete)
    assert prediction is not None
    mean, std, probability, checkpoint, fit = prediction
    model = fit.step_models[checkpoint].model
    assert model is not None and model.residual_dof_ == 9
    z = (study.best_value - mean) / std
    assert probability == pytest.approx(float(stdtr(9, -z)))
    assert probability > 0.5 * math.erfc(z / math.sqrt(2))


def test_early_decisions_need_more_certainty() -> None:
    pruner = SRPPruner(n_startup_trials=10, threshold=0.05)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    add_complete_trials(study, 30)
    pruner.predict(study, study.trials[0])  # fits
    fit = pruner._fit_for(study)
    assert fit is not None
    early = 0.05 * pruner._early_scale(fit, 1)
    late = 0.05 * pruner._early_scale(fit, N_STEPS)
    assert late == 0.05
    assert early == pytest.approx(0.05 * (1 / N_STEPS) / 0.1)


@pytest.mark.parametrize("n_behind,pruned", [(40, True), (150, False)])
def test_the_top_tenth_at_a_step_keeps_a_leader_among_partial_curves(
    n_behind: int, pruned: bool
) -> None:
    # Pruned trials that reached step 3 are worse than this one, which is behind the 12
    # complete ones: with 150 of them it is in the top tenth of the trials at its step and kept,
    # though the models (trained on complete trials) call it hopeless; with 40 it is not.
    pruner = SRPPruner(n_startup_trials=10)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    add_complete_trials(study, 12)
    for _ in range(n_behind):
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.PRUNED,
                params={"x": 0.0},
                distributions={"x": FloatDistribution(0, 1)},
                intermediate_values={1: -1.0, 2: -1.0, 3: -1.0},
            )
        )
    trial = _ask(study, 0.0)
    _report(trial, curve(0.0, np.random.default_rng(1))[:3])
    assert trial.should_prune() is pruned
    decision = study.trials[-1].user_attrs["srp:decision"]
    assert decision.startswith("pruned") if pruned else decision == "kept:top"


def test_the_top_tenth_counts_only_the_trials_that_reached_the_step() -> None:
    # 150 pruned trials behind this one that stopped at step 2: it is at step 3, they are not
    # its peers there, and among the 12 complete trials it is not in the top tenth.
    pruner = SRPPruner(n_startup_trials=10)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    add_complete_trials(study, 12)
    for _ in range(150):
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.PRUNED,
                params={"x": 0.0},
                distributions={"x": FloatDistribution(0, 1)},
                intermediate_values={1: -1.0, 2: -1.0},
            )
        )
    trial = _ask(study, 0.0)
    _report(trial, curve(0.0, np.random.default_rng(1))[:3])
    assert trial.should_prune()
    assert study.trials[-1].user_attrs["srp:decision"] != "kept:top"


def _probability_of(study: optuna.Study, pruner: SRPPruner) -> float:
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    prediction = pruner._predict(study, pruner._state(study), study.trials[-1], complete)
    assert prediction is not None
    return prediction[2]


def _decide_below_threshold(
    study: optuna.Study, x: float, quantile: float, n_steps: int
) -> tuple[bool, float]:
    # A trial reporting the complete trials' ``quantile`` at each step. Its probability is
    # measured first, then ``threshold`` is put below it, so that the main rule keeps the trial:
    # only the laggard rule can prune it (and what fresh trials would buy, ``_fresh_bar``, is
    # left out, see test_early_in_a_study_the_bar_is_what_the_remaining_steps_would_buy).
    # Returns the decision and the probability.
    at_step = {
        s: float(np.quantile([t.intermediate_values[s] for t in study.trials], quantile))
        for s in range(1, n_steps + 1)
    }
    trial = _ask(study, x)
    _report(trial, [at_step[s] for s in range(1, n_steps + 1)])
    probability = _probability_of(study, SRPPruner(n_startup_trials=10, seed=0))
    assert 0.0 < probability < _pruner._LAGGARD_THRESHOLD
    pruner = SRPPruner(n_startup_trials=10, seed=0, threshold=probability / 2)
    study.pruner = pruner
    assert _probability_of(study, pruner) == probability  # same seed, same models
    pruner._fresh_bar = lambda *args, **kwargs: 0.0  # type: ignore[method-assign]
    return trial.should_prune(), probability


def _fit_for_last_trial(
    study: optuna.Study, pruner: SRPPruner
) -> tuple[_pruner._StudyState, _pruner._Fit, optuna.trial.FrozenTrial, int]:
    """The state, the fit and the checkpoint the pruner decides the study's last trial with,
    and that trial, so that a test can set the probability and call ``_decide``."""
    frozen = study.trials[-1]
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    state = pruner._state(study)
    prediction = pruner._predict(study, state, frozen, complete)
    assert prediction is not None
    return state, prediction[4], frozen, prediction[3]


def _study_with_a_trial_at_a_quarter() -> tuple[optuna.Study, dict[int, list[float]]]:
    """12 complete trials of 20 steps and a trial at a quarter of its curve (5 steps) at their
    40% quantile: below the median, not a laggard, not in the top tenth. Returns the study and
    the complete trials' values per step."""
    study = optuna.create_study(direction="maximize")
    add_complete_trials(study, 12)
    values = {s: [t.intermediate_values[s] for t in study.trials] for s in range(1, 21)}
    trial = _ask(study, 0.5)
    _report(trial, [float(np.quantile(values[s], 0.4)) for s in range(1, 6)])
    return study, values


def test_the_laggard_threshold_is_scaled_quadratically_over_the_first_tenth() -> None:
    # A laggard at 1 of 20 steps (half the first tenth): its threshold is a quarter as large
    # (0.05), not half (0.1, scaled linearly). The probability is set, not predicted, so that
    # the test does not hang on what the models make of one synthetic trial.
    study = optuna.create_study(direction="maximize")
    add_complete_trials(study, 30)
    at_first = [t.intermediate_values[1] for t in study.trials]
    trial = _ask(study, 0.5)
    _report(trial, [float(np.quantile(at_first, 0.05))])
    pruner = SRPPruner(n_startup_trials=10, seed=0, threshold=0.001)
    state, fit, frozen, decision_step = _fit_for_last_trial(study, pruner)
    early = _pruner._LAGGARD_THRESHOLD * 0.5**2
    decide = pruner._decide
    assert decide(study, state, fit, frozen, early * 1.2, decision_step)[0] == "kept:model"
    assert decide(study, state, fit, frozen, early * 0.8, decision_step)[0] == "pruned:laggard"


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
@pytest.mark.parametrize(
    ("ranges_below", "decision"), [(1.5, "pruned:laggard"), (0.5, "kept:model")]
)
def test_a_run_worse_than_every_complete_one_by_their_range_is_a_laggard_whatever_the_models_say(
    direction: Direction, ranges_below: float, decision: str
) -> None:
    # Far from its training curves an RBF model predicts about their mean final value, so a run
    # unlike any complete one can be given a high chance. Worse than the worst complete value at
    # its step by more than the complete values' range there, it is stopped whatever the chance
    # (set here to 0.9); by less, the chance decides.
    sign = _sign(direction)
    study = optuna.create_study(direction=direction)
    add_complete_trials(study, 20)
    at_step = np.array([sign * t.intermediate_values[5] for t in study.trials])
    value = at_step.min() - ranges_below * np.ptp(at_step)
    trial = _ask(study, 0.5)
    _report(trial, [float(np.quantile(at_step, 0.5))] * 4 + [float(value)], sign)
    pruner = SRPPruner(n_startup_trials=10, seed=0)
    state, fit, frozen, decision_step = _fit_for_last_trial(study, pruner)
    assert pruner._decide(study, state, fit, frozen, 0.9, decision_step)[0] == decision


def test_the_reason_for_a_run_unlike_any_complete_one_names_the_worst_complete_value() -> None:
    study = optuna.create_study(direction="minimize")
    add_complete_trials(study, 12)
    trial = _ask(study, 0.5)
    _report(trial, [5.0] * 3)  # losses of 5 where the complete runs are at 0-1
    pruner = SRPPruner(n_startup_trials=10, seed=0, threshold=0.0)
    study.pruner = pruner
    assert trial.should_prune()
    attrs = study.trials[-1].user_attrs
    worst = max(t.intermediate_values[3] for t in study.trials[:-1])
    assert attrs["srp:decision"] == "pruned:laggard"
    assert f"the worst: {_pruner._fmt(worst)}" in attrs["srp:reason"]
    assert "unlike any the models learned from" in attrs["srp:reason"]


def test_early_in_a_study_the_bar_is_what_the_remaining_steps_would_buy() -> None:
    # The trial's 15 remaining steps are 0.75 of a full training, and the study has spent
    # 12.25, so fresh trials would buy a chance of 0.75 / 12.25 = 0.061 of a new best with them.
    # A probability of 0.05 is not worth them; once the study has spent 50 more full trainings,
    # it is (the bar is ``threshold`` again). The probability is set, not predicted, as in the
    # laggard test above.
    study, values = _study_with_a_trial_at_a_quarter()
    pruner = SRPPruner(n_startup_trials=10, seed=0)
    state, fit, frozen, decision_step = _fit_for_last_trial(study, pruner)
    assert pruner._early_scale(fit, decision_step) == 1.0
    assert pruner._fresh_bar(fit, 5, _spent(study)) == pytest.approx(0.75 / 12.25)
    decide = pruner._decide
    assert decide(study, state, fit, frozen, 0.05, decision_step)[0] == "pruned:model"
    assert decide(study, state, fit, frozen, 0.07, decision_step)[0] == "kept:model"
    # The bar that stopped it is returned for its reason.
    assert decide(study, state, fit, frozen, 0.05, decision_step)[1] == pytest.approx(0.75 / 12.25)
    # 50 full trainings of trials stopped at the end of their curves, at the complete
    # trials' median (they do not change the median guard or put the trial in the top tenth).
    for _ in range(50):
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": 0.5},
                distributions={"x": FloatDistribution(0, 1)},
                state=TrialState.PRUNED,
                intermediate_values={s: float(np.median(values[s])) for s in range(1, 21)},
            )
        )
    assert pruner._fresh_bar(fit, 5, _spent(study)) < pruner._threshold
    assert decide(study, state, fit, frozen, 0.05, decision_step)[0] == "kept:model"
    assert decide(study, state, fit, frozen, 0.015, decision_step) == ("pruned:model", None)


def _spent(study: optuna.Study) -> int:
    return sum(len(t.intermediate_values) for t in study.trials)


def test_a_decision_reads_every_trial_at_most_once() -> None:
    # At 0.05 the trial is stopped by what fresh trials would buy (which needs every trial's
    # reports) after the median and top-tenth guards (the latter needs every trial too): one
    # read serves both, since on an RDB storage each read is a query over the whole study.
    study, _ = _study_with_a_trial_at_a_quarter()
    pruner = SRPPruner(n_startup_trials=10, seed=0)
    state, fit, frozen, decision_step = _fit_for_last_trial(study, pruner)
    reads = []
    get_trials = study.get_trials

    def counting_get_trials(*args: Any, **kwargs: Any) -> Any:
        reads.append(kwargs.get("states"))
        return get_trials(*args, **kwargs)

    study.get_trials = counting_get_trials  # type: ignore[method-assign]
    assert pruner._decide(study, state, fit, frozen, 0.05, decision_step)[0] == "pruned:model"
    assert reads == [None]
    # Above every bar nothing is read.
    reads.clear()
    assert pruner._decide(study, state, fit, frozen, 0.5, decision_step)[0] == "kept:model"
    assert reads == []


def test_with_source_trials_in_the_models_the_bar_is_threshold() -> None:
    # The same trial as above, but the models also learn from source trials (the study has 12
    # of its own complete trials of the 20 it needs): their probabilities may carry the
    # source's errors, and the higher bar is not applied.
    earlier = optuna.create_study(direction="maximize")
    add_complete_trials(earlier, 30, seed=3)
    study, _ = _study_with_a_trial_at_a_quarter()
    pruner = SRPPruner(n_startup_trials=20, seed=0, source_trials=earlier.trials)
    state, fit, frozen, decision_step = _fit_for_last_trial(study, pruner)
    assert fit.n_own < len(fit.records)  # source trials in the fit
    assert pruner._fresh_bar(fit, 5, _spent(study)) > 0.05
    decide = pruner._decide
    assert decide(study, state, fit, frozen, 0.05, decision_step)[0] == "kept:model"
    assert decide(study, state, fit, frozen, 0.015, decision_step) == ("pruned:model", None)


@pytest.mark.parametrize(
    "x,quantile,n_steps,pruned",
    [
        (0.3, 0.05, 5, True),  # a laggard (below the worst tenth): the weaker evidence suffices
        (0.3, 0.3, 5, False),  # below the median but not a laggard: needs ``threshold``
        # At 1 of 20 steps (half the first tenth) the laggard threshold is a quarter as large
        # (0.05), below this trial's probability (about 0.06); scaled linearly (0.1) it would be
        # pruned.
        (0.5, 0.05, 1, False),
    ],
)
def test_a_laggard_is_pruned_on_weaker_evidence(
    x: float, quantile: float, n_steps: int, pruned: bool
) -> None:
    study = optuna.create_study(direction="maximize")
    add_complete_trials(study, 30)
    decision, probability = _decide_below_threshold(study, x, quantile, n_steps)
    assert decision is pruned
    if n_steps == 1:
        early = _pruner._LAGGARD_THRESHOLD * np.array([0.5**2, 0.5])
        assert early[0] <= probability < early[1]
    if pruned:
        assert study.trials[-1].user_attrs["srp:decision"] == "pruned:laggard"
        reason = study.trials[-1].user_attrs["srp:reason"]
        # "Worse", not "below": a minimised objective's laggard is above the others.
        assert "worse than all but the worst 10% of the complete trials at this step" in reason


def test_docstring_example_runs() -> None:
    doc = SRPPruner.__doc__
    assert doc is not None
    block = doc.split(".. testcode::", 1)[1].split("\n    Args:", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(block), "SRPPruner docstring", "exec"), namespace)
    study = namespace["study"]
    assert len(study.trials) == 60 and isinstance(study.pruner, SRPPruner)
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    # The example shows what the class is about: the models decide in it, not only the rungs.
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) >= 10
    decisions = {t.user_attrs.get("srp:decision") for t in study.trials}
    assert decisions & {"pruned:model", "pruned:laggard", "kept:model", "kept:median"}
