from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any
import urllib.request

import numpy as np
import pytest

from optuna_srp.benchmark import write_corpus
from optuna_srp.benchmark.__main__ import build_parser
from optuna_srp.benchmark.__main__ import main
from tests._shared import needs_shared_curves
from tests._shared import SHARED_CURVES


def synthetic_corpus(tmp_path: Path, n: int = 40, n_steps: int = 8) -> Path:
    """Saturating curves whose final value grows with ``x``, plus noise."""
    rng = np.random.default_rng(0)
    configs = []
    for i in range(n):
        x = float(rng.uniform(0, 1))
        t = np.arange(1, n_steps + 1)
        curve = x * (1 - np.exp(-t / 3)) + rng.normal(0, 0.01, n_steps)
        configs.append({"id": i, "params": {"x": x, "k": int(i % 3)}, "curve": curve.tolist()})
    meta: dict[str, Any] = {
        "name": "synthetic",
        "source": "test",
        "license": "MIT",
        "metric": "acc",
        "direction": "maximize",
        "n_steps": n_steps,
        "params": {
            "x": {"type": "float", "low": 0.0, "high": 1.0, "log": False},
            "k": {"type": "categorical", "choices": [0, 1, 2]},
        },
    }
    return write_corpus(tmp_path / "synthetic.jsonl.gz", meta, configs)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_commands_registered() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"replay", "predict", "report", "fetch"} <= set(sub.choices)  # type: ignore[arg-type]


def test_replay_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = synthetic_corpus(tmp_path)
    out = tmp_path / "out"
    argv = ["replay", str(corpus), "--orderings", "2", "--n-trials", "30"]
    argv += ["--pruners", "nop", "median", "srp:n_startup_trials=5", "--out", str(out)]
    assert main(argv + ["--no-progress"]) == 0
    rows = read_jsonl(out / "results.jsonl")
    assert len(rows) == 6
    assert {r["pruner"] for r in rows} == {"nop", "median", "srp:n_startup_trials=5"}
    nop = [r for r in rows if r["pruner"] == "nop"]
    assert all(r["speedup"] == 1.0 and r["hit"] for r in nop)
    summary = (out / "summary.md").read_text()
    assert "| synthetic | nop | 1.00x | 1.00 | 1.00 | 1.00 | 0.000 |" in summary
    assert "| synthetic | srp:n_startup_trials=5 |" in summary
    assert (out / "speedup_regret_synthetic.png").exists()
    assert (out / "curves_synthetic.png").exists()
    printed = capsys.readouterr().out
    assert "| corpus | pruner | speedup |" in printed

    # ``report`` renders the same table from results.jsonl.
    report_md = tmp_path / "report.md"
    argv = ["report", str(out / "results.jsonl"), "--out", str(report_md), "--compact"]
    assert main(argv) == 0
    text = report_md.read_text()
    assert "| synthetic | nop | 1.00x |" in text
    assert "| corpus | srp:n_startup_trials=5 | median | nop |" in text
    assert "Each cell: speedup / hit rate / top-5 completed." in text
    assert "#### Replay: 2 orderings (seeds 0-1), up to 30 trials a study" in text
    # With --out the markdown goes to the file only; the folder --out wrote is read as its
    # results.jsonl.
    assert capsys.readouterr().out == ""
    assert main(["report", str(out), "--compact"]) == 0
    assert capsys.readouterr().out == text


def test_report_names_a_file_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = synthetic_corpus(tmp_path)  # gzip: a corpus given where results are expected
    assert main(["report", str(corpus)]) == 2
    err = capsys.readouterr().err
    assert str(corpus) in err and "not UTF-8 text" in err


def test_predict_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = synthetic_corpus(tmp_path)
    out = tmp_path / "pred"
    argv = ["predict", str(corpus), "--n-train", "15", "--seeds", "2", "--fractions", "0.5"]
    assert main(argv + ["--out", str(out), "--no-progress"]) == 0
    rows = read_jsonl(out / "results.jsonl")
    assert len(rows) == 2 * 4  # seeds x methods
    assert {r["method"] for r in rows} == {"srm", "last", "ols", "rf"}
    srm = [r for r in rows if r["method"] == "srm"]
    assert all(r["n_test"] == 25 and r["step"] == 4 for r in srm)
    # Final values are a smooth function of the curve so far: easy to predict.
    assert all(r["r2"] > 0.8 and r["spearman"] > 0.8 for r in srm)
    assert all(0.0 <= r["cover80"] <= r["cover90"] <= r["cover90_t"] <= 1.0 for r in srm)
    assert all(np.isnan(r["cover80"]) for r in rows if r["method"] != "srm")
    assert all(np.isnan(r["cover90_t"]) for r in rows if r["method"] != "srm")
    assert "| synthetic | 15 | 50% |" in (out / "summary.md").read_text()
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("#### Predict:") and "| synthetic | 15 | 50% |" in printed


def test_bad_input_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "x"}\n')
    assert main(["replay", str(bad), "--no-progress"]) == 2
    assert f"{bad}:1:" in capsys.readouterr().err
    corpus = synthetic_corpus(tmp_path)
    assert main(["replay", str(corpus), "--pruners", "magic", "--no-progress"]) == 2
    assert main(["predict", str(tmp_path / "missing.jsonl.gz")]) == 2


@needs_shared_curves
def test_shared_curves_replay(tmp_path: Path) -> None:
    corpus = SHARED_CURVES / "accelerating_nas-lstm_ptb.jsonl.gz"
    out = tmp_path / "shared"
    argv = ["replay", str(corpus), "--orderings", "1", "--n-trials", "40"]
    argv += ["--pruners", "nop", "median", "--out", str(out), "--no-plots", "--no-progress"]
    assert main(argv) == 0
    rows = {r["pruner"]: r for r in read_jsonl(out / "results.jsonl")}
    assert rows["nop"]["speedup"] == 1.0 and rows["nop"]["hit"]
    assert rows["nop"]["epochs_full"] == 40 * 59
    assert rows["median"]["speedup"] > 1.5


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return dict(sub.choices)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["replay", "predict", "report", "fetch", "cost", "soak"])
def test_help_describes_every_option_with_its_default(command: str) -> None:
    parsers = _subparsers()
    if command not in parsers:
        pytest.skip(f"{command} is not registered here")
    parser = parsers[command]
    text = parser.format_help()
    assert "``" not in text and ":class:" not in text  # no leftover reST
    assert parser.description and len(parser.description) > 40
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[0] if action.option_strings else action.dest
        assert action.help, f"{command} {name} has no help"
        flag = action.nargs == 0
        if action.option_strings and not flag:
            assert "default" in action.help or action.required, (command, name, action.help)


def test_fetch_checks_every_name_before_downloading(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("fetch went to the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    # A valid name first: it must not be downloaded while a later one is wrong.
    argv = ["fetch", "accelerating_nas:lstm_ptb", "lcbench:no-such-task", "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "'no-such-task'" in err
    assert "blood-transfusion-service-center" in err  # the valid names are listed

    assert main(["fetch", "openml:adult", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "'openml:adult'" in err and "accelerating_nas, taskset, lcbench" in err
    assert list(tmp_path.iterdir()) == []


def test_fetch_help_lists_the_valid_names() -> None:
    text = "".join(_subparsers()["fetch"].format_help().split())  # wrapped at hyphens too
    for name in ("lstm_ptb", "deep_resnets_cifar10", "car", "blood-transfusion-service-center"):
        assert name in text
    assert "FixedTextRNNClassification_imdb_patch32_GRU128_bs128" in text
