"""Decisions on the steps and values a study reports: complete trials of different lengths,
where step numbering starts, and the objective's units."""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
import pytest

from optuna_srp import SRMEnsemble
from optuna_srp import SRPPruner
from optuna_srp.benchmark import _soak
from tests import _synthetic as synthetic


optuna.logging.set_verbosity(optuna.logging.WARNING)

_X = FloatDistribution(0.0, 1.0)
_SETTINGS: dict[str, Any] = dict(
    deadline=None,
    derandomize=True,  # the same examples on every run: CI must not flake
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _add(
    study: optuna.Study, curve: dict[int, float], x: float, value: float | None = None
) -> None:
    study.add_trial(
        optuna.trial.create_trial(
            value=curve[max(curve)] if value is None else value,
            params={"x": x},
            distributions={"x": _X},
            intermediate_values=curve,
        )
    )


def _decisions(study: optuna.Study, curve: dict[int, float], x: float = 0.5) -> dict[int, bool]:
    """Report ``curve`` as a new trial, deciding after each report."""
    return {step: pruned for step, (pruned, _) in _rules(study, curve, x).items()}


def _rules(
    study: optuna.Study, curve: dict[int, float], x: float = 0.5
) -> dict[int, tuple[bool, str | None]]:
    """Report ``curve`` as a new trial, deciding after each report; each decision with the
    trial's ``srp:decision`` after it (the rule that decided; None while no model decides)."""
    study.enqueue_trial({"x": x})
    trial = study.ask({"x": _X})
    out = {}
    for step in sorted(curve):
        trial.report(curve[step], step)
        pruned = trial.should_prune()
        attrs = study._storage.get_trial(trial._trial_id).user_attrs
        out[step] = (pruned, attrs.get("srp:decision"))
    return out


# ---------------------------------------------------------------------------------------------
# Complete trials of different lengths; the last step.


def _early_stopped_study(pruner: SRPPruner, seed: int) -> tuple[optuna.Study, dict[int, float]]:
    """15 runs stopped by their own early stopping at epoch 10; the best ran 60 epochs and
    learnt slowly (behind the others at first)."""
    rng = np.random.default_rng(seed)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for i in range(15):
        final = rng.uniform(0.5, 0.7)
        curve = {e: final * (1 - np.exp(-0.5 * (e + 1))) + rng.normal(0, 0.005) for e in range(10)}
        _add(study, curve, x=float(rng.uniform(0, 1)))
    best = {e: 0.9 * (1 - np.exp(-0.06 * (e + 1))) + rng.normal(0, 0.005) for e in range(60)}
    _add(study, best, x=0.5, value=0.9)
    return study, best


@pytest.mark.parametrize("seed", range(10))
def test_a_copy_of_the_best_trial_is_never_pruned(seed: int) -> None:
    # Its chance of ending at least as well as the best is one half, whatever the models
    # (trained on 15 short runs and this one) say.
    pruner = SRPPruner(n_startup_trials=10, seed=seed)
    study, best = _early_stopped_study(pruner, seed)
    decisions = _decisions(study, best)
    assert not any(decisions.values()), decisions


def _curves_strategy() -> Any:
    curve = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=12).map(
        lambda values: dict(enumerate(values))
    )
    return st.lists(curve, min_size=4, max_size=12)


@settings(max_examples=30, **_SETTINGS)
@given(
    curves=_curves_strategy(),
    first_step=st.sampled_from([0, 1, 7]),
    direction=st.sampled_from(["minimize", "maximize"]),
    length=st.integers(1, 12),
)
def test_a_trial_level_with_the_best_complete_trial_is_never_pruned(
    curves: list[dict[int, float]], first_step: int, direction: str, length: int
) -> None:
    # Whatever the complete trials' lengths and shapes: a trial whose curve so far is the best
    # complete trial's is not pruned, even with threshold 1, and what keeps it is the incumbent
    # (or reached-best, or end) rule, not the median guard or the top tenth, which a best
    # trial's curve could pass by chance.
    pruner = SRPPruner(n_startup_trials=4, n_estimators=2, seed=0, threshold=1.0)
    study = optuna.create_study(direction=direction, pruner=pruner)  # type: ignore[arg-type]
    for i, curve in enumerate(curves):
        _add(study, {first_step + s: v for s, v in curve.items()}, x=i / len(curves))
    best = study.best_trial
    copy = dict(sorted(best.intermediate_values.items())[:length])
    rules = _rules(study, copy, x=best.params["x"])
    assert not any(pruned for pruned, _ in rules.values()), rules
    guards = {None, "kept:incumbent", "kept:reached-best", "kept:end"}
    assert {rule for _, rule in rules.values()} <= guards, rules


