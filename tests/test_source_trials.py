"""``SRPPruner(source_trials=...)``: complete trials of earlier studies train the models."""

from __future__ import annotations

import copy
import pickle
import re
from typing import cast
from typing import TYPE_CHECKING
import warnings

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.storages.journal import JournalFileBackend
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from optuna_srp import SRPPruner
from optuna_srp._pruner import _complete_quantile
from optuna_srp._pruner import _n_source_used
from optuna_srp._rungs import FULL_FRACTION
from optuna_srp._rungs import FULL_KEY
from optuna_srp._rungs import in_full_group
from tests._synthetic import add_complete_trials
from tests._synthetic import curve
from tests._synthetic import N_STEPS


if TYPE_CHECKING:
    from collections.abc import Callable


def _source(n: int, seed: int = 10, **kwargs: object) -> list[FrozenTrial]:
    study = optuna.create_study(direction="maximize")
    add_complete_trials(study, n, seed=seed, **kwargs)  # type: ignore[arg-type]
    return study.get_trials(states=(TrialState.COMPLETE,))


def _with_curve(trial: FrozenTrial, values: dict[int, float]) -> FrozenTrial:
    """``trial`` (complete) with ``values`` as its intermediate values."""
    return optuna.trial.create_trial(
        params=trial.params,
        distributions=trial.distributions,
        value=trial.value,
        intermediate_values=values,
    )


def _boosted(trials: list[FrozenTrial], by: float = 1.0) -> list[FrozenTrial]:
    """The same trials with every value (curve and final) higher by ``by``."""
    return [
        optuna.trial.create_trial(
            params=t.params,
            distributions=t.distributions,
            value=t.value + by,  # type: ignore[operator]
            intermediate_values={s: v + by for s, v in t.intermediate_values.items()},
        )
        for t in trials
    ]


def _hopeless_trial(study: optuna.Study, x: float = 0.05, n_steps: int = 8) -> optuna.Trial:
    study.enqueue_trial({"x": x})
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    for step, v in enumerate(curve(x, np.random.default_rng(5))[:n_steps], start=1):
        trial.report(v, step)
    return trial


def _add_own(
    study: optuna.Study,
    xs: tuple[float, ...] = (0.7,),
    seed: int = 3,
    user_attrs: dict[str, float] | None = None,
    step_of: Callable[[int], int] = lambda k: k,
) -> None:
    """Complete trials of the study's own, near the best configuration (x = 0.7), trained as
    its full group: a trial that follows them is not in it, and the models decide on it. The
    ``k``-th report is at step ``step_of(k)``."""
    rng = np.random.default_rng(seed)
    for x in xs:
        values = curve(x, rng)
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": x},
                distributions={"x": FloatDistribution(0, 1)},
                value=values[-1],
                intermediate_values={step_of(k): v for k, v in enumerate(values, start=1)},
                user_attrs=user_attrs,
                system_attrs={FULL_KEY: True},
            )
        )


def test_source_trials_let_the_models_decide_after_the_first_own_trial() -> None:
    with_source = SRPPruner(n_startup_trials=10, seed=0, source_trials=_source(40))
    without = SRPPruner(n_startup_trials=10, seed=0)
    decisions = []
    for pruner in (with_source, without):
        study = optuna.create_study(direction="maximize", pruner=pruner)
        _add_own(study)
        trial = _hopeless_trial(study)
        decisions.append(trial.should_prune())
        assert pruner.predict(study, study.trials[-1]) is not None or pruner is without
    assert decisions == [True, False]


def test_no_pruning_before_the_study_has_a_complete_trial_of_its_own() -> None:
    pruner = SRPPruner(n_startup_trials=5, source_trials=_source(40))
    study = optuna.create_study(direction="maximize", pruner=pruner)
    trial = _hopeless_trial(study)
    assert not trial.should_prune()
    assert pruner.predict(study, study.trials[-1]) is None


def test_a_source_trial_is_never_the_best_nor_written_to_the_study() -> None:
    # Source runs end far higher than the study's: a run above the study's best but below the
    # source's best must be kept, since it would be the study's new best.
    # Two own trials: with three the source check would find it misleading and drop it.
    boosted = _boosted(_source(40))
    pruner = SRPPruner(n_startup_trials=5, seed=0, source_trials=boosted)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    _add_own(study, (0.5, 0.4))
    own_best = study.best_value
    study.enqueue_trial({"x": 0.7})
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    for step in range(1, 6):
        trial.report(own_best + 0.01, step)
    assert not trial.should_prune()
    # Kept because it is level with or beat the study's own best, not by the median guard or
    # the top-tenth rule, which would keep it too had the source's best been the one to beat.
    decision = study.trials[-1].user_attrs["srp:decision"]
    assert decision in ("kept:incumbent", "kept:reached-best")
    assert len(study.trials) == 3
    assert study.best_value == own_best


