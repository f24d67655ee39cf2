"""Constructor arguments: wrong types and out-of-range values give a ValueError or TypeError
whose message names the argument and the value; valid edge values construct and work.

SRPPruner validates in ``__init__``; SRMEnsemble validates in ``fit`` (scikit-learn style).
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Any
import warnings

import numpy as np
import optuna
import pytest

from optuna_srp import SRMEnsemble
from optuna_srp import SRPPruner


optuna.logging.set_verbosity(optuna.logging.WARNING)

# Public arguments (a leading underscore marks an experimental knob, not an API).
_PRUNER_PARAMS = {p for p in inspect.signature(SRPPruner.__init__).parameters if p[0] != "_"}
_PRUNER_PARAMS.discard("self")
_ENSEMBLE_PARAMS = {p for p in inspect.signature(SRMEnsemble.__init__).parameters if p[0] != "_"}
_ENSEMBLE_PARAMS.discard("self")


def _names_argument_and_value(name: str, value: Any) -> str:
    return rf"(?s){re.escape(name)}.*{re.escape(repr(value))}"


class _NotAPruner:
    def prune(self, study: object, trial: object) -> bool:
        return False


# (argument, bad value, expected exception)
_BAD_PRUNER_ARGS: list[tuple[str, Any, type[Exception]]] = [
    ("n_startup_trials", 1, ValueError),
    ("n_startup_trials", -1, ValueError),
    ("n_startup_trials", 2.0, TypeError),
    ("n_startup_trials", "5", TypeError),
    ("n_startup_trials", None, TypeError),
    ("n_startup_trials", True, TypeError),
    ("n_warmup_steps", -1, ValueError),
    ("n_warmup_steps", 0.5, TypeError),
    ("n_warmup_steps", None, TypeError),
    ("interval_steps", 0, ValueError),
    ("interval_steps", 1.0, TypeError),
    ("threshold", -0.01, ValueError),
    ("threshold", 1.01, ValueError),
    ("threshold", math.nan, ValueError),
    ("threshold", math.inf, ValueError),
    ("threshold", "0.1", TypeError),
    ("threshold", None, TypeError),
    ("threshold", True, TypeError),
    ("n_estimators", 0, ValueError),
    ("n_estimators", 1.5, TypeError),
    ("seed", 1.5, TypeError),
    ("seed", "0", TypeError),
    ("seed", True, TypeError),
    ("wrapped_pruner", "median", TypeError),
    ("wrapped_pruner", optuna.pruners.MedianPruner, TypeError),  # the class, not an instance
    ("wrapped_pruner", _NotAPruner(), TypeError),
    ("extra_features", 3, TypeError),
    ("extra_features", "len", TypeError),
    ("max_train_trials", 9, ValueError),
    ("max_train_trials", 10.0, TypeError),
    ("source_trials", "trials", TypeError),
    ("source_trials", 3, TypeError),
]

_VALID_PRUNER_ARGS: list[Any] = [
    ("n_startup_trials", 2),
    ("n_startup_trials", np.int64(3)),
    ("n_warmup_steps", 0),
    ("n_warmup_steps", 10**6),
    ("interval_steps", 1),
    ("threshold", 0.0),
    ("threshold", 1.0),
    ("threshold", 0),
    ("threshold", np.float64(0.5)),
    ("n_estimators", 1),
    ("seed", None),
    ("seed", 0),
    ("seed", 2**31 - 1),
    ("wrapped_pruner", None),
    ("wrapped_pruner", optuna.pruners.NopPruner()),
    ("wrapped_pruner", optuna.pruners.MedianPruner(n_startup_trials=1)),
    ("extra_features", None),
    ("extra_features", lambda t: [float(t.number)]),
    ("max_train_trials", 10),
    ("source_trials", None),
    ("source_trials", ()),
    ("source_trials", [optuna.trial.create_trial(value=0.5, intermediate_values={0: 0.5})]),
]


def test_every_pruner_argument_is_covered() -> None:
    bad = {name for name, _, _ in _BAD_PRUNER_ARGS}
    valid = {name for name, _ in _arg_values(_VALID_PRUNER_ARGS)}
    assert _PRUNER_PARAMS <= bad | {"seed"}  # every argument has a wrong value tested
    assert _PRUNER_PARAMS <= valid


@pytest.mark.parametrize(("name", "value", "error"), _BAD_PRUNER_ARGS)
def test_pruner_rejects_bad_argument(name: str, value: Any, error: type[Exception]) -> None:
    # A row naming an argument that no longer exists is a stale test, not a skip.
    assert name in _PRUNER_PARAMS, f"SRPPruner has no argument {name}"
    with pytest.raises(error, match=_names_argument_and_value(name, value)):
        SRPPruner(**{name: value})


# Removed in 2026-11 because no measurement defended them: the rules they tuned are constants of
# optuna_srp._pruner (stable_rank_laggards, opt-in, went with its rule). Passing one must fail
# loudly rather than be swallowed by a ``**kwargs`` somewhere.
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("keep_top_fraction", 0.1),
        ("median_guard", True),
        ("laggard_fraction", 0.1),
        ("laggard_threshold", 0.2),
        ("refit_fraction", 0.1),
        ("max_curve_points", 10),
        ("stable_rank_laggards", False),
    ],
)
def test_removed_argument_is_a_type_error(name: str, value: Any) -> None:
    assert name not in _PRUNER_PARAMS
    with pytest.raises(TypeError, match=name):
        SRPPruner(**{name: value})


def test_pruner_rejects_negative_seed() -> None:
    with pytest.raises(ValueError, match=_names_argument_and_value("seed", -1)):
        SRPPruner(seed=-1)


def test_pruner_accepts_numpy_int_seed() -> None:
    SRPPruner(seed=np.int64(3))  # type: ignore[arg-type]


def _decide(pruner: SRPPruner, direction: str = "minimize") -> bool:
    """Run a few decisions of ``pruner`` on a small study."""
    study = optuna.create_study(direction=direction, pruner=pruner)  # type: ignore[arg-type]
    for i in range(12):
        curve = {s: 1.0 + 0.1 * i + 1.0 / (s + 1) for s in range(6)}
        study.add_trial(
            optuna.trial.create_trial(
                value=curve[5],
                params={"x": i},
                distributions={"x": optuna.distributions.IntDistribution(0, 20)},
                intermediate_values=curve,
            )
        )
    trial = study.ask({"x": optuna.distributions.IntDistribution(0, 20)})
    pruned = False
    for s in range(6):
        trial.report(5.0 - 0.1 * s, s)
        pruned = trial.should_prune() or pruned
    return pruned


@pytest.mark.parametrize(("name", "value"), _VALID_PRUNER_ARGS)
def test_pruner_accepts_valid_edge_value(name: str, value: Any) -> None:
    # A row naming an argument that no longer exists is a stale test, not a skip.
    assert name in _PRUNER_PARAMS, f"SRPPruner has no argument {name}"
    kwargs = {name: value}
    if name != "n_startup_trials":
        kwargs["n_startup_trials"] = 2
    pruner = SRPPruner(**kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _decide(pruner)


def test_threshold_edges_decide_as_documented() -> None:
    # At 1 a clearly bad trial (worse than every complete trial at every step) is pruned.
    assert _decide(SRPPruner(n_startup_trials=2, threshold=1.0, seed=0))


# ---------------------------------------------------------------------------------------------
# SRMEnsemble (validates in fit).

_BAD_ENSEMBLE_ARGS: list[Any] = [
    ("robust_floor", "yes"),
    ("n_estimators", 0),
    ("n_estimators", -1),
    ("n_estimators", 2.0),
    ("n_estimators", "3"),
    ("n_estimators", None),
    ("nu", 0.0),
    ("nu", 1.5),
    ("nu", -0.1),
    ("nu", "a"),
    ("nu", math.nan),
    ("C", 0.0),
    ("C", -1.0),
    ("C", "a"),
    ("C", math.nan),
    ("C", math.inf),
    ("gamma", -1.0),
    ("gamma", "scale"),
    ("gamma", math.nan),
    ("gamma", math.inf),
    ("calibration", "x"),
    ("calibration", None),
    ("calibration", 1),
    ("n_neighbors", 0),
    ("n_neighbors", -1),
    ("n_neighbors", 0.0),
    ("n_neighbors", 1.5),
    ("n_neighbors", "a"),
    ("n_neighbors", None),
    ("n_neighbors", math.nan),
    ("random_state", "a"),
    ("random_state", -1),
    ("random_state", 1.5),
]

_VALID_ENSEMBLE_ARGS: list[Any] = [
    ("robust_floor", False),
    ("n_estimators", 1),
    ("n_estimators", np.int64(2)),
    ("nu", 1.0),
    ("nu", 1e-3),
    ("nu", None),
    ("C", 1e-6),
    ("C", 1e6),
    ("C", None),
    ("gamma", 0.0),
    ("gamma", 1e3),
    ("gamma", None),
    ("calibration", "local"),
    ("calibration", "upper"),
    ("calibration", "global"),
    ("calibration", "spread"),
    ("n_neighbors", 1),
    ("n_neighbors", 1000),
    ("n_neighbors", 1.0),
    ("n_neighbors", 0.01),
    ("random_state", None),
    ("random_state", 0),
    ("random_state", 2**32 - 1),
    ("random_state", np.random.RandomState(0)),
]


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(20, 3))
    return X, X.sum(axis=1) + rng.normal(scale=0.05, size=20)


def _arg_values(cases: list[Any]) -> list[tuple[str, Any]]:
    return [c.values if hasattr(c, "values") else c for c in cases]


def test_every_ensemble_argument_is_covered() -> None:
    assert _ENSEMBLE_PARAMS <= {name for name, _ in _arg_values(_BAD_ENSEMBLE_ARGS)}
    assert _ENSEMBLE_PARAMS <= {name for name, _ in _arg_values(_VALID_ENSEMBLE_ARGS)}


@pytest.mark.parametrize(("name", "value"), _BAD_ENSEMBLE_ARGS)
def test_ensemble_rejects_bad_argument(name: str, value: Any) -> None:
    # A row naming an argument that no longer exists is a stale test, not a skip.
    assert name in _ENSEMBLE_PARAMS, f"SRMEnsemble has no argument {name}"
    X, y = _data()
    model = SRMEnsemble(**{name: value})  # sklearn style: no validation in __init__
    with pytest.raises((ValueError, TypeError), match=_names_argument_and_value(name, value)):
        model.fit(X, y)


@pytest.mark.parametrize(("name", "value"), _VALID_ENSEMBLE_ARGS)
def test_ensemble_accepts_valid_edge_value(name: str, value: Any) -> None:
    # A row naming an argument that no longer exists is a stale test, not a skip.
    assert name in _ENSEMBLE_PARAMS, f"SRMEnsemble has no argument {name}"
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning or numpy warning either
        mean, std = SRMEnsemble(**{name: value}).fit(X, y).predict(X[:3], return_std=True)
    assert np.isfinite(mean).all() and np.isfinite(std).all() and (std >= 0).all()
