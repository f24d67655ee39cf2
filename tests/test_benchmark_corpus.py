from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import pytest

from optuna_srp.benchmark import load_corpora
from optuna_srp.benchmark import load_corpus
from optuna_srp.benchmark import write_corpus
from optuna_srp.benchmark._corpus import find_corpus_files


def tiny_metadata(**overrides: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "tiny",
        "source": "test",
        "license": "MIT",
        "metric": "acc",
        "direction": "maximize",
        "n_steps": 3,
        "params": {
            "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
            "depth": {"type": "int", "low": 1, "high": 8, "log": False},
            "act": {"type": "categorical", "choices": ["relu", "tanh"]},
        },
    }
    meta.update(overrides)
    return meta


def tiny_configs() -> list[dict[str, Any]]:
    return [
        {"id": 0, "params": {"lr": 0.1, "depth": 2, "act": "relu"}, "curve": [0.1, 0.2, 0.3]},
        {"id": 1, "params": {"lr": 0.01, "depth": 3}, "curve": [0.2, None, None], "net": "x"},
    ]


def write_lines(path: Path, lines: list[Any]) -> Path:
    with gzip.open(path, "wt") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


def test_roundtrip(tmp_path: Path) -> None:
    path = write_corpus(tmp_path / "tiny.jsonl.gz", tiny_metadata(), tiny_configs())
    corpus = load_corpus(path)
    assert corpus.name == "tiny"
    assert corpus.direction == "maximize" and corpus.sign == 1.0
    assert corpus.n_steps == 3
    assert corpus.step_values == [1, 2, 3]
    assert corpus.path == path
    assert isinstance(corpus.distributions["lr"], FloatDistribution)
    assert corpus.distributions["lr"].log
    assert isinstance(corpus.distributions["depth"], IntDistribution)
    assert isinstance(corpus.distributions["act"], CategoricalDistribution)
    assert [c.id for c in corpus.configs] == [0, 1]
    np.testing.assert_allclose(corpus.configs[0].curve, [0.1, 0.2, 0.3])
    assert math.isnan(corpus.configs[1].curve[1]) and math.isnan(corpus.configs[1].final)
    assert corpus.configs[1].extra == {"net": "x"}
    assert corpus.configs[1].params == {"lr": 0.01, "depth": 3}
    np.testing.assert_allclose(corpus.finals(), [0.3, np.nan])


def test_step_values_and_plain_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "plain.jsonl"
    meta = tiny_metadata(step_values=[10, 20, 30], direction="minimize")
    write_corpus(path, meta, tiny_configs())
    corpus = load_corpus(path)
    assert corpus.step_values == [10, 20, 30]
    assert corpus.sign == -1.0


def test_folder(tmp_path: Path) -> None:
    write_corpus(tmp_path / "b.jsonl.gz", tiny_metadata(name="b"), tiny_configs())
    write_corpus(tmp_path / "a.jsonl.gz", tiny_metadata(name="a"), tiny_configs())
    (tmp_path / "README.md").write_text("not a corpus")
    assert [c.name for c in load_corpora([tmp_path])] == ["a", "b"]
    with pytest.raises(FileNotFoundError):
        find_corpus_files([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no"):
        find_corpus_files([tmp_path / "empty"])


@pytest.mark.parametrize(
    "lines, line, message",
    [
        ([], 1, "empty corpus"),
        (["{not json"], 1, "not valid JSON"),
        (["[1, 2]"], 1, "JSON object"),
        ([{"name": "x", "direction": "maximize", "n_steps": 3}], 1, "no 'params'"),
        ([tiny_metadata(direction="up")], 1, "direction"),
        ([tiny_metadata(n_steps=0)], 1, "n_steps"),
        ([tiny_metadata(step_values=[3, 2, 1])], 1, "step_values"),
        ([tiny_metadata(params={"lr": {"type": "double"}})], 1, "'lr'"),
        ([tiny_metadata(params={"lr": {"type": "float", "low": 1}})], 1, "'low' and 'high'"),
        ([tiny_metadata()], 2, "no configuration"),
        ([tiny_metadata(), tiny_configs()[0], "oops"], 3, "not valid JSON"),
        ([tiny_metadata(), {"id": 0, "params": {}}], 2, "no 'curve'"),
        ([tiny_metadata(), {"id": "a", "params": {}, "curve": [1, 2, 3]}], 2, "'id'"),
        ([tiny_metadata(), {"id": 0, "params": {}, "curve": [1, 2]}], 2, "list of 3 values"),
        ([tiny_metadata(), {"id": 0, "params": {}, "curve": [1, "a", 3]}], 2, "'a'"),
        ([tiny_metadata(), {"id": 0, "params": {"x": 1}, "curve": [1, 2, 3]}], 2, "'x'"),
        ([tiny_metadata(), {"id": 0, "params": {"act": "elu"}, "curve": [1, 2, 3]}], 2, "elu"),
        ([tiny_metadata(), {"id": 0, "params": {"depth": 9}, "curve": [1, 2, 3]}], 2, "depth"),
        ([tiny_metadata(), *tiny_configs(), tiny_configs()[0]], 4, "duplicate"),
    ],
)
def test_malformed_names_file_and_line(
    tmp_path: Path, lines: list[Any], line: int, message: str
) -> None:
    path = write_lines(tmp_path / "bad.jsonl.gz", lines)
    with pytest.raises(ValueError, match=message) as info:
        load_corpus(path)
    assert str(info.value).startswith(f"{path}:{line}:")


def test_not_gzip(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl.gz"
    path.write_text("plain text, not gzip\n")
    with pytest.raises(ValueError, match=f"{path}:1:"):
        load_corpus(path)
