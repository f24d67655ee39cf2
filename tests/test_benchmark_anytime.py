from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from optuna_srp.benchmark import write_corpus
from optuna_srp.benchmark.__main__ import main
from optuna_srp.benchmark._anytime import anytime_study
from optuna_srp.benchmark._anytime import budget_metrics
from optuna_srp.benchmark._anytime import NearestUnusedSampler
from optuna_srp.benchmark._corpus import load_corpus
from optuna_srp.benchmark._pruners import parse_pruner_spec
from optuna_srp.benchmark._replay import ordering_indices
from optuna_srp.benchmark._report import anchor_tables
from optuna_srp.benchmark._report import anytime_report
from optuna_srp.benchmark._report import anytime_table
from optuna_srp.benchmark._report import regret_trajectory
from optuna_srp.benchmark._report import short_name
from optuna_srp.benchmark._report import speedup_to_reference
from tests._shared import needs_shared_curves
from tests._shared import SHARED_CURVES


NOP = parse_pruner_spec("nop")


def make_corpus(
    tmp_path: Path,
    finals: list[float],
    n_steps: int = 4,
    direction: str = "maximize",
    name: str = "made",
) -> Path:
    """Linear curves from 0 to each final value; parameter ``x`` = the configuration's index."""
    configs = []
    for i, final in enumerate(finals):
        curve = np.linspace(final / n_steps, final, n_steps)
        configs.append({"id": i, "params": {"x": float(i)}, "curve": curve.tolist()})
    meta: dict[str, Any] = {
        "name": name,
        "direction": direction,
        "n_steps": n_steps,
        "params": {"x": {"type": "float", "low": 0.0, "high": float(len(finals)), "log": False}},
    }
    return write_corpus(tmp_path / f"{name}.jsonl.gz", meta, configs)


def test_budget_ending_mid_trial_counts_only_finished_trials() -> None:
    curves = [np.array([0.1, 0.3, 0.5]), np.array([0.6, 0.8, 0.9]), np.array([1.0, 1.0, 1.0])]
    at = budget_metrics(curves, [3, 3, 3], [True, True, True], 5, true_best=1.0, scale=0.5)
    # The second trial has run 2 of its 3 steps after 5: the study returns the first.
    assert at["found"] == 0.5
    assert at["regret"] == pytest.approx((1.0 - 0.5) / 0.5)
    assert (at["started"], at["finished"]) == (2, 1)
    # The incumbent counts the values reported within the budget, finished or not.
    assert at["incumbent"] == 0.8
    at6 = budget_metrics(curves, [3, 3, 3], [True, True, True], 6, true_best=1.0, scale=0.5)
    assert (at6["found"], at6["started"], at6["finished"]) == (0.9, 2, 2)


def test_pruned_trials_count_for_the_incumbent_only() -> None:
    # A pruned trial's best reported value (0.95) is the secondary incumbent, never the answer.
    curves = [np.array([0.95, 0.2, 0.1]), np.array([0.4, 0.5, 0.6])]
    at = budget_metrics(curves, [1, 3], [False, True], 100, true_best=0.9, scale=0.3)
    assert at["found"] == 0.6
    assert at["regret"] == pytest.approx((0.9 - 0.6) / 0.3)
    assert at["incumbent"] == 0.95
    assert at["incumbent_regret"] == pytest.approx((0.9 - 0.95) / 0.3)  # above the best final
    assert not at["hit"]


def test_no_complete_trial_within_budget_is_nan() -> None:
    at = budget_metrics([np.array([0.5, np.nan])], [2], [False], 10, true_best=1.0, scale=0.5)
    assert math.isnan(at["regret"]) and math.isnan(at["found"]) and not at["hit"]
    assert at["incumbent"] == 0.5  # the diverged value is ignored


