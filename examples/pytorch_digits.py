"""Tune a small CNN with PyTorch and torchvision, stopping bad trials early with SRPPruner.

The default data set is scikit-learn's bundled digits (1797 images of 1x8x8 pixels), so the
example runs with no download. Each trial samples an architecture (number of convolution
layers, filters, kernel size, dropout) and training hyper-parameters (optimizer, learning rate,
batch size), trains it for an epoch budget of ``--epochs`` epochs with a small random affine
augmentation, and reports the validation accuracy after every epoch; the pruner stops trials
whose final accuracy it predicts will not beat the best complete trial.

Usage::

    python examples/pytorch_digits.py                      # SRPPruner on digits, a few minutes
    python examples/pytorch_digits.py --pruner all         # srp, none, median, hyperband
    python examples/pytorch_digits.py --dataset fashion-mnist  # downloads through torchvision
    python examples/pytorch_digits.py --storage sqlite:///digits.db --plot curves.png

``--pruner all`` runs the same study (same sampler seed, same per-trial torch seeds) with each
pruner and prints a side-by-side comparison. A GPU is used when one is present.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
import math
import os
import sys
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


PRUNERS = ("srp", "none", "median", "hyperband")
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
    """One finished study and what it cost."""

    pruner: str
    study: optuna.Study
    epochs: int
    wall_time: float

    def _trials(self, state: TrialState) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=(state,))

    @property
    def n_complete(self) -> int:
        return len(self._trials(TrialState.COMPLETE))

    @property
    def n_pruned(self) -> int:
        return len(self._trials(TrialState.PRUNED))

    @property
    def epochs_trained(self) -> int:
        """Epochs trained by the complete and pruned trials."""
        finished = self._trials(TrialState.COMPLETE) + self._trials(TrialState.PRUNED)
        return sum(len(t.intermediate_values) for t in finished)

    @property
    def epochs_without_pruning(self) -> int:
        """Epochs the same trials would have trained with no pruner."""
        return (self.n_complete + self.n_pruned) * self.epochs

    @property
    def speedup(self) -> float:
        return self.epochs_without_pruning / max(self.epochs_trained, 1)

    @property
    def best_value(self) -> float:
        return self.study.best_value if self.n_complete else math.nan


def load_data(
    name: str = "digits",
    device: torch.device | str = "cpu",
    root: str = "./data",
    max_train: int = 10_000,
    max_valid: int = 2_000,
) -> Data:
    """Load a data set as tensors.

    ``digits`` is scikit-learn's bundled data set, split 75/25 (stratified, fixed seed) into
    training and validation images; it never downloads. ``fashion-mnist`` and ``cifar10`` are
    downloaded by torchvision into ``root``; a fixed random subset of ``max_train`` training
    and ``max_valid`` test images keeps them quick on a CPU.
    """
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        images = (X / 16.0).reshape(-1, 1, 8, 8).astype(np.float32)
        x_tr, x_va, y_tr, y_va = train_test_split(
            images, y, test_size=0.25, stratify=y, random_state=0
        )
        x_train, x_valid = torch.from_numpy(x_tr), torch.from_numpy(x_va)
        y_train, y_valid = torch.from_numpy(y_tr), torch.from_numpy(y_va)
    elif name in ("fashion-mnist", "cifar10"):
        from torchvision import datasets

        cls = datasets.FashionMNIST if name == "fashion-mnist" else datasets.CIFAR10
        train = cls(root, train=True, download=True)
        test = cls(root, train=False, download=True)
        x_train, y_train = _as_tensors(train.data, train.targets, max_train)
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
    """Sample a CNN: ``n_conv_layers`` blocks of conv (``filters`` channels), ReLU and 2x2
    max-pooling, then a dropout and a linear classifier."""
    n_layers = trial.suggest_int("n_conv_layers", 1, 3)
    filters = trial.suggest_int("filters", 8, 32, log=True)
    kernel_size = trial.suggest_categorical("kernel_size", [3, 5])
    dropout = trial.suggest_float("dropout", 0.0, 0.5)

    channels, height, width = image_shape
    layers: list[nn.Module] = []
    for _ in range(n_layers):
        layers += [nn.Conv2d(channels, filters, kernel_size, padding=kernel_size // 2), nn.ReLU()]
        if min(height, width) >= 2:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        channels = filters
    layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels * height * width, N_CLASSES)]
    return nn.Sequential(*layers)


def build_optimizer(trial: optuna.Trial, model: nn.Module) -> torch.optim.Optimizer:
    """Sample the optimizer and its learning rate."""
    name = trial.suggest_categorical("optimizer", ["Adam", "SGD", "RMSprop"])
    lr = trial.suggest_float("lr", 1e-4, 3e-1, log=True)
    if name == "SGD":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    if name == "RMSprop":
        return torch.optim.RMSprop(model.parameters(), lr=lr)
    return torch.optim.Adam(model.parameters(), lr=lr)


def architecture_features(trial: FrozenTrial) -> list[float]:
    """Extra SRPPruner features: the model's size, log10 of its number of weights."""
    return [math.log10(trial.user_attrs.get("n_weights", 1))]


