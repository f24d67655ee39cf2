"""The feature layer: trials -> a numeric matrix for the regression models.

Everything here works in a "higher is better" orientation: the values of a minimised objective
are negated once, when a trial becomes a :class:`CurveRecord`, so the model and the decision
never look at the study's direction again.

Non-finite values (NaN, ±inf) mean a diverged run and are treated as the worst value seen.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import FrozenTrial


ExtraFeatures = Callable[[FrozenTrial], Sequence[float]]

# How far below the median a diverged or very bad run is clipped, in units of the 10-90% range
# (robust_center_scale). Only the bad side is clipped: the good side is where decisions are made.
_BAD_SIDE_CLIP = 3.0
# The 10-90% range of the shared corpora's final values is 1.5-16 times the distance from the
# median up to the 90th percentile (LCBench balanced 9.5, TaskSet IRNN64 16); where runs
# diverged it is 160 (TaskSet GRU128) and up to 1e18 in a study's sample.
_MAX_TAIL_RATIO = 20.0
# A spread below this fraction of the values' magnitude is rounding noise, not information.
_RELATIVE_NOISE = 1e-12


@dataclass(frozen=True)
class CurveRecord:
    """One trial as the models see it.

    Attributes:
        number: The trial number.
        steps: Reported steps, sorted.
        values: Values at ``steps``, oriented so that higher is better; NaN where non-finite.
        params: The trial's parameters.
        distributions: The trial's parameter distributions.
        extra: The user's extra features (empty when none).
        final: The trial's value, oriented like ``values`` (NaN if non-finite), or
            :obj:`None` for a trial that has not completed.
    """

    number: int
    steps: np.ndarray
    values: np.ndarray
    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]
    extra: np.ndarray
    final: float | None

    @property
    def best_value(self) -> float:
        """The best finite value reported so far, or ``-inf``."""
        finite = self.values[np.isfinite(self.values)]
        return float(finite.max()) if finite.size else -math.inf


def make_record(
    trial: FrozenTrial, sign: float, extra_features: ExtraFeatures | None = None
) -> CurveRecord:
    """Build a :class:`CurveRecord` from a trial.

    Args:
        trial: The trial.
        sign: ``1.0`` for a maximised objective, ``-1.0`` for a minimised one.
        extra_features: The user's callable that maps a trial to extra numeric features.

    Raises:
        ValueError: If ``extra_features`` returns something that is not a sequence of numbers.
    """
    items = sorted(trial.intermediate_values.items())
    steps = np.array([s for s, _ in items], dtype=np.int64)
    values = np.array([v for _, v in items], dtype=np.float64) * sign
    values[~np.isfinite(values)] = np.nan
    extra = np.empty(0)
    if extra_features is not None:
        raw = extra_features(trial)
        try:
            extra = np.asarray(raw, dtype=np.float64).ravel()
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"extra_features must return a sequence of numbers, but returned {raw!r} for "
                f"trial {trial.number}."
            ) from e
    final: float | None = None
    if trial.value is not None and trial.state.is_finished():
        final = float(trial.value) * sign
        if not math.isfinite(final):
            final = math.nan
    return CurveRecord(
        number=trial.number,
        steps=steps,
        values=values,
        params=dict(trial.params),
        distributions=dict(trial.distributions),
        extra=extra,
        final=final,
    )


def robust_center_scale(values: np.ndarray) -> tuple[float, float]:
    """Median and 10-90% range of the finite values (higher is better), the range at most
    ``_MAX_TAIL_RATIO`` times the distance from the median up to the 90th percentile.

    The inter-quartile range collapses where most runs sit at chance, as on TaskSet and
    LCBench; the 10-90% range seldom does, and further percentiles are used where it does.
    The cap keeps diverged runs out of the scale: they can be a tenth of a study's runs or
    more (TaskSet losses of 1e9 and more), and on TaskSet GRU128 with source trials the
    uncapped range was 4e16 against a good side of 0.02, which left the models blind to the
    runs that learn. Where no value is above the median the range is not capped. A range
    counts where it is more than rounding noise on the values it spans, and with no spread at
    all the scale is the median's magnitude (1 only for zeros): the scale follows the values'
    units, as an absolute floor would not.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    center = float(np.median(finite))
    for lo, hi in ((10, 90), (1, 99), (0, 100)):
        q_lo, q_hi = (float(q) for q in np.percentile(finite, [lo, hi]))
        spread = q_hi - q_lo
        if q_hi > center:  # a top tied at the median caps nothing, as an offset would
            spread = min(spread, _MAX_TAIL_RATIO * (q_hi - center))
        if spread > _RELATIVE_NOISE * max(abs(q_hi), abs(center)):
            return center, spread
    return center, abs(center) if center != 0.0 else 1.0


def encode_target(finals: np.ndarray) -> np.ndarray:
    """Targets for the models: diverged runs and the far bad tail are clipped to a floor."""
    center, scale = robust_center_scale(finals)
    floor = center - _BAD_SIDE_CLIP * scale
    target = np.where(np.isfinite(finals), finals, floor)
    return np.maximum(target, floor)