def test_regret_zero_once_the_best_configuration_completes(tmp_path: Path) -> None:
    finals = [0.1 * i for i in range(10)]  # config 9 is the best
    corpus = load_corpus(make_corpus(tmp_path, finals))
    # An ordering that does not start with it, for the test to mean anything.
    k = next(k for k in range(100) if ordering_indices(10, k)[0] != 9)
    position = int(np.flatnonzero(ordering_indices(10, k) == 9)[0])
    budgets = [float(position), float(position + 1)]
    row = anytime_study(corpus, NOP, ordering=k, budgets=budgets)
    before, after = row["at_budget"]
    assert after["regret"] == 0.0 and after["hit"]
    assert before["regret"] > 0.0 and not before["hit"]
    assert after["started"] == position + 1
    # The study stops once the largest budget is spent.
    assert len(row["trials"]) == position + 1 and row["epochs_spent"] == (position + 1) * 4


def test_workers_train_trials_at_once_and_share_the_budget(tmp_path: Path) -> None:
    finals = [0.1 * i for i in range(10)]
    corpus = load_corpus(make_corpus(tmp_path, finals))  # 4 steps a curve
    order = ordering_indices(10, 0)
    # One full training (4 steps): one worker has finished its first trial; three workers have
    # spent the 4 steps on three trials that are still running, and return nothing yet.
    one = anytime_study(corpus, NOP, budgets=[1.0, 3.0])
    three = anytime_study(corpus, NOP, budgets=[1.0, 3.0], workers=3)
    assert one["at_budget"][0]["found"] == pytest.approx(finals[order[0]])
    assert math.isnan(three["at_budget"][0]["regret"])
    assert three["at_budget"][0]["started"] == 3 and three["at_budget"][0]["finished"] == 0
    # The incumbent counts what the running trials reported within the budget: reports are
    # taken in worker order, so the 4th step is the first worker's second report.
    f0, f1, f2 = (finals[i] for i in order[:3])
    assert three["at_budget"][0]["incumbent"] == pytest.approx(max(f0 / 2, f1 / 4, f2 / 4))
    # Three full trainings: the first three trials end together at 12 steps.
    assert three["at_budget"][1]["finished"] == 3
    assert three["at_budget"][1]["found"] == pytest.approx(max(finals[i] for i in order[:3]))
    assert [t[4] for t in three["trials"]] == [10, 11, 12]
    assert three["epochs_spent"] == 12 and three["workers"] == 3
    assert [t[0] for t in three["trials"]] == [int(i) for i in order[:3]]
    assert "workers" in one and all(len(t) == 4 for t in one["trials"])


def test_workers_see_each_others_running_trials(tmp_path: Path) -> None:
    # MedianPruner compares a trial with the complete trials only: while twelve trials run side
    # by side none is complete, and none is stopped before its last report (the first worker's
    # trial completes at that tick, and the others then meet its value); one after the other,
    # the later ones meet the first ones' medians from their first report.
    order = ordering_indices(12, 0)
    finals = np.empty(12)
    finals[order] = np.linspace(1.0, 0.1, 12)  # each trial worse than the ones before it
    corpus = load_corpus(make_corpus(tmp_path, list(finals), n_steps=6))
    median = parse_pruner_spec("median:n_startup_trials=1")
    sequential = anytime_study(corpus, median, budgets=[100.0])
    parallel = anytime_study(corpus, median, budgets=[100.0], workers=12)
    assert any(t[1] < 6 for t in sequential["trials"])
    assert all(t[1] == 6 for t in parallel["trials"])
    assert parallel["trials"][0][2] == "C"
    assert [t[4] for t in parallel["trials"]] == list(range(61, 73))


def test_normalisation_over_the_corpus_with_minimize(tmp_path: Path) -> None:
    losses = [5.0, 3.0, 4.0, 1.0, 2.0]  # lower is better: best 1, median 3
    corpus = load_corpus(make_corpus(tmp_path, losses, direction="minimize"))
    row = anytime_study(corpus, NOP, ordering=0, budgets=[1.0, 5.0])
    assert row["true_best"] == -1.0 and row["median_final"] == -3.0 and row["scale"] == 2.0
    first = losses[int(ordering_indices(5, 0)[0])]
    assert row["at_budget"][0]["regret"] == pytest.approx((first - 1.0) / 2.0)
    assert row["at_budget"][1]["regret"] == 0.0