def _fixed_length_study(pruner: SRPPruner, n_steps: int = 15) -> optuna.Study:
    study = optuna.create_study(pruner=pruner)  # minimise
    for i in range(12):
        _add(study, {s: 1.0 + 0.1 * i + 1.0 / (s + 1) for s in range(n_steps)}, x=i / 12)
    return study


def test_no_trial_is_pruned_at_the_last_step() -> None:
    # A hopeless trial (threshold 1): pruned at every step but the last, where stopping saves
    # nothing and would throw the finished run away.
    study = _fixed_length_study(SRPPruner(n_startup_trials=10, seed=0, threshold=1.0))
    decisions = _decisions(study, {s: 10.0 for s in range(15)})
    assert decisions[13] and not decisions[14]


@pytest.mark.parametrize(
    "lengths,end",
    [
        ([10] * 15 + [60], 9),  # one long run: the others end at 9
        ([60] * 15 + [10], 59),  # one short run (e.g. stopped when it diverged)
        ([10] * 8 + [60] * 8, 9),  # half and half: by step 9 half of them had ended
        ([10] * 7 + [60] * 9, 59),
    ],
)
def test_the_end_step_is_where_half_the_complete_trials_had_ended(
    lengths: list[int], end: int
) -> None:
    pruner = SRPPruner(n_startup_trials=10, seed=0, threshold=1.0)
    study = optuna.create_study(pruner=pruner)
    for i, n in enumerate(lengths):
        _add(study, {s: 1.0 + 0.1 * i + 1.0 / (s + 1) for s in range(n)}, x=i / len(lengths))
    decisions = _decisions(study, {s: 10.0 for s in range(70)})
    assert decisions[end - 1] and not decisions[end]
    assert not any(pruned for step, pruned in decisions.items() if step >= end)


def test_a_trial_that_had_not_reported_by_a_checkpoint_does_not_train_its_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ten complete trials report every step; five report only from step 5 (a sparser schedule
    # that starts later). At a checkpoint before step 5 the late five would enter the features
    # with their step-5 value, which no running trial there has: they train only the models
    # from step 5 on.
    rows: list[tuple[int, int]] = []
    fit = SRMEnsemble.fit

    def spy(self: SRMEnsemble, X: Any, y: Any) -> SRMEnsemble:
        rows.append((len(X), len(y)))
        return fit(self, X, y)

    monkeypatch.setattr(SRMEnsemble, "fit", spy)
    study = optuna.create_study(direction="maximize", pruner=SRPPruner(n_startup_trials=10))
    for i in range(10):
        _add(study, {s: 0.1 * i + 0.01 * s for s in range(10)}, x=i / 10)
    for i in range(5):
        _add(study, {s: 0.05 + 0.1 * i + 0.01 * s for s in range(5, 10)}, x=0.05 + i / 10)
    _decisions(study, {s: 0.3 + 0.01 * s for s in range(10)})
    assert rows and all(n == m for n, m in rows)
    assert {n for n, _ in rows} == {10, 15}


# ---------------------------------------------------------------------------------------------
# Where step numbering starts.


def _shifted(spec: _soak.StudySpec, offset: int) -> _soak.StudySpec:
    spec = copy.deepcopy(spec)
    # Warm-up and interval count absolute steps, as in MedianPruner: off, so that they do not
    # differ between the numberings.
    spec.pruner_kwargs.update(n_warmup_steps=0, interval_steps=1)
    for t in spec.trials:
        t.intermediate_values = {s + offset: v for s, v in t.intermediate_values.items()}
    spec.reports = [(s + offset, v) for s, v in spec.reports]
    return spec


@settings(max_examples=40, **_SETTINGS)
@given(st.randoms(use_true_random=False))
def test_decisions_do_not_depend_on_where_steps_start(rnd: random.Random) -> None:
    spec = _soak.generate_study(rnd, extreme=False)
    outcomes = [_soak.run_study(_shifted(spec, offset)) for offset in (0, 1, 1000)]
    assert outcomes[0].signature() == outcomes[1].signature() == outcomes[2].signature()


def _study_with_pruned_peers(pruner: SRPPruner, first_step: int) -> optuna.Study:
    # 10 complete trials, and 200 trials pruned after a single report at the first step, all
    # of them worse there than the new trial.
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for i in range(10):
        curve = {first_step + s: 0.5 + 0.01 * i + 0.02 * s for s in range(10)}
        _add(study, curve, x=i / 10)
    for i in range(200):
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.PRUNED,
                params={"x": 0.5},
                distributions={"x": _X},
                intermediate_values={first_step: 0.3 * i / 200},
            )
        )
    return study


