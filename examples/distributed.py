"""Several worker processes share one study through a storage URL, each with its own SRPPruner.

Every worker opens the study with ``create_study(..., load_if_exists=True)``, builds its own
:class:`~optuna_srp.SRPPruner` and runs its share of the trials of the PyTorch example
(``pytorch_digits.py``). The pruners share no model: each fits its own, lazily, from the
complete trials it reads from the storage, so all workers decide from the same data.

Usage::

    python examples/distributed.py                                  # 4 workers, journal file
    python examples/distributed.py --storage sqlite:///digits.db
    python examples/distributed.py --storage postgresql://user:pass@host/db  # psycopg2 needed

Workers on other machines join the same study by running this script with the same
``--storage`` and ``--study-name`` (an RDB URL, or a journal file on a shared file system).
Running it again with the same storage resumes the study.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
import multiprocessing
import os
import sys
import time
from typing import Any

import optuna
from optuna.trial import TrialState
import torch


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_digits as example  # noqa: E402


def worker(worker_id: int, n_trials: int, args: argparse.Namespace, prune_seconds: Any) -> None:
    """Run ``n_trials`` trials of the shared study in this process, adding the seconds it
    spent in ``trial.should_prune()`` to ``prune_seconds`` (a shared ``multiprocessing.Value``)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        torch.set_num_threads(1)  # one core per worker
    data = example.load_data(args.dataset, device, root=args.data_root)
    study = optuna.create_study(
        storage=example.make_storage(args.storage),
        study_name=args.study_name,
        direction="maximize",
        # A seed per worker: with one seed, the workers' random start-up trials would repeat.
        sampler=optuna.samplers.TPESampler(seed=args.seed + worker_id, constant_liar=True),
        pruner=example.make_pruner("srp", args.epochs, args.seed),  # this worker's own pruner
        load_if_exists=True,
    )
    clock = example.PruneClock()
    train = example.make_objective(data, args.epochs, device, args.seed, clock)

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker_id)
        return train(trial)

    study.optimize(objective, n_trials=n_trials)
    with prune_seconds.get_lock():
        prune_seconds.value += clock.seconds


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--n-workers", type=int, default=4, help="worker processes")
    parser.add_argument("--n-trials", type=int, default=40, help="trials, all workers together")
    parser.add_argument("--epochs", type=int, default=15, help="epoch budget per trial")
    parser.add_argument(
        "--seed", type=int, default=0, help="the pruner's; worker i's sampler gets seed + i"
    )
    parser.add_argument(
        "--storage",
        default="journal:optuna-srp-distributed.log",
        help="journal:FILE (the default), sqlite:///FILE or postgresql://...",
    )
    parser.add_argument(
        "--study-name", default="pytorch-digits-distributed", help="joined if it exists"
    )
    parser.add_argument("--dataset", choices=example.DATASETS, default="digits")
    parser.add_argument("--data-root", default="./data", help="download folder (not digits)")
    parser.add_argument("--device", default=None, help="default: cuda when available, or cpu")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> example.StudyResult:
    args = parse_args(argv)
    if args.n_workers < 1 or args.n_trials < 1:
        raise SystemExit("--n-workers and --n-trials must be positive")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.dataset != "digits":
        example.load_data(args.dataset, root=args.data_root)  # download once, not per worker

    study = optuna.create_study(
        storage=example.make_storage(args.storage),
        study_name=args.study_name,
        direction="maximize",
        load_if_exists=True,
    )
    n_before = len(study.get_trials(deepcopy=False))
    print(
        f"study {args.study_name!r} in {args.storage}: {n_before} earlier trials; "
        f"{args.n_workers} workers run {args.n_trials} trials x {args.epochs} epochs",
        flush=True,
    )

    shares = [
        args.n_trials // args.n_workers + (i < args.n_trials % args.n_workers)
        for i in range(args.n_workers)
    ]
    # "spawn": a fresh interpreter per worker, safe with torch's threads and with CUDA.
    context = multiprocessing.get_context("spawn")
    prune_seconds = context.Value("d", 0.0)
    processes = [
        context.Process(target=worker, args=(i, n, args, prune_seconds), name=f"worker-{i}")
        for i, n in enumerate(shares)
        if n > 0
    ]
    start = time.perf_counter()
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    wall_time = time.perf_counter() - start
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        raise SystemExit(f"workers failed: {', '.join(failed)}")

    study = optuna.load_study(
        study_name=args.study_name, storage=example.make_storage(args.storage)
    )
    result = example.StudyResult(
        "srp", study, args.epochs, wall_time, prune_seconds.value, n_workers=len(processes)
    )
    # This run's trials only: with load_if_exists, the study may hold an earlier run's.
    per_worker = Counter(
        t.user_attrs.get("worker")
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        if t.number >= n_before
    )
    print()
    if n_before:
        print(f"the whole study ({n_before} earlier trials and this run's):")
    print(example.format_summary(result))
    print(
        "trials per worker in this run: "
        + ", ".join(f"{w}: {n}" for w, n in sorted(per_worker.items(), key=lambda x: str(x[0])))
    )
    return result


if __name__ == "__main__":
    main()
