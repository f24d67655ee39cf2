"""Tune a small CNN with PyTorch, stopping bad trials early, and compare pruners.

The default data set is scikit-learn's bundled digits (1797 grey images of 8x8 pixels), so the
example runs with no download. To make the task one where configurations differ, training
sees only ``--train-size`` images (200 by default, 20 per class) with a random affine
augmentation; the other images are the validation set. Each trial samples what a practitioner
tunes on a small CNN: depth and width, dropout, the optimizer (SGD with momentum, Adam, AdamW),
the learning rate over five decades, weight decay, batch size and the learning-rate schedule
(step decay, a tenth at half and at three quarters of the epochs, or cosine). It trains for
``--epochs`` epochs and reports the validation accuracy after each; a pruner may stop it.

Usage::

    python examples/pytorch_digits.py                    # every pruner on the same study
    python examples/pytorch_digits.py --pruner srp       # SRPPruner alone
    python examples/pytorch_digits.py --dataset fashion-mnist  # downloads through torchvision
    python examples/pytorch_digits.py --pruner srp --storage sqlite:///digits.db

``--pruner all`` (the default) runs the same study, the same sampler seed and the same
per-trial torch seeds, with no pruning, MedianPruner, SuccessiveHalvingPruner,
HyperbandPruner and SRPPruner, and compares them twice: after the same number of trials, and
at the same epoch budget (the epochs no pruning spends on half the trials; each study runs on
until it has spent them, so a pruner that saves epochs buys more trials). Two studies run at
once by default (``--jobs``), each in its own process. It writes the
SRP study's learning curves with the predictions (``predictions.png``) and the best accuracy
found against the epochs spent, one line per pruner (``anytime.png``), into ``--out``.
A GPU is used when one is present.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
import math
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import torch
from torch import nn
from torchvision.transforms import v2

from optuna_srp import SRPPruner


PRUNERS = ("none", "median", "halving", "hyperband", "srp")
PRUNER_LABELS = {
    "none": "no pruning",
    "median": "MedianPruner",
    "halving": "SuccessiveHalving",
    "hyperband": "Hyperband",
    "srp": "SRPPruner",
}
DATASETS = ("digits", "fashion-mnist", "cifar10")
N_CLASSES = 10


@dataclass
class Data:
    """A data set held as tensors on the training device.

    Attributes:
        x_train: Training images, ``(N, C, H, W)`` floats in ``[0, 1]``.
        y_train: Training labels.
        x_valid: Validation images, already normalised.
        y_valid: Validation labels.
        normalize: The normalisation applied to the images.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    normalize: v2.Normalize

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)