def make_objective(
    data: Data, epochs: int, device: torch.device | str = "cpu", seed: int = 0
) -> Callable[[optuna.Trial], float]:
    """The objective: train a sampled CNN for ``epochs`` epochs, report the validation accuracy
    after each one and return the last."""
    augment = v2.Compose(
        [
            v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
            data.normalize,
        ]
    )

    def objective(trial: optuna.Trial) -> float:
        torch.manual_seed(seed * 100_003 + trial.number)
        model = build_model(trial, data.image_shape).to(device)
        optimizer = build_optimizer(trial, model)
        batch_size = trial.suggest_categorical("batch_size", [32, 64, 128])
        trial.set_user_attr("n_weights", sum(p.numel() for p in model.parameters()))
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

            model.eval()
            with torch.no_grad():
                predicted = model(data.x_valid).argmax(dim=1)
            accuracy = (predicted == data.y_valid).float().mean().item()
            trial.report(accuracy, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch} with accuracy {accuracy:.4f}")
        return accuracy

    return objective


def make_pruner(name: str, epochs: int, seed: int = 0) -> BasePruner:
    """The pruner called ``name`` (one of :data:`PRUNERS`)."""
    if name == "srp":
        return SRPPruner(n_startup_trials=8, seed=seed, extra_features=architecture_features)
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
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
        states = [t.state for t in study.get_trials(deepcopy=False)]
        best = f"{study.best_value:.4f}" if TrialState.COMPLETE in states else "-"
        print(
            f"  [{label}] {trial.number + 1} trials, {states.count(TrialState.PRUNED)} pruned, "
            f"best {best}, {time.perf_counter() - start:.0f} s",
            flush=True,
        )

    return callback


def run_study(
    pruner: str,
    data: Data,
    *,
    n_trials: int,
    epochs: int,
    seed: int = 0,
    device: torch.device | str = "cpu",
    storage: str | None = None,
    study_name: str | None = None,
    progress_every: int = 10,
) -> StudyResult:
    """Run one study with the pruner called ``pruner`` and time it."""
    study = optuna.create_study(
        storage=make_storage(storage),
        study_name=study_name,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=make_pruner(pruner, epochs, seed),
        load_if_exists=True,
    )
    start = time.perf_counter()
    study.optimize(
        make_objective(data, epochs, device, seed),
        n_trials=n_trials,
        callbacks=[_progress(pruner, progress_every)],
    )
    return StudyResult(pruner, study, epochs, time.perf_counter() - start)


def format_summary(result: StudyResult) -> str:
    """A few lines on what a study found and what it cost."""
    lines = [
        f"pruner: {result.pruner}",
        f"trials: {result.n_complete} completed, {result.n_pruned} pruned",
        f"epochs trained: {result.epochs_trained} of {result.epochs_without_pruning} without "
        f"pruning ({result.speedup:.2f}x fewer)",
    ]
    if result.n_complete:
        best = result.study.best_trial
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items())
        lines.append(f"best accuracy: {best.value:.4f} (trial {best.number})")
        lines.append(f"best params: {params}")
    lines.append(f"wall time: {result.wall_time:.1f} s")
    return "\n".join(lines)


