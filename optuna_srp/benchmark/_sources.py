"""Loaders of the public sources of the corpora, converted to the corpus format.

They download from the original publishers when online and cache the raw files under
``$OPTUNA_SRP_CACHE`` (default ``~/.cache/optuna_srp``):

- ``accelerating_nas:NAME``: ``data/NAME.csv`` of GitHub MITAutoML/accelerating_nas (MIT), the
  curves released with Baker et al. (arXiv:1705.10823): ``metaqnn_cifar10``, ``metaqnn_svhn``,
  ``deep_resnets_cifar10``, ``deep_resnets_tinyimagenet``, ``lstm_ptb``, ``alexnet_imagenet``.
- ``taskset:TASK``: ``data/taskset/TASK.json`` of GitHub machinelearningnuremberg/DPL
  (Apache-2.0), derived from Google Research's TaskSet (Metz et al. 2020).
- ``lcbench:TASK`` (accuracy) or ``lcbench_balanced:TASK`` (balanced accuracy): either the
  LCBench JSON (``data_2k.json`` or a per-task JSON in its ``{task: {config_id: {"config",
  "log"}}}`` layout, Zimmer et al. 2021, figshare doi 10.6084/m9.figshare.11662422) passed as
  ``--lcbench-json``, or the per-task parquet files of GitHub ltiao/LCBenchLite (needs
  ``pandas`` and ``pyarrow``).

The conversion functions take the raw text or parsed data, so that they are tested without the
network. ``python -m optuna_srp.benchmark fetch SOURCE:NAME --out DIR`` writes a corpus.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
from pathlib import Path
import re
import sys
from typing import Any
import urllib.request

from optuna_srp.benchmark._corpus import write_corpus


ACCELERATING_NAS_REPO = "MITAutoML/accelerating_nas"
ACCELERATING_NAS_REF = "master"  # the shared corpora were made from commit 82ed099
DPL_REPO = "machinelearningnuremberg/DPL"
DPL_REF = "de44b74030a7d4bb37467add431e6fac19cd357a"
LCBENCHLITE_REPO = "ltiao/LCBenchLite"
LCBENCHLITE_REF = "42ea3c2f1138920d62a089fefd793490a801233e"

TASKSET_STEPS = [200 * (i + 1) for i in range(50)]
# TaskSet's adam8p_wide_grid ranges (beta1 = 1 - logU(1e-4, 1), beta2 = 1 - logU(1e-6, 1)).
TASKSET_PARAMS: dict[str, dict[str, Any]] = {
    "learning_rate": {"type": "float", "low": 1e-8, "high": 10.0, "log": True},
    "beta1": {"type": "float", "low": 0.0, "high": 0.9999, "log": False},
    "beta2": {"type": "float", "low": 0.0, "high": 0.999999, "log": False},
    "epsilon": {"type": "float", "low": 1e-10, "high": 1000.0, "log": True},
    "l1": {"type": "float", "low": 1e-8, "high": 10.0, "log": True},
    "l2": {"type": "float", "low": 1e-8, "high": 10.0, "log": True},
    "linear_decay": {"type": "float", "low": 1e-7, "high": 1e-4, "log": True},
    "exponential_decay": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
}
# LCBench's search space (Zimmer et al. 2021).
LCBENCH_PARAMS: dict[str, dict[str, Any]] = {
    "batch_size": {"type": "int", "low": 16, "high": 512, "log": True},
    "learning_rate": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
    "momentum": {"type": "float", "low": 0.1, "high": 0.99, "log": False},
    "weight_decay": {"type": "float", "low": 1e-5, "high": 0.1, "log": False},
    "num_layers": {"type": "int", "low": 1, "high": 5, "log": False},
    "max_units": {"type": "int", "low": 64, "high": 1024, "log": True},
    "max_dropout": {"type": "float", "low": 0.0, "high": 1.0, "log": False},
}
_CURVE_COLUMN = re.compile(r"^(?:acc|ep|epoch|val_acc|val_loss|loss|perplexity)_(\d+)$")
_NON_PARAM_COLUMNS = ("net", "training_dataset", "location")
_CATEGORICAL_MAX_CHOICES = 5

RawCorpus = tuple[dict[str, Any], list[dict[str, Any]]]


# The names each source has: checked before anything is downloaded.
ACCELERATING_NAS_NAMES = (
    "metaqnn_cifar10",
    "metaqnn_svhn",
    "deep_resnets_cifar10",
    "deep_resnets_tinyimagenet",
    "lstm_ptb",
    "alexnet_imagenet",
)
TASKSET_TASKS = tuple(
    f"FixedTextRNNClassification_imdb_{name}"
    for name in (
        "patch128_LSTM128_avg_bs64",
        "patch128_LSTM128_bs64",
        "patch128_LSTM128_embed128_bs64",
        "patch32_GRU128_bs128",
        "patch32_GRU64_avg_bs128",
        "patch32_IRNN64_relu_avg_bs128",
        "patch32_IRNN64_relu_last_bs128",
        "patch32_LSTM128_E128_bs128",
        "patch32_LSTM128_bs128",
        "patch32_VRNN128_tanh_bs128",
        "patch32_VRNN64_relu_avg_bs128",
        "patch32_VRNN64_tanh_avg_bs128",
    )
)
LCBENCH_TASKS = (
    "APSFailure", "Amazon_employee_access", "Australian", "Fashion-MNIST",
    "KDDCup09_appetency", "MiniBooNE", "adult", "airlines", "albert", "bank-marketing",
    "blood-transfusion-service-center", "car", "christine", "cnae-9", "connect-4",
    "covertype", "credit-g", "dionis", "fabert", "helena", "higgs", "jannis", "jasmine",
    "jungle_chess_2pcs_raw_endgame_complete", "kc1", "kr-vs-kp", "mfeat-factors", "nomao",
    "numerai28.6", "phoneme", "segment", "shuttle", "sylvine", "vehicle", "volkert",
)  # fmt: skip
SOURCE_NAMES = {
    "accelerating_nas": ACCELERATING_NAS_NAMES,
    "taskset": TASKSET_TASKS,
    "lcbench": LCBENCH_TASKS,
    "lcbench_balanced": LCBENCH_TASKS,
}

DESCRIPTION = (
    "Download a public source of recorded learning curves and convert it to a corpus file "
    "(SOURCE-NAME.jsonl.gz in --out) for replay and predict. Raw files are cached under "
    "$OPTUNA_SRP_CACHE (default: ~/.cache/optuna_srp). Each SOURCE:NAME is checked before "
    "anything is downloaded."
)
EPILOG = (
    "accelerating_nas:NAME, the curves of Baker et al. (arXiv:1705.10823), NAME one of: "
    + ", ".join(ACCELERATING_NAS_NAMES)
    + ".  taskset:TASK, TaskSet RNN text classifiers (Metz et al. 2020), TASK one of: "
    + ", ".join(TASKSET_TASKS)
    + ".  lcbench:TASK (accuracy) or lcbench_balanced:TASK (balanced accuracy), LCBench "
    "(Zimmer et al. 2021, needs pandas and pyarrow unless --lcbench-json), TASK one of: "
    + ", ".join(LCBENCH_TASKS)
    + ".  Example: fetch accelerating_nas:lstm_ptb lcbench:car --out corpora"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``fetch`` options to ``parser``."""
    parser.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE:NAME",
        help="accelerating_nas:NAME, taskset:TASK, lcbench:TASK or lcbench_balanced:TASK "
        "(the names are listed below)",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for the corpora (required)"
    )
    parser.add_argument(
        "--lcbench-json",
        type=Path,
        default=None,
        help="a local LCBench JSON (data_2k.json) to read instead of downloading LCBenchLite "
        "(default: none)",
    )


