"""``anytime --split half --source ...``: warm-started studies in the anytime benchmark."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState
import pytest

from optuna_srp.benchmark.__main__ import main
from optuna_srp.benchmark._anytime import anytime_study
from optuna_srp.benchmark._anytime import pruned_study_trials
from optuna_srp.benchmark._anytime import source_trials
from optuna_srp.benchmark._anytime import split_halves
from optuna_srp.benchmark._corpus import load_corpus
from optuna_srp.benchmark._pruners import parse_pruner_spec
from tests.test_benchmark_anytime import make_corpus


def test_split_halves_partition_the_corpus_per_ordering(tmp_path: Path) -> None:
    corpus = load_corpus(make_corpus(tmp_path, [float(i) for i in range(11)]))
    earlier, replayed = split_halves(corpus, 0)
    ids_a = {c.id for c in earlier.configs}
    ids_b = {c.id for c in replayed.configs}
    assert (len(ids_a), len(ids_b)) == (5, 6)
    assert ids_a | ids_b == {c.id for c in corpus.configs} and not ids_a & ids_b
    assert split_halves(corpus, 0)[0].configs == earlier.configs  # deterministic
    assert {c.id for c in split_halves(corpus, 1)[0].configs} != ids_a


def test_source_trials_are_the_recorded_curves(tmp_path: Path) -> None:
    path = make_corpus(tmp_path, [0.2, 0.8, math.nan], n_steps=3, direction="minimize")
    corpus = load_corpus(path)
    trials = source_trials(corpus)
    assert len(trials) == 2  # the diverged run is left out
    first = trials[0]
    assert first.state == optuna.trial.TrialState.COMPLETE
    assert first.value == pytest.approx(0.2)  # the study's own units and direction
    assert first.intermediate_values == pytest.approx({1: 0.2 / 3, 2: 0.2 * 2 / 3, 3: 0.2})
    assert first.params == {"x": 0.0}
    assert set(first.distributions) == {"x"}


def test_half_split_measures_regret_on_the_replayed_half(tmp_path: Path) -> None:
    finals = list(np.linspace(0.1, 0.9, 20))
    corpus = load_corpus(make_corpus(tmp_path, finals, n_steps=4))
    nop = parse_pruner_spec("nop")
    result = anytime_study(corpus, nop, ordering=3, budgets=(100.0,), split="half")
    replayed = split_halves(corpus, 3)[1]
    replayed_finals = [c.final for c in replayed.configs]
    assert result["true_best"] == pytest.approx(max(replayed_finals))
    assert result["median_final"] == pytest.approx(float(np.median(replayed_finals)))
    assert {t[0] for t in result["trials"]} == {c.id for c in replayed.configs}
    assert result["at_budget"][0]["regret"] == pytest.approx(0.0)


def test_only_srp_gets_the_source_and_is_labelled(tmp_path: Path) -> None:
    corpus = load_corpus(make_corpus(tmp_path, list(np.linspace(0.1, 0.9, 24)), n_steps=6))
    srp = parse_pruner_spec("srp:n_startup_trials=3")
    with_source = anytime_study(corpus, srp, 0, budgets=(4.0,), split="half", source="half")
    plain = anytime_study(corpus, srp, 0, budgets=(4.0,), split="half")
    nop = anytime_study(
        corpus, parse_pruner_spec("nop"), 0, budgets=(4.0,), split="half", source="half"
    )
    assert with_source["pruner"] == "srp:n_startup_trials=3+source"
    assert with_source["source"] == corpus.name
    assert plain["pruner"] == "srp:n_startup_trials=3" and plain["source"] is None
    assert nop["pruner"] == "nop" and nop["source"] is None
    # The same configurations in the same order: the source changes decisions only.
    assert [t[0] for t in with_source["trials"]][:3] == [t[0] for t in plain["trials"]][:3]


def test_pruned_half_is_what_an_srp_study_of_the_other_half_left(tmp_path: Path) -> None:
    # A user's old study was pruned: its complete trials and its pruned trials' partial
    # curves, not the whole half's complete curves, are the source.
    rng = np.random.default_rng(0)
    corpus = load_corpus(make_corpus(tmp_path, list(rng.uniform(0.1, 0.9, 60)), n_steps=8))
    earlier, _ = split_halves(corpus, 2)
    old = anytime_study(earlier, parse_pruner_spec("srp"), 2, budgets=(100.0,))
    completed = [t[0] for t in old["trials"] if t[2] == "C"]
    stopped = {t[0]: t[1] for t in old["trials"] if t[2] == "P"}
    assert completed and stopped  # the old study pruned some
    source = pruned_study_trials(earlier, 2, 100.0)
    by_id = {c.id: c for c in earlier.configs}
    complete = [t for t in source if t.state == TrialState.COMPLETE]
    pruned = [t for t in source if t.state == TrialState.PRUNED]
    assert [t.value for t in complete] == [by_id[i].final for i in completed]
    # Each pruned trial's curve ends where the old study stopped it.
    assert sorted(len(t.intermediate_values) for t in pruned) == sorted(stopped.values())
    assert all(t.value is None for t in pruned)
    srp = parse_pruner_spec("srp:n_startup_trials=3")
    # The old study runs for the largest budget, as this one does.
    with_pruned = anytime_study(
        corpus, srp, 2, budgets=(100.0,), split="half", source="pruned-half"
    )
    whole = anytime_study(corpus, srp, 2, budgets=(3.0,), split="half", source="half")
    assert with_pruned["n_source"] == len(completed)
    assert with_pruned["n_source_pruned"] == len(stopped)
    assert whole["n_source"] == len(earlier.configs) and whole["n_source_pruned"] == 0
    assert with_pruned["pruner"] == "srp:n_startup_trials=3+source"
    plain = anytime_study(corpus, srp, 2, budgets=(3.0,), split="half")
    assert plain["n_source"] is None
    assert with_pruned["source_pruner"] == "srp" and whole["source_pruner"] is None
    assert isinstance(with_pruned["source_dropped"], bool) and plain["source_dropped"] is None
    # An old study pruned by another pruner: its own trials, recorded by its spec.
    by_sh = pruned_study_trials(earlier, 2, 100.0, "successive_halving")
    sh_ends = sorted(len(t.intermediate_values) for t in by_sh)
    assert sh_ends != sorted(len(t.intermediate_values) for t in source)
    with_sh = anytime_study(
        corpus, srp, 2, budgets=(100.0,), split="half", source="pruned-half:successive_halving"
    )
    assert with_sh["source_pruner"] == "successive_halving"
    assert with_sh["n_source"] + with_sh["n_source_pruned"] == len(by_sh)


def test_source_half_needs_split_half(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_corpus(tmp_path, [0.1, 0.5, 0.9])
    corpus = load_corpus(path)
    with pytest.raises(ValueError, match="split"):
        anytime_study(corpus, parse_pruner_spec("srp"), 0, source="half")
    assert main(["anytime", str(path), "--source", "half", "--no-progress"]) == 2
    assert "--split half" in capsys.readouterr().err
    with pytest.raises(ValueError, match="pruned-half"):
        anytime_study(corpus, parse_pruner_spec("srp"), 0, source="pruned-half")
    assert main(["anytime", str(path), "--source", "pruned-half", "--no-progress"]) == 2
    assert "--source pruned-half needs --split half" in capsys.readouterr().err
    half = ["anytime", str(path), "--split", "half", "--no-progress"]
    assert main([*half, "--source", "pruned-half:bogus"]) == 2
    assert "unknown pruner 'bogus'" in capsys.readouterr().err
    assert main(["anytime", str(path), "--source", str(tmp_path / "missing.jsonl.gz")]) == 2


def test_source_corpus_from_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = make_corpus(tmp_path, list(np.linspace(0.1, 0.9, 12)), name="target")
    source = make_corpus(tmp_path, list(np.linspace(0.2, 0.8, 12)), name="other")
    code = main(
        [
            "anytime",
            str(target),
            "--source",
            str(source),
            "--pruners",
            "srp:n_startup_trials=3",
            "nop",
            "--orderings",
            "1",
            "--budgets",
            "3",
            "--no-progress",
            "--no-plots",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "srp:n_startup_trials=3+source" in out and "| nop |" in out


def test_results_record_whether_the_source_was_dropped(tmp_path: Path) -> None:
    finals = list(np.random.default_rng(1).uniform(0.1, 0.9, 40))
    target = load_corpus(make_corpus(tmp_path, finals, n_steps=8, name="target"))
    # Every source run ends 5 higher: its models miss the study's runs, and the check drops it.
    far = load_corpus(make_corpus(tmp_path, [f + 5.0 for f in finals], n_steps=8, name="far"))
    srp = parse_pruner_spec("srp")
    dropped = anytime_study(target, srp, 0, budgets=(20.0,), source=far)
    kept = anytime_study(target, srp, 0, budgets=(20.0,), split="half", source="half")
    assert dropped["source_dropped"] is True
    assert kept["source_dropped"] is False
