from __future__ import annotations

import ast
import doctest
import inspect

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import estimator_checks_generator

from optuna_srp import _model
from optuna_srp import SRMEnsemble


def _data(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 4))
    y = 2.0 * X[:, 0] - X[:, 1] ** 2 + rng.normal(0, 0.1, n)
    return X, y


def test_fit_returns_self_and_keeps_parameters_unchanged() -> None:
    X, y = _data()
    model = SRMEnsemble(n_estimators=3, C=3.0, random_state=0)
    assert model.fit(X, y) is model
    assert model.get_params()["C"] == 3.0 and model.C == 3.0
    assert clone(model).get_params() == model.get_params()


def test_direct_kernel_expansion_matches_nusvr_predict() -> None:
    X, y = _data()
    model = SRMEnsemble(random_state=0).fit(X, y)
    Xs = (X[:7] - model.x_mean_) / model.x_scale_
    expected = np.array([e.predict(Xs) for e in model.estimators_])
    np.testing.assert_allclose(model._member_predictions(Xs), expected, atol=1e-10)


def test_out_of_bag_predictions_are_nusvr_predict() -> None:
    # The refit's out-of-bag and cross-validation predictions skip NuSVR.predict's validation;
    # each must still be its member's prediction, gamma 0 (a constant kernel) included.
    X, y = _data()
    for gamma in (None, 0.0):
        model = SRMEnsemble(n_estimators=4, gamma=gamma, random_state=0).fit(X, y)
        Xs = (X - model.x_mean_) / model.x_scale_
        for e in model.estimators_:
            np.testing.assert_allclose(_model._svr_predict(e, Xs), e.predict(Xs), atol=1e-10)


def test_predict_is_the_mean_of_the_members_clipped_predictions() -> None:
    # Recomputed from NuSVR.predict, independently of the kernel expansion predict uses.
    X, y = _data()
    model = SRMEnsemble(calibration="spread", random_state=0).fit(X, y)
    Xs = (X[:7] - model.x_mean_) / model.x_scale_
    members = np.array([e.predict(Xs) for e in model.estimators_]) * model.y_scale_
    members += model.y_mean_
    low, high = model.target_range_
    members = np.clip(members, low - 0.1 * (high - low), high + 0.1 * (high - low))
    mean, std = model.predict(X[:7], return_std=True)
    np.testing.assert_allclose(mean, members.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(std, members.std(axis=0, ddof=1), rtol=1e-6, atol=1e-12)


def test_predictions_stay_near_the_training_targets_where_a_wide_kernel_extrapolates() -> None:
    # Each feature within 2 standard deviations of the training runs', but all of them at
    # once: with 40 features and a near-flat kernel the ν-SVR is close to linear there.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 40))
    y = X.sum(axis=1) + rng.normal(0, 0.1, 60)
    model = SRMEnsemble(n_estimators=3, C=30.0, gamma=0.1, random_state=0).fit(X, y)
    low, high = model.target_range_
    assert (low, high) == (y.min(), y.max())
    corners = np.array([np.full(40, 2.0), np.full(40, -2.0)])
    Xs = (corners - model.x_mean_) / model.x_scale_
    unclipped = model.estimators_[0].predict(Xs) * model.y_scale_ + model.y_mean_
    half = (high - low) / 2
    assert unclipped[0] > high + half and unclipped[1] < low - half

    mean = model.predict(corners)
    margin = 0.1 * (high - low)
    bias_room = np.max(np.abs(model.oob_residual_))
    assert high - bias_room < mean[0] <= high + margin + bias_room
    assert low + bias_room > mean[1] >= low - margin - bias_room


def test_same_random_state_same_model() -> None:
    X, y = _data()
    a = SRMEnsemble(random_state=3).fit(X, y).predict(X[:5], return_std=True)
    b = SRMEnsemble(random_state=3).fit(X, y).predict(X[:5], return_std=True)
    np.testing.assert_array_equal(a, b)


def test_accurate_and_90_percent_intervals_cover() -> None:
    X, y = _data(300)
    X_test, y_test = _data(300, seed=1)
    model = SRMEnsemble(random_state=0).fit(X, y)
    mean, std = model.predict(X_test, return_std=True)
    r2 = 1 - np.mean((mean - y_test) ** 2) / np.var(y_test)
    coverage = np.mean(np.abs(mean - y_test) <= 1.645 * std)
    assert r2 > 0.8
    assert 0.85 <= coverage <= 0.99


def test_spread_alone_under_covers_and_calibration_fixes_it() -> None:
    # The paper's recipe (ensemble spread only) is too narrow: the reason for calibration.
    X, y = _data(200)
    X_test, y_test = _data(300, seed=2)
    covered = {}
    for calibration in ("spread", "global", "local"):
        model = SRMEnsemble(calibration=calibration, random_state=0).fit(X, y)
        mean, std = model.predict(X_test, return_std=True)
        covered[calibration] = np.mean(np.abs(mean - y_test) <= 1.645 * std)
    assert covered["spread"] < 0.8
    assert covered["global"] > 0.85 and covered["local"] > 0.85


def test_local_calibration_follows_heteroscedastic_noise() -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(400, 1))
    y = X[:, 0] + rng.normal(0, 0.01 + 0.3 * X[:, 0] ** 2, 400)
    model = SRMEnsemble(random_state=0).fit(X, y)
    _, std = model.predict(np.array([[0.05], [0.95]]), return_std=True)
    assert std[1] > 3 * std[0]