@dataclass
class StudyResult:
    """One finished study and what it cost.

    Attributes:
        pruner: The pruner's name (one of :data:`PRUNERS`).
        study: The study.
        epochs: The epochs a trial trains when it is not pruned.
        wall_time: Seconds the first ``n_trials`` trials took.
        prune_time: Seconds they spent inside ``trial.should_prune()``.
        n_trials: The trials the counts and the best value are taken over (the first ones);
            ``None`` for all. Trials run after them, to spend an epoch budget, count only in
            :meth:`anytime` and :meth:`best_within`.
        n_workers: The processes that ran the study; with more than one, ``prune_time`` is
            summed over them.
    """

    pruner: str
    study: optuna.Study
    epochs: int
    wall_time: float
    prune_time: float = 0.0
    n_trials: int | None = None
    n_workers: int = 1

    def _trials(self, *states: TrialState) -> list[FrozenTrial]:
        first = self.study.get_trials(deepcopy=False)[: self.n_trials]
        return [t for t in first if t.state in states]

    @property
    def n_started(self) -> int:
        return len(self.study.get_trials(deepcopy=False)[: self.n_trials])

    @property
    def n_run(self) -> int:
        """All trials run, those past ``n_trials`` included."""
        return len(self.study.get_trials(deepcopy=False))

    @property
    def n_complete(self) -> int:
        return len(self._trials(TrialState.COMPLETE))

    @property
    def n_pruned(self) -> int:
        return len(self._trials(TrialState.PRUNED))

    @property
    def epochs_trained(self) -> int:
        """Epochs trained by the complete and pruned trials."""
        finished = self._trials(TrialState.COMPLETE, TrialState.PRUNED)
        return sum(len(t.intermediate_values) for t in finished)

    @property
    def epochs_without_pruning(self) -> int:
        """Epochs the same trials would have trained with no pruner."""
        return (self.n_complete + self.n_pruned) * self.epochs

    @property
    def speedup(self) -> float:
        return self.epochs_without_pruning / max(self.epochs_trained, 1)

    @property
    def best_trial(self) -> FrozenTrial | None:
        """The best complete trial among the first ``n_trials`` (None if none completed)."""
        complete = [t for t in self._trials(TrialState.COMPLETE) if t.value is not None]
        return max(complete, key=lambda t: float(t.value), default=None)

    @property
    def best_value(self) -> float:
        best = self.best_trial
        return math.nan if best is None or best.value is None else best.value

    def anytime(self) -> list[tuple[int, float]]:
        """``(epochs spent, best complete accuracy so far)`` after each finished trial, in the
        order the trials ran (their numbers: the study runs one trial at a time)."""
        spent, best, curve = 0, math.nan, []
        states = (TrialState.COMPLETE, TrialState.PRUNED)
        for t in self.study.get_trials(deepcopy=False, states=states):
            spent += len(t.intermediate_values)
            if t.state == TrialState.COMPLETE and t.value is not None:
                best = t.value if math.isnan(best) else max(best, t.value)
            curve.append((spent, best))
        return curve

    def best_within(self, budget: int) -> float:
        """The best complete accuracy among the trials that finished within ``budget`` epochs
        (counting every epoch trained before, pruned trials' included); NaN if none did."""
        within = [best for spent, best in self.anytime() if spent <= budget]
        return within[-1] if within else math.nan

    def trials_within(self, budget: int) -> int:
        """The trials that finished within ``budget`` epochs."""
        return sum(spent <= budget for spent, _ in self.anytime())


def load_data(
    name: str = "digits",
    device: torch.device | str = "cpu",
    root: str = "./data",
    train_size: int = 200,
    max_valid: int = 2_000,
) -> Data:
    """Load a data set as tensors.

    ``digits`` is scikit-learn's bundled data set, split (stratified, fixed seed) into
    ``train_size`` training images and the rest for validation; it never downloads.
    ``fashion-mnist`` and ``cifar10`` are downloaded by torchvision into ``root``; a fixed
    random subset of ``train_size`` training and ``max_valid`` test images keeps them quick on
    a CPU.
    """
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        images = (X / 16.0).reshape(-1, 1, 8, 8).astype(np.float32)
        if not 0 < train_size < len(images) - N_CLASSES:
            raise ValueError(
                f"train_size must be in [1, {len(images) - N_CLASSES}), got {train_size}"
            )
        x_tr, x_va, y_tr, y_va = train_test_split(
            images, y, train_size=train_size, stratify=y, random_state=0
        )
        x_train, x_valid = torch.from_numpy(x_tr), torch.from_numpy(x_va)
        y_train, y_valid = torch.from_numpy(y_tr), torch.from_numpy(y_va)
    elif name in ("fashion-mnist", "cifar10"):
        from torchvision import datasets

        cls = datasets.FashionMNIST if name == "fashion-mnist" else datasets.CIFAR10
        train = cls(root, train=True, download=True)
        test = cls(root, train=False, download=True)
        x_train, y_train = _as_tensors(train.data, train.targets, train_size)
        x_valid, y_valid = _as_tensors(test.data, test.targets, max_valid)
    else:
        raise ValueError(f"Unknown dataset {name!r}; choose from {DATASETS}.")

    mean = x_train.mean(dim=(0, 2, 3)).tolist()
    std = x_train.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist()
    normalize = v2.Normalize(mean, std)
    return Data(
        x_train=x_train.to(device),
        y_train=y_train.long().to(device),
        x_valid=normalize(x_valid).to(device),
        y_valid=y_valid.long().to(device),
        normalize=normalize,
    )


