"""Faults: scikit-learn failing to fit, trials vanishing or failing while another decides,
pickled and copied pruners, and a user's ``extra_features`` callable misbehaving."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Container
import copy
import pickle
from typing import Any
import warnings

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest
import sklearn.svm

from optuna_srp import FastHyperbandPruner
from optuna_srp import SRMEnsemble
from optuna_srp import SRPPruner


optuna.logging.set_verbosity(optuna.logging.WARNING)

_X = optuna.distributions.FloatDistribution(0.0, 1.0)
_N_STEPS = 8


def _curve(i: int, shift: float = 0.0) -> dict[int, float]:
    return {s: shift + 0.1 * i + 1.0 / (s + 1) for s in range(_N_STEPS)}


def _study(
    pruner: SRPPruner,
    n_complete: int = 8,
    shift: float = 0.0,
    storage: Any = None,
    name: str | None = None,
) -> optuna.Study:
    study = optuna.create_study(storage=storage, study_name=name, pruner=pruner)
    for i in range(n_complete):
        _add(study, i, shift)
    return study


def _add(study: optuna.Study, i: int, shift: float = 0.0) -> None:
    curve = _curve(i, shift)
    study.add_trial(
        optuna.trial.create_trial(
            value=curve[_N_STEPS - 1],
            params={"x": (i % 10) / 10},
            distributions={"x": _X},
            intermediate_values=curve,
        )
    )


def _running(study: optuna.Study, values: list[float]) -> optuna.Trial:
    trial = study.ask({"x": _X})
    for step, value in enumerate(values):
        trial.report(value, step)
    return trial


def _frozen(study: optuna.Study, trial: optuna.Trial) -> FrozenTrial:
    return study._storage.get_trial(trial._trial_id)


def _pruner(**kwargs: Any) -> SRPPruner:
    kwargs.setdefault("n_startup_trials", 2)
    kwargs.setdefault("seed", 0)
    return SRPPruner(**kwargs)


# ---------------------------------------------------------------------------------------------
# A fitting failure inside scikit-learn.


def _raise(*args: Any, **kwargs: Any) -> Any:
    raise ValueError("simulated failure inside scikit-learn")


@pytest.mark.parametrize(
    "target", [(sklearn.svm.NuSVR, "fit"), (SRMEnsemble, "fit")], ids=["NuSVR", "SRMEnsemble"]
)
def test_fit_failure_warns_once_and_does_not_prune(
    monkeypatch: pytest.MonkeyPatch, target: tuple[type, str]
) -> None:
    pruner = _pruner(threshold=1.0)  # would prune everything but the best with a model
    study = _study(pruner)
    monkeypatch.setattr(*target, _raise)
    trial = study.ask({"x": _X})
    with pytest.warns(RuntimeWarning, match="could not fit") as record:
        for step in range(_N_STEPS):  # several decision steps, so several failed fits
            trial.report(10.0 + step, step)
            assert not trial.should_prune()
            assert pruner.predict(study, _frozen(study, trial)) is None
    fit_warnings = [w for w in record if "could not fit" in str(w.message)]
    assert len(fit_warnings) == 1
    assert "ValueError: simulated failure" in str(fit_warnings[0].message)
    study.tell(trial, state=TrialState.PRUNED)

    # scikit-learn works again; once the complete set grows, the models are refitted.
    monkeypatch.undo()
    for i in range(8, 12):
        _add(study, i)
    # Before the last step: at the step where the complete trials end nothing is pruned.
    trial = _running(study, [10.0 + s for s in range(_N_STEPS - 1)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert trial.should_prune()
        assert pruner.predict(study, _frozen(study, trial)) is not None


@pytest.mark.parametrize("n_complete", [2, 3])
@pytest.mark.parametrize(
    "values",
    [
        lambda i, s: 1.0,  # everything constant
        lambda i, s: float("nan"),  # every curve diverged
        lambda i, s: float("inf") if s % 2 else 1e18 * i,
    ],
    ids=["constant", "nan", "inf_and_huge"],
)
def test_degenerate_training_sets_never_raise(
    n_complete: int, values: Callable[[int, int], float]
) -> None:
    pruner = _pruner(threshold=1.0)
    study = optuna.create_study(pruner=pruner)
    for i in range(n_complete):
        curve = {s: values(i, s) for s in range(4)}
        final = curve[3] if curve[3] == curve[3] else float("inf")  # COMPLETE cannot be NaN
        study.add_trial(
            optuna.trial.create_trial(
                value=final, params={}, distributions={}, intermediate_values=curve
            )
        )
    trial = study.ask()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for step in range(4):
            trial.report(values(n_complete, step), step)
            trial.should_prune()
            prediction = pruner.predict(study, _frozen(study, trial))
            assert prediction is None or all(v == v and abs(v) != float("inf") for v in prediction)


# ---------------------------------------------------------------------------------------------
# Concurrency: the set of complete trials changes between (or during) decisions.


class _View:
    """Wraps ``study.get_trials`` so that some trials look deleted or failed, as when another
    process changed the storage between two reads."""

    def __init__(self, study: optuna.Study) -> None:
        self._get_trials = study.get_trials
        self.deleted: set[int] = set()
        self.failed: set[int] = set()
        self.calls = 0

    def __call__(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        self.calls += 1
        out = []
        for t in self._get_trials(deepcopy=deepcopy):
            if t.number in self.deleted:
                continue
            if t.number in self.failed:
                t = copy.copy(t)
                t.state, t.value = TrialState.FAIL, None
            if states is None or t.state in states:
                out.append(t)
        return out


def _same_as_fresh(pruner: SRPPruner, study: optuna.Study, trial: optuna.Trial) -> None:
    """The pruner decides as a fresh one would from what the storage shows now."""
    fresh = _pruner()
    frozen = _frozen(study, trial)
    assert pruner.predict(study, frozen) == fresh.predict(study, frozen)


@pytest.mark.parametrize("fault", ["deleted", "failed", "replaced"])
def test_complete_set_shrinking_refits(monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    pruner = _pruner()
    study = _study(pruner, n_complete=8)
    view = _View(study)
    monkeypatch.setattr(study, "get_trials", view)
    trial = _running(study, [1.5, 1.2, 1.1])
    trial.should_prune()
    before = pruner.predict(study, _frozen(study, trial))
    assert before is not None and view.calls > 0

    # The best complete trial (number 0) disappears: deleted, turned FAIL, or deleted while
    # another trial completed (same count, different members).
    getattr(view, "failed" if fault == "failed" else "deleted").add(0)
    if fault == "replaced":
        _add(study, 9)
    trial.report(1.05, 3)
    trial.should_prune()
    _same_as_fresh(pruner, study, trial)
    assert pruner.predict(study, _frozen(study, trial)) != before


def test_trial_deleted_while_deciding(monkeypatch: pytest.MonkeyPatch) -> None:
    # The storage changes between the pruner's reads within one decision: every read returns a
    # different set. Decisions go on, and end up identical to a fresh pruner's.
    pruner = _pruner()
    study = _study(pruner, n_complete=9)
    view = _View(study)
    original = view.__call__

    def flaky(deepcopy: bool = True, states: Container[TrialState] | None = None) -> Any:
        view.deleted = {view.calls % 9}
        return original(deepcopy=deepcopy, states=states)

    monkeypatch.setattr(study, "get_trials", flaky)
    trial = study.ask({"x": _X})
    for step in range(_N_STEPS):
        trial.report(1.5 - 0.01 * step, step)
        trial.should_prune()
    monkeypatch.setattr(study, "get_trials", view)
    _same_as_fresh(pruner, study, trial)


def test_running_trial_failed_by_another_process() -> None:
    # Another process (e.g. a heartbeat check) fails the trial between its report and the
    # decision: the decision is the one the data calls for (a hopeless trial, threshold 1), as
    # optuna's own pruners give, and the attribute writes the finished trial refuses are
    # skipped without an error.
    pruner = _pruner(threshold=1.0)
    study = _study(pruner)
    trial = _running(study, [5.0, 4.0])
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    assert trial.should_prune() is True
    assert not any(k.startswith("srp:") for k in _frozen(study, trial).user_attrs)


def test_other_trials_failing_between_decisions() -> None:
    # Trials of other workers fail and get pruned between two decisions: only COMPLETE ones
    # are learnt from, so nothing changes.
    pruner = _pruner()
    study = _study(pruner)
    trial = _running(study, [1.5, 1.2])
    trial.should_prune()
    before = pruner.predict(study, _frozen(study, trial))
    for state in (TrialState.FAIL, TrialState.PRUNED):
        other = _running(study, [0.1, 0.1])
        study.tell(other, state=state)
    assert pruner.predict(study, _frozen(study, trial)) == before
    _same_as_fresh(pruner, study, trial)


# ---------------------------------------------------------------------------------------------
# One pruner, several studies: a study is its storage and its id, never its name.


def test_two_studies_with_one_name_in_two_storages_do_not_share_models() -> None:
    # The second study is on another scale (values about 100 higher): had it been decided with
    # the first one's models, the predicted values would be about 100 off.
    pruner = _pruner()
    study_a = _study(pruner, storage=optuna.storages.InMemoryStorage(), name="shared")
    trial_a = _running(study_a, [1.5, 1.2])
    trial_a.should_prune()
    study_b = _study(pruner, shift=100.0, storage=optuna.storages.InMemoryStorage(), name="shared")
    trial_b = _running(study_b, [101.5, 101.2])
    trial_b.should_prune()
    _same_as_fresh(pruner, study_b, trial_b)
    predicted = _frozen(study_b, trial_b).user_attrs["srp:predicted_value"]
    assert predicted > 50.0
    # And the first study still has its own.
    _same_as_fresh(pruner, study_a, trial_a)


def test_a_study_recreated_under_an_old_name_starts_clean() -> None:
    storage = optuna.storages.InMemoryStorage()
    pruner = _pruner()
    old = _study(pruner, storage=storage, name="s")
    _running(old, [1.5, 1.2]).should_prune()
    optuna.delete_study(study_name="s", storage=storage)
    new = _study(pruner, shift=100.0, storage=storage, name="s")
    trial = _running(new, [101.5, 101.2])
    trial.should_prune()
    _same_as_fresh(pruner, new, trial)


def test_a_reused_study_id_with_new_trials_starts_clean() -> None:
    # SQLite gives a study created after the last one was deleted the deleted one's id; the
    # same storage object, the same study id and the same trial numbers must not hand the old
    # trials' records to the new study.
    storage = optuna.storages.InMemoryStorage()
    pruner = _pruner()
    old = _study(pruner, storage=storage, name="s")
    _running(old, [1.5, 1.2]).should_prune()
    optuna.delete_study(study_name="s", storage=storage)
    storage._max_study_id -= 1  # as SQLite does
    new = _study(pruner, shift=100.0, storage=storage, name="s")
    assert new._study_id == old._study_id
    trial = _running(new, [101.5, 101.2])
    trial.should_prune()
    _same_as_fresh(pruner, new, trial)


def test_a_new_storage_at_a_collected_storages_address_starts_clean() -> None:
    # The state of a study whose storage has been garbage-collected must not be found by a new
    # storage that happens to get the same id(): simulated by planting the old state under the
    # new storage's key.
    pruner = _pruner()
    old = _study(pruner, storage=optuna.storages.InMemoryStorage(), name="s")
    _running(old, [1.5, 1.2]).should_prune()
    (old_state,) = pruner._studies.values()
    new = _study(pruner, shift=100.0, storage=optuna.storages.InMemoryStorage(), name="s")
    planted = copy.copy(old_state)
    planted.storage = lambda: None  # its storage is gone
    pruner._studies = {(id(new._storage), new._study_id): planted}
    trial = _running(new, [101.5, 101.2])
    trial.should_prune()
    _same_as_fresh(pruner, new, trial)
    # All of it is new (what it warned about, the attributes it wrote), not only the models;
    # and the dead entry is dropped.
    assert list(pruner._studies.values()) == [pruner._state(new)]
    assert pruner._state(new) is not planted


# ---------------------------------------------------------------------------------------------
# Pickled and copied pruners.


def test_unpickled_pruner_decides_from_current_storage() -> None:
    pruner = _pruner()
    study_a = _study(pruner, storage=optuna.storages.InMemoryStorage(), name="shared")
    trial = _running(study_a, [1.5, 1.2])
    trial.should_prune()
    assert pruner.predict(study_a, _frozen(study_a, trial)) is not None

    restored = pickle.loads(pickle.dumps(pruner))
    # Another process loads "shared" from its own storage: the same trial numbers, values 100
    # higher.
    study_b = _study(
        restored, shift=100.0, storage=optuna.storages.InMemoryStorage(), name="shared"
    )
    trial_b = _running(study_b, [101.5, 101.2])
    trial_b.should_prune()
    _same_as_fresh(restored, study_b, trial_b)


def test_unpickled_pruner_refits_on_a_grown_study(tmp_path: Any) -> None:
    storage = f"sqlite:///{tmp_path}/db.sqlite3"
    pruner = _pruner()
    study = _study(pruner, storage=storage, name="s")
    trial = _running(study, [1.5, 1.2])
    trial.should_prune()
    restored = pickle.loads(pickle.dumps(pruner))
    loaded = optuna.load_study(study_name="s", storage=storage, pruner=restored)
    for i in range(8, 16):  # other workers completed trials meanwhile
        _add(loaded, i)
    trial = _running(loaded, [1.5, 1.2, 1.1])
    assert isinstance(trial.should_prune(), bool)
    _same_as_fresh(restored, loaded, trial)


def test_pickled_pruner_round_trip_decides_the_same() -> None:
    pruner = _pruner()
    study = _study(pruner)
    trial = _running(study, [1.5, 1.2])
    decision = trial.should_prune()
    restored = pickle.loads(pickle.dumps(pruner))
    frozen = _frozen(study, trial)
    assert restored.prune(study, frozen) == decision
    assert restored.predict(study, frozen) == pruner.predict(study, frozen)


def test_deepcopy_of_a_fitted_pruner() -> None:
    pruner = _pruner()
    study = _study(pruner)
    trial = _running(study, [1.5, 1.2])
    decision = trial.should_prune()
    clone = copy.deepcopy(pruner)
    assert clone._lock is not pruner._lock
    frozen = _frozen(study, trial)
    assert clone.prune(study, frozen) == decision
    assert clone.predict(study, frozen) == pruner.predict(study, frozen)
    # The copy is independent: refitting it on a grown study leaves the original alone.
    for i in range(8, 12):
        _add(study, i)
    trial.report(1.1, 2)
    frozen = _frozen(study, trial)
    clone.predict(study, frozen)
    assert pruner.predict(study, frozen) == _pruner().predict(study, frozen)
    # And a study holding a fitted pruner deep-copies too.
    copy.deepcopy(study)


# ---------------------------------------------------------------------------------------------
# The user's extra_features callable.


class _UserError(Exception):
    pass


def _raising(trial: FrozenTrial) -> list[float]:
    raise _UserError(f"cannot describe trial {trial.number}")


def _n_weights(trial: FrozenTrial) -> list[float]:
    """The README's example: a size the objective records in a user attribute."""
    return [trial.user_attrs["n_weights"]]


