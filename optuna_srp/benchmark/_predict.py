"""``predict``: how well the model layer of SRPPruner predicts final values from partial curves.

For each corpus, seed and ``n_train``, ``n_train`` configurations with a finite final value
are drawn at random as the complete training curves; every other configuration with a finite
final value is a test curve. For each fraction of the curve seen (the first ``round(f * T)``
steps, at least one), the methods predict the test curves' final values:

- ``srm``: :class:`optuna_srp.CurveFeaturizer` features and an :class:`optuna_srp.SRMEnsemble`
  (5 ν-SVRs, SRPPruner's default), as SRPPruner builds them for one decision step;
- ``last``: the last value seen;
- ``ols``: ordinary least squares on the same (standardised) features;
- ``rf``: a random forest (100 trees) on the same features.

Everything is in the "higher is better" orientation, and the targets (and the test truths) are
clipped on their bad side at ``median - 3 x (10-90% range)`` of the training finals, which
keeps diverged runs (TaskSet losses up to 1e17) from dominating. SRPPruner also caps the
range at 20 times the distance from the median up to the 90th percentile, which matters only
where a tenth of the training runs diverged.

Reported per (corpus, n_train, fraction, method), as the mean over seeds: R², Spearman's ρ,
Kendall's τ, the coverage of the central 80% and 90% Gaussian intervals of the SRM's mean and
standard deviation, that of the central 90% Student t interval with the ensemble's
``residual_dof_`` (the distribution SRPPruner takes its probability from), and fit seconds
(featurizer and model).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import json
import math
from pathlib import Path
import sys
import time
from typing import Any
import warnings

import numpy as np
from scipy import stats
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from optuna_srp import CurveFeaturizer
from optuna_srp import CurveRecord
from optuna_srp import SRMEnsemble
from optuna_srp.benchmark._corpus import Corpus
from optuna_srp.benchmark._corpus import find_corpus_files
from optuna_srp.benchmark._corpus import load_corpus


N_TRAIN = (25, 50, 100)
FRACTIONS = (0.1, 0.25, 0.5, 0.75)
METHODS = ("srm", "last", "ols", "rf")
_Z80 = float(stats.norm.ppf(0.9))
_Z90 = float(stats.norm.ppf(0.95))
# As in SRPPruner's feature layer: the bad side is clipped at this many 10-90% ranges.
_BAD_SIDE_CLIP = 3.0


DESCRIPTION = (
    "Score SRPPruner's model layer on recorded curves: train on n_train complete curves, "
    "predict the others' final values from the first fraction of their curves, and report "
    "R², rank correlations, interval coverage and fit time per (corpus, n_train, fraction, "
    "method), averaged over random splits. Get corpora with the fetch command."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``predict`` options to ``parser``."""
    parser.add_argument("corpora", nargs="+", help="corpus files (.jsonl.gz) or folders of them")
    parser.add_argument(
        "--n-train",
        type=int,
        nargs="+",
        default=list(N_TRAIN),
        metavar="N",
        help="numbers of complete training curves (default: " + " ".join(map(str, N_TRAIN)) + ")",
    )
    parser.add_argument(
        "--fractions",
        type=float,
        nargs="+",
        default=list(FRACTIONS),
        metavar="F",
        help="fractions of each test curve seen before predicting (default: "
        + " ".join(map(str, FRACTIONS))
        + ")",
    )
    parser.add_argument(
        "--seeds", type=int, default=3, help="random splits, seeds 0..k-1 (default: 3)"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        choices=METHODS,
        help="srm: SRPPruner's ensemble, last: the last value seen, ols: least squares, "
        "rf: random forest (default: all)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for results.jsonl and summary.md (default: none, print only)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress messages")