def _as_tensors(images: object, targets: object, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(np.asarray(images))
    if x.ndim == 3:  # (N, H, W) grey images
        x = x.unsqueeze(1)
    else:  # (N, H, W, C) colour images
        x = x.permute(0, 3, 1, 2)
    y = torch.as_tensor(np.asarray(targets))
    keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:limit]
    return x[keep].float() / 255.0, y[keep]


def build_model(trial: optuna.Trial, image_shape: tuple[int, int, int]) -> nn.Module:
    """Sample a CNN: ``depth`` blocks of 3x3 convolution (``width`` channels, doubling per
    block), ReLU and 2x2 max-pooling, then dropout and a linear classifier."""
    depth = trial.suggest_int("depth", 1, 3)
    width = trial.suggest_int("width", 4, 32, log=True)
    dropout = trial.suggest_float("dropout", 0.0, 0.5)

    channels, height, width_px = image_shape
    layers: list[nn.Module] = []
    for i in range(depth):
        out = width * 2**i
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU()]
        if min(height, width_px) >= 2:
            layers.append(nn.MaxPool2d(2))
            height, width_px = height // 2, width_px // 2
        channels = out
    layers += [
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(channels * height * width_px, N_CLASSES),
    ]
    return nn.Sequential(*layers)


def build_optimizer(trial: optuna.Trial, model: nn.Module) -> torch.optim.Optimizer:
    """Sample the optimizer, its learning rate, weight decay and (SGD) momentum."""
    name = trial.suggest_categorical("optimizer", ["SGD", "Adam", "AdamW"])
    lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
    weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
    if name == "SGD":
        momentum = trial.suggest_float("momentum", 0.0, 0.99)
        return torch.optim.SGD(
            model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
        )
    if name == "AdamW":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)


def build_schedule(
    trial: optuna.Trial, optimizer: torch.optim.Optimizer, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Sample the learning-rate schedule, stepped once per epoch: step decay (a tenth at half
    and at three quarters of the epochs, as in ResNet training) or cosine annealing."""
    if trial.suggest_categorical("schedule", ["step", "cosine"]) == "step":
        milestones = sorted({max(1, epochs // 2), max(1, 3 * epochs // 4)})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))


class PruneClock:
    """Seconds spent in ``trial.should_prune()``, summed over a study's trials."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def should_prune(self, trial: optuna.Trial) -> bool:
        start = time.perf_counter()
        try:
            return trial.should_prune()
        finally:
            self.seconds += time.perf_counter() - start


def make_objective(
    data: Data,
    epochs: int,
    device: torch.device | str = "cpu",
    seed: int = 0,
    clock: PruneClock | None = None,
) -> Callable[[optuna.Trial], float]:
    """The objective: train a sampled CNN for ``epochs`` epochs, report the validation accuracy
    after each one and return the last. ``clock`` sums the time spent deciding to prune."""
    augment = v2.Compose(
        [
            v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
            data.normalize,
        ]
    )
    clock = clock or PruneClock()

    def objective(trial: optuna.Trial) -> float:
        torch.manual_seed(seed * 100_003 + trial.number)
        model = build_model(trial, data.image_shape).to(device)
        optimizer = build_optimizer(trial, model)
        schedule = build_schedule(trial, optimizer, epochs)
        batch_size = trial.suggest_categorical("batch_size", [16, 32, 64, 128])
        loss_fn = nn.CrossEntropyLoss()

        accuracy = 0.0
        n = len(data.x_train)
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(n, device=device)
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                # One random affine per mini-batch: per-image transforms would cost more than
                # the training itself on 8x8 images.
                x = augment(data.x_train[idx])
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model(x), data.y_train[idx]).backward()
                optimizer.step()
            schedule.step()

            model.eval()
            with torch.no_grad():
                predicted = model(data.x_valid).argmax(dim=1)
            accuracy = (predicted == data.y_valid).float().mean().item()
            trial.report(accuracy, epoch)
            if clock.should_prune(trial):
                raise optuna.TrialPruned(f"pruned at epoch {epoch} with accuracy {accuracy:.4f}")
        return accuracy

    return objective