@pytest.mark.parametrize("outlier", [-3.0, 3.0])
def test_upper_calibration_widens_only_for_samples_that_ended_above(outlier: float) -> None:
    # One sample ends far from its prediction (a run that diverged, or a late learner). Below
    # its prediction it says nothing about how far above theirs the others may end: only
    # "local" widens for it. Above, both widen.
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(40, 1))
    y = X[:, 0] + rng.normal(0, 0.01, 40)
    y[np.argmin(X[:, 0])] += outlier
    x_near = np.array([[0.02]])
    local = SRMEnsemble(random_state=0).fit(X, y)
    upper = SRMEnsemble(calibration="upper", random_state=0).fit(X, y)
    std_local = local.predict(x_near, return_std=True)[1][0]
    std_upper = upper.predict(x_near, return_std=True)[1][0]
    assert std_local > 0.3
    if outlier < 0:
        assert std_upper < 0.1
    else:
        assert std_upper > std_local


def test_upper_calibration_matches_local_on_symmetric_noise() -> None:
    X, y = _data(400)
    X_test, y_test = _data(400, seed=2)
    upper = SRMEnsemble(calibration="upper", random_state=0).fit(X, y)
    local = SRMEnsemble(random_state=0).fit(X, y)
    std_upper = upper.predict(X_test, return_std=True)[1]
    std_local = local.predict(X_test, return_std=True)[1]
    assert np.median(std_upper / std_local) == pytest.approx(1.0, abs=0.25)
    mean, std = upper.predict(X_test, return_std=True)
    assert np.mean(y_test - mean <= 1.645 * std) > 0.9  # the upper 95% bound covers
    # Without the robust floor, which binds on this data, the sqrt 2 that makes the upper
    # semi-deviation a standard deviation shows (without it, the ratio is about 0.72).
    bare = {
        c: SRMEnsemble(calibration=c, robust_floor=False, random_state=0).fit(X, y)
        for c in ("upper", "local")
    }
    ratio = (
        bare["upper"].predict(X_test, return_std=True)[1]
        / bare["local"].predict(X_test, return_std=True)[1]
    )
    assert np.median(ratio) == pytest.approx(1.0, abs=0.1)


def test_robust_floor_keeps_a_lucky_window_from_claiming_precision() -> None:
    # Residuals are tiny for most samples and large for a few: a window of tiny residuals
    # must not give a std far below the model's typical error.
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(200, 1))
    y = X[:, 0] + np.where(X[:, 0] > 0.5, rng.normal(0, 0.2, 200), rng.normal(0, 0.001, 200))
    floored = SRMEnsemble(random_state=0).fit(X, y)
    bare = SRMEnsemble(robust_floor=False, random_state=0).fit(X, y)
    x_quiet = np.array([[0.1]])
    assert floored.robust_residual_scale_ > 0.0 and bare.robust_residual_scale_ == 0.0
    assert floored.predict(x_quiet, return_std=True)[1][0] >= floored.robust_residual_scale_
    assert bare.predict(x_quiet, return_std=True)[1][0] < floored.robust_residual_scale_


def test_too_few_samples_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least 2 samples"):
        SRMEnsemble().fit(np.zeros((1, 2)), np.zeros(1))


def test_non_finite_input_is_rejected_by_name() -> None:
    X, y = _data()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SRMEnsemble().fit(X, y)