def test_the_rank_rules_read_only_the_study_s_own_trials() -> None:
    pruner = SRPPruner(n_startup_trials=5, seed=0, source_trials=_source(40))
    study = optuna.create_study(direction="maximize", pruner=pruner)
    _add_own(study, (0.7, 0.6, 0.2))
    _hopeless_trial(study).should_prune()
    fit = pruner._fit_for(study)
    assert fit is not None
    assert len(fit.records) > fit.n_own == 3
    own_at_5 = [t.intermediate_values[5] for t in study.trials[:3]]
    assert _complete_quantile(fit, 5, 0.5) == pytest.approx(np.median(own_at_5))


def test_source_trials_stand_in_for_the_start_up_trials_only() -> None:
    used = [_n_source_used(1000, n_own, 10) for n_own in range(0, 15)]
    assert used[:3] == [50, 45, 40]
    assert all(a > b for a, b in zip(used[:10], used[1:11]))
    assert used[10:] == [0] * 5
    assert _n_source_used(3, 0, 10) == 3
    assert _n_source_used(3, 9, 10) == 3


def test_with_start_up_trials_of_its_own_the_study_decides_as_without_a_source() -> None:
    # While the source trains the models it moves the prediction; once the study has its own
    # n_startup_trials, it must not.
    source = _source(40, seed=11)
    predictions = {}
    for n_startup in (5, 10):
        for name, kwargs in (("source", {"source_trials": source}), ("none", {})):
            pruner = SRPPruner(n_startup_trials=n_startup, seed=0, **kwargs)  # type: ignore[arg-type]
            study = optuna.create_study(direction="maximize", pruner=pruner)
            add_complete_trials(study, 8, seed=2)
            _hopeless_trial(study, x=0.4).should_prune()
            predictions[n_startup, name] = pruner.predict(study, study.trials[-1])
    assert predictions[5, "source"] == predictions[5, "none"]  # 8 own >= 5: source unused
    # 8 own < 10: the source is in the fit (the check that the comparison above can differ).
    assert predictions[10, "source"] is not None
    assert predictions[10, "source"] != predictions[10, "none"]


@pytest.mark.parametrize("with_source", [True, False])
def test_the_models_read_both_sides_of_the_residuals_while_the_source_trains_them(
    with_source: bool,
) -> None:
    # The residuals are then mostly the source's, and the study's runs end further from the
    # predictions than they show; alone, the models read the upper side (what beating the
    # best asks).
    kwargs = {"source_trials": _source(40, seed=11)} if with_source else {}
    pruner = SRPPruner(n_startup_trials=5, seed=0, **kwargs)  # type: ignore[arg-type]
    study = optuna.create_study(direction="maximize", pruner=pruner)
    add_complete_trials(study, 3 if with_source else 6, seed=2)
    _hopeless_trial(study, x=0.4).should_prune()
    assert pruner.predict(study, study.trials[-1]) is not None
    fit = pruner._fit_for(study)
    assert fit is not None and (len(fit.records) > fit.n_own) is with_source
    models = [m.model for m in fit.step_models.values() if m.model is not None]
    assert models
    assert {m.calibration for m in models} == {"local" if with_source else "upper"}


def test_the_fit_uses_source_trials_only_within_the_training_cap() -> None:
    pruner = SRPPruner(n_startup_trials=10, max_train_trials=10, source_trials=_source(60))
    study = optuna.create_study(direction="maximize", pruner=pruner)
    add_complete_trials(study, 7, seed=2)
    trial = _hopeless_trial(study)
    trial.should_prune()
    fit = pruner._fit_for(study)
    assert fit is not None
    assert fit.n_own == 7
    assert len(fit.records) == 10  # 3 source trials fill the cap, not the 15 the fade allows


def test_changed_search_space_uses_only_the_shared_parameters() -> None:
    # The source has x on another range plus a parameter the study lacks; the study has a
    # categorical the source lacks.
    source_study = optuna.create_study(direction="maximize")
    rng = np.random.default_rng(0)
    for x in rng.uniform(0, 1, 30):
        values = curve(float(x), rng)
        source_study.add_trial(
            optuna.trial.create_trial(
                params={"x": float(x), "old": 1.0},
                distributions={"x": FloatDistribution(-1, 2), "old": FloatDistribution(0, 2)},
                value=values[-1],
                intermediate_values=dict(enumerate(values, start=1)),
            )
        )
    pruner = SRPPruner(n_startup_trials=5, seed=0, source_trials=source_study.trials)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for x in (0.6, 0.7, 0.8):
        values = curve(x, rng)
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": x, "opt": "sgd"},
                distributions={
                    "x": FloatDistribution(0, 1),
                    "opt": CategoricalDistribution(["sgd", "adam"]),
                },
                value=values[-1],
                intermediate_values=dict(enumerate(values, start=1)),
            )
        )
    trial = _hopeless_trial(study)
    trial.should_prune()
    fit = pruner._fit_for(study)
    assert fit is not None
    source_records = fit.records[fit.n_own :]
    assert source_records
    for record in source_records:
        assert set(record.params) == {"x"}
        assert record.distributions["x"] == FloatDistribution(0, 1)
    assert pruner.predict(study, study.trials[-1]) is not None