def test_trajectory_and_reference_factor() -> None:
    def row(pruner: str, trials: list[list[Any]]) -> dict[str, Any]:
        return {
            "sampler": "random",
            "corpus": "c",
            "pruner": pruner,
            "ordering": 0,
            "n_steps": 2,
            "budgets": [4.0],
            "true_best": 1.0,
            "scale": 1.0,
            "trials": trials,
        }

    nop = row("nop", [[0, 2, "C", 0.0], [1, 2, "C", 0.5], [2, 2, "C", 0.8], [3, 2, "C", 1.0]])
    grid = np.arange(1, 9)
    traj = regret_trajectory(nop, grid)
    assert np.isnan(traj[0])
    assert traj[1:] == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.2, 0.2, 0.0])
    # It stops one trial after one step and reaches regret 0.2 after 5 steps, not 7.
    fast = row("median", [[0, 2, "C", 0.0], [1, 1, "P", 0.5], [2, 2, "C", 0.8]])
    slow = row("patient", [[0, 2, "C", 0.0], [1, 2, "C", 0.5]])
    ref = speedup_to_reference([nop, fast, slow], reference=3.0)[("random", "c")]
    assert ref["regret"] == pytest.approx(0.2)
    assert ref["factors"]["median"] == pytest.approx(6 / 5)
    assert ref["factors"]["patient"] is None  # never as good within its 8 steps
    assert ref["bound"]["patient"] == pytest.approx(6 / 8)
    assert "nop" not in ref["factors"]
    ref = speedup_to_reference([nop, fast, slow], reference=2.0)[("random", "c")]
    assert ref["regret"] == pytest.approx(0.5)
    assert ref["factors"]["median"] == pytest.approx(4 / 5)
    assert ref["factors"]["patient"] == pytest.approx(1.0)


def test_trials_that_ran_at_once_count_when_they_ended(tmp_path: Path) -> None:
    row = {
        "sampler": "random",
        "workers": 2,
        "corpus": "c",
        "pruner": "nop",
        "ordering": 0,
        "n_steps": 2,
        "budgets": [2.0],
        "true_best": 1.0,
        "scale": 1.0,
        # Trial 1 (the best) ended before trial 0, which started first.
        "trials": [[0, 2, "C", 0.5, 4], [1, 2, "C", 1.0, 3]],
    }
    assert regret_trajectory(row, np.arange(1, 5)) == pytest.approx(
        [math.nan, math.nan, 0.0, 0.0], nan_ok=True
    )
    # One worker and two are separate settings, never one table.
    rng = np.random.default_rng(0)
    corpus = load_corpus(make_corpus(tmp_path, list(rng.uniform(0, 1, 8))))
    rows = [anytime_study(corpus, NOP, budgets=[2.0], workers=k) for k in (1, 2)]
    text = anytime_report(rows)
    assert "Sampler `random`: mean" in text and "Sampler `random, 2 workers`: mean" in text
    assert text.index("Sampler `random`: mean") < text.index("Sampler `random, 2 workers`")


def test_tables_cut_the_shared_prefixes_of_corpus_names() -> None:
    assert short_name("accelerating_nas-lstm_ptb") == "lstm_ptb"
    taskset = "taskset-FixedTextRNNClassification_imdb_patch32_GRU128_bs128"
    assert short_name(taskset) == "taskset patch32_GRU128_bs128"
    lcbench = "lcbench_balanced-blood-transfusion-service-center"
    assert short_name(lcbench) == "lcbench_balanced (blood transfusion)"
    assert short_name("made") == "made"


