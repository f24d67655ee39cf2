"""Learning curves the tests make themselves: a family whose final value is a known function
of a hyper-parameter."""

from __future__ import annotations

from collections.abc import Callable
import math

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.storages.journal import JournalFileBackend


N_STEPS = 20


def final_value(x: float) -> float:
    """The true final accuracy of configuration ``x`` in [0, 1]: best at x = 0.7."""
    return 0.9 - 0.6 * (x - 0.7) ** 2


def curve(x: float, rng: np.random.Generator, noise: float = 0.005) -> list[float]:
    """A saturating curve that ends at ``final_value(x)``; its speed also depends on x."""
    rate = 0.15 + 0.3 * x
    steps = np.arange(1, N_STEPS + 1)
    shape = (1 - np.exp(-rate * steps)) / (1 - math.exp(-rate * N_STEPS))
    return list(final_value(x) * shape + rng.normal(0, noise, N_STEPS))


def add_complete_trials(study: optuna.Study, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    sign = 1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
    for x in rng.uniform(0, 1, n):
        values = [sign * v for v in curve(float(x), rng)]
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": float(x)},
                distributions={"x": FloatDistribution(0, 1)},
                value=values[-1],
                intermediate_values=dict(enumerate(values, start=1)),
            )
        )


def objective(trial: optuna.Trial) -> float:
    """A study's objective: trial ``x`` reports the synthetic curve of ``x``, step by step, and
    stops when the pruner says so (noise seeded by the trial number)."""
    x = trial.suggest_float("x", 0.0, 1.0)
    values = curve(x, np.random.default_rng(trial.number))
    for step, v in enumerate(values, start=1):
        trial.report(v, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return values[-1]


def journal_workers(
    path: str, make_pruner: Callable[[], optuna.pruners.BasePruner], n: int = 2
) -> list[optuna.Study]:
    """``n`` workers on one maximising study in a journal file at ``path``, each with its own
    pruner from ``make_pruner``."""
    storage = optuna.storages.JournalStorage(JournalFileBackend(path))
    return [
        optuna.create_study(
            study_name="s",
            storage=storage,
            direction="maximize",
            pruner=make_pruner(),
            load_if_exists=True,
        )
        for _ in range(n)
    ]