def make_pruner(name: str, epochs: int, seed: int = 0) -> BasePruner:
    """The pruner called ``name`` (one of :data:`PRUNERS`), each with its defaults: what a user
    who has not tuned the pruner gets. Hyperband is told the epoch budget."""
    if name == "srp":
        return SRPPruner(seed=seed)
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner()
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    raise ValueError(f"Unknown pruner {name!r}; choose from {PRUNERS}.")


def make_storage(url: str | None) -> str | BaseStorage | None:
    """A storage from a URL: ``None`` (in memory), ``sqlite:///...``, ``postgresql://...``,
    or a JournalStorage file as ``journal:PATH`` (``journal:///abs/path`` also works)."""
    if url is None:
        return None
    if url.startswith("sqlite:"):
        # Several processes write to one SQLite file: wait for its lock rather than fail.
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    if not url.startswith("journal:"):
        return url
    path = url.removeprefix("journal:")
    if path.startswith("//"):
        path = path[2:]
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))


def _progress(label: str, every: int) -> Callable[[optuna.Study, FrozenTrial], None]:
    start = time.perf_counter()

    def callback(study: optuna.Study, trial: FrozenTrial) -> None:
        if every <= 0 or (trial.number + 1) % every:
            return
        trials = study.get_trials(deepcopy=False)
        states = [t.state for t in trials]
        epochs = sum(len(t.intermediate_values) for t in trials)
        best = f"{study.best_value:.4f}" if TrialState.COMPLETE in states else "-"
        print(
            f"  [{label}] {trial.number + 1} trials, {states.count(TrialState.PRUNED)} pruned, "
            f"{epochs} epochs, best {best}, {time.perf_counter() - start:.0f} s",
            flush=True,
        )

    return callback


def run_study(
    pruner: str,
    data: Data,
    *,
    n_trials: int,
    epochs: int,
    budget: int = 0,
    seed: int = 0,
    device: torch.device | str = "cpu",
    storage: str | None = None,
    study_name: str | None = None,
    progress_every: int = 10,
) -> StudyResult:
    """Run one study with the pruner called ``pruner`` for ``n_trials`` trials, and on until
    it has trained ``budget`` epochs (at most ten times ``n_trials`` trials); time the first
    ``n_trials``."""
    study = optuna.create_study(
        storage=make_storage(storage),
        study_name=study_name,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=make_pruner(pruner, epochs, seed),
        load_if_exists=True,
    )
    n_before = len(study.get_trials(deepcopy=False))
    clock = PruneClock()
    start = time.perf_counter()
    at_n_trials: list[float] = []

    def stop(study: optuna.Study, trial: FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)[n_before:]
        if len(trials) == n_trials:
            at_n_trials.extend([time.perf_counter() - start, clock.seconds])
        spent = sum(len(t.intermediate_values) for t in trials)
        if len(trials) >= n_trials and spent >= budget or len(trials) >= 10 * n_trials:
            study.stop()

    study.optimize(
        make_objective(data, epochs, device, seed, clock),
        n_trials=None,
        callbacks=[stop, _progress(pruner, progress_every)],
    )
    wall, prune = at_n_trials or (time.perf_counter() - start, clock.seconds)
    return StudyResult(pruner, study, epochs, wall, prune, n_before + n_trials)