def test_nearest_unused_normalises_log_and_matches_categoricals(tmp_path: Path) -> None:
    meta = {
        "name": "mixed",
        "direction": "maximize",
        "n_steps": 2,
        "params": {
            "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
            "opt": {"type": "categorical", "choices": ["a", "b"]},
        },
    }
    configs = [
        {"id": 10, "params": {"lr": 1e-3, "opt": "a"}, "curve": [0.1, 0.2]},
        {"id": 11, "params": {"lr": 0.3, "opt": "a"}, "curve": [0.1, 0.3]},
        {"id": 12, "params": {"lr": 0.02, "opt": "b"}, "curve": [0.1, 0.4]},
    ]
    corpus = load_corpus(write_corpus(tmp_path / "mixed.jsonl", meta, configs))
    chooser = NearestUnusedSampler(corpus, optuna.samplers.RandomSampler(seed=0))
    # On the log scale 0.02 is nearer 0.3 than 1e-3 (on a linear one it is the other way).
    assert chooser.nearest({"lr": 0.02, "opt": "a"}) == 1
    # A categorical mismatch outweighs any numeric distance.
    assert chooser.nearest({"lr": 1e-4, "opt": "b"}) == 2
    assert chooser.nearest({"lr": 0.3, "opt": "b"}) == 2


def test_tpe_trials_carry_recorded_unused_configurations(tmp_path: Path) -> None:
    corpus = load_corpus(make_corpus(tmp_path, [0.1 * (i % 7) for i in range(15)]))
    chooser = NearestUnusedSampler(corpus, optuna.samplers.TPESampler(seed=0, n_startup_trials=3))
    study = optuna.create_study(direction="maximize", sampler=chooser)
    recorded = {c.id: c.params for c in corpus.configs}
    seen = []
    for _ in range(len(corpus.configs)):
        trial = study.ask(fixed_distributions=chooser.common_distributions)
        config = chooser.config_of(trial.number)
        assert trial.params == recorded[config.id]  # what TPE sees is what was trained
        seen.append(config.id)
        study.tell(trial, config.final)
    assert sorted(seen) == sorted(recorded)  # never the same configuration twice
    with pytest.raises(ValueError, match="every configuration"):
        study.ask(fixed_distributions=chooser.common_distributions)


def test_tpe_study_replays_distinct_configurations(tmp_path: Path) -> None:
    corpus = load_corpus(make_corpus(tmp_path, [0.05 * i for i in range(20)]))
    row = anytime_study(corpus, parse_pruner_spec("median"), 1, sampler="tpe", budgets=[30.0])
    ids = [t[0] for t in row["trials"]]
    assert len(ids) == 20 and len(set(ids)) == 20  # the corpus ran out
    assert row["exhausted"] and row["at_budget"][0]["regret"] >= 0.0


