from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial
import pytest

from optuna_srp import SRPPruner
from optuna_srp.benchmark import Corpus
from optuna_srp.benchmark import load_corpus
from optuna_srp.benchmark import parse_pruner_spec
from optuna_srp.benchmark import replay_study
from optuna_srp.benchmark import run_replay
from optuna_srp.benchmark import write_corpus
from optuna_srp.benchmark._replay import ordering_indices
from optuna_srp.benchmark._replay import study_metrics
from optuna_srp.benchmark._report import aggregate_replay
from optuna_srp.benchmark._report import replay_table


# Final values 0.4 < 0.6 < 0.8 < 0.9 (maximised), 5 steps each.
FOUR = {
    0: [0.1, 0.2, 0.3, 0.35, 0.4],
    1: [0.3, 0.5, 0.55, 0.58, 0.6],
    2: [0.2, 0.4, 0.6, 0.7, 0.8],
    3: [0.5, 0.7, 0.8, 0.85, 0.9],
}


def make_corpus(
    tmp_path: Path,
    curves: Mapping[int, Sequence[float | None]],
    direction: str = "maximize",
    step_values: list[int] | None = None,
    name: str = "four",
) -> Corpus:
    n_steps = len(next(iter(curves.values())))
    meta: dict[str, Any] = {
        "name": name,
        "source": "test",
        "license": "MIT",
        "metric": "acc",
        "direction": direction,
        "n_steps": n_steps,
        "params": {"x": {"type": "float", "low": 0.0, "high": 100.0, "log": False}},
    }
    if step_values is not None:
        meta["step_values"] = step_values
    configs = [{"id": i, "params": {"x": float(i)}, "curve": c} for i, c in curves.items()]
    return load_corpus(write_corpus(tmp_path / f"{name}.jsonl.gz", meta, configs))


class PruneAfter(BasePruner):
    """Prunes every trial once it has reported ``n`` steps, except those in ``keep``."""

    def __init__(self, n: int, keep: tuple[float, ...] = ()) -> None:
        self.n = n
        self.keep = keep
        self.seen: list[tuple[dict[str, Any], list[int]]] = []

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        self.seen.append((dict(trial.distributions), sorted(trial.intermediate_values)))
        if trial.params["x"] in self.keep:
            return False
        return len(trial.intermediate_values) >= self.n


def test_nop_pruner_known_metrics(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path, FOUR)
    r = replay_study(corpus, parse_pruner_spec("nop"), ordering=0)
    assert r["speedup"] == 1.0
    assert r["epochs_full"] == r["epochs_spent"] == 20
    assert r["hit"] and r["best_completed"]
    assert r["top5_completed"] == 1.0
    assert r["regret"] == 0.0
    assert r["n_complete"] == 4
    assert r["true_best"] == r["found_best"] == 0.9
    order = [t[0] for t in r["trials"]]
    assert order == list(ordering_indices(4, 0))
    assert r["epochs_to_best"] == 5 * (order.index(3) + 1)
    assert all(t[1] == 5 and t[2] == "C" for t in r["trials"])
    assert r["prune_calls"] == 20 and r["prune_ms_mean"] >= 0.0


def test_prune_everything_after_step_one(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path, FOUR)
    r = replay_study(corpus, PruneAfter(1), ordering=3)
    assert r["epochs_spent"] == 4
    assert r["speedup"] == 5.0
    assert r["n_complete"] == 0
    assert not r["hit"] and not r["best_completed"]
    assert r["top5_completed"] == 0.0
    assert math.isnan(r["regret"])
    assert r["epochs_to_best"] is None
    assert all(t[1] == 1 and t[2] == "P" for t in r["trials"])


def test_keep_second_best_only(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path, FOUR)
    r = replay_study(corpus, PruneAfter(2, keep=(2.0,)), ordering=1)
    # Three trials pruned after 2 steps, config 2 (final 0.8) trained fully.
    assert r["epochs_spent"] == 3 * 2 + 5
    assert r["speedup"] == pytest.approx(20 / 11)
    assert r["found_best"] == 0.8 and not r["hit"]
    assert r["top5_completed"] == 0.25
    # Regret is normalised by true best - median final: (0.9 - 0.8) / (0.9 - 0.7).
    assert r["regret"] == pytest.approx(0.5)


def test_minimize_failed_trials_and_step_values(tmp_path: Path) -> None:
    curves: dict[int, list[float | None]] = {
        0: [3.0, 2.0, 1.0],
        1: [2.0, None, None],  # diverged: told FAIL
        2: [4.0, 3.0, 2.5],
    }
    corpus = make_corpus(tmp_path, curves, direction="minimize", step_values=[10, 20, 30])
    pruner = PruneAfter(99)
    r = replay_study(corpus, pruner, ordering=0)
    states = {t[0]: t[2] for t in r["trials"]}
    assert states == {0: "C", 1: "F", 2: "C"}
    assert r["hit"] and r["true_best"] == -1.0  # oriented: higher is better
    assert r["n_pruned_or_failed"] == 1
    # The pruner sees the corpus's steps and the real distributions.
    dists, steps = pruner.seen[-1]
    assert steps == [10, 20, 30]
    assert dists == {"x": FloatDistribution(0.0, 100.0)}


def test_trials_carry_real_params(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path, FOUR)

    class Check(BasePruner):
        def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
            x = trial.params["x"]
            assert list(trial.intermediate_values.values())[0] == FOUR[int(x)][0]
            return False

    assert replay_study(corpus, Check(), ordering=2)["n_complete"] == 4