def format_comparison(results: Sequence[StudyResult]) -> str:
    """The studies side by side, one row per pruner."""
    header = (
        f"{'pruner':<10} {'complete':>8} {'pruned':>6} {'epochs':>7} {'no-prune':>8} "
        f"{'speedup':>7} {'best acc':>8} {'wall [s]':>8}"
    )
    rows = [header, "-" * len(header)]
    for r in results:
        rows.append(
            f"{r.pruner:<10} {r.n_complete:>8} {r.n_pruned:>6} {r.epochs_trained:>7} "
            f"{r.epochs_without_pruning:>8} {r.speedup:>6.2f}x {r.best_value:>8.4f} "
            f"{r.wall_time:>8.1f}"
        )
    return "\n".join(rows)


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def plot_learning_curves(results: Sequence[StudyResult], path: str) -> bool:
    """Save every trial's learning curve, pruned and completed told apart, one panel per
    study. Returns ``False`` (and saves nothing) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False

    fig, axes = plt.subplots(
        1, len(results), figsize=(5 * len(results), 4), sharey=True, squeeze=False
    )
    for ax, r in zip(axes[0], results):
        best = r.study.best_trial.number if r.n_complete else None
        for t in r.study.get_trials(deepcopy=False):
            if not t.intermediate_values:
                continue
            steps, values = zip(*sorted(t.intermediate_values.items()))
            if t.number == best:
                ax.plot(steps, values, color="tab:red", lw=2, zorder=3, label="best")
            elif t.state == TrialState.PRUNED:
                ax.plot(steps, values, color="tab:gray", lw=0.8, alpha=0.6)
                ax.plot(steps[-1], values[-1], "x", color="tab:gray", ms=4)
            else:
                ax.plot(steps, values, color="tab:blue", lw=1, alpha=0.8)
        ax.plot([], [], color="tab:blue", label=f"completed ({r.n_complete})")
        ax.plot([], [], color="tab:gray", marker="x", label=f"pruned ({r.n_pruned})")
        ax.set_title(f"{r.pruner}: {r.epochs_trained}/{r.epochs_without_pruning} epochs")
        ax.set_xlabel("epoch")
        ax.legend(loc="lower right", fontsize="small")
    axes[0][0].set_ylabel("validation accuracy")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=50, help="trials per study")
    parser.add_argument("--epochs", type=int, default=15, help="epoch budget per trial")
    parser.add_argument("--seed", type=int, default=0, help="sampler, pruner and torch seed")
    parser.add_argument("--dataset", choices=DATASETS, default="digits")
    parser.add_argument("--data-root", default="./data", help="download folder (not digits)")
    parser.add_argument(
        "--pruner",
        choices=(*PRUNERS, "all"),
        default="srp",
        help="'all' runs the same study with each pruner and compares them",
    )
    parser.add_argument(
        "--storage",
        default=None,
        help="sqlite:///FILE, postgresql://..., or journal:FILE; in memory if omitted",
    )
    parser.add_argument("--study-name", default=None, help="default: pytorch-DATASET-PRUNER")
    parser.add_argument(
        "--plot",
        default="out/learning_curves.png",
        help="where to save the learning curves ('' for no plot)",
    )
    parser.add_argument("--device", default=None, help="default: cuda when available, or cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: more only slow these small models down)",
    )
    parser.add_argument("--progress-every", type=int, default=10, help="0: no progress lines")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[StudyResult]:
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu" and args.threads > 0:
        torch.set_num_threads(args.threads)

    data = load_data(args.dataset, device, root=args.data_root)
    pruners = PRUNERS if args.pruner == "all" else (args.pruner,)
    print(
        f"{args.dataset}: {len(data.x_train)} training / {len(data.x_valid)} validation images "
        f"{'x'.join(map(str, data.image_shape))} on {device}; {args.n_trials} trials x "
        f"{args.epochs} epochs per study, seed {args.seed}",
        flush=True,
    )

    results = []
    for name in pruners:
        study_name = args.study_name or f"pytorch-{args.dataset}"
        if len(pruners) > 1 or args.study_name is None:
            study_name = f"{study_name}-{name}"
        result = run_study(
            name,
            data,
            n_trials=args.n_trials,
            epochs=args.epochs,
            seed=args.seed,
            device=device,
            storage=args.storage,
            study_name=study_name,
            progress_every=args.progress_every,
        )
        print(f"\n{format_summary(result)}\n", flush=True)
        results.append(result)

    if len(results) > 1:
        print(f"Same study (seed {args.seed}) with each pruner:\n")
        print(format_comparison(results))
    if args.plot:
        if plot_learning_curves(results, args.plot):
            print(f"\nlearning curves saved to {os.path.abspath(args.plot)}")
        else:
            print("\nmatplotlib is not installed: no plot", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
