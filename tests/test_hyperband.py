from __future__ import annotations

import math
import textwrap
from typing import Any
from typing import Literal

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
import pytest
from scipy.special import ndtr

from optuna_srp import FastHyperbandPruner
from optuna_srp._rungs import FULL_KEY as _FULL_KEY
from optuna_srp.benchmark._pruners import parse_pruner_spec
from tests._synthetic import add_complete_trials
from tests._synthetic import curve
from tests._synthetic import journal_workers
from tests._synthetic import N_STEPS
from tests._synthetic import objective


def _crossing(x: float, step: int) -> float:
    """Fast starters (x near 0) lead early and end at 0.5; slow ones (x near 1) end at 1."""
    return (1 - x) * 0.5 + x * step / N_STEPS


def _add_crossing_trials(study: optuna.Study, xs: Any) -> None:
    for x in xs:
        values = {s: _crossing(float(x), s) for s in range(1, N_STEPS + 1)}
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": float(x)},
                distributions={"x": FloatDistribution(0, 1)},
                value=values[N_STEPS],
                intermediate_values=values,
            )
        )


def _ask(study: optuna.Study, x: float) -> optuna.trial.Trial:
    study.enqueue_trial({"x": x})
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    return trial


def _rung_decision(study: optuna.Study, x: float, value: float) -> bool:
    """Report ``value`` at step 1 (the first rung) and return should_prune()."""
    trial = _ask(study, x)
    trial.report(value, 1)
    return trial.should_prune()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"full_fraction": -0.1},
        {"full_fraction": 1.5},
        {"keep_probability": float("nan")},
        {"reduction_factor": 1},
        {"n_startup_trials": 1},
    ],
)
def test_bad_arguments_name_the_value(kwargs: dict[str, Any]) -> None:
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        FastHyperbandPruner(**kwargs)


@pytest.mark.parametrize("full_fraction", [0.0, 1.0])
def test_rung_stops_a_trial_below_the_top_quarter_unless_it_is_in_the_full_group(
    full_fraction: float,
) -> None:
    # Two complete trials: the rungs know the curves' length, the models are not ready (5).
    study = optuna.create_study(
        direction="maximize", pruner=FastHyperbandPruner(full_fraction=full_fraction)
    )
    _add_crossing_trials(study, [0.5, 0.5])
    decisions = [_rung_decision(study, 0.5, v) for v in (0.9, 0.8, 0.7, 0.1)]
    # The first to reach the rung is promoted; with four there, only the best one is.
    expected = [False, True, True, True] if full_fraction == 0.0 else [False] * 4
    assert decisions == expected
    groups = [t.system_attrs.get(_FULL_KEY) for t in study.trials[2:]]
    assert groups == [full_fraction == 1.0] * 4


def _crossing_study(keep_probability: float) -> optuna.Study:
    study = optuna.create_study(
        direction="maximize",
        pruner=FastHyperbandPruner(full_fraction=0.0, keep_probability=keep_probability, seed=0),
    )
    _add_crossing_trials(study, np.linspace(0.0, 0.9, 30))
    # Fast starters fill the first rung, so that the rung rule stops anything below them.
    for x in np.linspace(0.0, 0.1, 8):
        _rung_decision(study, float(x), _crossing(float(x), 1))
    return study


def _veto_probability(study: optuna.Study, x: float, value: float) -> float:
    trial = _ask(study, x)
    trial.report(value, 1)
    frozen = study._storage.get_trial(trial._trial_id)
    pruner = study.pruner
    assert isinstance(pruner, FastHyperbandPruner)
    probability = pruner._veto_probability(study, frozen)
    assert probability is not None
    study.tell(trial, state=TrialState.FAIL)  # out of the rung: the next trial meets the same
    return probability


def test_the_models_keep_a_slow_starter_the_rung_would_stop() -> None:
    # It will end at 0.975, above the best complete trial (0.95 at x = 0.9).
    slow = 0.95
    assert _rung_decision(_crossing_study(0.3), slow, _crossing(slow, 1)) is False


@pytest.mark.parametrize("above", [True, False])
def test_the_rung_decides_below_keep_probability(above: bool) -> None:
    slow = 0.9  # level with the best complete trial
    probability = _veto_probability(_crossing_study(0.3), slow, _crossing(slow, 1))
    assert 0.0 < probability < 1.0
    keep_probability = probability * (0.9 if above else 1.1)
    study = _crossing_study(keep_probability)
    assert _rung_decision(study, slow, _crossing(slow, 1)) is not above


def test_the_veto_probability_is_scaled_up_over_the_first_tenth_of_the_curve() -> None:
    study = _crossing_study(0.3)
    slow = 0.9
    trial = _ask(study, slow)
    trial.report(_crossing(slow, 1), 1)
    frozen = study._storage.get_trial(trial._trial_id)
    pruner = study.pruner
    assert isinstance(pruner, FastHyperbandPruner)
    mean, std = pruner._srp.predict(study, frozen) or (math.nan, math.nan)
    raw = float(ndtr((mean - study.best_value) / std))
    # Step 1 of 20: a twentieth of the curve seen, half of the tenth from which it is 1.
    assert pruner._veto_probability(study, frozen) == pytest.approx(raw / 0.5)