class CurveFeaturizer:
    """Turns trials cut at one decision step into the feature matrix of that step's model.

    Features: the curve sampled at up to ``max_curve_points`` steps up to the decision step, its
    first and second differences, the best value so far, the mean of the last quarter of the values
    reported (robust to jittery curves), the fraction of non-finite values among the sampled ones,
    the encoded hyper-parameters (numeric ones mapped to [0, 1] in log space where the distribution
    is log, categoricals one-hot, each with a missing-value indicator so that conditional
    parameters work) and the user's extra features.

    Args:
        step: The decision step. Only values reported at or before it are used; before its
            first report a trial is taken to be at its first value, so a trial with no report
            by ``step`` would be described by a later value
            (:class:`~optuna_srp.SRPPruner` leaves such trials out of the step's training set).
        max_curve_points: The most curve values used as features, evenly spaced in the steps
            of the training trials; it bounds the cost for long curves.
    """

    def __init__(self, step: int, max_curve_points: int = 10) -> None:
        self.step = step
        self.max_curve_points = max_curve_points

    def fit(self, records: Sequence[CurveRecord]) -> CurveFeaturizer:
        all_steps = np.unique(np.concatenate([r.steps for r in records] + [np.empty(0, int)]))
        all_steps = all_steps[all_steps <= self.step]
        if all_steps.size == 0:
            all_steps = np.array([self.step])
        picks = np.unique(np.round(np.linspace(0, all_steps.size - 1, self.max_curve_points)))
        self.grid_ = all_steps[picks.astype(int)]
        raw = np.array([self._sample_curve(r) for r in records])
        self.center_, self.scale_ = robust_center_scale(raw[:, -1])
        finite_min = np.where(np.isfinite(raw), raw, np.inf).min(axis=0)
        self.worst_ = np.where(np.isfinite(finite_min), finite_min, self.center_)
        self.worst_ = np.maximum(self.worst_, self.center_ - _BAD_SIDE_CLIP * self.scale_)

        self.numeric_params_: list[str] = []
        self.categories_: dict[str, list[str]] = {}
        for r in records:
            for name, dist in r.distributions.items():
                if isinstance(dist, CategoricalDistribution):
                    keys = self.categories_.setdefault(name, [])
                    keys.extend(repr(c) for c in dist.choices if repr(c) not in keys)
                elif name not in self.numeric_params_:
                    self.numeric_params_.append(name)
        self.numeric_params_ = [p for p in self.numeric_params_ if p not in self.categories_]
        self.n_extra_ = max((r.extra.size for r in records), default=0)
        return self

    def transform(self, records: Sequence[CurveRecord]) -> np.ndarray:
        return np.array([self._encode(r) for r in records], dtype=np.float64)

    def fit_transform(self, records: Sequence[CurveRecord]) -> np.ndarray:
        return self.fit(records).transform(records)

    def _sample_curve(self, record: CurveRecord) -> np.ndarray:
        if record.steps.size == 0:
            return np.full(self.grid_.size, np.nan)
        idx = np.searchsorted(record.steps, self.grid_, side="right") - 1
        # Before its first report a trial is taken to be at its first value.
        return record.values[np.maximum(idx, 0)]

    def _encode(self, record: CurveRecord) -> np.ndarray:
        raw = self._sample_curve(record)
        nonfinite = ~np.isfinite(raw)
        curve = np.where(nonfinite, self.worst_, raw)
        curve = (np.maximum(curve, self.worst_) - self.center_) / self.scale_
        seen = record.values[record.steps <= self.step]
        best = np.nanmax(seen) if np.isfinite(seen).any() else self.worst_[-1]
        best = (max(best, self.worst_[-1]) - self.center_) / self.scale_
        recent = seen[len(seen) - max(1, len(seen) // 4) :] if seen.size else seen
        recent = recent[np.isfinite(recent)]
        smooth = float(recent.mean()) if recent.size else self.worst_[-1]
        smooth = (max(smooth, self.worst_[-1]) - self.center_) / self.scale_
        parts = [
            curve,
            np.diff(curve),
            np.diff(curve, n=2),
            [best, smooth, float(nonfinite.mean())],
            self._encode_params(record),
            self._encode_extra(record),
        ]
        return np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts])

    def _encode_params(self, record: CurveRecord) -> list[float]:
        out: list[float] = []
        for name in self.numeric_params_:
            dist = record.distributions.get(name)
            value = record.params.get(name)
            if isinstance(dist, (FloatDistribution, IntDistribution)) and value is not None:
                out += [_unit_interval(float(value), dist), 0.0]
            else:
                out += [0.5, 1.0]
        for name, keys in self.categories_.items():
            onehot = [0.0] * (len(keys) + 1)
            if name in record.params and isinstance(
                record.distributions.get(name), CategoricalDistribution
            ):
                key = repr(record.params[name])
                if key in keys:
                    onehot[keys.index(key)] = 1.0
            else:
                onehot[-1] = 1.0
            out += onehot
        return out

    def _encode_extra(self, record: CurveRecord) -> np.ndarray:
        extra = np.zeros(self.n_extra_)
        n = min(self.n_extra_, record.extra.size)
        extra[:n] = record.extra[:n]
        extra[~np.isfinite(extra)] = 0.0
        return extra


def _unit_interval(value: float, dist: FloatDistribution | IntDistribution) -> float:
    low, high = float(dist.low), float(dist.high)
    if dist.log and low > 0 and value > 0:
        low, high, value = math.log(low), math.log(high), math.log(value)
    if high <= low:
        return 0.5
    return (value - low) / (high - low)
