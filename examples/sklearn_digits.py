"""Tune an SGD classifier on scikit-learn's bundled digits with SRPPruner (no download)."""

from __future__ import annotations

import numpy as np
import optuna
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split

from optuna_srp import SRPPruner


X, y = load_digits(return_X_y=True)
X_train, X_valid, y_train, y_valid = train_test_split(X / 16.0, y, random_state=0)
CLASSES = np.unique(y)
N_EPOCHS = 30


def objective(trial: optuna.Trial) -> float:
    clf = SGDClassifier(
        alpha=trial.suggest_float("alpha", 1e-7, 1e-1, log=True),
        learning_rate=trial.suggest_categorical("learning_rate", ["constant", "invscaling"]),
        eta0=trial.suggest_float("eta0", 1e-5, 1.0, log=True),
        random_state=0,
    )
    for epoch in range(N_EPOCHS):
        clf.partial_fit(X_train, y_train, classes=CLASSES)
        trial.report(clf.score(X_valid, y_valid), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return clf.score(X_valid, y_valid)


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", pruner=SRPPruner(seed=0), sampler=optuna.samplers.TPESampler(seed=0)
    )
    study.optimize(objective, n_trials=60)
    states = [t.state for t in study.trials]
    epochs = sum(len(t.intermediate_values) for t in study.trials)
    print(
        f"complete: {states.count(optuna.trial.TrialState.COMPLETE)}, "
        f"pruned: {states.count(optuna.trial.TrialState.PRUNED)}"
    )
    print(
        f"epochs trained: {epochs} of {len(study.trials) * N_EPOCHS} "
        f"({len(study.trials) * N_EPOCHS / epochs:.1f}x fewer)"
    )
    print(f"best accuracy: {study.best_value:.4f} with {study.best_params}")