@pytest.mark.parametrize("new_param", ["rate", "opt"])
def test_a_parameter_that_looks_renamed_warns_once(new_param: str) -> None:
    # The source has x and lr; the study x and rate (a float, as lr: a rename?), or x and opt
    # (a categorical: another search space, said without a warning).
    rng = np.random.default_rng(0)
    source = []
    for x in rng.uniform(0, 1, 30):
        values = curve(float(x), rng)
        source.append(
            optuna.trial.create_trial(
                params={"x": float(x), "lr": 0.1},
                distributions={"x": FloatDistribution(0, 1), "lr": FloatDistribution(0, 1)},
                value=values[-1],
                intermediate_values=dict(enumerate(values, start=1)),
            )
        )
    pruner = SRPPruner(n_startup_trials=5, seed=0, source_trials=source)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    new_dist: optuna.distributions.BaseDistribution = (
        FloatDistribution(0, 1) if new_param == "rate" else CategoricalDistribution(["sgd"])
    )
    for x in (0.6, 0.7, 0.8):
        values = curve(x, rng)
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": x, new_param: 0.1 if new_param == "rate" else "sgd"},
                distributions={"x": FloatDistribution(0, 1), new_param: new_dist},
                value=values[-1],
                intermediate_values=dict(enumerate(values, start=1)),
            )
        )
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for x in (0.05, 0.1):
            _hopeless_trial(study, x=x).should_prune()
    messages = [str(w.message) for w in record]
    if new_param == "rate":
        assert messages == [
            "SRPPruner's source_trials lack the study's parameters ['rate'] and have ['lr'], "
            "which its trials lack: the models learn nothing about ['rate'] from them. If a "
            "parameter was renamed, pass the source trials with the new name "
            "(optuna.trial.create_trial(params=..., distributions=..., value=..., "
            "intermediate_values=...))."
        ]
    else:
        assert messages == []
    assert pruner.predict(study, study.trials[-1]) is not None  # the source still trains them


def test_source_curves_of_another_length() -> None:
    # Source runs twice as long as the study's: the models still decide, on the study's steps.
    long_source = optuna.create_study(direction="maximize")
    rng = np.random.default_rng(1)
    for x in rng.uniform(0, 1, 30):
        values = curve(float(x), rng) + [curve(float(x), rng)[-1]] * N_STEPS
        long_source.add_trial(
            optuna.trial.create_trial(
                params={"x": float(x)},
                distributions={"x": FloatDistribution(0, 1)},
                value=values[-1],
                intermediate_values=dict(enumerate(values, start=1)),
            )
        )
    pruner = SRPPruner(n_startup_trials=5, seed=0, source_trials=long_source.trials)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    _add_own(study, (0.7, 0.6))
    trial = _hopeless_trial(study)
    assert trial.should_prune()
    fit = pruner._fit_for(study)
    assert fit is not None
    assert fit.steps.max() == N_STEPS


def test_bad_source_input_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="source_trials="):
        SRPPruner(source_trials="trials")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"source_trials\[1\] is 3 \(int\)"):
        SRPPruner(source_trials=[_source(1)[0], 3])  # type: ignore[list-item]
    # A study instead of its trials: the type is named, and what to pass instead.
    with pytest.raises(TypeError, match=r"\(Study\); pass study\.get_trials\(states="):
        SRPPruner(source_trials=optuna.create_study())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"\(generator\)\.$"):
        SRPPruner(source_trials=(t for t in _source(1)))  # type: ignore[arg-type]
    # One trial instead of a list: said in a line, not with the trial's whole curve.
    with pytest.raises(TypeError, match=r"one FrozenTrial \(number 0\); pass \[trial\]") as e:
        SRPPruner(source_trials=_source(1)[0])  # type: ignore[arg-type]
    assert len(str(e.value)) < 200


def test_unusable_source_trials_are_skipped_with_one_warning() -> None:
    good = _source(12)
    failed = optuna.trial.create_trial(state=TrialState.FAIL, intermediate_values={1: 0.5})
    no_curve = optuna.trial.create_trial(value=0.5)
    inf_value = optuna.trial.create_trial(value=float("inf"), intermediate_values={1: 0.5})
    multi = optuna.trial.create_trial(values=[0.5, 0.6], intermediate_values={1: 0.5})
    pruned_without_curve = optuna.trial.create_trial(state=TrialState.PRUNED)
    bad = [failed, no_curve, inf_value, multi, pruned_without_curve]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruner = SRPPruner(n_startup_trials=5, source_trials=good + bad)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1
    for reason in ("FAIL", "no intermediate values", "value inf", "multi-objective"):
        assert reason in messages[0]
    # By position in the sequence: trials made with create_trial all have number -1.
    assert "source_trials[12] (FAIL), source_trials[13] (no intermediate values)" in messages[0]
    assert "source_trials[16] (no intermediate values)" in messages[0]
    assert "get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))" in messages[0]
    assert len(pruner._source_trials) == len(good) and not pruner._source_pruned


