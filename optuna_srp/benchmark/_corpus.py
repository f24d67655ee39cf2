"""Corpora of recorded learning curves: reading, validating and writing the shared format.

A corpus is a gzip'd (or plain) JSON-lines file. Line 1 holds the metadata::

    {"name", "source", "license", "metric", "direction": "maximize"|"minimize", "n_steps": T,
     "params": {NAME: {"type": "float"|"int"|"categorical", "low", "high", "log", "choices"}}}

optionally with ``step_values`` (the step number of each curve value), ``step_unit`` and
``notes``. Every other line is one configuration::

    {"id": int, "params": {NAME: value}, "curve": [v_1, ..., v_T]}

``null`` in a curve is a non-finite value (a diverged run) and is read as NaN. Other keys of a
configuration line (e.g. MetaQNN's ``net``) are kept in :attr:`Config.extra`.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
import gzip
import json
import math
import os
from pathlib import Path
from typing import Any
from typing import IO

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution


CORPUS_SUFFIXES = (".jsonl.gz", ".jsonl")


@dataclass(frozen=True)
class Config:
    """One recorded configuration.

    Attributes:
        id: The configuration's id, unique within its corpus.
        params: Its hyper-parameters (a subset of the corpus's parameters).
        curve: The metric after each step, NaN where the run diverged.
        extra: Any other keys of the configuration's line.
    """

    id: int
    params: dict[str, Any]
    curve: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> float:
        """The last value of the curve (NaN if the run diverged or the curve is empty)."""
        return float(self.curve[-1]) if self.curve.size else math.nan


@dataclass(frozen=True)
class Corpus:
    """A corpus of recorded learning curves of one training task.

    Attributes:
        name: The corpus's name.
        metadata: The metadata line as read.
        distributions: Optuna distributions of the parameters.
        configs: The configurations, in file order.
        path: The file it was read from, if any.
    """

    name: str
    metadata: dict[str, Any]
    distributions: dict[str, BaseDistribution]
    configs: list[Config]
    path: Path | None = None

    @property
    def direction(self) -> str:
        """``"maximize"`` or ``"minimize"``."""
        return str(self.metadata["direction"])

    @property
    def metric(self) -> str:
        """The name of the recorded metric."""
        return str(self.metadata.get("metric", "value"))

    @property
    def n_steps(self) -> int:
        """The number of steps of every curve."""
        return int(self.metadata["n_steps"])

    @property
    def sign(self) -> float:
        """``1.0`` when higher is better, ``-1.0`` when lower is better."""
        return 1.0 if self.direction == "maximize" else -1.0

    @property
    def step_values(self) -> list[int]:
        """The step number of each curve value: ``step_values`` of the metadata, else 1..T."""
        values = self.metadata.get("step_values")
        if values is None:
            return list(range(1, self.n_steps + 1))
        return [int(v) for v in values]

    def finals(self) -> np.ndarray:
        """Final values of all configurations, in file order (NaN for diverged runs)."""
        return np.array([c.final for c in self.configs], dtype=np.float64)

    def with_early_stopping(self, patience: int) -> Corpus:
        """The corpus as an objective with its own early stopping would have trained it.

        Each curve ends after ``patience`` reports in a row without a new best value (a tie is
        not one, as in PyTorch Lightning's and Keras's ``EarlyStopping`` with ``min_delta=0``),
        or at its first non-finite value (Lightning's ``check_finite``); its final value is the
        last one reported, what an objective that returns its last validation value gives. The
        study's complete trials then end at different steps, as in a user's study whose
        objective stops its own runs. The name gets ``+early-stop<patience>``.

        Raises:
            ValueError: If ``patience`` is not an int of at least 1.
        """
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an int >= 1, got {patience!r}")
        configs = [
            replace(c, curve=_early_stopped(c.curve, self.sign, patience)) for c in self.configs
        ]
        return replace(self, name=f"{self.name}+early-stop{patience}", configs=configs)

    def subset(self, indices: Sequence[int]) -> Corpus:
        """A corpus holding the configurations at ``indices`` (in that order)."""
        return Corpus(
            name=self.name,
            metadata=self.metadata,
            distributions=self.distributions,
            configs=[self.configs[i] for i in indices],
            path=self.path,
        )


def _early_stopped(curve: np.ndarray, sign: float, patience: int) -> np.ndarray:
    """``curve`` cut where early stopping with ``patience`` would have ended it (see
    :meth:`Corpus.with_early_stopping`)."""
    best = -math.inf
    since = 0
    for i, value in enumerate(curve):
        if not math.isfinite(value):
            return curve[: i + 1]
        if value * sign > best:
            best, since = value * sign, 0
        else:
            since += 1
            if since >= patience:
                return curve[: i + 1]
    return curve


def distribution_from_spec(name: str, spec: Any) -> BaseDistribution:
    """Turn a parameter spec of the metadata line into an Optuna distribution.

    Args:
        name: The parameter's name (for error messages).
        spec: ``{"type": "float"|"int"|"categorical", "low", "high", "log", "choices"}``.

    Raises:
        ValueError: If the spec is malformed.
    """
    if not isinstance(spec, dict):
        raise ValueError(f"parameter {name!r}: the spec must be an object, got {spec!r}")
    kind = spec.get("type")
    try:
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices:
                raise ValueError("'choices' must be a non-empty list")
            return CategoricalDistribution(choices)
        if kind in ("float", "int"):
            log = bool(spec.get("log", False))
            low: Any = spec.get("low")
            high: Any = spec.get("high")
            if not _is_number(low) or not _is_number(high):
                raise ValueError("'low' and 'high' must be numbers")
            if kind == "float":
                return FloatDistribution(float(low), float(high), log=log)
            return IntDistribution(int(low), int(high), log=log)
    except ValueError as e:
        raise ValueError(f"parameter {name!r}: {e}") from None
    raise ValueError(
        f"parameter {name!r}: 'type' must be 'float', 'int' or 'categorical', got {kind!r}"
    )


def load_corpus(path: str | os.PathLike[str]) -> Corpus:
    """Read one corpus file (``.jsonl.gz`` or ``.jsonl``).

    Raises:
        ValueError: If the file is malformed; the message names the file and the line.
        FileNotFoundError: If the file does not exist.
    """
    path = Path(path)
    with _open_text(path) as f:
        return parse_corpus(f, source=str(path), path=path)


def find_corpus_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand files and folders into corpus files (a folder gives its ``*.jsonl[.gz]``, sorted).

    Raises:
        FileNotFoundError: If a path does not exist or a folder holds no corpus.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.name.endswith(CORPUS_SUFFIXES))
            if not found:
                raise FileNotFoundError(f"{p}: no *.jsonl.gz or *.jsonl corpus in this folder")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return files


def load_corpora(paths: Iterable[str | os.PathLike[str]]) -> list[Corpus]:
    """Read every corpus in ``paths`` (files, or folders of corpus files)."""
    return [load_corpus(f) for f in find_corpus_files(paths)]


def parse_corpus(
    lines: Iterable[str], source: str = "<corpus>", path: Path | None = None
) -> Corpus:
    """Parse the lines of a corpus.

    Args:
        lines: The lines of the file, the metadata line first.
        source: The file's name, used in error messages.
        path: The file, recorded in the result.

    Raises:
        ValueError: If the corpus is malformed, as ``"<source>:<line>: <what>"``.
    """
    it = iter(lines)
    meta: dict[str, Any] | None = None
    distributions: dict[str, BaseDistribution] = {}
    configs: list[Config] = []
    seen_ids: set[int] = set()
    lineno = 0
    for lineno, line in enumerate(it, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{source}:{lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise ValueError(
                f"{source}:{lineno}: expected a JSON object, got {type(obj).__name__}"
            )
        try:
            if meta is None:
                meta = _check_metadata(obj)
                distributions = {
                    name: distribution_from_spec(name, spec)
                    for name, spec in meta["params"].items()
                }
                continue
            config = _parse_config(obj, meta, distributions)
        except ValueError as e:
            raise ValueError(f"{source}:{lineno}: {e}") from None
        if config.id in seen_ids:
            raise ValueError(f"{source}:{lineno}: duplicate configuration id {config.id}")
        seen_ids.add(config.id)
        configs.append(config)
    if meta is None:
        raise ValueError(f"{source}:{max(lineno, 1)}: empty corpus, the metadata line is missing")
    if not configs:
        raise ValueError(f"{source}:{lineno + 1}: the corpus holds no configuration")
    return Corpus(
        name=str(meta["name"]),
        metadata=meta,
        distributions=distributions,
        configs=configs,
        path=path,
    )


def write_corpus(
    path: str | os.PathLike[str],
    metadata: dict[str, Any],
    configs: Iterable[dict[str, Any]],
) -> Path:
    """Write a corpus in the shared format (gzip'd when the name ends in ``.gz``).

    Args:
        path: The file to write.
        metadata: The metadata line.
        configs: Configuration lines: ``{"id", "params", "curve", ...}``; non-finite curve
            values are written as ``null``.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(tmp, "wt", encoding="utf-8") as f:
        f.write(json.dumps(metadata) + "\n")
        for c in configs:
            line = dict(c)
            line["curve"] = [_json_value(v) for v in line["curve"]]
            f.write(json.dumps(line) + "\n")
    os.replace(tmp, path)
    return path


def _json_value(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _open_text(path: Path) -> _GzipLines | IO[str]:
    if path.name.endswith(".gz"):
        return _GzipLines(path)
    return open(path, encoding="utf-8")


class _GzipLines:
    """A text-mode gzip file whose decompression errors name the file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._f: IO[str] = gzip.open(path, "rt", encoding="utf-8")

    def __enter__(self) -> _GzipLines:
        return self

    def __exit__(self, *args: object) -> None:
        self._f.close()

    def __iter__(self) -> Iterator[str]:
        lineno = 0
        try:
            for lineno, line in enumerate(self._f, start=1):
                yield line
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise ValueError(
                f"{self._path}:{lineno + 1}: cannot read the gzip'd text ({e})"
            ) from None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    for key in ("name", "direction", "n_steps", "params"):
        if key not in obj:
            raise ValueError(f"the metadata line has no {key!r}")
    if obj["direction"] not in ("maximize", "minimize"):
        raise ValueError(f"'direction' must be 'maximize' or 'minimize', got {obj['direction']!r}")
    n_steps = obj["n_steps"]
    if not (isinstance(n_steps, int) and not isinstance(n_steps, bool) and n_steps >= 1):
        raise ValueError(f"'n_steps' must be an int >= 1, got {n_steps!r}")
    if not isinstance(obj["params"], dict):
        raise ValueError("'params' must be an object")
    steps = obj.get("step_values")
    if steps is not None:
        if (
            not isinstance(steps, list)
            or len(steps) != n_steps
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in steps)
            or any(b <= a for a, b in zip(steps, steps[1:]))
        ):
            raise ValueError(
                f"'step_values' must be {n_steps} increasing non-negative ints (one per step)"
            )
    return obj


def _parse_config(
    obj: dict[str, Any], meta: dict[str, Any], distributions: dict[str, BaseDistribution]
) -> Config:
    for key in ("id", "params", "curve"):
        if key not in obj:
            raise ValueError(f"the configuration has no {key!r}")
    cid = obj["id"]
    if not isinstance(cid, int) or isinstance(cid, bool):
        raise ValueError(f"'id' must be an int, got {cid!r}")
    params = obj["params"]
    if not isinstance(params, dict):
        raise ValueError(f"configuration {cid}: 'params' must be an object")
    for name, value in params.items():
        dist = distributions.get(name)
        if dist is None:
            raise ValueError(f"configuration {cid}: parameter {name!r} is not in the metadata")
        if isinstance(dist, CategoricalDistribution):
            if value not in dist.choices:
                raise ValueError(
                    f"configuration {cid}: {name}={value!r} is not one of {list(dist.choices)}"
                )
        elif isinstance(dist, (FloatDistribution, IntDistribution)):
            if not _is_number(value) or not (dist.low <= value <= dist.high):
                raise ValueError(
                    f"configuration {cid}: {name}={value!r} is not a number in "
                    f"[{dist.low}, {dist.high}]"
                )
    curve = obj["curve"]
    n_steps = int(meta["n_steps"])
    if not isinstance(curve, list) or len(curve) != n_steps:
        got = len(curve) if isinstance(curve, list) else type(curve).__name__
        raise ValueError(
            f"configuration {cid}: 'curve' must be a list of {n_steps} values, got {got}"
        )
    if not all(v is None or _is_number(v) for v in curve):
        bad = next(v for v in curve if not (v is None or _is_number(v)))
        raise ValueError(f"configuration {cid}: curve value {bad!r} is not a number or null")
    values = np.array([math.nan if v is None else v for v in curve], dtype=np.float64)
    values[~np.isfinite(values)] = np.nan
    extra = {k: v for k, v in obj.items() if k not in ("id", "params", "curve")}
    return Config(id=cid, params=dict(params), curve=values, extra=extra)