def test_the_models_do_not_keep_a_hopeless_trial_at_a_rung() -> None:
    # A fast starter far behind its peers at the rung: it will end near 0.5, the best is 0.95.
    assert _rung_decision(_crossing_study(0.3), 0.0, 0.0) is True


def _full_share(study: optuna.Study) -> float:
    steps = [len(t.intermediate_values) for t in study.trials]
    full = [n for n, t in zip(steps, study.trials) if t.system_attrs.get(_FULL_KEY)]
    return sum(full) / sum(steps)


@pytest.mark.parametrize("full_fraction", [0.0, 0.25, 0.5])
def test_the_full_group_holds_its_share_of_the_steps_and_is_not_stopped_by_rungs(
    full_fraction: float,
) -> None:
    # No model (startup never reached): only the rungs prune, so every full trial completes.
    pruner = FastHyperbandPruner(full_fraction=full_fraction, n_startup_trials=1000)
    study = optuna.create_study(
        direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0)
    )
    study.optimize(objective, n_trials=80)
    full = [t for t in study.trials if t.system_attrs.get(_FULL_KEY)]
    assert all(t.state == TrialState.COMPLETE for t in full)
    assert any(t.state == TrialState.PRUNED for t in study.trials)
    # Each joins while the group is at most its share; the last to join can overshoot by one
    # curve.
    share = _full_share(study)
    total = sum(len(t.intermediate_values) for t in study.trials)
    assert full_fraction - N_STEPS / total <= share <= full_fraction + N_STEPS / total
    assert (len(full) > 0) == (full_fraction > 0)


def test_the_group_is_read_from_storage_by_every_worker(tmp_path: Any) -> None:
    # Two workers, each with its own pruner, alternate on one study in a journal file: a
    # trial's group is decided once, by the first check, and every later check by either
    # worker reads it.
    workers = journal_workers(
        str(tmp_path / "journal.log"), lambda: FastHyperbandPruner(n_startup_trials=1000)
    )
    rng = np.random.default_rng(0)
    for n in range(40):
        trial = workers[n % 2].ask()
        values = curve(trial.suggest_float("x", 0, 1), rng)
        pruned = False
        for step, v in enumerate(values, start=1):
            trial.report(v, step)
            # Each step asks the other worker's pruner about this trial as well.
            other = workers[(n + 1) % 2]
            frozen = other._storage.get_trial(trial._trial_id)
            group = frozen.system_attrs.get(_FULL_KEY)
            if trial.should_prune():
                pruned = True
                break
            assert other.pruner.prune(other, frozen) is False or not group
            assert frozen.system_attrs.get(_FULL_KEY, group) == group
        workers[n % 2].tell(trial, state=TrialState.PRUNED) if pruned else workers[n % 2].tell(
            trial, values[-1]
        )
    trials = workers[0].trials
    assert all(_FULL_KEY in t.system_attrs for t in trials)
    assert 0 < sum(bool(t.system_attrs[_FULL_KEY]) for t in trials) < len(trials)


def test_threads_share_a_study() -> None:
    study = optuna.create_study(direction="maximize", pruner=FastHyperbandPruner(seed=0))
    errors: list[BaseException] = []

    def checked(trial: optuna.Trial) -> float:
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
            raise

    study.optimize(checked, n_trials=60, n_jobs=2, catch=())
    assert not errors
    assert all(_FULL_KEY in t.system_attrs for t in study.trials)
    assert {t.state for t in study.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}


def test_minimize_decides_as_maximize() -> None:
    decisions = {}
    directions: tuple[tuple[Literal["maximize", "minimize"], float], ...] = (
        ("maximize", 1.0),
        ("minimize", -1.0),
    )
    for direction, sign in directions:
        study = optuna.create_study(
            direction=direction, pruner=FastHyperbandPruner(full_fraction=0.0)
        )
        add_complete_trials(study, 2)
        decisions[direction] = [
            _rung_decision(study, 0.5, sign * v) for v in (0.9, 0.8, 0.7, 0.1, 0.95)
        ]
    assert decisions["maximize"] == decisions["minimize"]


def test_docstring_example_runs() -> None:
    doc = FastHyperbandPruner.__doc__ or ""
    block = doc.split(".. testcode::", 1)[1].split("\n    Args:", 1)[0]
    namespace: dict[str, Any] = {}
    exec(textwrap.dedent(block), namespace)
    study = namespace["study"]
    assert len(study.trials) == 30
    assert any(_FULL_KEY in t.system_attrs for t in study.trials)


def test_benchmark_spec_builds_it_with_keyword_variants() -> None:
    spec = parse_pruner_spec("fhb:full_fraction=0.15,keep_probability=0.2")
    assert spec.label == "fast_hyperband:full_fraction=0.15,keep_probability=0.2"
    pruner = spec.build()
    assert isinstance(pruner, FastHyperbandPruner)
    assert (pruner._full_fraction, pruner._keep_probability) == (0.15, 0.2)
    with pytest.raises(ValueError, match="full_fraction"):
        parse_pruner_spec("fast_hyperband:full_fraction=2")