def test_study_metrics_ties_and_epochs_to_best() -> None:
    m = study_metrics(
        finals=np.array([1.0, 3.0, 3.0, 2.0]),
        lengths=np.array([4, 4, 4, 4]),
        steps_run=np.array([4, 1, 4, 4]),
        completed=np.array([True, False, True, True]),
    )
    assert m["hit"] and not m["best_completed"]  # one of two tied best configs was pruned
    assert m["epochs_to_best"] == 9
    assert m["speedup"] == 16 / 13
    assert m["top5_completed"] == 0.75


def test_orderings_are_shared_and_cut() -> None:
    a = ordering_indices(100, 3, 10)
    np.testing.assert_array_equal(a, ordering_indices(100, 3)[:10])
    assert not np.array_equal(ordering_indices(100, 0), ordering_indices(100, 1))


def test_pruner_specs() -> None:
    spec = parse_pruner_spec("srp:threshold=0.05,n_startup_trials=20")
    assert spec.name == "srp" and spec.kwargs == {"threshold": 0.05, "n_startup_trials": 20}
    assert spec.label == "srp:threshold=0.05,n_startup_trials=20"
    assert isinstance(spec.build(), SRPPruner)
    assert isinstance(parse_pruner_spec("percentile").build(), optuna.pruners.PercentilePruner)
    assert isinstance(parse_pruner_spec("sha").build(), optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(parse_pruner_spec("patient").build(), optuna.pruners.PatientPruner)
    assert isinstance(
        parse_pruner_spec("patient:wrapped=median,patience=2").build(),
        optuna.pruners.PatientPruner,
    )
    for name in ("median", "hyperband", "wilcoxon", "nop"):
        assert isinstance(parse_pruner_spec(name).build(), BasePruner)
    with pytest.raises(ValueError, match="unknown pruner"):
        parse_pruner_spec("magic")
    with pytest.raises(ValueError, match="key=value"):
        parse_pruner_spec("srp:0.05")
    with pytest.raises(ValueError, match="srp:threshold=2"):
        parse_pruner_spec("srp:threshold=2")
    with pytest.raises(ValueError, match="bogus"):
        parse_pruner_spec("median:bogus=1")


def test_run_replay_parallel_matches_serial(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path, FOUR)
    specs = [parse_pruner_spec("median"), parse_pruner_spec("nop")]
    serial = run_replay([corpus], specs, orderings=2, n_trials=3)
    parallel = run_replay([corpus], specs, orderings=2, n_trials=3, jobs=2)
    key = ["pruner", "ordering", "epochs_spent", "hit", "trials"]
    assert [[r[k] for k in key] for r in serial] == [[r[k] for k in key] for r in parallel]
    assert all(r["n_trials"] == 3 for r in serial)
    summary = aggregate_replay(serial)
    assert [(s["pruner"], s["orderings"]) for s in summary] == [("median", 2), ("nop", 2)]
    nop = summary[1]
    assert nop["speedup"] == 1.0 and nop["hit_rate"] == 1.0 and nop["regret"] == 0.0
    table = replay_table(summary)
    assert "| four | nop | 1.00x | 1.00 |" in table


def test_first_ordering_replays_the_held_out_seeds(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path, FOUR)
    specs = [parse_pruner_spec("median")]
    all_four = run_replay([corpus], specs, orderings=4, n_trials=3)
    last_two = run_replay([corpus], specs, orderings=2, n_trials=3, first_ordering=2)
    assert [r["ordering"] for r in last_two] == [2, 3]
    key = ["ordering", "epochs_spent", "trials"]
    assert [[r[k] for k in key] for r in last_two] == [[r[k] for k in key] for r in all_four[2:]]


def test_replay_with_early_stopping_counts_the_stopped_curves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from optuna_srp.benchmark.__main__ import main

    # Curves that peak at step 2: with patience 1 every run stops at step 3 and completes with
    # the value after its peak, so no pruning spends 3 epochs a trial, not 5.
    peaks = {i: [0.1 * i, 0.2 * i, 0.1 * i, 0.0, 0.0] for i in range(1, 5)}
    corpus = make_corpus(tmp_path, peaks, name="peaks")
    r = replay_study(corpus, parse_pruner_spec("nop"), ordering=0, early_stopping=1)
    assert r["corpus"] == "peaks+early-stop1" and r["early_stopping"] == 1
    assert r["epochs_full"] == r["epochs_spent"] == 12 and r["speedup"] == 1.0
    assert r["true_best"] == pytest.approx(0.4) and r["hit"]
    assert all(t[1] == 3 and t[2] == "C" for t in r["trials"])
    pruned = replay_study(corpus, PruneAfter(1, keep=(4.0,)), ordering=0, early_stopping=1)
    assert pruned["epochs_spent"] == 3 + 3 and pruned["speedup"] == 2.0 and pruned["hit"]

    out = tmp_path / "out"
    argv = ["replay", str(tmp_path / "peaks.jsonl.gz"), "--pruners", "nop", "--orderings", "2"]
    argv += ["--early-stopping", "1", "--jobs", "2", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert "peaks+early-stop1" in (out / "summary.md").read_text()
    # Figures are named after the stopped corpus.
    assert (out / "curves_peaks_early-stop1.png").exists()
    assert main(argv[:4] + ["--early-stopping", "0", "--no-progress"]) == 2
    assert "--early-stopping must be >= 1, got 0" in capsys.readouterr().err