def format_summary(result: StudyResult) -> str:
    """A few lines on what a study found and what it cost."""
    lines = [
        f"pruner: {PRUNER_LABELS.get(result.pruner, result.pruner)}",
        f"trials: {result.n_complete} completed, {result.n_pruned} pruned",
        f"epochs trained: {result.epochs_trained} of {result.epochs_without_pruning} without "
        "pruning"
        + (
            f" ({result.speedup:.2f}x fewer)"
            if result.epochs_trained < result.epochs_without_pruning
            else ""
        ),
    ]
    best = result.best_trial  # among the trials counted above, not those run after them
    if best is not None and best.value is not None:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items())
        lines.append(f"best accuracy: {best.value:.4f} (trial {best.number})")
        lines.append(f"best params: {params}")
    if result.n_workers == 1:
        lines.append(
            f"wall time: {result.wall_time:.1f} s, "
            f"of which deciding to prune {result.prune_time:.2f} s"
        )
    else:
        lines.append(
            f"wall time: {result.wall_time:.1f} s; deciding to prune {result.prune_time:.2f} s, "
            f"summed over {result.n_workers} worker processes"
        )
    return "\n".join(lines)


def format_spread(result: StudyResult) -> str:
    """The best, median and worst final accuracy over a study's complete trials."""
    finals = sorted(t.value for t in result._trials(TrialState.COMPLETE) if t.value is not None)
    if not finals:
        return "no complete trial"
    return (
        f"final accuracy over {len(finals)} complete configurations: best {finals[-1]:.4f}, "
        f"median {statistics.median(finals):.4f}, worst {finals[0]:.4f}"
    )