def check_source(source: str) -> tuple[str, str]:
    """Split ``SOURCE:NAME`` and check both against the known names.

    Raises:
        ValueError: If the source or the name is unknown; the message lists the valid ones.
    """
    kind, _, name = source.partition(":")
    if kind not in SOURCE_NAMES:
        raise ValueError(
            f"unknown source {source!r}: write SOURCE:NAME with SOURCE one of "
            f"{', '.join(SOURCE_NAMES)}"
        )
    if name not in SOURCE_NAMES[kind]:
        raise ValueError(
            f"unknown {kind} name {name!r} in {source!r}; valid names: "
            f"{', '.join(SOURCE_NAMES[kind])}"
        )
    return kind, name


def run(args: argparse.Namespace) -> int:
    """Run ``fetch``; returns the exit status."""
    for source in args.sources:
        try:
            check_source(source)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    for source in args.sources:
        kind, _, name = source.partition(":")
        try:
            if kind == "accelerating_nas":
                meta, configs = load_accelerating_nas(name)
            elif kind == "taskset":
                meta, configs = load_taskset(name)
            elif kind in ("lcbench", "lcbench_balanced"):
                metric = "val_balanced_accuracy" if kind == "lcbench_balanced" else "val_accuracy"
                meta, configs = load_lcbench(name, metric, json_path=args.lcbench_json)
            else:
                raise ValueError(f"unknown source {source!r}")
        except (OSError, ValueError, ImportError) as e:
            print(f"error: {source}: {e}", file=sys.stderr)
            return 1
        path = write_corpus(args.out / f"{meta['name']}.jsonl.gz", meta, configs)
        print(f"wrote {path} ({len(configs)} configurations)", file=sys.stderr)
    return 0


