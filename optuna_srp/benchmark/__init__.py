"""Benchmark of optuna-srp against Optuna's pruners on recorded learning curves.

Run it as ``python -m optuna_srp.benchmark <command>`` or ``optuna-srp-bench <command>``:

- ``anytime``: the regret a study returns for a fixed budget of full trainings, with the random
  sampler or TPE, optionally warm-started (``--split half --source ...``).
- ``replay``: real Optuna studies replaying recorded curves through each pruner, for a fixed
  number of trials (how often the best configuration is kept, epochs saved).
- ``predict``: accuracy and calibration of the final-value predictions, with baselines.
- ``report``: render the markdown tables and figures again from ``results.jsonl`` files.
- ``fetch``: download a public source (LCBench, TaskSet, the seed paper's curves) as a corpus.
- ``cost`` and ``soak``: the pruner's cost per call and refit, and a long stability run.

It uses only the public API of :mod:`optuna_srp`. The corpus format is described in
:mod:`optuna_srp.benchmark._corpus`; loaders of the public sources are in
:mod:`optuna_srp.benchmark._sources`.
"""

from __future__ import annotations

from optuna_srp.benchmark._corpus import Config
from optuna_srp.benchmark._corpus import Corpus
from optuna_srp.benchmark._corpus import load_corpora
from optuna_srp.benchmark._corpus import load_corpus
from optuna_srp.benchmark._corpus import write_corpus
from optuna_srp.benchmark._pruners import parse_pruner_spec
from optuna_srp.benchmark._pruners import PrunerSpec
from optuna_srp.benchmark._replay import replay_study
from optuna_srp.benchmark._replay import run_replay


__all__ = [
    "Config",
    "Corpus",
    "PrunerSpec",
    "load_corpora",
    "load_corpus",
    "parse_pruner_spec",
    "replay_study",
    "run_replay",
    "write_corpus",
]
