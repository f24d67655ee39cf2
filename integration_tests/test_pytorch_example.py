"""Real (tiny) PyTorch training under SRPPruner, through the examples in ``examples/``."""

from __future__ import annotations

from collections.abc import Iterator
import importlib
from pathlib import Path
import re
import subprocess
import sys
from types import ModuleType
from typing import Any

import optuna
from optuna.trial import TrialState
import pytest

from optuna_srp import SRPPruner


torch = pytest.importorskip("torch", reason="the PyTorch examples need torch")
pytest.importorskip("torchvision", reason="the PyTorch examples need torchvision")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

# A config that learns digits within an epoch or two, and two that barely learn in a few.
GOOD: dict[str, Any] = {
    "depth": 1,
    "width": 16,
    "dropout": 0.1,
    "optimizer": "Adam",
    "lr": 3e-3,
    "weight_decay": 1e-5,
    "schedule": "cosine",
    "batch_size": 32,
}
SLOW_SGD: dict[str, Any] = {
    **GOOD,
    "optimizer": "SGD",
    "lr": 1e-5,
    "momentum": 0.0,
    "batch_size": 128,
}
SLOW_ADAM: dict[str, Any] = {**GOOD, "lr": 1e-5, "batch_size": 128, "depth": 2}


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield importlib.import_module("pytorch_digits")
    finally:
        sys.path.remove(str(EXAMPLES))


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the fastest for these small models, and kind to a shared CI box
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    torch.set_num_threads(threads)


def _run(*args: str, timeout: float = 300) -> str:
    proc = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=EXAMPLES.parent,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_srp_prunes_real_training(example: ModuleType) -> None:
    epochs = 6
    data = example.load_data("digits")
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0),
        # No start-up rung: the slow configs below would stop at their first epoch there.
        pruner=SRPPruner(n_startup_trials=4, seed=0, wrapped_pruner=optuna.pruners.NopPruner()),
    )
    # Start-up: good and slow configs complete, so that the model sees both kinds of curve.
    for params in (GOOD, SLOW_SGD, {**GOOD, "lr": 1e-2, "width": 8}, SLOW_ADAM):
        study.enqueue_trial(params)
    # Then slow ones again, with small changes: the pruner should stop them early.
    for lr in (1.2e-5, 1.5e-5, 1e-5):
        study.enqueue_trial({**SLOW_SGD, "lr": lr})
    study.enqueue_trial({**GOOD, "dropout": 0.2})
    study.optimize(example.make_objective(data, epochs), n_trials=8)

    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 8
    assert all(t.state in FINISHED for t in trials)
    assert all(t.state == TrialState.COMPLETE for t in trials[:4])
    # With 4-7 complete curves the t tail has 3-6 degrees of freedom: the first slow repeat is
    # pruned, later ones only if the models have become sure enough. The slow repeats are
    # behind every complete trial, i.e. laggards: pruned below the laggard threshold (0.2).
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert len(pruned) >= 1, [(t.state, t.user_attrs) for t in trials]
    for t in pruned:
        assert t.params["optimizer"] == SLOW_SGD["optimizer"] and t.params["lr"] < 2e-5
        assert len(t.intermediate_values) < epochs
        assert t.user_attrs["srp:probability"] < 0.2
        assert t.user_attrs["srp:decision"].startswith("pruned:")
        assert t.user_attrs["srp:reason"].startswith(f"pruned at step {t.last_step}: ")
    assert study.best_trial.state == TrialState.COMPLETE
    assert study.best_value > 0.8
    assert trials[-1].state == TrialState.COMPLETE  # a good config is kept
    assert trials[-1].user_attrs["srp:decision"].startswith("kept:")