def cache_dir() -> Path:
    """``$OPTUNA_SRP_CACHE``, else ``~/.cache/optuna_srp``."""
    return Path(os.environ.get("OPTUNA_SRP_CACHE", Path.home() / ".cache" / "optuna_srp"))


def fetch(url: str, relative: str) -> Path:
    """Download ``url`` into the cache as ``relative`` unless it is there already.

    Raises:
        OSError: If the download fails (e.g. offline).
    """
    path = cache_dir() / relative
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as f:
        while chunk := response.read(1 << 20):
            f.write(chunk)
    os.replace(tmp, path)
    return path


def github_raw_url(repo: str, ref: str, path: str) -> str:
    """The raw-file URL of ``path`` in GitHub ``repo`` at ``ref``."""
    return f"https://raw.githubusercontent.com/{repo}/{ref}/{path}"


# --------------------------------------------------------------------------- accelerating_nas


def load_accelerating_nas(name: str, ref: str = ACCELERATING_NAS_REF) -> RawCorpus:
    """Download (or read from the cache) ``data/NAME.csv`` of MITAutoML/accelerating_nas."""
    path = f"data/{name}.csv"
    local = fetch(
        github_raw_url(ACCELERATING_NAS_REPO, ref, path), f"accelerating_nas/{ref}/{path}"
    )
    return convert_accelerating_nas_csv(
        local.read_text(encoding="utf-8"),
        name,
        source=f"github:{ACCELERATING_NAS_REPO}@{ref} {path}",
    )