@pytest.mark.parametrize("first_step", [0, 1, 1000])
def test_step_zero_counts_as_a_step_among_the_peers(first_step: int) -> None:
    # The new trial is below the complete trials' median at the first step but ahead of the
    # 200 pruned ones: in the top 10% of all the trials that reached that step, it is kept by
    # that rule (the models, threshold 1, would prune it). Its peers' last step 0 had been read
    # as "no step", and it was pruned from step 0 only.
    pruner = SRPPruner(n_startup_trials=10, seed=0, threshold=1.0)
    study = _study_with_pruned_peers(pruner, first_step)
    assert _rules(study, {first_step: 0.52}) == {first_step: (False, "kept:top")}


# ---------------------------------------------------------------------------------------------
# The objective's units.


def _scaled_decisions(
    seed: int, x: float, scale: float, offset: float
) -> list[tuple[bool, float | None]]:
    """Decisions and probabilities for a trial at ``x`` in a study of synthetic curves whose
    every value is ``scale * value + offset``."""
    rng = np.random.default_rng(seed)
    pruner = SRPPruner(n_startup_trials=10, seed=0)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for xi in rng.uniform(0, 1, 20):
        values = synthetic.curve(float(xi), rng, noise=0.01)
        _add(study, {s: scale * v + offset for s, v in enumerate(values)}, x=float(xi))
    values = synthetic.curve(x, rng, noise=0.01)
    study.enqueue_trial({"x": x})
    trial = study.ask({"x": _X})
    out = []
    for step in range(12):
        trial.report(scale * values[step] + offset, step)
        if step in (1, 3, 6, 11):
            pruned = trial.should_prune()
            probability = study._storage.get_trial(trial._trial_id).user_attrs.get(
                "srp:probability"
            )
            out.append((pruned, probability))
    return out


@settings(max_examples=12, **_SETTINGS)
@given(
    seed=st.integers(0, 2**16),
    x=st.floats(0.0, 0.4),
    exponent=st.integers(-15, 15),
    offset=st.sampled_from([0.0, -3.0, 1e3, 1e6]),
)
def test_decisions_do_not_depend_on_the_objectives_units(
    seed: int, x: float, exponent: int, offset: float
) -> None:
    # Every value multiplied by 10**exponent and shifted by ``offset`` times that scale: the
    # same decisions, and the same probabilities up to libsvm's stopping tolerance. (Values
    # at 1e-12 had pruned nothing: the predicted std was floored at an absolute 1e-12.)
    scale = 10.0**exponent
    reference = _scaled_decisions(seed, x, 1.0, 0.0)
    scaled = _scaled_decisions(seed, x, scale, offset * scale)
    assert [d for d, _ in scaled] == [d for d, _ in reference]
    for (_, p), (_, p_ref) in zip(scaled, reference):
        assert (p is None) == (p_ref is None)
        if p is not None and p_ref is not None:
            assert p == pytest.approx(p_ref, rel=0.02, abs=1e-4)


@pytest.mark.parametrize("scale", [1e-15, 1e-12, 1e-9, 1e9, 1e15])
def test_a_study_in_small_or_large_units_prunes_as_in_unit_ones(scale: float) -> None:
    reference = _scaled_decisions(0, 0.1, 1.0, 0.0)
    assert any(d for d, _ in reference)  # something to lose
    scaled = _scaled_decisions(0, 0.1, scale, 0.0)
    assert [d for d, _ in scaled] == [d for d, _ in reference]
    assert [p for _, p in scaled] == pytest.approx([p for _, p in reference], rel=0.02, abs=1e-4)


@settings(max_examples=200, deadline=None)
@given(
    curves=st.lists(
        st.lists(
            st.tuples(
                # Steps far apart too (e.g. counted in samples): their keys must not overflow.
                st.one_of(st.integers(-5, 40), st.sampled_from([2**40, 2**61])),
                st.one_of(st.floats(-1e3, 1e3), st.just(float("nan")), st.just(float("inf"))),
            ),
            max_size=8,
            unique_by=lambda report: report[0],
        ),
        max_size=6,
    ),
    offset=st.sampled_from([0, 10**9]),
    step=st.one_of(st.integers(-10, 50), st.sampled_from([2**40, 2**61, 2**61 + 1])),
)
def test_the_complete_trials_values_at_a_step_are_each_one_s_last_report_there(
    curves: list[list[tuple[int, float]]], offset: int, step: int
) -> None:
    from optuna_srp._features import CurveRecord
    from optuna_srp._pruner import _ReportIndex

    records = []
    for number, reports in enumerate(curves):
        reports = sorted(reports)
        records.append(
            CurveRecord(
                number=number,
                steps=np.array([s + offset for s, _ in reports], dtype=np.int64),
                values=np.array([v for _, v in reports], dtype=np.float64),
                params={},
                distributions={},
                extra=np.empty(0),
                final=None,
            )
        )
    expected = []
    for r in records:
        before = r.values[r.steps <= step + offset]
        last = before[-1] if before.size else -np.inf
        expected.append(last if np.isfinite(last) else -np.inf)
    np.testing.assert_array_equal(_ReportIndex.of(records).at(step + offset), expected)