def test_pruner_all_prints_a_comparison(
    example: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo, reduced: 12 trials of 4 epochs; SRPPruner's models decide once 10 trials are
    complete, its start-up rung before."""
    n_trials, epochs = 12, 4
    argv = ["--n-trials", str(n_trials), "--epochs", str(epochs), "--progress-every", "0"]
    results = example.main([*argv, "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out

    assert [r.pruner for r in results] == ["none", "median", "halving", "hyperband", "srp"]
    budget = n_trials // 2 * epochs
    for r in results:
        assert r.n_complete + r.n_pruned == n_trials  # the equal-trial comparison
        assert r.epochs_trained <= r.epochs_without_pruning == n_trials * epochs
        assert r.n_run >= n_trials and r.anytime()[-1][0] >= budget  # ran on to the budget
        assert r.wall_time > 0 and 0 <= r.prune_time < r.wall_time
    none, *_, srp = results
    assert none.n_pruned == 0 and none.epochs_trained == n_trials * epochs
    assert none.n_run == n_trials  # no pruning spends the budget within the first trials
    trials = srp.study.trials
    decided = [t for t in trials if "srp:decision" in t.user_attrs]
    assert decided
    for t in decided:
        complete_before = sum(u.state == TrialState.COMPLETE for u in trials[: t.number])
        if t.user_attrs["srp:decision"] in (
            "pruned:rung",
            "kept:full",
            "kept:rung",
            "kept:no-rung",
        ):
            # The start-up's, with no prediction.
            assert complete_before < 10 and "srp:probability" not in t.user_attrs
            assert t.state == TrialState.PRUNED or t.user_attrs["srp:decision"] != "pruned:rung"
        else:  # the models', with the prediction it rests on
            assert complete_before >= 10 and "srp:probability" in t.user_attrs

    assert "final accuracy over 12 complete configurations: best " in out and "median" in out
    table = out[out.index("The same study") :].splitlines()
    assert any(f"after {n_trials} trials each" in line for line in table)
    assert any(f"within {budget} epochs each" in line for line in table)
    for label in ("no pruning", "MedianPruner", "SuccessiveHalving", "Hyperband", "SRPPruner"):
        assert any(line.startswith(label) for line in table), label
    assert out.count("epochs trained:") == 5
    if importlib.util.find_spec("matplotlib") is not None:
        for name in ("predictions.png", "anytime.png"):
            path = tmp_path / "out" / name
            assert path.stat().st_size > 10_000
            assert f"figure: {path}" in out


def test_the_summary_s_best_is_among_the_trials_it_counts(example: ModuleType) -> None:
    # The comparison runs each study on past n_trials to spend an epoch budget; the summary's
    # counts cover the first n_trials, so its best trial must too.
    study = optuna.create_study(direction="maximize")
    for value in (0.5, 0.6, 0.9):
        study.add_trial(
            optuna.trial.create_trial(value=value, intermediate_values={0: value, 1: value})
        )
    summary = example.format_summary(example.StudyResult("srp", study, 2, 1.0, n_trials=2))

    assert "trials: 2 completed, 0 pruned" in summary
    assert "best accuracy: 0.6000 (trial 1)" in summary
    # Every trial ran to the end: nothing was saved, and it does not say "1.00x fewer".
    assert "epochs trained: 4 of 4 without pruning\n" in summary, summary


def test_distributed_workers_share_one_study(tmp_path: Path) -> None:
    storage = f"journal:{tmp_path / 'journal.log'}"
    args = ["--n-trials", "6", "--epochs", "3", "--storage", storage]
    out = _run(str(EXAMPLES / "distributed.py"), "--n-workers", "2", *args)

    assert "epochs trained:" in out and "trials per worker in this run:" in out
    # The workers' time in should_prune() is measured, not left at zero.
    prune_s = re.search(r"deciding to prune ([0-9.]+) s, summed over 2 worker processes", out)
    assert prune_s is not None and float(prune_s.group(1)) > 0.0, out
    sys.path.insert(0, str(EXAMPLES))
    try:
        storage_obj = importlib.import_module("pytorch_digits").make_storage(storage)
    finally:
        sys.path.remove(str(EXAMPLES))
    study = optuna.load_study(study_name="pytorch-digits-distributed", storage=storage_obj)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 6
    assert all(t.state in FINISHED for t in trials)
    assert {t.user_attrs["worker"] for t in trials} == {0, 1}

    # Running again resumes the same study.
    args[1] = "1"
    out = _run(str(EXAMPLES / "distributed.py"), "--n-workers", "1", *args)
    assert "6 earlier trials" in out
    assert "trials per worker in this run: 0: 1\n" in out, out  # not the earlier run's
    assert len(optuna.load_study(study_name=study.study_name, storage=storage_obj).trials) == 7


def test_distributed_example_on_postgres(postgres_url: str, study_name: str) -> None:
    args = ["--n-workers", "2", "--n-trials", "4", "--epochs", "2"]
    _run(
        str(EXAMPLES / "distributed.py"),
        *args,
        "--storage",
        postgres_url,
        "--study-name",
        study_name,
    )
    trials = optuna.load_study(study_name=study_name, storage=postgres_url).trials
    assert len(trials) == 4
    assert all(t.state in FINISHED for t in trials)


def test_lightning_pruning_callback_with_srp() -> None:
    pytest.importorskip("lightning", reason="lightning is not installed")
    pytest.importorskip("optuna_integration", reason="optuna-integration is not installed")
    sys.path.insert(0, str(EXAMPLES))
    try:
        lightning_example = importlib.import_module("lightning_example")
    finally:
        sys.path.remove(str(EXAMPLES))

    study = lightning_example.run(n_trials=4, epochs=3, seed=0, n_startup_trials=3)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 4
    assert all(t.state in FINISHED for t in trials)
    assert len(trials[0].intermediate_values) == 3  # the first trial trains fully
    # The callback reported each epoch and SRPPruner decided: trial 1 or 2 was stopped at the
    # start-up rung (below the best at epoch 1), or with three complete trials, trial 3 was
    # decided by the models.
    assert any("srp:decision" in t.user_attrs for t in trials[1:])
    for t in trials:
        if t.state == TrialState.PRUNED:
            assert t.user_attrs["srp:decision"].startswith("pruned:")
            assert 1 <= len(t.intermediate_values) < 3
