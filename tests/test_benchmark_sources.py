from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any
import urllib.request

import pytest

from optuna_srp.benchmark import _sources
from optuna_srp.benchmark import load_corpus
from optuna_srp.benchmark import write_corpus
from optuna_srp.benchmark._sources import convert_accelerating_nas_csv
from optuna_srp.benchmark._sources import convert_lcbench_json
from optuna_srp.benchmark._sources import convert_lcbench_tables
from optuna_srp.benchmark._sources import convert_taskset_json
from optuna_srp.benchmark._sources import infer_param_spec


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("tests must not use the network")

    # _sources looks up urllib.request.urlopen at call time: patch it in that module.
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setenv("OPTUNA_SRP_CACHE", str(tmp_path / "cache"))


METAQNN_CSV = (
    "net,training_dataset,num_params,depth,lr,acc_1,acc_2,acc_3\n"
    '"[C(64,1,1), P(2,2), C(128,3,1), GAP(10), SM(10)]",cifar10,1000,4,0.001,0.3,0.4,0.5\n'
    '"[C(64,5,1), FC(128), D(1,2), SM(10)]",cifar10,200000,3,0.0004,0.2,0.25,\n'
)
LSTM_CSV = (
    "location,n_layer,n_inputs,base_lr,ss,ep_0,ep_1,ep_2\n"
    "a/ ,2,10,0.1,15000,300,200,150\n"
    "b/ ,3,90,0.1,15000,310,190,140\n"
)


def roundtrip(tmp_path: Path, raw: tuple[dict[str, Any], list[dict[str, Any]]]) -> Any:
    meta, configs = raw
    return load_corpus(write_corpus(tmp_path / f"{meta['name']}.jsonl.gz", meta, configs))


def test_accelerating_nas_metaqnn(tmp_path: Path) -> None:
    corpus = roundtrip(tmp_path, convert_accelerating_nas_csv(METAQNN_CSV, "metaqnn_cifar10"))
    assert corpus.name == "accelerating_nas-metaqnn_cifar10"
    assert corpus.direction == "maximize" and corpus.n_steps == 3
    first, second = corpus.configs
    assert first.params == {
        "num_params": 1000,
        "depth": 4,
        "lr": 0.001,
        "n_conv": 2,
        "n_pool": 1,
        "n_fc": 0,
    }
    assert second.params["n_fc"] == 1 and second.params["n_pool"] == 0
    assert first.extra["net"].startswith("[C(64")
    assert math.isnan(second.final)  # an empty cell is a missing value
    assert "training_dataset" not in corpus.distributions


def test_accelerating_nas_lstm_drops_epoch_zero(tmp_path: Path) -> None:
    corpus = roundtrip(tmp_path, convert_accelerating_nas_csv(LSTM_CSV, "lstm_ptb"))
    assert corpus.direction == "minimize" and corpus.metric == "val_perplexity"
    assert corpus.configs[0].curve.tolist() == [200.0, 150.0]
    assert set(corpus.distributions) == {"n_layer", "n_inputs", "base_lr", "ss"}


def test_accelerating_nas_malformed() -> None:
    with pytest.raises(ValueError, match="no curve columns"):
        convert_accelerating_nas_csv("a,b\n1,2\n", "x")
    with pytest.raises(ValueError, match="CSV line 2"):
        convert_accelerating_nas_csv("lr,acc_1\nfast,0.5\n", "x")


