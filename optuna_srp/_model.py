"""The model layer: a bootstrap ensemble of ν-SVRs that predicts a mean and a standard deviation.

It knows nothing about Optuna: ``X`` is a numeric matrix, ``y`` the value to predict.
"""

from __future__ import annotations

import math
from numbers import Integral
from numbers import Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.base import RegressorMixin
from sklearn.model_selection import KFold
from sklearn.svm import NuSVR
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from sklearn.utils.validation import validate_data


# Small on purpose: the search runs inside a user's training loop.
_DEFAULT_C_GRID = (0.3, 3.0, 30.0)
_DEFAULT_GAMMA_FACTORS = (0.1, 1.0)
# Fewer residuals than this give a variance too noisy to prune on.
_MIN_NEIGHBORS = 10
# Members may predict this far (a fraction of the training targets' range) beyond that range.
# A near-flat kernel (large C, small gamma) extrapolates linearly, and has been seen predicting
# -145% accuracy for a run whose features were each within 2 standard deviations of the
# training runs'.
_EXTRAPOLATION_MARGIN = 0.1
# A spread below this fraction of the values' magnitude is rounding noise, not information.
_RELATIVE_NOISE = 1e-12
_CALIBRATIONS = frozenset({"local", "upper", "global", "spread"})


class SRMEnsemble(RegressorMixin, BaseEstimator):
    """Bootstrap ensemble of RBF ν-SVRs with a calibrated predictive standard deviation.

    This is the sequential regression model of Baker et al. (arXiv:1705.10823) for one step:
    features and target are standardised, ``n_estimators`` ν-SVRs are fitted on bootstrap
    resamples, and the prediction is the ensemble mean.

    The spread of the ensemble alone under-covers: it ignores the regressor's own error, and in
    particular its shrinkage of the best configurations towards the mean, which is what makes a
    pruner lose the best trial. The standard deviation therefore combines the spread with the
    out-of-bag residuals of the training samples whose out-of-bag prediction is closest to the
    new prediction (``calibration="local"``), and the mean is corrected by those residuals' mean.
    Near the top of the ranking the correction is measured on the top of the ranking, where
    pruning decisions are made. ``calibration="upper"`` measures the upper tail alone, for the
    chance of ending above a value (what a pruner asks).

    Parameters
    ----------
    n_estimators : int, default=10
        Number of bootstrap ν-SVRs.
    nu, C, gamma : float or None, default=None
        ν-SVR hyper-parameters. ``gamma`` is relative to the standardised features: the kernel
        uses ``gamma / n_features``. ``C`` and ``gamma`` left ``None`` are chosen by a small
        3-fold cross-validated grid search; ``nu`` left ``None`` is 0.5 (it is not searched).
    calibration : {"local", "upper", "global", "spread"}, default="local"
        How the out-of-bag residuals enter the standard deviation: from the nearest
        out-of-bag predictions, from all of them, or not at all (the paper's recipe).
        ``"upper"`` uses the nearest ones as ``"local"`` does, but the mean is corrected by
        their median and the standard deviation is that of the upper side: the root mean
        square of the residuals' excess over that median, zero for those below it, over the
        whole window, times sqrt(2): about the root mean square of those above it, and for a
        symmetric distribution the standard deviation. It is the scale of the upper tail, for the
        probability of ending above a value: a sample that ended far below its prediction (a
        run that diverged or overfitted) widens ``"local"``'s standard deviation on both
        sides, but says nothing about how far above its own prediction another sample may end.
    n_neighbors : int or float, default=0.25
        For ``calibration="local"`` and ``"upper"``: how many out-of-bag residuals to use,
        as a count or as a fraction of the out-of-bag predictions (each sample is out of bag
        for some member with a probability near 0.9 at 5 members), at least 10 of them or all
        where there are fewer: fewer give a variance too noisy to prune on.
    robust_floor : bool, default=True
        Floor the local residual variance by the squared robust scale (1.4826 x MAD) of all
        out-of-bag residuals, so that a window where the model happened to do well cannot
        claim more precision than the model has overall.
    random_state : int, RandomState instance or None, default=None
        Seeds the bootstrap resamples and the cross-validation folds.

    Each member's prediction is clipped to the training targets' range widened by a tenth of it
    on each side: far outside the training features, an RBF ν-SVR with a wide kernel
    extrapolates linearly and without bound.

    Attributes
    ----------
    estimators_ : list of NuSVR
    best_params_ : dict
        The ν-SVR hyper-parameters used (``gamma`` relative, as the ``gamma`` parameter).
    oob_prediction_ : ndarray of shape (n_oob,)
        Out-of-bag predictions (in the target's units) of the samples that were out of bag.
    oob_residual_ : ndarray of shape (n_oob,)
        ``y - oob_prediction_`` for the same samples.
    target_range_ : tuple of float
        The lowest and highest training target; member predictions are clipped to this range
        widened by a tenth of it on each side.
    robust_residual_scale_ : float
        1.4826 x the median absolute deviation of ``oob_residual_`` (0 without
        ``robust_floor``).
    residual_dof_ : float
        Degrees of freedom of the residual variance behind the standard deviation: the number
        of out-of-bag residuals it averages, less one (``inf`` for ``calibration="spread"``).
        A Student t with these degrees of freedom, not a Gaussian, is the predictive
        distribution to take tail probabilities from: a variance estimated from few residuals
        is often too small.

    Examples
    --------
    >>> import numpy as np
    >>> from optuna_srp import SRMEnsemble
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(size=(60, 3))
    >>> y = X.sum(axis=1) + rng.normal(scale=0.05, size=60)
    >>> model = SRMEnsemble(random_state=0).fit(X, y)
    >>> mean, std = model.predict(X[:2], return_std=True)
    """

    def __init__(
        self,
        n_estimators: int = 10,
        *,
        nu: float | None = None,
        C: float | None = None,
        gamma: float | None = None,
        calibration: str = "local",
        n_neighbors: int | float = 0.25,
        robust_floor: bool = True,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.nu = nu
        self.C = C
        self.gamma = gamma
        self.calibration = calibration
        self.n_neighbors = n_neighbors
        self.robust_floor = robust_floor
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> SRMEnsemble:
        """Fit the ensemble.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : SRMEnsemble
        """
        self._validate_params()
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        n_samples = X.shape[0]
        if n_samples < 2:
            raise ValueError(
                f"SRMEnsemble needs at least 2 samples, but got n_samples = {n_samples}."
            )
        rng = check_random_state(self.random_state)

        self.x_mean_ = X.mean(axis=0)
        self.x_scale_ = _scale(X.std(axis=0), np.abs(X).max(axis=0))
        self.y_mean_ = float(y.mean())
        self.y_scale_ = float(_scale(np.array([y.std()]), np.array([np.abs(y).max()]))[0])
        Xs = (X - self.x_mean_) / self.x_scale_
        ys = (y - self.y_mean_) / self.y_scale_
        self.target_range_ = (float(y.min()), float(y.max()))

        self.best_params_ = self._choose_params(Xs, ys, rng)
        self.estimators_: list[NuSVR] = []
        oob_sum = np.zeros(n_samples)
        oob_count = np.zeros(n_samples)
        bootstraps = []
        for _ in range(self.n_estimators):
            idx = rng.randint(0, n_samples, n_samples)
            if np.ptp(ys[idx]) == 0.0:
                idx = np.arange(n_samples)  # a constant resample teaches nothing
            svr = self._make_svr(**self.best_params_, n_features=Xs.shape[1])
            svr.fit(Xs[idx], ys[idx])
            self.estimators_.append(svr)
            bootstraps.append(idx)
        # Stacked once here, not lazily in predict: an estimator's state changes only in fit.
        self._support = _stack_support(self.estimators_)
        self._intercepts = np.array([e.intercept_[0] for e in self.estimators_])
        for svr, idx in zip(self.estimators_, bootstraps):
            oob = np.ones(n_samples, dtype=bool)
            oob[idx] = False
            if oob.any():
                oob_sum[oob] += self._clip_standardised(_svr_predict(svr, Xs[oob]))
                oob_count[oob] += 1
        has_oob = oob_count > 0
        if has_oob.sum() < 2:  # tiny ensembles: fall back to in-sample residuals
            has_oob = np.ones(n_samples, dtype=bool)
            oob_sum = self._member_predictions(Xs).mean(axis=0)
            oob_count = np.ones(n_samples)
        oob_pred = oob_sum[has_oob] / oob_count[has_oob] * self.y_scale_ + self.y_mean_
        order = np.argsort(oob_pred)
        self.oob_prediction_ = oob_pred[order]
        self.oob_residual_ = (y[has_oob] - oob_pred)[order]
        mad = np.median(np.abs(self.oob_residual_ - np.median(self.oob_residual_)))
        self.robust_residual_scale_ = float(1.4826 * mad) if self.robust_floor else 0.0
        if self.calibration == "spread":
            self.residual_dof_ = float("inf")
        elif self.calibration == "global":
            self.residual_dof_ = float(len(self.oob_residual_) - 1)
        else:
            self.residual_dof_ = float(self._window_size() - 1)
            self._windows = self._window_residuals()
        return self

    def _validate_params(self) -> None:
        """Check the parameters (in fit, as scikit-learn does) with errors naming each."""
        _check_number("n_estimators", self.n_estimators, Integral, 1, math.inf, True, False)
        _check_number("nu", self.nu, Real, 0.0, 1.0, False, True, allow_none=True)
        _check_number("C", self.C, Real, 0.0, math.inf, False, False, allow_none=True)
        _check_number("gamma", self.gamma, Real, 0.0, math.inf, True, False, allow_none=True)
        if not isinstance(self.calibration, str) or self.calibration not in _CALIBRATIONS:
            raise ValueError(
                "The 'calibration' parameter of SRMEnsemble must be one of "
                f"{sorted(_CALIBRATIONS)}, but got calibration={self.calibration!r}."
            )
        k = self.n_neighbors
        if isinstance(k, Integral) and not isinstance(k, bool):
            _check_number("n_neighbors", k, Integral, 1, math.inf, True, False)
        elif isinstance(k, Real) and not isinstance(k, bool):
            _check_number("n_neighbors", k, Real, 0.0, 1.0, False, True)
        else:
            raise TypeError(
                "The 'n_neighbors' parameter of SRMEnsemble must be an int >= 1 or a float in "
                f"(0, 1], but got n_neighbors={k!r}."
            )
        if not isinstance(self.robust_floor, (bool, np.bool_)):
            raise TypeError(
                "The 'robust_floor' parameter of SRMEnsemble must be a bool, but got "
                f"robust_floor={self.robust_floor!r}."
            )
        rs = self.random_state
        if not (
            rs is None
            or isinstance(rs, np.random.RandomState)
            or (isinstance(rs, Integral) and not isinstance(rs, bool) and 0 <= rs < 2**32)
        ):
            raise ValueError(
                "The 'random_state' parameter of SRMEnsemble must be an int in [0, 2**32 - 1], "
                f"a numpy RandomState or None, but got random_state={rs!r}."
            )

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Predict the target, optionally with its standard deviation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False

        Returns
        -------
        mean : ndarray of shape (n_samples,)
        std : ndarray of shape (n_samples,)
            Only when ``return_std`` is true.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self._predict_checked(X, return_std)

    def _predict_checked(self, X: np.ndarray, return_std: bool) -> Any:
        """``predict`` for a float64 matrix of the right width (the pruner's hot path)."""
        Xs = (X - self.x_mean_) / self.x_scale_
        members = self._member_predictions(Xs) * self.y_scale_ + self.y_mean_
        mean = members.mean(axis=0)
        spread = members.std(axis=0, ddof=1) if len(self.estimators_) > 1 else np.zeros_like(mean)
        if self.calibration == "spread":
            return (mean, spread) if return_std else mean
        if self.calibration == "global":
            bias = np.zeros_like(mean)
            resid_ms = np.full_like(mean, np.mean(self.oob_residual_**2))
        else:
            bias, resid_ms = self._local_residuals(mean)
        mean = mean + bias
        std = np.sqrt(spread**2 + resid_ms)
        return (mean, std) if return_std else mean

    def _member_predictions(self, Xs: np.ndarray) -> np.ndarray:
        """Each member's prediction, shape (n_estimators, n_samples).

        The RBF kernel expansion is evaluated directly on all members' support vectors at
        once: a pruner predicts one trial at a time, where NuSVR.predict's per-call
        validation would cost more than the arithmetic.
        """
        sv, sv_sq, coef, offsets, gamma = self._support
        weighted = _rbf_kernel(Xs, sv, sv_sq, gamma) * coef[None, :]
        sums = np.add.reduceat(weighted, offsets, axis=1) if weighted.shape[1] else weighted
        return self._clip_standardised(sums.T + self._intercepts[:, None])

    def _clip_standardised(self, prediction: np.ndarray) -> np.ndarray:
        """Clip standardised predictions to the widened range of the training targets."""
        low, high = self.target_range_
        margin = _EXTRAPOLATION_MARGIN * (high - low)
        return np.clip(
            prediction,
            (low - margin - self.y_mean_) / self.y_scale_,
            (high + margin - self.y_mean_) / self.y_scale_,
        )

    def _window_size(self) -> int:
        """How many out-of-bag residuals the local calibration averages."""
        n = len(self.oob_prediction_)
        k = self.n_neighbors
        k = int(k) if isinstance(k, (int, np.integer)) else int(np.ceil(k * n))
        return min(n, max(_MIN_NEIGHBORS, k))

    def _window_residuals(self) -> tuple[np.ndarray, np.ndarray]:
        """The mean correction and the residual variance of every window of ``k`` neighbouring
        out-of-bag residuals (by sorted prediction), indexed by the window's first position
        (``"upper"``: their median and upper semi-variance).

        Computed once in ``fit``: a pruner predicts one trial per call, where a median per
        call cost more than the members' predictions.
        """
        k = self._window_size()
        n_windows = len(self.oob_residual_) - k + 1
        bias = np.empty(n_windows)
        resid_ms = np.empty(n_windows)
        for lo in range(n_windows):
            window = self.oob_residual_[lo : lo + k]
            if self.calibration == "upper":
                bias[lo] = np.median(window)
                resid_ms[lo] = 2.0 * np.mean(np.maximum(window - bias[lo], 0.0) ** 2)
            else:
                bias[lo] = window.mean()
                resid_ms[lo] = np.mean(window**2)
        # A window where the model happened to do well must not claim more precision than the
        # model has overall; the MAD keeps the far bad tail out of that floor.
        return bias, np.maximum(resid_ms, self.robust_residual_scale_**2)

    def _local_residuals(self, prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mean correction and the residual variance per prediction, from the window of
        the nearest out-of-bag predictions."""
        n = len(self.oob_prediction_)
        k = self._window_size()
        # The k out-of-bag predictions closest to p form a contiguous window of the sorted
        # predictions; slide it to the best-centred position.
        pos = np.searchsorted(self.oob_prediction_, prediction)
        lo = np.minimum(np.maximum(0, pos - k // 2), n - k)
        bias, resid_ms = self._windows
        return bias[lo], resid_ms[lo]

    @staticmethod
    def _make_svr(nu: float, C: float, gamma: float, n_features: int) -> NuSVR:
        return NuSVR(nu=nu, C=C, gamma=gamma / max(1, n_features), kernel="rbf")

    def _choose_params(
        self, Xs: np.ndarray, ys: np.ndarray, rng: np.random.RandomState
    ) -> dict[str, float]:
        n_samples, n_features = Xs.shape
        nus = [self.nu] if self.nu is not None else [0.5]
        cs = [self.C] if self.C is not None else list(_DEFAULT_C_GRID)
        gammas = [self.gamma] if self.gamma is not None else list(_DEFAULT_GAMMA_FACTORS)
        candidates = [(nu, c, g) for nu in nus for c in cs for g in gammas]
        if len(candidates) == 1 or n_samples < 9:
            nu, c, g = candidates[len(candidates) // 2]
            return {"nu": nu, "C": c, "gamma": g}
        folds = list(KFold(3, shuffle=True, random_state=rng.randint(2**31)).split(Xs))
        best, best_err = candidates[0], np.inf
        for nu, c, g in candidates:
            err = 0.0
            for train, test in folds:
                svr = self._make_svr(nu, c, g, n_features).fit(Xs[train], ys[train])
                err += float(np.sum((_svr_predict(svr, Xs[test]) - ys[test]) ** 2))
            if err < best_err:
                best, best_err = (nu, c, g), err
        nu, c, g = best
        return {"nu": nu, "C": c, "gamma": g}


def _stack_support(
    estimators: list[NuSVR],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """All members' support vectors stacked, their squared norms, dual coefficients, the
    offset where each member's block starts, and the shared kernel width."""
    sv = np.vstack([e.support_vectors_ for e in estimators])
    coef = np.concatenate([e.dual_coef_[0] for e in estimators])
    sizes = [len(e.support_vectors_) for e in estimators]
    if min(sizes) == 0:  # reduceat needs non-empty blocks: add a zero-weight vector
        sv = np.vstack(
            [np.vstack([e.support_vectors_, np.zeros((1, sv.shape[1]))]) for e in estimators]
        )
        coef = np.concatenate([np.append(e.dual_coef_[0], 0.0) for e in estimators])
        sizes = [n + 1 for n in sizes]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    return sv, np.sum(sv**2, axis=1), coef, offsets, float(estimators[0].gamma)


def _svr_predict(svr: NuSVR, X: np.ndarray) -> np.ndarray:
    """``svr.predict(X)`` for a fitted RBF ν-SVR with a float ``gamma``, from its public
    attributes: the out-of-bag and cross-validation predictions of a refit are many small
    calls, where NuSVR.predict's input validation costs more than the arithmetic."""
    sv = svr.support_vectors_
    kernel = _rbf_kernel(X, sv, np.sum(sv**2, axis=1), float(svr.gamma))
    return kernel @ svr.dual_coef_[0] + svr.intercept_[0]


def _rbf_kernel(X: np.ndarray, sv: np.ndarray, sv_sq: np.ndarray, gamma: float) -> np.ndarray:
    """The RBF kernel between the rows of ``X`` and the support vectors ``sv`` (``sv_sq``:
    their squared norms), shape (n_samples, n_support)."""
    sq_dist = np.sum(X**2, axis=1)[:, None] - 2.0 * X @ sv.T + sv_sq[None, :]
    return np.exp(-gamma * np.maximum(sq_dist, 0.0))


def _scale(std: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    """The standard deviation where it is more than rounding noise on values of
    ``magnitude``, else the magnitude itself (1 for zeros): relative, never an absolute floor,
    so that standardised data are the same whatever the units and offset of the input."""
    fallback = np.where(magnitude > 0.0, magnitude, 1.0)
    return np.where(std > _RELATIVE_NOISE * magnitude, std, fallback)


def _check_number(
    name: str,
    value: Any,
    kind: type,
    low: float,
    high: float,
    closed_low: bool,
    closed_high: bool,
    allow_none: bool = False,
) -> None:
    if value is None and allow_none:
        return
    is_kind = isinstance(value, kind) and not isinstance(value, bool)
    if not is_kind:
        expected = "an int" if kind is Integral else "a float"
        none = " or None" if allow_none else ""
        raise TypeError(
            f"The {name!r} parameter of SRMEnsemble must be {expected}{none}, but got "
            f"{name}={value!r}."
        )
    above = value >= low if closed_low else value > low
    below = value <= high if closed_high else value < high
    if not (above and below) or math.isnan(value):
        left = "[" if closed_low else "("
        right = "]" if closed_high else ")"
        raise ValueError(
            f"The {name!r} parameter of SRMEnsemble must be in {left}{low}, {high}{right}, "
            f"but got {name}={value!r}."
        )