def test_pruned_source_trials_are_kept_apart_from_the_complete_ones() -> None:
    # A pruned trial's partial curve places the rungs; it has no final value to train on.
    good = _source(12)
    stopped = optuna.trial.create_trial(state=TrialState.PRUNED, intermediate_values={1: 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pruner = SRPPruner(source_trials=[*good, stopped])
    assert pruner._source_trials == tuple(good)
    assert pruner._source_pruned == (stopped,)
    # Another set of pruned trials is another source: its own check, its own drop.
    assert pruner._source_dropped_key != SRPPruner(source_trials=good)._source_dropped_key


def test_non_finite_values_in_a_source_curve_are_read_as_a_diverged_run() -> None:
    """Only a non-finite final value makes a source trial unusable; NaN or inf inside a curve
    is normal input (a run that diverged and recovered), read as in the study's own trials."""
    source = _source(40)
    spoiled = [
        _with_curve(
            t,
            {
                s: (float("nan") if i % 2 else float("inf")) if s == 3 and i < 10 else v
                for s, v in t.intermediate_values.items()
            },
        )
        for i, t in enumerate(source)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pruner = SRPPruner(n_startup_trials=10, seed=0, source_trials=spoiled)
        study = optuna.create_study(direction="maximize", pruner=pruner)
        _add_own(study)
        trial = _hopeless_trial(study)
        assert trial.should_prune()
    assert len(pruner._source_trials) == len(source)
    prediction = pruner.predict(study, study.trials[-1])
    assert prediction is not None and all(np.isfinite(prediction))


def test_an_extra_feature_the_source_lacks_warns_once_and_leaves_it_out() -> None:
    def width(trial: FrozenTrial) -> list[float]:
        return [trial.user_attrs["width"]]

    pruner = SRPPruner(n_startup_trials=5, seed=0, extra_features=width, source_trials=_source(20))
    study = optuna.create_study(direction="maximize", pruner=pruner)
    _add_own(study, (0.6, 0.7), seed=2, user_attrs={"width": 2.0})
    study.enqueue_trial({"x": 0.1})
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    trial.set_user_attr("width", 1.0)
    with pytest.warns(RuntimeWarning, match="source trial") as record:
        trial.report(0.1, 1)
        trial.should_prune()
        trial.report(0.1, 2)
        trial.should_prune()
    assert len([w for w in record if "source trial" in str(w.message)]) == 1


@pytest.mark.parametrize("roundtrip", [pickle.loads, copy.deepcopy])
def test_pickle_and_deepcopy_keep_the_source_trials(roundtrip: object) -> None:
    pruner = SRPPruner(n_startup_trials=10, seed=0, source_trials=_source(30))
    study = optuna.create_study(direction="maximize", pruner=pruner)
    _add_own(study, (0.7, 0.6))
    _hopeless_trial(study, n_steps=4)
    before = pruner.predict(study, study.trials[-1])
    assert before is not None
    study2 = (
        pickle.loads(pickle.dumps(study)) if roundtrip is pickle.loads else copy.deepcopy(study)
    )
    after = cast(SRPPruner, study2.pruner).predict(study2, study2.trials[-1])
    assert before == after


def test_source_trials_from_a_storage_and_workers_on_another(tmp_path: object) -> None:
    # The source study lives in SQLite, the new study in a JournalStorage file: two workers
    # with their own pruner and the same source trials make the same prediction.
    source_url = f"sqlite:///{tmp_path}/source.db"
    source_study = optuna.create_study(storage=source_url, study_name="old", direction="maximize")
    add_complete_trials(source_study, 30, seed=7)
    loaded = optuna.load_study(study_name="old", storage=source_url)
    source = loaded.get_trials(states=(TrialState.COMPLETE,))
    journal = optuna.storages.JournalStorage(JournalFileBackend(f"{tmp_path}/new.log"))
    predictions = []
    for worker in range(2):
        pruner = SRPPruner(n_startup_trials=10, seed=0, source_trials=source)
        study = optuna.create_study(
            storage=journal,
            study_name="new",
            direction="maximize",
            load_if_exists=True,
            pruner=pruner,
        )
        if worker == 0:
            _add_own(study, (0.7, 0.6))
            _hopeless_trial(study, n_steps=4)
        predictions.append(pruner.predict(study, study.trials[-1]))
    assert predictions[0] is not None
    assert predictions[0] == predictions[1]


def _own_study(pruner: SRPPruner, storage: object = None) -> optuna.Study:
    study = optuna.create_study(
        storage=storage,  # type: ignore[arg-type]
        study_name="s",
        direction="maximize",
        load_if_exists=True,
        pruner=pruner,
    )
    if not study.trials:
        add_complete_trials(study, 4, seed=2)
    return study


@pytest.mark.parametrize("by", [1.0, -1.0])
def test_a_source_from_another_problem_is_dropped_with_one_warning(by: float) -> None:
    # Every source run ends 1.0 higher (or lower) than the study's: the models it trains put
    # the study's complete trials many standard deviations off, so the study decides without
    # it.
    source = _boosted(_source(40), by)
    pruner = SRPPruner(n_startup_trials=10, seed=0, source_trials=source)
    study = _own_study(pruner)
    with pytest.warns(RuntimeWarning, match="dropped its source_trials") as record:
        for x in (0.05, 0.1):
            trial = _hopeless_trial(study, x=x)
            assert not trial.should_prune()  # the start-up rule: 4 own trials, no rung yet
    messages = [str(w.message) for w in record if "source_trials" in str(w.message)]
    assert len(messages) == 1
    # It names the source's range of final values, and how many of the study's fell outside.
    values = [cast(float, t.value) for t in source]
    assert f"ended between {min(values):.4g} and {max(values):.4g}, " in messages[0]
    assert re.search(r", (\d+) of the study's \1 outside that range", messages[0]), messages[0]
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert [k for k in attrs if k.startswith("srp:source_dropped@")] == [
        pruner._source_dropped_key
    ]
    assert pruner.predict(study, study.trials[-1]) is None  # no models from 4 own trials


def test_a_source_of_the_same_problem_is_kept() -> None:
    pruner = SRPPruner(n_startup_trials=10, seed=0, source_trials=_source(40))
    study = _own_study(pruner)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _hopeless_trial(study).should_prune()
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert not any(k.startswith("srp:source_dropped") for k in attrs)
    assert pruner.predict(study, study.trials[-1]) is not None


def test_every_worker_drops_the_source_once_one_has(tmp_path: object) -> None:
    # One worker found the source misleading; another, whose own check would keep it (fewer
    # than three own trials), reads the decision from the storage.
    journal = optuna.storages.JournalStorage(JournalFileBackend(f"{tmp_path}/j.log"))
    first = optuna.create_study(storage=journal, study_name="s", direction="maximize")
    _add_own(first, (0.7, 0.6))
    dropped = SRPPruner(source_trials=_source(40))._source_dropped_key
    first._storage.set_study_system_attr(first._study_id, dropped, True)
    pruner = SRPPruner(n_startup_trials=10, seed=0, source_trials=_source(40)[::-1])
    study = optuna.load_study(study_name="s", storage=journal, pruner=pruner)
    # This process's user reads its own log: the drop is said here too, once.
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for x in (0.05, 0.1):
            trial = _hopeless_trial(study, x=x)
            assert not trial.should_prune()
    messages = [str(w.message) for w in record if "source_trials" in str(w.message)]
    assert messages == [
        "SRPPruner's source_trials were dropped in study 's' by another worker (its warning says "
        "why). Pruning now uses only the study's own trials, as without a source (study system "
        f"attribute {pruner._source_dropped_key!r})."
    ]
    assert pruner.predict(study, study.trials[-1]) is None
    # A restart with another source checks that one afresh.
    other_source = SRPPruner(n_startup_trials=10, seed=0, source_trials=_source(40, seed=11))
    restarted = optuna.load_study(study_name="s", storage=journal, pruner=other_source)
    assert other_source.predict(restarted, restarted.trials[-1]) is not None
    # The same study without the stored decision: the source trains the models.
    fresh = SRPPruner(n_startup_trials=10, seed=0, source_trials=_source(40))
    other = optuna.create_study(direction="maximize", pruner=fresh)
    _add_own(other, (0.7, 0.6))
    assert _hopeless_trial(other).should_prune()


def test_the_full_group_trains_to_the_end_until_the_source_can_be_checked() -> None:
    # The source's models would stop a hopeless run at once; while the study has fewer than
    # three complete trials, a run of its full group goes on so that the check gets them.
    pruner = SRPPruner(n_startup_trials=10, seed=0, source_trials=_source(40))
    study = optuna.create_study(direction="maximize", pruner=pruner)
    add_complete_trials(study, 2, seed=2)
    first = _hopeless_trial(study)
    assert not first.should_prune()
    assert study.trials[-1].system_attrs[FULL_KEY] is True
    assert study.trials[-1].user_attrs["srp:decision"] == "kept:full"
    assert "the source trials can be checked" in study.trials[-1].user_attrs["srp:reason"]
    assert pruner.predict(study, study.trials[-1]) is not None  # the models were ready
    study.tell(first, state=TrialState.FAIL)
    add_complete_trials(study, 1, seed=3)
    second = _hopeless_trial(study)
    assert in_full_group(study, study.trials[-1], FULL_FRACTION)  # in it, but checked now
    assert second.should_prune()


# ---------------------------------------------------------------------------------------------
# The margin while the source trains the models.

_CHANCE = 0.5


def _flat(rng: np.random.Generator, at: dict[int, float] | None = None) -> dict[int, float]:
    """A run that never learns: at chance level, with noise; ``at`` overrides some steps."""
    values = {s: _CHANCE + float(rng.normal(0, 0.002)) for s in range(1, N_STEPS + 1)}
    values.update(at or {})
    return values


# An accuracy in the study's units: (sign, scale, offset) maps it to sign * (scale * v + offset),
# and the study minimises where the sign is negative.
_Units = tuple[float, float, float]
_ACCURACY: _Units = (1.0, 1.0, 0.0)


def _in(units: _Units, values: dict[int, float]) -> dict[int, float]:
    sign, scale, offset = units
    return {s: sign * (scale * v + offset) for s, v in values.items()}


def _direction(units: _Units) -> StudyDirection:
    return StudyDirection.MAXIMIZE if units[0] > 0 else StudyDirection.MINIMIZE


def _chance_source(
    n: int = 40, name: str = "x", units: _Units = _ACCURACY, learn_above: float = 0.8
) -> list[FrozenTrial]:
    """An earlier study of the same task: the runs with x > ``learn_above`` learn, the others
    stay at chance level, as most TaskSet runs do (``name``: what the parameter x is called
    there)."""
    study = optuna.create_study(direction=_direction(units))
    rng = np.random.default_rng(0)
    for x in np.linspace(0, 1, n):
        learns = x > learn_above
        values = dict(enumerate(curve(float(x), rng), start=1)) if learns else _flat(rng)
        values = _in(units, values)
        study.add_trial(
            optuna.trial.create_trial(
                params={name: float(x)},
                distributions={name: FloatDistribution(0, 1)},
                value=values[N_STEPS],
                intermediate_values=values,
            )
        )
    return study.get_trials(states=(TrialState.COMPLETE,))


def _study_at_chance(pruner: SRPPruner, units: _Units = _ACCURACY) -> optuna.Study:
    """Three complete trials of the study's own, all at chance level (enough for the source
    check, which keeps the source); the best (final .502) was behind the others at step 10."""
    study = optuna.create_study(direction=_direction(units), pruner=pruner)
    rng = np.random.default_rng(1)
    for x, at_10, final in ((0.1, 0.497, 0.502), (0.2, 0.501, 0.500), (0.3, 0.503, 0.499)):
        values = _in(units, _flat(rng, {10: at_10, N_STEPS: final}))
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": x},
                distributions={"x": FloatDistribution(0, 1)},
                value=values[N_STEPS],
                intermediate_values=values,
                system_attrs={FULL_KEY: True},
            )
        )
    return study


def _ten_reports(study: optuna.Study, x: float, values: dict[int, float]) -> tuple[bool, str]:
    study.enqueue_trial({"x": x})
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    pruned = False
    for step in range(1, 11):
        trial.report(values[step], step)
        pruned = trial.should_prune()
    attrs = study._storage.get_trial(trial._trial_id).user_attrs
    return pruned, f"{attrs.get('srp:decision')}: {attrs.get('srp:reason')}"


@pytest.mark.parametrize("learn_above", [0.8, 0.93])
def test_with_a_source_a_run_level_with_an_incumbent_at_chance_is_pruned(
    learn_above: float,
) -> None:
    # At step 10 the run is level with the best complete trial (.499 against its .497) and
    # below the median there (.501): without the margin the incumbent rule keeps it, and so
    # every run at chance level. It can beat the best only by noise. Where under a tenth of
    # the source's runs learn (3 of 40), its 10-90% range is the chance level's noise, and
    # the margin's unit is how far its best twentieth got above the median instead.
    run = _flat(np.random.default_rng(2), {10: 0.499})
    source = _chance_source(learn_above=learn_above)
    study = _study_at_chance(SRPPruner(seed=0, source_trials=source))
    pruned, why = _ten_reports(study, 0.15, run)
    assert pruned, why
    assert why.startswith("pruned:model: ") and "chance to beat the best (0.502) by 0.0" in why


@pytest.mark.parametrize("units", [(-1.0, 1.0, 0.0), (1.0, 1e-6, 0.0), (-1.0, 1e3, -3.0)])
def test_the_margin_follows_the_objectives_units_and_direction(units: _Units) -> None:
    # The same study as above, as a loss or in other units and offsets: the margin is a share
    # of the finals' spread in the oriented values, not an absolute amount.
    run = _in(units, _flat(np.random.default_rng(2), {10: 0.499}))
    source = _chance_source(units=units)
    study = _study_at_chance(SRPPruner(seed=0, source_trials=source), units)
    pruned, why = _ten_reports(study, 0.15, run)
    assert pruned and why.startswith("pruned:model: "), why


def test_a_source_of_another_search_space_sets_no_margin() -> None:
    # Another search space is another training setup: how far its runs get says nothing of
    # what a meaningful margin is here, and the run level with the incumbent is kept.
    run = _flat(np.random.default_rng(2), {10: 0.499})
    source = _chance_source(name="y")
    study = _study_at_chance(SRPPruner(seed=0, source_trials=source))
    pruned, why = _ten_reports(study, 0.15, run)
    assert not pruned and why.startswith("kept:incumbent: "), why


@pytest.mark.parametrize("low,high", [(0.6, 0.8), (0.0, 1.0)])
def test_the_margin_s_unit_is_read_within_the_study_s_search_space(
    low: float, high: float
) -> None:
    # Re-tuning in a range narrowed around the old best (x = 0.7), where every run ends within
    # noise of the others: the whole old range's unit made each run "unable to beat the first
    # complete trial by a twentieth", and the study completed 2 of 30 trials. Under ten source
    # trials lie in the narrow range (40 drawn over [0, 1]): they set no unit, and no margin.
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=1),
        pruner=SRPPruner(seed=0, source_trials=_source(40)),
    )

    def objective(trial: optuna.Trial) -> float:
        values = curve(trial.suggest_float("x", low, high), np.random.default_rng(trial.number))
        for step, v in enumerate(values, start=1):
            trial.report(v, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return values[-1]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        study.optimize(objective, n_trials=30)
    reasons = [str(t.user_attrs.get("srp:reason")) for t in study.trials]
    with_margin = [r for r in reasons if re.search(r"chance to beat the best \(\S+\) by ", r)]
    if low > 0.0:
        assert not with_margin
        assert sum(t.state == TrialState.COMPLETE for t in study.trials) >= 5
    else:
        assert with_margin  # the source's 40 runs span the study's range


def _first_wave(
    pruner: SRPPruner,
    step_of: Callable[[int], int] = lambda k: k,
    suggest: Callable[[optuna.Trial], None] = lambda trial: None,
) -> tuple[optuna.Study, list[int | None]]:
    """Three workers start at once, none complete (x = 0.3, 0.7 and a hopeless 0.05), and
    report half their curves, the ``k``-th report at step ``step_of(k)``; ``suggest`` adds
    parameters beside x. Returns the study and the report at which each was stopped."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    trials = [study.ask() for _ in range(3)]
    curves = [curve(x, np.random.default_rng(0)) for x in (0.3, 0.7, 0.05)]
    for trial in trials:
        trial.suggest_float("x", 0, 1)
        suggest(trial)
    stopped_at: list[int | None] = [None, None, None]
    for k in range(1, N_STEPS // 2 + 1):
        for i, trial in enumerate(trials):
            if stopped_at[i] is None:
                trial.report(curves[i][k - 1], step_of(k))
                if trial.should_prune():
                    stopped_at[i] = k
    return study, stopped_at


@pytest.mark.parametrize("source", ["same space", "none", "another space"])
def test_the_source_places_the_rungs_before_the_first_complete_trial(source: str) -> None:
    # Nothing is complete yet, and without a source nothing tells where a rung is; with one of
    # the same search space, the worst of the three is stopped at the rung the source's curves
    # place (a quarter of them: the 5th of 20 reports), in the top quarter of nothing but the
    # first there. Another search space is another setup, which places no rung.
    def suggest(trial: optuna.Trial) -> None:
        if source == "another space":
            trial.suggest_float("dropout", 0, 1)

    with_source = source == "same space"
    study, stopped_at = _first_wave(
        SRPPruner(source_trials=None if source == "none" else _source(40)), suggest=suggest
    )
    assert stopped_at == [None, None, 5 if with_source else None]
    if with_source:
        attrs = study.trials[2].user_attrs
        assert attrs["srp:decision"] == "pruned:rung"
        assert "the source trials' curves" in attrs["srp:reason"]


@pytest.mark.parametrize(
    "step_of", [lambda k: k - 1, lambda k: 1000 + k, lambda k: 100 * k], ids=["0", "1001", "x100"]
)
def test_the_source_places_the_first_rungs_by_position_not_step_number(
    step_of: Callable[[int], int],
) -> None:
    # The old study counted steps from 1; the new one from 0, from 1001, or in iterations.
    # The rung is the source's quarter by position (the 5th report of 20), whatever the study
    # calls it: by step number, every rung the source places would fall on the study's first
    # report (iterations) or on another report.
    _, stopped_at = _first_wave(SRPPruner(source_trials=_source(40)), step_of)
    assert stopped_at == [None, None, 5]


def test_a_conditional_search_space_is_the_sources_setup() -> None:
    # Each trial of a conditional space has the parameters of its branch, as some source
    # trials did: the source's setup, although no trial has all the source's parameters.
    def suggest(trial: optuna.Trial) -> None:
        if trial.suggest_categorical("optimizer", ["sgd", "adam"]) == "sgd":
            trial.suggest_float("momentum", 0, 1)

    source = [
        optuna.trial.create_trial(
            params={
                **t.params,
                "optimizer": branch,
                **({"momentum": 0.9} if branch == "sgd" else {}),
            },
            distributions={
                **t.distributions,
                "optimizer": CategoricalDistribution(["sgd", "adam"]),
                **({"momentum": FloatDistribution(0, 1)} if branch == "sgd" else {}),
            },
            value=t.value,
            intermediate_values=t.intermediate_values,
        )
        for i, t in enumerate(_source(40))
        for branch in [("sgd", "adam")[i % 2]]
    ]
    _, stopped_at = _first_wave(SRPPruner(source_trials=source), suggest=suggest)
    assert stopped_at == [None, None, 5]


@pytest.mark.parametrize(
    "step_of", [lambda k: k - 1, lambda k: 1000 + k, lambda k: 100 * k], ids=["0", "1001", "x100"]
)
def test_the_models_read_the_source_by_position_where_runs_have_as_many_reports(
    step_of: Callable[[int], int],
) -> None:
    # The old study counted steps from 1, the new one otherwise; both trained N_STEPS epochs.
    # The source's k-th report is the study's k-th, so the models predict what they predict
    # where both count alike. By step number the source's curves would be read at other
    # epochs (from 0: one later), or all before (1001) or after (x100) the study's first.
    def predicted(step_of: Callable[[int], int], source: bool) -> tuple[float, float] | None:
        pruner = SRPPruner(seed=0, source_trials=_source(40) if source else None)
        study = optuna.create_study(direction="maximize", pruner=pruner)
        _add_own(study, (0.7, 0.6), step_of=step_of)
        study.enqueue_trial({"x": 0.4})
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        for k, v in enumerate(curve(0.4, np.random.default_rng(5))[:8], start=1):
            trial.report(v, step_of(k))
        return pruner.predict(study, study.trials[-1])

    reference = predicted(lambda k: k, source=True)
    assert reference is not None
    assert reference != predicted(lambda k: k, source=False)  # the source is in the models
    assert predicted(step_of, source=True) == pytest.approx(reference, rel=1e-9)


def _cut(trial: FrozenTrial, n_reports: int) -> FrozenTrial:
    """``trial`` as if it had stopped after ``n_reports`` reports, with its last as its value."""
    values = dict(sorted(trial.intermediate_values.items())[:n_reports])
    return optuna.trial.create_trial(
        params=trial.params,
        distributions=trial.distributions,
        value=values[max(values)],
        intermediate_values=values,
    )


def _renumbered_trial(trial: FrozenTrial, step_of: Callable[[int], int | None]) -> FrozenTrial:
    """``trial`` with its ``k``-th report at ``step_of(k)``, or left out where that is None."""
    values = {
        step: v
        for k, (_, v) in enumerate(sorted(trial.intermediate_values.items()), start=1)
        if (step := step_of(k)) is not None
    }
    return _with_curve(trial, values)


@pytest.mark.parametrize(
    "source_runs",
    ["half as long", "stopped early", "counted from 0", "every second epoch"],
)
def test_a_source_of_shorter_runs_is_dropped_at_the_first_complete_trial(
    source_runs: str,
) -> None:
    # Read by step number (a typical run of each has other numbers of reports), the final
    # values of half-length source runs are what the study's runs reach halfway: its models
    # would stop them for it. Kept: runs that stopped themselves after 10 to 20 reports (the
    # objective's own early stopping), the longest as long as the study's; full runs counted
    # from 0 where some of the study's stopped themselves (shorter in steps, not in reports);
    # a report every second epoch (fewer reports, not fewer steps).
    half = N_STEPS // 2
    source = _source(40)
    if source_runs == "half as long":
        source = [_cut(t, half) for t in source]
    elif source_runs == "stopped early":
        source = [_cut(t, half + i % (half + 1)) for i, t in enumerate(source)]
    elif source_runs == "counted from 0":
        source = [_renumbered_trial(t, lambda k: k - 1) for t in source]
    else:
        source = [_renumbered_trial(t, lambda k: k if k % 2 == 0 else None) for t in source]
    pruner = SRPPruner(seed=0, source_trials=source)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    _add_own(study)
    if source_runs == "counted from 0":  # a study run that stopped itself after 12 reports
        study.add_trial(_cut(study.trials[0], 12))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _hopeless_trial(study).should_prune()
    messages = [str(w.message) for w in record if "source_trials" in str(w.message)]
    dropped = pruner._source_dropped_key in study._storage.get_study_system_attrs(study._study_id)
    if source_runs == "half as long":
        assert dropped
        assert len(messages) == 1
        assert (
            f"ended by step {half} after at most {half} reports, and the study's have reached "
            f"step {N_STEPS} after {N_STEPS}" in messages[0]
        )
        assert f"the source has {half} reports, of the study {N_STEPS}" in messages[0]
    else:
        assert not dropped
        assert messages == []


@pytest.mark.parametrize(
    ("numbering", "n_within"),
    [("as many from 1001", None), ("twice as many from 1001", 0), ("twice as many in 100s", 1)],
)
def test_a_source_with_at_most_one_report_in_the_study_s_steps_is_dropped(
    numbering: str, n_within: int | None
) -> None:
    # An old study that counted its reports from 1001, or in hundreds of iterations: with as
    # many reports as the study's runs it is read by position; with twice as many, by step
    # number, where it holds at most one value in the steps the study decides at (1-20), and its
    # models would judge every run on its parameters and a first report alone.
    def step_of(k: int, j: int) -> int:  # the j-th of the reports of a run's k-th value
        if numbering == "as many from 1001":
            return 1000 + k
        if numbering == "twice as many from 1001":
            return 1000 + 2 * (k - 1) + j
        return 1 + 100 * (2 * (k - 1) + j - 1)

    per_value = 1 if numbering == "as many from 1001" else 2
    source = [
        _with_curve(
            t,
            {
                step_of(k, j): v
                for k, (_, v) in enumerate(sorted(t.intermediate_values.items()), start=1)
                for j in range(1, per_value + 1)
            },
        )
        for t in _source(40)
    ]
    pruner = SRPPruner(seed=0, source_trials=source)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    _add_own(study)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _hopeless_trial(study).should_prune()
    messages = [str(w.message) for w in record if "source_trials" in str(w.message)]
    dropped = pruner._source_dropped_key in study._storage.get_study_system_attrs(study._study_id)
    if n_within is None:
        assert not dropped
        assert messages == []
    else:
        assert dropped
        assert len(messages) == 1
        first, last = step_of(1, 1), step_of(N_STEPS, 2)
        assert (
            f"reported {2 * N_STEPS} times at steps {first}-{last}, {n_within} of them within "
            f"the study's steps 1-{N_STEPS} (a typical one of the study's reported {N_STEPS} "
            "times)" in messages[0]
        )