def convert_accelerating_nas_csv(text: str, name: str, source: str = "") -> RawCorpus:
    """Convert one CSV of accelerating_nas to a corpus.

    Curve columns are ``acc_<epoch>`` or ``ep_<epoch>``; epoch 0 (the untrained model) is
    dropped. Other numeric columns are parameters (categorical when they take at most 5
    values, log-scaled when positive and spanning a factor of 100 or more); MetaQNN's ``net``
    string is kept and also gives the counts ``n_conv``, ``n_pool`` and ``n_fc``. Perplexity
    corpora (``lstm*``) are minimised, the others (accuracy) maximised.

    Raises:
        ValueError: If the CSV has no curve columns or a malformed row.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    curve_cols = sorted(
        ((int(m.group(1)), c) for c in header if (m := _CURVE_COLUMN.match(c.strip()))),
    )
    if not curve_cols:
        raise ValueError(f"{name}: no curve columns (acc_<i> or ep_<i>) in the CSV header")
    curve_cols = [(i, c) for i, c in curve_cols if i > 0]
    curve_names = {c for _, c in curve_cols}
    param_cols = [
        c for c in header if c not in curve_names and c.strip() not in _NON_PARAM_COLUMNS
    ]
    param_cols = [c for c in param_cols if not _CURVE_COLUMN.match(c.strip())]
    rows = []
    for lineno, row in enumerate(reader, start=2):
        try:
            curve = [_number(row[c]) for _, c in curve_cols]
            params = {c.strip(): _number(row[c]) for c in param_cols}
        except (ValueError, KeyError) as e:
            raise ValueError(f"{name}: CSV line {lineno}: {e}") from None
        extra: dict[str, Any] = {}
        net = row.get("net")
        if net:
            extra["net"] = net
            params.update(
                n_conv=len(re.findall(r"\bC\(", net)),
                n_pool=len(re.findall(r"\bP\(", net)),
                n_fc=len(re.findall(r"\bFC\(", net)),
            )
        rows.append((params, curve, extra))
    param_names = [c.strip() for c in param_cols] + (
        ["n_conv", "n_pool", "n_fc"] if any(r[2] for r in rows) else []
    )
    specs = {p: infer_param_spec([r[0].get(p) for r in rows]) for p in param_names}
    specs = {p: s for p, s in specs.items() if s is not None}
    minimize = name.startswith("lstm")
    meta = {
        "name": f"accelerating_nas-{name}",
        "source": source or f"github:{ACCELERATING_NAS_REPO} data/{name}.csv",
        "license": "MIT (MITAutoML/accelerating_nas LICENSE)",
        "metric": "val_perplexity" if minimize else "val_accuracy",
        "direction": "minimize" if minimize else "maximize",
        "n_steps": len(curve_cols),
        "params": specs,
        "notes": "epoch 0 (untrained) dropped; converted by optuna_srp.benchmark._sources",
    }
    configs = [
        {
            "id": i,
            "params": {k: v for k, v in params.items() if k in specs and v is not None},
            "curve": curve,
            **extra,
        }
        for i, (params, curve, extra) in enumerate(rows)
    ]
    return meta, configs


def infer_param_spec(values: list[Any]) -> dict[str, Any] | None:
    """A parameter spec from observed values (None when no value is numeric)."""
    nums = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not nums:
        return None
    unique = sorted(set(nums))
    if len(unique) <= _CATEGORICAL_MAX_CHOICES:
        return {"type": "categorical", "choices": unique}
    low, high = unique[0], unique[-1]
    log = low > 0 and high / low >= 100
    if all(float(v).is_integer() for v in unique):
        return {"type": "int", "low": int(low), "high": int(high), "log": log}
    return {"type": "float", "low": float(low), "high": float(high), "log": log}


def _number(text: str | None) -> int | float | None:
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        value = float(text)  # raises ValueError on non-numbers
        return value if math.isfinite(value) else None


# ------------------------------------------------------------------------------------ TaskSet


def load_taskset(task: str, ref: str = DPL_REF) -> RawCorpus:
    """Download (or read from the cache) ``data/taskset/TASK.json`` of the DPL repository."""
    path = f"data/taskset/{task}.json"
    local = fetch(github_raw_url(DPL_REPO, ref, path), f"dpl/{ref}/{path}")
    return convert_taskset_json(
        local.read_text(encoding="utf-8"), task, source=f"github:{DPL_REPO}@{ref}:{path}"
    )


def convert_taskset_json(text: str, task: str, source: str = "") -> RawCorpus:
    """Convert a TaskSet JSON of the DPL repository to a corpus.

    The JSON is a list of ``{"hp": {...}, "train": {"loss": [...]}, "valid": {"loss": [...]},
    ...}``; the curve is the ``valid`` loss without its step-0 evaluation, one value per 200
    optimiser steps. Non-finite values (NaN, null) are diverged runs.

    Raises:
        ValueError: If the JSON does not have that layout.
    """
    try:
        runs = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{task}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(runs, list) or not runs:
        raise ValueError(f"{task}: expected a non-empty JSON list of runs")
    specs = {k: dict(v) for k, v in TASKSET_PARAMS.items()}
    configs = []
    n_steps = None
    for i, run_ in enumerate(runs):
        try:
            hp = run_["hp"]
            losses = run_["valid"]["loss"][1:]
        except (KeyError, TypeError, IndexError):
            raise ValueError(f"{task}: run {i} has no 'hp' or 'valid': {{'loss'}}") from None
        n_steps = n_steps or len(losses)
        if len(losses) != n_steps:
            raise ValueError(f"{task}: run {i} has {len(losses)} evaluations, not {n_steps}")
        params = {k: float(v) for k, v in hp.items() if k in specs}
        for k, v in params.items():  # widen the documented ranges if a value falls outside
            specs[k]["low"] = min(specs[k]["low"], v)
            specs[k]["high"] = max(specs[k]["high"], v)
        curve = [_finite_or_none(v) for v in losses]
        configs.append({"id": i, "params": params, "curve": curve})
    assert n_steps is not None
    meta = {
        "name": f"taskset-{task}",
        "source": source or f"github:{DPL_REPO}:data/taskset/{task}.json",
        "license": "Apache-2.0 (DPL repository; TaskSet by Google Research, Apache-2.0)",
        "metric": "val_loss",
        "direction": "minimize",
        "n_steps": n_steps,
        "step_unit": "evaluation every 200 optimizer steps; the step-0 eval is dropped",
        "step_values": [200 * (i + 1) for i in range(n_steps)],
        "params": specs,
    }
    return meta, configs


def _finite_or_none(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


# ------------------------------------------------------------------------------------ LCBench


def load_lcbench(
    task: str, metric: str = "val_balanced_accuracy", json_path: Path | None = None
) -> RawCorpus:
    """LCBench curves of one task, from a local LCBench JSON or LCBenchLite's parquet files.

    Args:
        task: The OpenML task name, e.g. ``blood-transfusion-service-center``.
        metric: ``val_accuracy`` (percent) or ``val_balanced_accuracy``.
        json_path: A local LCBench JSON (``data_2k.json`` from figshare, or one task of it);
            without it, LCBenchLite's per-task parquet files are downloaded (needs pandas and
            pyarrow).
    """
    if json_path is not None:
        with open(json_path, encoding="utf-8") as f:
            return convert_lcbench_json(json.load(f), task, metric, source=str(json_path))
    try:
        import pandas as pd
    except ImportError as e:
        raise ImportError(
            "reading LCBenchLite's parquet files needs pandas and pyarrow "
            "(pip install pandas pyarrow), or pass a local LCBench JSON"
        ) from e
    tables = {}
    for part in ("metrics", "config"):
        path = f"{task}/{part}.parquet.gzip"
        local = fetch(
            github_raw_url(LCBENCHLITE_REPO, LCBENCHLITE_REF, path),
            f"lcbenchlite/{LCBENCHLITE_REF}/{path}",
        )
        tables[part] = pd.read_parquet(local).reset_index().to_dict("records")
    return convert_lcbench_tables(
        tables["metrics"],
        tables["config"],
        task,
        metric,
        source=f"github:{LCBENCHLITE_REPO}@{LCBENCHLITE_REF}:{task}/",
    )


def convert_lcbench_json(
    data: dict[str, Any], task: str, metric: str, source: str = ""
) -> RawCorpus:
    """Convert LCBench's JSON (``{task: {config_id: {"config": {...}, "log": {...}}}}``).

    The curve is ``log["Train/" + metric]`` without epoch 0 (the evaluation before training)
    and the duplicate last epoch (51 of 52 values are kept as epochs 1..50).

    Raises:
        ValueError: If the task or the metric is missing.
    """
    if task not in data:
        raise ValueError(f"task {task!r} is not in the LCBench JSON (has {sorted(data)[:5]}...)")
    runs = data[task]
    configs = []
    for key in sorted(runs, key=lambda k: int(k)):
        run_ = runs[key]
        log = run_.get("log", {})
        values = log.get(f"Train/{metric}", log.get(metric))
        if values is None:
            raise ValueError(f"{task}: config {key} has no 'Train/{metric}' in its log")
        configs.append(
            {
                "id": int(key),
                "params": _coerce(run_.get("config", {}), LCBENCH_PARAMS),
                "curve": [_finite_or_none(v) for v in _lcbench_epochs(values)],
            }
        )
    return _lcbench_corpus(configs, task, metric, source)


def convert_lcbench_tables(
    metrics: list[dict[str, Any]],
    config: list[dict[str, Any]],
    task: str,
    metric: str,
    source: str = "",
) -> RawCorpus:
    """Convert long-format LCBench tables (as LCBenchLite's parquet files, read into records).

    ``metrics`` rows hold a configuration id (``config_id`` or ``id``), an ``epoch`` and the
    metric (``metric`` or ``Train/<metric>``); ``config`` rows hold the id and the
    hyper-parameters. Epoch 0 and epochs beyond 50 are dropped.

    Raises:
        ValueError: If a column is missing.
    """
    id_key = _first_key(metrics, ("config_id", "id", "config"))
    value_key = _first_key(metrics, (metric, f"Train/{metric}"))
    epoch_key = _first_key(metrics, ("epoch",))
    cid_key = _first_key(config, (id_key, "config_id", "id", "index"))
    curves: dict[int, dict[int, Any]] = {}
    for row in metrics:
        curves.setdefault(int(row[id_key]), {})[int(row[epoch_key])] = row[value_key]
    params = {int(r[cid_key]): {k: r[k] for k in LCBENCH_PARAMS if k in r} for r in config}
    configs = [
        {
            "id": cid,
            "params": _coerce(params.get(cid, {}), LCBENCH_PARAMS),
            "curve": [_finite_or_none(by_epoch.get(e)) for e in range(1, 51)],
        }
        for cid, by_epoch in sorted(curves.items())
    ]
    return _lcbench_corpus(configs, task, metric, source)


def _lcbench_epochs(values: list[Any]) -> list[Any]:
    # 52 logged values: epoch 0 (before training), 1..50, and a duplicate of the last epoch.
    return list(values[1:51])


def _lcbench_corpus(
    configs: list[dict[str, Any]], task: str, metric: str, source: str
) -> RawCorpus:
    if not configs:
        raise ValueError(f"{task}: no configurations")
    n_steps = max(len(c["curve"]) for c in configs)
    for c in configs:
        c["curve"] = c["curve"] + [None] * (n_steps - len(c["curve"]))
    prefix = "lcbench_balanced" if metric == "val_balanced_accuracy" else "lcbench"
    meta = {
        "name": f"{prefix}-{task}",
        "source": source or "LCBench data_2k (Zimmer et al. 2021)",
        "license": "Apache-2.0 (LCBench data as released on figshare)",
        "metric": metric,
        "direction": "maximize",
        "n_steps": n_steps,
        "step_unit": f"epoch (1..{n_steps}); epoch 0 and the duplicate last epoch are dropped",
        "params": LCBENCH_PARAMS,
    }
    return meta, configs


def _first_key(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> str:
    if not rows:
        raise ValueError("empty table")
    for k in keys:
        if k in rows[0]:
            return k
    raise ValueError(f"none of the columns {keys} in {sorted(rows[0])}")


def _coerce(params: dict[str, Any], specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The parameters of ``specs`` as plain Python numbers (ints for int parameters)."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if k in specs and v is not None:
            v = v.item() if hasattr(v, "item") else v  # numpy scalars
            out[k] = int(round(v)) if specs[k]["type"] == "int" else float(v)
    return out
