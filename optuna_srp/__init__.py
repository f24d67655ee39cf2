"""optuna-srp: an Optuna pruner that predicts final values from partial learning curves."""

from optuna_srp._features import CurveFeaturizer
from optuna_srp._features import CurveRecord
from optuna_srp._hyperband import FastHyperbandPruner
from optuna_srp._model import SRMEnsemble
from optuna_srp._pruner import SRPPruner


__version__ = "0.1.0"

__all__ = [
    "CurveFeaturizer",
    "CurveRecord",
    "FastHyperbandPruner",
    "SRMEnsemble",
    "SRPPruner",
]