def run(args: argparse.Namespace) -> int:
    """Run ``predict`` from parsed arguments; returns the exit status."""
    from optuna_srp.benchmark import _report

    if args.seeds < 1 or any(n < 2 for n in args.n_train):
        print("error: --seeds must be >= 1 and --n-train >= 2", file=sys.stderr)
        return 2
    if any(not 0.0 < f <= 1.0 for f in args.fractions):
        print("error: --fractions must be in (0, 1]", file=sys.stderr)
        return 2
    try:
        corpora = [load_corpus(f) for f in find_corpus_files(args.corpora)]
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    for corpus in corpora:
        for seed in range(args.seeds):
            for n_train in args.n_train:
                t0 = time.perf_counter()
                new = evaluate_split(corpus, n_train, seed, args.fractions, args.methods)
                rows.extend(new)
                if not args.no_progress:
                    print(
                        f"{corpus.name} seed {seed} n_train {n_train}: "
                        f"{time.perf_counter() - t0:.1f}s",
                        file=sys.stderr,
                    )
    table = _report.predict_table(_report.aggregate_predict(rows))
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        with open(args.out / "results.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        (args.out / "summary.md").write_text(table + "\n")
        print(f"wrote {args.out / 'results.jsonl'} and {args.out / 'summary.md'}", file=sys.stderr)
    return 0


def corpus_records(corpus: Corpus, cut: int | None = None) -> list[CurveRecord]:
    """One :class:`~optuna_srp.CurveRecord` per configuration, as SRPPruner would build it
    from a trial: values oriented so that higher is better, NaN where non-finite.

    Args:
        corpus: The corpus.
        cut: Keep only the first ``cut`` values of each curve (the trial is then running:
            ``final`` is None).
    """
    steps = np.array(corpus.step_values, dtype=np.int64)
    records = []
    for c in corpus.configs:
        n = c.curve.size if cut is None else min(cut, c.curve.size)
        final = None
        if cut is None:
            final = c.final * corpus.sign
        records.append(
            CurveRecord(
                number=c.id,
                steps=steps[:n],
                values=c.curve[:n] * corpus.sign,
                params=dict(c.params),
                distributions={k: corpus.distributions[k] for k in c.params},
                extra=np.empty(0),
                final=final,
            )
        )
    return records


def clip_floor(train_finals: np.ndarray) -> float:
    """The bad-side floor of the targets: ``median - 3 x (10-90% range)`` of the finals."""
    finite = train_finals[np.isfinite(train_finals)]
    center = float(np.median(finite))
    for lo, hi in ((10, 90), (1, 99), (0, 100)):
        q_lo, q_hi = np.percentile(finite, [lo, hi])
        if q_hi - q_lo > 1e-12 * max(1.0, abs(center)):
            return center - _BAD_SIDE_CLIP * float(q_hi - q_lo)
    return center - _BAD_SIDE_CLIP


def evaluate_split(
    corpus: Corpus,
    n_train: int,
    seed: int,
    fractions: Sequence[float] = FRACTIONS,
    methods: Sequence[str] = METHODS,
) -> list[dict[str, Any]]:
    """Train on ``n_train`` random complete curves and score the predictions of the others.

    Returns:
        One row per (fraction, method): ``kind="predict"``, ``corpus``, ``seed``, ``n_train``,
        ``n_test``, ``fraction``, ``step``, ``method``, ``r2``, ``spearman``, ``kendall``,
        ``cover80``, ``cover90``, ``cover90_t`` (NaN except for ``srm``) and ``fit_s``.

    Raises:
        ValueError: If the corpus has fewer than ``n_train + 2`` finite final values.
    """
    finals = corpus.finals() * corpus.sign
    usable = np.flatnonzero(np.isfinite(finals))
    if usable.size < n_train + 2:
        raise ValueError(
            f"{corpus.name}: {usable.size} configurations with a finite final value, "
            f"need at least n_train + 2 = {n_train + 2}"
        )
    rng = np.random.default_rng(seed)
    perm = rng.permutation(usable)
    train_idx, test_idx = perm[:n_train], perm[n_train:]
    full = corpus_records(corpus)
    train = [full[i] for i in train_idx]
    floor = clip_floor(finals[train_idx])
    y_train = np.maximum(finals[train_idx], floor)
    y_test = np.maximum(finals[test_idx], floor)
    steps = corpus.step_values
    rows = []
    for fraction in fractions:
        cut = max(1, min(len(steps), int(round(fraction * len(steps)))))
        step = steps[cut - 1]
        partial = corpus_records(corpus, cut)
        test = [partial[i] for i in test_idx]
        t0 = time.perf_counter()
        featurizer = CurveFeaturizer(step)
        X_train = featurizer.fit_transform(train)
        X_test = featurizer.transform(test)
        feat_s = time.perf_counter() - t0
        for method in methods:
            mean, std, dof, fit_s = _fit_predict(
                method, X_train, y_train, X_test, test, floor, seed
            )
            rows.append(
                {
                    "kind": "predict",
                    "corpus": corpus.name,
                    "seed": seed,
                    "n_train": n_train,
                    "n_test": int(test_idx.size),
                    "fraction": fraction,
                    "step": step,
                    "method": method,
                    **score(y_test, mean, std, dof),
                    "fit_s": fit_s + (feat_s if method != "last" else 0.0),
                }
            )
    return rows


def score(
    y: np.ndarray, mean: np.ndarray, std: np.ndarray | None, dof: float | None = None
) -> dict[str, float]:
    """R², Spearman's ρ, Kendall's τ and (with ``std``) 80%/90% Gaussian interval coverage,
    and (with ``dof`` too) that of the 90% Student t interval."""
    out = {"r2": math.nan, "spearman": math.nan, "kendall": math.nan}
    ok = np.isfinite(mean)
    if ok.sum() >= 2:
        out["r2"] = float(r2_score(y[ok], mean[ok]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant input: the correlation is NaN
            out["spearman"] = float(stats.spearmanr(y[ok], mean[ok]).statistic)
            out["kendall"] = float(stats.kendalltau(y[ok], mean[ok]).statistic)
    out["cover80"] = out["cover90"] = out["cover90_t"] = math.nan
    if std is not None:
        err = np.abs(y - mean)
        out["cover80"] = float(np.mean(err <= _Z80 * std))
        out["cover90"] = float(np.mean(err <= _Z90 * std))
        if dof is not None:
            out["cover90_t"] = float(np.mean(err <= stats.t.ppf(0.95, dof) * std))
    return out


def _fit_predict(
    method: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    test: Sequence[CurveRecord],
    floor: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray | None, float | None, float]:
    """The method's predictions: mean, std and Student t degrees of freedom (SRM only), and
    fit seconds."""
    t0 = time.perf_counter()
    if method == "last":
        last = np.array([r.values[-1] if r.values.size else math.nan for r in test])
        return np.where(np.isfinite(last), np.maximum(last, floor), floor), None, None, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "srm":
            model = SRMEnsemble(5, random_state=seed).fit(X_train, y_train)
            fit_s = time.perf_counter() - t0
            mean, std = model.predict(X_test, return_std=True)
            return np.asarray(mean), np.asarray(std), float(model.residual_dof_), fit_s
        if method == "ols":
            ols = make_pipeline(StandardScaler(), LinearRegression()).fit(X_train, y_train)
            return ols.predict(X_test), None, None, time.perf_counter() - t0
        if method == "rf":
            rf = RandomForestRegressor(100, random_state=seed, n_jobs=1).fit(X_train, y_train)
            return rf.predict(X_test), None, None, time.perf_counter() - t0
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