@pytest.mark.parametrize("calibration", ["local", "upper"])
def test_local_calibration_uses_the_window_of_the_nearest_out_of_bag_predictions(
    calibration: str,
) -> None:
    # The definition, from public attributes: the k out-of-bag predictions nearest the raw
    # prediction (a window of the sorted ones, slid inside at both ends) give the correction
    # of the mean and the residual variance. Test points below, inside and above the range.
    X, y = _data(120)
    X_test = np.vstack(
        [_data(20, seed=3)[0], np.full((1, X.shape[1]), -5.0), np.full((1, X.shape[1]), 5.0)]
    )
    model = SRMEnsemble(calibration=calibration, random_state=0).fit(X, y)
    raw = SRMEnsemble(calibration="spread", random_state=0).fit(X, y)
    raw_mean, spread = raw.predict(X_test, return_std=True)
    mean, std = model.predict(X_test, return_std=True)
    n = len(model.oob_prediction_)
    k = max(10, int(np.ceil(0.25 * n)))
    positions = set()
    for i, p in enumerate(raw_mean):
        lo = min(max(0, int(np.searchsorted(model.oob_prediction_, p)) - k // 2), n - k)
        positions.add(lo)
        window = model.oob_residual_[lo : lo + k]
        if calibration == "upper":
            bias = np.median(window)
            resid_ms = 2.0 * np.mean(np.maximum(window - bias, 0.0) ** 2)
        else:
            bias, resid_ms = window.mean(), np.mean(window**2)
        resid_ms = max(resid_ms, model.robust_residual_scale_**2)
        assert mean[i] == pytest.approx(raw_mean[i] + bias, rel=1e-12, abs=1e-12)
        assert std[i] == pytest.approx(np.sqrt(spread[i] ** 2 + resid_ms), rel=1e-12)
    assert {0, n - k} <= positions and len(positions) > 5


@pytest.mark.parametrize("calibration", ["local", "upper", "global", "spread"])
def test_residual_dof_counts_the_residuals_behind_the_std(calibration: str) -> None:
    X, y = _data(200)
    model = SRMEnsemble(calibration=calibration, n_neighbors=0.25, random_state=0).fit(X, y)
    n_oob = len(model.oob_residual_)
    window = np.ceil(0.25 * n_oob) - 1
    expected = {"local": window, "upper": window, "global": n_oob - 1, "spread": np.inf}
    assert model.residual_dof_ == expected[calibration]
    few = SRMEnsemble(random_state=0).fit(X[:20], y[:20])
    assert few.residual_dof_ == 9  # at least 10 residuals however few the samples


# A list, not sklearn's parametrize_with_checks: that hands pytest a generator, which pytest 10
# will refuse (PytestRemovedIn10Warning on the lowest declared versions).
_ESTIMATOR_CHECKS = list(estimator_checks_generator(SRMEnsemble(n_estimators=3, random_state=0)))


@pytest.mark.parametrize(
    ("estimator", "check"),
    _ESTIMATOR_CHECKS,
    ids=[getattr(check, "func", check).__name__ for _, check in _ESTIMATOR_CHECKS],
)
def test_scikit_learn_estimator_checks(estimator: SRMEnsemble, check: object) -> None:
    check(estimator)  # type: ignore[operator]


def test_predict_leaves_the_estimator_unchanged() -> None:
    X, y = _data()
    model = SRMEnsemble(n_estimators=3, random_state=0).fit(X, y)
    before = dict(model.__dict__)
    model.predict(X[:3], return_std=True)
    assert model.__dict__.keys() == before.keys()
    assert all(model.__dict__[k] is v for k, v in before.items())


@pytest.mark.parametrize("scale", [1e-15, 1e-9, 1.0, 1e9, 1e15])
@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_predictions_follow_the_units_of_the_target_and_features(
    scale: float, offset: float
) -> None:
    # Fitting on (a * X + b, c * y + d) predicts c * mean + d and c * std: no floor or
    # threshold in absolute units (a target at 1e-12 once had its std floored at 1e-12).
    X, y = _data(60)
    ref_mean, ref_std = SRMEnsemble(random_state=0).fit(X, y).predict(X[:5], return_std=True)
    Xt = scale * X + offset * scale
    yt = scale * y + offset * scale
    mean, std = SRMEnsemble(random_state=0).fit(Xt, yt).predict(Xt[:5], return_std=True)
    # libsvm stops at a tolerance: inputs that differ in the last bits end a little apart.
    tolerance = 1e-3 * y.std()
    np.testing.assert_allclose((mean - offset * scale) / scale, ref_mean, atol=tolerance)
    np.testing.assert_allclose(std / scale, ref_std, atol=tolerance)


def test_only_public_scikit_learn_modules_are_imported() -> None:
    # A private module (sklearn.utils._param_validation, sklearn.base._fit_context) can move
    # in any scikit-learn release and break every study.
    tree = ast.parse(inspect.getsource(_model))
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            imported += [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            imported += [a.name for a in node.names]
    sklearn_names = [n for n in imported if n.startswith("sklearn")]
    assert sklearn_names
    private = [n for n in sklearn_names if any(p.startswith("_") for p in n.split("."))]
    assert private == []


def test_docstring_example_runs() -> None:
    finder = doctest.DocTestFinder()
    (test,) = [t for t in finder.find(SRMEnsemble, "SRMEnsemble") if t.examples]
    result = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS).run(test)
    assert result.attempted >= 5 and result.failed == 0
