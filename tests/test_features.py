"""CurveFeaturizer on its own (it is usable without the pruner, which always passes it 10 curve
points): the number of curve points down to one, on hostile curves."""

from __future__ import annotations

import math

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
import pytest

from optuna_srp import CurveFeaturizer
from optuna_srp._features import make_record
from optuna_srp._features import robust_center_scale


def _trial(curve: dict[int, float], x: float) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        value=0.5,
        params={"x": x},
        distributions={"x": FloatDistribution(0.0, 1.0)},
        intermediate_values=curve,
    )


def _records() -> list:
    # Different lengths, steps from 0, a diverged run, a run that reported only at step 6.
    curves = [
        {s: 0.5 + 0.02 * s for s in range(12)},
        {s: 0.4 + 0.01 * s for s in range(3)},
        {s: (math.nan if s > 4 else 0.3 + 0.05 * s) for s in range(12)},
        {s: (-math.inf if s == 2 else 0.2 + 0.03 * s) for s in range(8)},
        {6: 0.45},
    ]
    return [make_record(_trial(c, i / 5), 1.0) for i, c in enumerate(curves)]


@pytest.mark.parametrize("max_curve_points", [1, 2, 10, 50])
def test_curve_points_bound_the_features_down_to_one(max_curve_points: int) -> None:
    records = _records()
    featurizer = CurveFeaturizer(7, max_curve_points)
    X = featurizer.fit_transform(records)
    n_points = min(max_curve_points, 8)  # steps 0-7 were reported at or before step 7
    assert featurizer.grid_.size == n_points
    assert featurizer.grid_[0] == 0  # evenly spaced from the first step
    if n_points > 1:
        assert featurizer.grid_[-1] == 7  # to the decision step
    # The curve, its first and second differences, best, recent mean, non-finite share, and
    # the parameter with its missing-value indicator.
    width = n_points + max(n_points - 1, 0) + max(n_points - 2, 0) + 3 + 2
    assert X.shape == (len(records), width)
    assert np.isfinite(X).all()
    # A trial that has reported nothing up to the decision step is encoded too.
    late = make_record(_trial({9: 0.9}, 0.5), 1.0)
    assert np.isfinite(featurizer.transform([late])).all()


@pytest.mark.parametrize("n_diverged", [0, 6, 20, 59])
def test_robust_scale_keeps_diverged_values_out(n_diverged: int) -> None:
    good = np.linspace(0.0, 1.0, 61)
    values = np.concatenate([good, np.full(n_diverged, -1e16)])
    center, scale = robust_center_scale(values)
    q10, q90 = np.percentile(values, [10, 90])
    assert 0.0 < scale <= 20.0 * (q90 - center)
    if n_diverged == 0:
        assert scale == pytest.approx(q90 - q10)  # the 10-90% range where nothing diverged


def test_robust_scale_of_a_top_tied_at_the_median_does_not_depend_on_an_offset() -> None:
    values = np.array([0.5] * 30 + [0.3] * 10)
    center, scale = robust_center_scale(values)
    shifted_center, shifted_scale = robust_center_scale(values + 100.0)
    assert shifted_center == pytest.approx(center + 100.0)
    assert shifted_scale == pytest.approx(scale) == pytest.approx(0.2)  # the 10-90% range