def test_bad_arguments(tmp_path: Path) -> None:
    corpus = load_corpus(make_corpus(tmp_path, [0.1, 0.2]))
    with pytest.raises(ValueError, match="sampler"):
        anytime_study(corpus, NOP, sampler="grid")
    with pytest.raises(ValueError, match="budgets"):
        anytime_study(corpus, NOP, budgets=[0.0])
    with pytest.raises(ValueError, match="workers must be an integer of at least 1, got 0"):
        anytime_study(corpus, NOP, workers=0)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_anytime_cli_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    corpus = make_corpus(tmp_path, list(rng.uniform(0, 1, 30)), n_steps=6)
    out = tmp_path / "out"
    argv = ["anytime", str(corpus), "--orderings", "2", "--budgets", "2", "25"]
    argv += ["--pruners", "nop", "median", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    rows = read_jsonl(out / "results.jsonl")
    assert len(rows) == 4 and {r["pruner"] for r in rows} == {"nop", "median"}
    nop = [r for r in rows if r["pruner"] == "nop"]
    assert all(r["at_budget"][1]["regret"] == 0.0 for r in nop)  # 25 trainings: the corpus
    assert all(r["at_budget"][0]["started"] == 2 for r in nop)
    summary = (out / "summary.md").read_text()
    assert "| corpus | B | median | nop |" in summary
    assert "| made | 25 | **0.00**" in summary
    assert (out / "anytime_made.png").exists()
    assert "| corpus | B |" in capsys.readouterr().out

    # ``report`` regenerates the tables and the figure from the results alone.
    plots = tmp_path / "plots"
    report_md = tmp_path / "report.md"
    argv = ["report", str(out / "results.jsonl"), "--out", str(report_md), "--plots", str(plots)]
    assert main(argv) == 0
    assert report_md.read_text().strip() == summary.strip()
    assert (plots / "anytime_made.png").exists()


def test_anytime_cli_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = make_corpus(tmp_path, [0.1, 0.2])
    assert main(["anytime", str(corpus), "--budgets", "0", "--no-progress"]) == 2
    assert "--budgets" in capsys.readouterr().err
    assert main(["anytime", str(corpus), "--pruners", "magic", "--no-progress"]) == 2
    assert main(["anytime", str(corpus), "--workers", "0", "--no-progress"]) == 2
    assert "--workers must be at least 1, got 0" in capsys.readouterr().err
    assert main(["anytime", str(tmp_path / "missing.jsonl.gz"), "--no-progress"]) == 2


@needs_shared_curves
def test_shared_curves_anytime(tmp_path: Path) -> None:
    corpus = SHARED_CURVES / "accelerating_nas-lstm_ptb.jsonl.gz"
    out = tmp_path / "shared"
    argv = ["anytime", str(corpus), "--orderings", "1", "--budgets", "2", "5", "--sampler", "tpe"]
    argv += ["--pruners", "nop", "median", "--out", str(out), "--no-plots", "--no-progress"]
    assert main(argv) == 0
    rows = {r["pruner"]: r for r in read_jsonl(out / "results.jsonl")}
    assert [a["started"] for a in rows["nop"]["at_budget"]] == [2, 5]
    assert rows["nop"]["epochs_spent"] == 5 * 59


def _cell(corpus: str, budget: float, pruner: str, mean: float) -> dict[str, Any]:
    return {
        "sampler": "random",
        "corpus": corpus,
        "budget": budget,
        "pruner": pruner,
        "regret_mean": mean,
    }


def test_anchor_is_the_lowest_optuna_pruner_at_its_defaults_in_each_cell() -> None:
    summary = [
        _cell("a", 10, "srp", 0.308),
        _cell("a", 10, "median", 0.30),
        _cell("a", 10, "nop", 0.40),
        # An Optuna pruner with other arguments is a contender, not the anchor.
        _cell("a", 10, "median:n_startup_trials=2", 0.10),
        _cell("a", 25, "srp", 0.25),
        _cell("a", 25, "median", math.nan),  # no ordering had a complete trial
        _cell("a", 25, "nop", 0.20),
        _cell("a", 50, "nop", 0.05),  # srp has no mean here: not within, no excess
        _cell("b", 10, "srp", 0.5),  # no Optuna pruner: the cell is left out
    ]
    text = anchor_tables(summary)
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines()}
    # srp: within + 0 in no cell, + .01 in one (a, 10), + .02 in one; excess .008 + .05.
    assert rows["srp"] == "| srp | 0 / 1 / 1 of 3 | 0.06 | 0.05 (a, 25) |"
    assert rows["median:n_startup_trials=2"] == (
        "| median:n_startup_trials=2 | 1 / 1 / 1 of 3 | 0.00 | -0.20 (a, 10) |"
    )
    assert rows["nop"].startswith("| nop | 2 / 2 / 2 of 3 | 0.10 |")
    assert "| a | 10 | 0.300 (median) | +0.008 | -0.200 |" in text
    assert "| a | 25 | 0.200 (nop) | +0.050 | - |" in text
    assert "| b |" not in text
    assert anchor_tables([_cell("a", 10, "srp", 0.3)]) == ""