def _srp_warnings(record: Any) -> list[str]:
    return [str(w.message) for w in record if str(w.message).startswith("SRPPruner")]


def test_extra_features_failing_on_warm_start_trials_warns_once_and_the_study_runs() -> None:
    # Three complete trials added with add_trial lack the attribute the callable reads. They
    # are read again at every refit: each failure must not fail a later trial.
    pruner = _pruner(n_startup_trials=3, extra_features=_n_weights)
    study = _study(pruner, n_complete=3)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr("n_weights", 100.0 * x)
        curve = _curve(int(10 * x))
        for step in range(_N_STEPS):
            trial.report(curve[step], step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return curve[_N_STEPS - 1]

    with pytest.warns(RuntimeWarning) as record:
        study.optimize(objective, n_trials=15)
    messages = _srp_warnings(record)
    assert len(messages) == 1
    assert "trial 0" in messages[0] and "KeyError" in messages[0]
    # It says what a callable that fails on every trial would cost: the models never start.
    assert "until n_startup_trials=3 complete trials can be read" in messages[0]
    # Raised from study.optimize, it still names the objective's should_prune() line.
    assert [w.filename for w in record if "SRPPruner" in str(w.message)] == [__file__]
    assert all(t.state != TrialState.FAIL for t in study.trials)
    # The models were built without the three trials, from those that have the attribute.
    fit = pruner._fit_for(study)
    assert fit is not None and {0, 1, 2}.isdisjoint(r.number for r in fit.records)
    assert len(fit.records) >= 3
    assert any("srp:probability" in t.user_attrs for t in study.trials[3:])


@pytest.mark.parametrize(
    "features",
    [_raising, lambda t: "abc", lambda t: {"a": 1.0}, lambda t: [[1.0], [1.0, 2.0]]],
    ids=["raises", "str", "dict", "ragged"],
)
def test_extra_features_failing_for_the_running_trial_warns_once_and_does_not_prune(
    features: Callable[[FrozenTrial], Any],
) -> None:
    pruner = _pruner(threshold=1.0, extra_features=features)
    study = _study(pruner)  # the complete trials fail too: the models have nothing to use
    trial = study.ask({"x": _X})
    with pytest.warns(RuntimeWarning) as record:
        for step, value in enumerate([5.0, 4.0, 3.0]):
            trial.report(value, step)
            assert trial.should_prune() is False
    messages = _srp_warnings(record)
    assert len(messages) == 1
    assert "could not read trial" in messages[0]
    assert "cannot describe trial" in messages[0] or "sequence of numbers" in messages[0]


def _odd_for_some(trial: FrozenTrial) -> list[float]:
    if trial.number in (1, 8):
        raise _UserError(f"cannot describe trial {trial.number}")
    return [float(trial.number)]


def test_a_trial_whose_features_fail_is_left_out_and_the_others_decide() -> None:
    # Complete trial 1 fails: it is left out of the training set. The running trial (8) fails
    # at first too (not pruned), and is decided once the callable works for it.
    pruner = _pruner(threshold=1.0, extra_features=_odd_for_some)
    study = _study(pruner)
    trial = study.ask({"x": _X})
    assert trial.number == 8
    with pytest.warns(RuntimeWarning, match="could not read trial 1") as record:
        trial.report(5.0, 0)
        assert trial.should_prune() is False
    assert len(_srp_warnings(record)) == 1
    # It names the user's line, not the pruner's.
    assert [w.filename for w in record if "SRPPruner" in str(w.message)] == [__file__]
    fit = pruner._fit_for(study)
    assert fit is not None and sorted(r.number for r in fit.records) == [0, 2, 3, 4, 5, 6, 7]
    other = _running(study, [5.0, 4.0])  # trial 9: its features work
    assert other.should_prune() is True


def _longer_for_odd(trial: FrozenTrial) -> list[float]:
    return [float(trial.number)] * (1 + trial.number % 2)


def test_extra_features_of_another_length_for_some_trials_warn_once() -> None:
    # The models pad the shorter ones with 0 and so read a feature at another place: most
    # likely a bug in the callable, said once; the study still decides.
    pruner = _pruner(threshold=1.0, extra_features=_longer_for_odd)
    study = _study(pruner)
    with pytest.warns(RuntimeWarning) as record:
        other = _running(study, [5.0, 4.0])
        assert other.should_prune() is True
        _running(study, [5.0, 4.0]).should_prune()
    messages = _srp_warnings(record)
    assert len(messages) == 1
    assert "extra_features returned 2 numbers for trial 1 and 1 for an earlier one" in messages[0]


def test_a_failure_encoding_the_running_trial_does_not_escape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Anything that turns the running trial into numbers, not only extra_features: here the
    # encoding of a parameter value fails for it alone.
    from optuna_srp import _features

    unit_interval = _features._unit_interval

    def fails_on_running(value: float, dist: Any) -> float:
        if value == 0.123:
            raise ArithmeticError("cannot encode 0.123")
        return unit_interval(value, dist)

    pruner = _pruner(threshold=1.0)
    study = _study(pruner)
    monkeypatch.setattr(_features, "_unit_interval", fails_on_running)
    study.enqueue_trial({"x": 0.123})
    trial = study.ask({"x": _X})
    with pytest.warns(RuntimeWarning, match="could not encode trial 8.*cannot encode 0.123"):
        trial.report(5.0, 0)
        assert trial.should_prune() is False
        trial.report(4.0, 1)
        assert trial.should_prune() is False


def test_extra_features_not_called_before_startup() -> None:
    pruner = _pruner(extra_features=_raising, n_startup_trials=5)
    study = _study(pruner, n_complete=4)
    trial = _running(study, [1.0, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not trial.should_prune()


@pytest.mark.parametrize(
    "odd",
    [
        lambda t: [],
        lambda t: [float("nan"), float("inf"), -1e300],
        lambda t: list(range(t.number)),  # a different length for every trial
        lambda t: (1.0, 2.0),
        lambda t: 3.0,  # a scalar is read as one feature
    ],
    ids=["empty", "nonfinite", "ragged_lengths", "tuple", "scalar"],
)
def test_extra_features_odd_but_numeric_values_work(odd: Callable[[FrozenTrial], Any]) -> None:
    pruner = _pruner(extra_features=odd)
    study = _study(pruner)
    trial = _running(study, [1.5, 1.2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        trial.should_prune()
        prediction = pruner.predict(study, _frozen(study, trial))
    assert prediction is not None
    assert all(v == v and abs(v) != float("inf") for v in prediction)


@pytest.mark.parametrize("make_pruner", ["source", "fast_hyperband"])
def test_a_trial_finished_elsewhere_before_its_first_check_is_not_an_error(
    make_pruner: str,
) -> None:
    # The first check of a trial writes its full-group flag; a heartbeat check in another
    # process may have failed the trial in between, and the storage refuses the write. The
    # worker's copy of the trial is stale: the pruner must not raise into the study.
    distribution = optuna.distributions.FloatDistribution(0.0, 1.0)
    source = [
        optuna.trial.create_trial(
            params={"x": i / 20},
            distributions={"x": distribution},
            value=i / 20,
            intermediate_values={s: i / 20 * (s + 1) / 10 for s in range(10)},
        )
        for i in range(20)
    ]
    pruner: optuna.pruners.BasePruner = (
        SRPPruner(source_trials=source) if make_pruner == "source" else FastHyperbandPruner()
    )
    study = optuna.create_study(direction="maximize", pruner=pruner)
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    trial.report(0.1, 0)
    stale = study._storage.get_trial(trial._trial_id)
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    assert pruner.prune(study, stale) is False