def test_infer_param_spec() -> None:
    assert infer_param_spec([1, 2, 2]) == {"type": "categorical", "choices": [1, 2]}
    assert infer_param_spec(list(range(10, 2000, 100))) == {
        "type": "int",
        "low": 10,
        "high": 1910,
        "log": True,
    }
    spec = infer_param_spec([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert spec is not None and spec["type"] == "float"
    assert infer_param_spec([None, "a"]) is None


def test_taskset_json(tmp_path: Path) -> None:
    runs = [
        {
            "hp": {"learning_rate": 1e-3, "beta1": 0.9, "l2": 1e-6, "unknown": 3.0},
            "train": {"loss": [0.7, 0.6, 0.5]},
            "valid": {"loss": [0.72, 0.65, 0.55]},
        },
        {
            "hp": {"learning_rate": 20.0, "beta1": 0.5, "l2": 1e-6},
            "valid": {"loss": [0.72, 1e17, float("nan")]},
        },
    ]
    text = json.dumps(runs)  # writes NaN as Python's json does
    corpus = roundtrip(tmp_path, convert_taskset_json(text, "Task_a"))
    assert corpus.name == "taskset-Task_a" and corpus.direction == "minimize"
    assert corpus.step_values == [200, 400]
    assert corpus.configs[0].curve.tolist() == [0.65, 0.55]
    assert corpus.configs[1].curve[0] == 1e17 and math.isnan(corpus.configs[1].final)
    assert corpus.configs[0].params == {"learning_rate": 1e-3, "beta1": 0.9, "l2": 1e-6}
    assert corpus.distributions["learning_rate"].high == 20.0  # widened to hold the value
    with pytest.raises(ValueError, match="run 0"):
        convert_taskset_json(json.dumps([{"hp": {}}]), "Task_b")
    with pytest.raises(ValueError, match="not valid JSON"):
        convert_taskset_json("[{", "Task_c")


def lcbench_log(values: list[float]) -> dict[str, Any]:
    return {"Train/val_accuracy": values, "Train/val_balanced_accuracy": [v / 100 for v in values]}


def test_lcbench_json(tmp_path: Path) -> None:
    log = [50.0] + [float(60 + e) for e in range(1, 51)] + [110.0]  # epoch 0, 1..50, duplicate
    data = {
        "blood": {
            "1": {"config": {"batch_size": 71.0, "learning_rate": 0.01, "loss": "x"}, "log": {}},
            "0": {"config": {"batch_size": 16, "momentum": 0.5}, "log": lcbench_log(log)},
        }
    }
    data["blood"]["1"]["log"] = lcbench_log(log)
    corpus = roundtrip(tmp_path, convert_lcbench_json(data, "blood", "val_balanced_accuracy"))
    assert corpus.name == "lcbench_balanced-blood" and corpus.n_steps == 50
    assert [c.id for c in corpus.configs] == [0, 1]
    assert corpus.configs[0].curve[0] == pytest.approx(0.61)
    assert corpus.configs[0].final == pytest.approx(1.10)
    assert corpus.configs[1].params == {"batch_size": 71, "learning_rate": 0.01}
    with pytest.raises(ValueError, match="not in the LCBench JSON"):
        convert_lcbench_json(data, "other", "val_accuracy")


def test_lcbench_tables(tmp_path: Path) -> None:
    metrics = [
        {"config_id": cid, "epoch": e, "val_accuracy": 70.0 + cid + e / 100}
        for cid in (0, 1)
        for e in range(0, 52)
    ]
    config = [{"config_id": 0, "num_layers": 2}, {"config_id": 1, "num_layers": 3}]
    corpus = roundtrip(tmp_path, convert_lcbench_tables(metrics, config, "t", "val_accuracy"))
    assert corpus.name == "lcbench-t" and corpus.n_steps == 50
    assert corpus.configs[1].curve[0] == pytest.approx(71.01)
    assert corpus.configs[1].params == {"num_layers": 3}
    with pytest.raises(ValueError, match="none of the columns"):
        convert_lcbench_tables([{"foo": 1}], config, "t", "val_accuracy")


def test_fetch_uses_the_cache(tmp_path: Path) -> None:
    cached = _sources.cache_dir() / "accelerating_nas" / "master" / "data" / "lstm_ptb.csv"
    cached.parent.mkdir(parents=True)
    cached.write_text(LSTM_CSV)
    meta, configs = _sources.load_accelerating_nas("lstm_ptb")
    assert meta["name"] == "accelerating_nas-lstm_ptb" and len(configs) == 2
    with pytest.raises(AssertionError, match="network"):
        _sources.load_taskset("not_cached")