def test_the_regret_table_says_what_its_marks_mean() -> None:
    counts = {"orderings": 10, "answered": 10, "exhausted": 0}
    plain = [{**_cell("a", 10, p, m), **counts} for p, m in (("srp", 0.2), ("nop", 0.3))]
    assert "`*`" not in anytime_table(plain) and "`†`" not in anytime_table(plain)
    marked = [
        {**plain[0], "answered": 6},  # four orderings had no complete trial within the budget
        {**plain[1], "exhausted": 2},  # two ran out of configurations
    ]
    table = anytime_table(marked)
    assert "| a | 10 | **0.20*** | 0.30† |" in table
    assert "`*` a mean over the orderings that had a complete trial" in table
    assert "`†` in some orderings the corpus ran out of configurations" in table


def write_curves(
    tmp_path: Path, name: str, direction: str, curves: list[list[float | None]]
) -> Path:
    """A corpus of the given curves; parameter ``x`` = the configuration's index / 10."""
    meta: dict[str, Any] = {
        "name": name,
        "direction": direction,
        "n_steps": len(curves[0]),
        "params": {"x": {"type": "float", "low": 0.0, "high": 10.0, "log": False}},
    }
    configs = [{"id": i, "params": {"x": i / 10}, "curve": c} for i, c in enumerate(curves)]
    return write_corpus(tmp_path / f"{name}.jsonl.gz", meta, configs)


def test_early_stopping_cuts_each_curve_where_it_stopped_improving(tmp_path: Path) -> None:
    curves: list[list[float | None]] = [
        [5, 4, 4, 4, 3, 3, 3, 3],  # a tie is no new best: stops at its second report without one
        [5, 4, 3, 2, 1, 0.5, 0.4, 0.3],  # always improving: the whole curve
        [5, 4, None, 3, 2, 1, 0, -1],  # diverged: stops at its first non-finite value
    ]
    corpus = load_corpus(write_curves(tmp_path, "es", "minimize", curves))
    stopped = corpus.with_early_stopping(2)
    assert stopped.name == "es+early-stop2" and corpus.name == "es"
    assert [c.curve.size for c in stopped.configs] == [4, 8, 3]
    assert stopped.configs[0].final == 4.0 and math.isnan(stopped.configs[2].final)
    assert [c.curve.size for c in corpus.with_early_stopping(3).configs] == [8, 8, 3]
    assert [c.curve.size for c in corpus.configs] == [8, 8, 8]  # the corpus is unchanged
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match=f"patience must be an int >= 1, got {bad!r}"):
            corpus.with_early_stopping(bad)  # type: ignore[arg-type]


def test_anytime_with_early_stopping_replays_the_stopped_curves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Curves that peak at step 2 and decline: with patience 1 each run stops at step 3, its
    # final value the one after the peak, and the corpus's best is measured on those.
    curves: list[list[float | None]] = [[0.1 * k, 0.2 * k, 0.1 * k, 0, 0, 0] for k in range(1, 10)]
    path = write_curves(tmp_path, "peaks", "maximize", curves)
    out = tmp_path / "out"
    argv = ["anytime", str(path), "--orderings", "2", "--budgets", "2", "--pruners", "nop"]
    argv += ["--early-stopping", "1", "--out", str(out), "--no-progress", "--no-plots"]
    assert main(argv + ["--jobs", "2"]) == 0
    rows = read_jsonl(out / "results.jsonl")
    assert {r["corpus"] for r in rows} == {"peaks+early-stop1"}
    assert all(r["early_stopping"] == 1 for r in rows)
    assert all(
        t[1] == 3 and t[3] == pytest.approx(0.1 * (t[0] + 1)) for r in rows for t in r["trials"]
    )
    assert rows[0]["true_best"] == pytest.approx(0.9)
    # Budgets are still in full trainings of the longest recorded curve (6 steps): 2 of them
    # are 12 steps, four stopped runs.
    assert all(len(r["trials"]) == 4 for r in rows)
    assert main(argv[:-6] + ["--early-stopping", "0", "--no-progress"]) == 2
    assert "--early-stopping must be >= 1, got 0" in capsys.readouterr().err