def budget_epochs(n_trials: int, epochs: int) -> int:
    """The equal epoch budget: what no pruning spends on half of the trials."""
    return max(1, n_trials // 2) * epochs


def format_comparison(results: Sequence[StudyResult], budget: int) -> str:
    """The studies side by side, one row per pruner.

    After the same number of trials: ``best`` is the best final accuracy, ``= none`` says
    whether it is the best no pruning found (or by how much it misses it), ``wall s`` the
    time those trials took, and ``prune s`` the time spent deciding whether to prune, with
    its share. At the same epoch budget (each study runs on until it has spent ``budget``
    epochs): the trials that finished within it and the best final accuracy among them.
    """
    reference = next((r.best_value for r in results if r.pruner == "none"), math.nan)
    reference_budget = next(
        (r.best_within(budget) for r in results if r.pruner == "none"), math.nan
    )

    def versus(value: float, ref: float, pruner: str) -> str:
        if math.isnan(ref) or pruner == "none":
            return "-"
        return "yes" if value >= ref else f"{value - ref:+.4f}"

    n = results[0].n_started
    header = (
        f"{'':<18} | {f'after {n} trials each':^60} | {f'within {budget} epochs each':^25}\n"
        f"{'pruner':<18} | {'compl':>5} {'pruned':>6} {'epochs':>6} {'saved':>6} {'best':>6} "
        f"{'= none':>7} {'wall s':>6} {'prune s':>10} | {'trials':>6} {'best':>6} {'= none':>7}"
    )
    width = len(header.splitlines()[1])
    rows = [header, "-" * width]
    for r in results:
        share = r.prune_time / r.wall_time if r.wall_time > 0 else 0.0
        within = r.best_within(budget)
        rows.append(
            f"{PRUNER_LABELS.get(r.pruner, r.pruner):<18} | {r.n_complete:>5} {r.n_pruned:>6} "
            f"{r.epochs_trained:>6} {r.speedup:>5.2f}x {r.best_value:>6.4f} "
            f"{versus(r.best_value, reference, r.pruner):>7} {r.wall_time:>6.1f} "
            f"{r.prune_time:>4.1f} ({share:>3.0%}) | {r.trials_within(budget):>6} "
            f"{within:>6.4f} {versus(within, reference_budget, r.pruner):>7}"
        )
    return "\n".join(rows)


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def plot_anytime(results: Sequence[StudyResult], path: str, budget: int | None = None) -> None:
    """Save the best complete accuracy found against the epochs spent, one line per study."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        curve = [(0, math.nan), *r.anytime()]
        spent, best = zip(*curve)
        ax.step(spent, best, where="post", label=f"{PRUNER_LABELS.get(r.pruner, r.pruner)}")
        ax.plot(spent[-1], best[-1], "o", color=ax.lines[-1].get_color(), ms=4)
    if budget is not None:
        ax.axvline(budget, color="0.6", ls="--", lw=1, label=f"budget ({budget} epochs)")
    values = [b for r in results for _, b in r.anytime() if not math.isnan(b)]
    # From where the studies stand after half the budget: the first trials' jumps
    # would squeeze the differences that matter into the top of the figure.
    early = [r.best_within(budget // 2) for r in results] if budget else []
    early = [v for v in early if not math.isnan(v)]
    if values:
        top = max(values)
        low = max(min(early or values), top - 0.15)
        ax.set_ylim(low - 0.005, top + 0.005 + 0.02 * (top - low))
    ax.set_xlabel("epochs trained (all trials so far)")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title("Best configuration found against compute spent")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_predictions(result: StudyResult, path: str) -> None:
    """Save the study's learning curves with SRPPruner's predictions at the pruned steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from optuna_srp.visualization.matplotlib import plot_predictions as plot

    ax = plot(result.study, target_name="validation accuracy")
    ax.figure.set_size_inches(9, 5.5)
    ax.figure.tight_layout()
    ax.figure.savefig(path, dpi=120)
    plt.close(ax.figure)


def write_figures(results: Sequence[StudyResult], out: str, budget: int) -> list[str]:
    """Write the figures into ``out`` and return their paths; none if matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed: no figures", file=sys.stderr)
        return []
    os.makedirs(out, exist_ok=True)
    paths = []
    shown = next((r for r in results if r.pruner == "srp"), results[-1])
    path = os.path.join(out, "predictions.png")
    plot_predictions(shown, path)
    paths.append(path)
    if len(results) > 1:
        path = os.path.join(out, "anytime.png")
        plot_anytime(results, path, budget)
        paths.append(path)
    return paths


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--n-trials", type=int, default=50, help="trials per study")
    parser.add_argument("--epochs", type=int, default=30, help="epoch budget per trial")
    parser.add_argument("--seed", type=int, default=0, help="sampler, pruner and torch seed")
    parser.add_argument("--dataset", choices=DATASETS, default="digits")
    parser.add_argument(
        "--train-size", type=int, default=200, help="training images; the rest validate"
    )
    parser.add_argument("--data-root", default="./data", help="download folder (not digits)")
    parser.add_argument(
        "--pruner",
        choices=(*PRUNERS, "all"),
        default="all",
        help="'all' runs the same study with each pruner and compares them",
    )
    parser.add_argument(
        "--storage",
        default=None,
        help="sqlite:///FILE, postgresql://..., or journal:FILE; in memory if omitted",
    )
    parser.add_argument(
        "--study-name", default=None, help="study name prefix; pytorch-DATASET if omitted"
    )
    parser.add_argument("--out", default="out", help="folder for the figures ('' for none)")
    parser.add_argument("--device", default=None, help="default: cuda when available, or cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (more only slow these small models down)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="studies run at once, one process each (--pruner all); wall times are per study",
    )
    parser.add_argument("--progress-every", type=int, default=10, help="0: no progress lines")
    return parser.parse_args(argv)


def _study_in_process(
    args: argparse.Namespace,
    pruner: str,
    budget: int,
    storage: str,
    study_name: str,
    device: str,
) -> tuple[float, float, int]:
    """Run one study in a worker process; return its wall time, pruning time and trials."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if torch.device(device).type == "cpu" and args.threads > 0:
        torch.set_num_threads(args.threads)
    data = load_data(args.dataset, device, root=args.data_root, train_size=args.train_size)
    result = run_study(
        pruner,
        data,
        n_trials=args.n_trials,
        epochs=args.epochs,
        budget=budget,
        seed=args.seed,
        device=device,
        storage=storage,
        study_name=study_name,
        progress_every=args.progress_every,
    )
    assert result.n_trials is not None
    return result.wall_time, result.prune_time, result.n_trials


def _run_in_processes(
    args: argparse.Namespace,
    pruners: Sequence[str],
    budget: int,
    prefix: str,
    device: torch.device,
) -> list[StudyResult]:
    """Run the studies ``args.jobs`` at a time, one process each, through a storage: a study
    is single-threaded (more threads only slow these small models down), so two cores run
    two studies in the time of one. Without ``--storage``, a JournalStorage file per study in
    a temporary folder."""
    tmpdir = tempfile.mkdtemp(prefix="optuna-srp-demo-")
    storages = {
        name: args.storage or f"journal:{os.path.join(tmpdir, name + '.log')}" for name in pruners
    }
    # Longest first (no pruning, then SRPPruner): the short studies fill in behind them.
    order = sorted(pruners, key=lambda name: name not in ("none", "srp"))
    context = multiprocessing.get_context("spawn")  # fresh interpreters: safe with torch, CUDA
    with ProcessPoolExecutor(min(args.jobs, len(pruners)), mp_context=context) as pool:
        futures = {
            name: pool.submit(
                _study_in_process,
                args,
                name,
                budget,
                storages[name],
                f"{prefix}-{name}",
                str(device),
            )
            for name in order
        }
        timings = {name: future.result() for name, future in futures.items()}
    results = []
    for name in pruners:
        wall, prune, n_trials = timings[name]
        storage = make_storage(storages[name])
        if args.storage is None:  # back into memory, as without --jobs, and no files left
            memory = optuna.storages.InMemoryStorage()
            optuna.copy_study(
                from_study_name=f"{prefix}-{name}", from_storage=storage, to_storage=memory
            )
            storage = memory
        study = optuna.load_study(study_name=f"{prefix}-{name}", storage=storage)
        results.append(StudyResult(name, study, args.epochs, wall, prune, n_trials))
    shutil.rmtree(tmpdir, ignore_errors=True)
    return results


def main(argv: Sequence[str] | None = None) -> list[StudyResult]:
    args = parse_args(argv)
    if args.n_trials < 1 or args.epochs < 1 or args.jobs < 1:
        raise SystemExit(
            "--n-trials, --epochs and --jobs must be positive, got "
            f"{args.n_trials}, {args.epochs} and {args.jobs}"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu" and args.threads > 0:
        torch.set_num_threads(args.threads)

    data = load_data(args.dataset, device, root=args.data_root, train_size=args.train_size)
    pruners = PRUNERS if args.pruner == "all" else (args.pruner,)
    print(
        f"{args.dataset}: {len(data.x_train)} training / {len(data.x_valid)} validation images "
        f"{'x'.join(map(str, data.image_shape))} on {device}; {args.n_trials} trials x "
        f"{args.epochs} epochs per study, seed {args.seed}",
        flush=True,
    )

    # Each study runs on until it has spent this many epochs: a pruner that saves epochs spends
    # them on more trials, as a user with a fixed compute budget would.
    budget = budget_epochs(args.n_trials, args.epochs) if len(pruners) > 1 else 0
    prefix = args.study_name or f"pytorch-{args.dataset}"
    start = time.perf_counter()
    if args.jobs > 1 and len(pruners) > 1:
        results = _run_in_processes(args, pruners, budget, prefix, device)
    else:
        results = []
        for name in pruners:
            result = run_study(
                name,
                data,
                n_trials=args.n_trials,
                epochs=args.epochs,
                budget=budget,
                seed=args.seed,
                device=device,
                storage=args.storage,
                study_name=f"{prefix}-{name}",
                progress_every=args.progress_every,
            )
            results.append(result)
    for result in results:
        print(f"\n{format_summary(result)}\n", flush=True)

    print(format_spread(results[0]))
    if len(results) > 1:
        print(
            f"\nThe same study (TPE seed {args.seed}) with each pruner, compared after "
            f"{args.n_trials} trials and within {budget} epochs (what no pruning spends on "
            f"{budget // args.epochs} trials; each study ran on until it had spent them). "
            "= none: found no pruning's best? prune s: time in should_prune.\n"
        )
        print(format_comparison(results, budget))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    if args.out:
        for path in write_figures(results, args.out, budget):
            print(f"figure: {os.path.abspath(path)}")
    return results


if __name__ == "__main__":
    main()
