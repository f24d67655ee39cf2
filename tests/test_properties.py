"""Property-based tests: SRPPruner never breaks a study.

The studies come from :func:`optuna_srp.benchmark._soak.generate_study`, the generator of the
soak benchmark, driven here by hypothesis (``st.randoms``) so that failures shrink.
"""

from __future__ import annotations

import argparse
import math
import random
import warnings

from hypothesis import assume
from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
import optuna
from optuna.trial import TrialState
import pytest

from optuna_srp import SRPPruner
from optuna_srp.benchmark import _soak


optuna.logging.set_verbosity(optuna.logging.WARNING)

_SETTINGS = dict(
    deadline=None,
    derandomize=True,  # the same examples on every run: CI must not flake
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _study(direction: str, pruner: SRPPruner) -> optuna.Study:
    return optuna.create_study(
        direction=direction,  # type: ignore[arg-type]
        pruner=pruner,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )


def _add_complete(study: optuna.Study, n: int, scale: float) -> None:
    for i in range(n):
        curve = {s: scale * (1.0 + 0.1 * i + 1.0 / (s + 1)) for s in range(5)}
        study.add_trial(
            optuna.trial.create_trial(
                value=curve[4],
                params={"x": i / n},
                distributions={"x": optuna.distributions.FloatDistribution(0.0, 1.0)},
                intermediate_values=curve,
            )
        )


def _seed_overflow_case() -> None:
    """More complete trials than ``max_train_trials`` and a seed near 2**31: the subsample's
    RandomState seed ``seed * 31 + n`` is over 2**32 - 1."""
    pruner = SRPPruner(n_startup_trials=2, seed=2**31 - 1, max_train_trials=10)
    study = _study("minimize", pruner)
    _add_complete(study, 11, 1.0)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
    trial.report(1.5, 0)
    trial.should_prune()


def _huge_values_case() -> tuple[float, float] | None:
    """Values of 1e300: their squares overflow, and the ensemble's target std is inf."""
    pruner = SRPPruner(n_startup_trials=2, seed=0)
    study = _study("minimize", pruner)
    _add_complete(study, 6, 1e300)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
    trial.report(3e300, 0)
    trial.report(2e300, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pruner.predict(study, study._storage.get_trial(trial._trial_id))


def _generate(rnd: random.Random) -> _soak.StudySpec:
    return _soak.generate_study(rnd, extreme=True)


def test_large_seed_with_subsampling_does_not_raise() -> None:
    _seed_overflow_case()


def test_huge_values_give_finite_predictions() -> None:
    prediction = _huge_values_case()
    assert prediction is not None
    assert all(math.isfinite(v) for v in prediction)


@settings(max_examples=200, **_SETTINGS)  # type: ignore[arg-type]
@given(st.randoms(use_true_random=False))
def test_prune_never_raises_nor_prunes_the_best(rnd: random.Random) -> None:
    spec = _generate(rnd)
    outcome = _soak.run_study(spec)  # any exception fails the test
    assert outcome.violations == [], spec.description
    # Decisions were really taken at every requested point.
    assert len(outcome.decisions) == len(set(spec.decide_after))


@settings(max_examples=40, **_SETTINGS)  # type: ignore[arg-type]
@given(st.randoms(use_true_random=False))
def test_decisions_are_reproducible_with_a_fixed_seed(rnd: random.Random) -> None:
    spec = _generate(rnd)
    first = _soak.run_study(spec, _soak.make_pruner(spec))
    second = _soak.run_study(spec, _soak.make_pruner(spec))
    assert first.signature() == second.signature()


def _with_a_model(rnd: random.Random) -> tuple[_soak.StudySpec, list[float]]:
    """A generated study with at least two finite complete trials, and n_startup_trials no
    more than their number, so that the models decide (the wrapped pruner is off): in most
    generated studies too few trials are complete, and "not pruned" would hold trivially."""
    spec = _generate(rnd)
    spec.wrapped_pruner = False
    complete = [
        t.value
        for t in spec.trials
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
    ]
    assume(len(complete) >= 2 and len(spec.reports) >= 1)
    spec.pruner_kwargs["n_startup_trials"] = min(
        spec.pruner_kwargs["n_startup_trials"], len(complete)
    )
    return spec, complete


@settings(max_examples=40, **_SETTINGS)  # type: ignore[arg-type]
@given(st.randoms(use_true_random=False), st.sampled_from(["minimize", "maximize"]))
def test_a_trial_at_least_as_good_as_the_best_is_never_pruned(
    rnd: random.Random, direction: str
) -> None:
    # The sharpest form of the property: every threshold at 1 prunes everything else, and the
    # running trial reports the best complete value first, at its first step, so that every
    # later decision is one where the trial holds the best.
    spec, complete = _with_a_model(rnd)
    spec.direction = direction  # type: ignore[assignment]
    spec.pruner_kwargs.update(threshold=1.0, n_warmup_steps=0, interval_steps=1)
    best = min(complete) if direction == "minimize" else max(complete)
    first = min(s for s, _ in spec.reports)
    spec.reports = [(first, best)] + [(s, v) for s, v in spec.reports if s != first]
    spec.decide_after = list(range(1, len(spec.reports) + 1))
    outcome = _soak.run_study(spec)
    assert outcome.violations == [], spec.description
    assert all(d.holds_best and not d.pruned for d in outcome.decisions)
    # The models were asked: the property is not held by the lack of one.
    assume(any(d.prediction is not None for d in outcome.decisions))


@settings(max_examples=40, **_SETTINGS)  # type: ignore[arg-type]
@given(st.randoms(use_true_random=False))
def test_threshold_zero_prunes_only_laggards(rnd: random.Random) -> None:
    # threshold=0 is a valid value (tests/test_arguments.py) that turns the main rule off: no
    # probability is below 0. The laggard rule, whose threshold is not an argument, remains,
    # and so does the stop of a diverged run, which reads no model.
    spec, _ = _with_a_model(rnd)
    spec.pruner_kwargs.update(threshold=0.0)
    outcome = _soak.run_study(spec)
    rules = {d.rule for d in outcome.decisions if d.pruned}
    assert rules <= {"pruned:laggard", "pruned:diverged"}, spec.description
    assume(any(d.prediction is not None for d in outcome.decisions))


@pytest.mark.parametrize("seed", [0, 1])
def test_soak_sample(seed: int, capsys: pytest.CaptureFixture[str]) -> None:
    """The CI sample of the soak benchmark (the full run is ``python -m
    optuna_srp.benchmark soak``)."""
    parser = argparse.ArgumentParser()
    _soak.add_arguments(parser)
    args = parser.parse_args(["--n-studies", "100", "--seed", str(seed), "--repro-every", "5"])
    assert _soak.run(args) == 0, capsys.readouterr().out
