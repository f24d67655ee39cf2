"""What :func:`plot_predictions` draws, read from a study, shared by its plotting back ends."""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any

from optuna.study import Study
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState


# The interval drawn around a prediction: a central 90% Gaussian interval, mean ± 1.645 std.
INTERVAL_Z = 1.645
_SHOWN_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


@dataclass(frozen=True)
class _Prediction:
    step: int
    mean: float
    std: float
    probability: float | None
    reason: str | None


@dataclass(frozen=True)
class _Curve:
    number: int
    state: TrialState
    steps: list[int]
    values: list[float]  # non-finite values as NaN: a gap in the line
    prediction: _Prediction | None  # for pruned trials that SRPPruner explained


@dataclass(frozen=True)
class _PredictionsInfo:
    curves: list[_Curve]
    best_number: int | None
    best_value: float | None
    target_name: str


def _get_predictions_info(study: Study, target_name: str) -> _PredictionsInfo:
    if len(study.directions) > 1:
        raise ValueError(
            "plot_predictions supports single-objective studies only, but the study has "
            f"{len(study.directions)} objectives."
        )
    if not isinstance(target_name, str):
        raise TypeError(f"target_name must be a str, but got {target_name=!r}.")
    curves = []
    for trial in study.get_trials(deepcopy=False, states=_SHOWN_STATES):
        if not trial.intermediate_values:
            continue
        steps = sorted(trial.intermediate_values)
        values = [_finite_or_nan(trial.intermediate_values[s]) for s in steps]
        prediction = _read_prediction(trial) if trial.state == TrialState.PRUNED else None
        curves.append(_Curve(trial.number, trial.state, steps, values, prediction))

    best_number = best_value = None
    sign = -1.0 if study.direction == StudyDirection.MINIMIZE else 1.0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        value = trial.value
        if value is None or not math.isfinite(value):
            continue
        if best_value is None or sign * value > sign * best_value:
            best_number, best_value = trial.number, value
    return _PredictionsInfo(curves, best_number, best_value, target_name)


def _read_prediction(trial: FrozenTrial) -> _Prediction | None:
    """The prediction SRPPruner stored when it pruned the trial, at the trial's last step."""
    attrs = trial.user_attrs
    mean = _as_float(attrs.get("srp:predicted_value"))
    std = _as_float(attrs.get("srp:predicted_std"))
    if mean is None or std is None or trial.last_step is None:
        return None
    reason = attrs.get("srp:reason")
    return _Prediction(
        step=trial.last_step,
        mean=mean,
        std=max(std, 0.0),
        probability=_as_float(attrs.get("srp:probability")),
        reason=reason if isinstance(reason, str) else None,
    )


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _finite_or_nan(value: float) -> float:
    return value if math.isfinite(value) else math.nan
