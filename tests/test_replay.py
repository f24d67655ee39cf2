"""SRPPruner replayed through real Optuna studies: the best configuration survives and steps
are saved (as fractions of the steps a study without pruning trains, never as timings)."""

from __future__ import annotations

import numpy as np
from optuna.distributions import FloatDistribution
import pytest

from optuna_srp import SRPPruner
from optuna_srp.benchmark._corpus import Config
from optuna_srp.benchmark._corpus import Corpus
from optuna_srp.benchmark._corpus import load_corpus
from optuna_srp.benchmark._replay import replay_study
from tests._shared import needs_shared_curves
from tests._shared import SHARED_CURVES
from tests._synthetic import curve
from tests._synthetic import N_STEPS


def _synthetic_corpus(n: int = 150, seed: int = 0) -> Corpus:
    rng = np.random.default_rng(seed)
    configs = [
        Config(id=i, params={"x": float(x)}, curve=np.array(curve(float(x), rng)))
        for i, x in enumerate(rng.uniform(0, 1, n))
    ]
    return Corpus(
        name="synthetic",
        metadata={"direction": "maximize", "n_steps": N_STEPS},
        distributions={"x": FloatDistribution(0, 1)},
        configs=configs,
    )


@pytest.mark.parametrize("ordering", [0, 1])
def test_synthetic_replay_keeps_the_best_and_saves_steps(ordering: int) -> None:
    row = replay_study(_synthetic_corpus(), lambda: SRPPruner(seed=0), ordering=ordering)
    assert row["hit"]
    assert row["epochs_spent"] / row["epochs_full"] < 0.7


@needs_shared_curves
@pytest.mark.parametrize(
    "name", ["accelerating_nas-metaqnn_cifar10", "accelerating_nas-deep_resnets_cifar10"]
)
def test_recorded_curves_replay_keeps_the_best_and_saves_steps(name: str) -> None:
    corpus = load_corpus(SHARED_CURVES / f"{name}.jsonl.gz")
    row = replay_study(corpus, lambda: SRPPruner(seed=0), ordering=0, n_trials=200)
    assert row["hit"], row["found_best"]
    assert row["epochs_spent"] / row["epochs_full"] < 0.6
