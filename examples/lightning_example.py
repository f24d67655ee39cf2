"""SRPPruner with PyTorch Lightning, through optuna-integration's pruning callback.

The model and data are those of ``pytorch_digits.py`` (a small CNN on scikit-learn's bundled
digits, no download); Lightning runs the training loop and
:class:`optuna_integration.PyTorchLightningPruningCallback` reports ``val_acc`` after each
validation epoch and asks the study's pruner, here :class:`~optuna_srp.SRPPruner`.

Needs ``pip install optuna-integration lightning``.

Usage::

    python examples/lightning_example.py --n-trials 30 --epochs 10
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
import logging
import os
import sys
import time
import warnings

import lightning.pytorch as pl
import optuna
from optuna_integration import PyTorchLightningPruningCallback
import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import TensorDataset


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_digits as example  # noqa: E402

from optuna_srp import SRPPruner  # noqa: E402


class DigitsModule(pl.LightningModule):
    """A sampled CNN trained with cross-entropy; logs the validation accuracy as ``val_acc``."""

    def __init__(self, trial: optuna.Trial, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.model = example.build_model(trial, image_shape)
        self.lr = trial.suggest_float("lr", 1e-4, 3e-1, log=True)
        self.optimizer_name = trial.suggest_categorical("optimizer", ["Adam", "SGD"])
        self.loss_fn = nn.CrossEntropyLoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return self.loss_fn(self(x), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        accuracy = (self(x).argmax(dim=1) == y).float().mean()
        self.log("val_acc", accuracy, on_epoch=True, prog_bar=False)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_name == "SGD":
            return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def make_objective(
    data: example.Data, epochs: int, seed: int = 0
) -> Callable[[optuna.Trial], float]:
    """Train a sampled CNN with a Lightning ``Trainer`` for at most ``epochs`` epochs."""
    x_train = data.normalize(data.x_train)  # no augmentation here: Lightning is the point
    train_set = TensorDataset(x_train.cpu(), data.y_train.cpu())
    valid_set = TensorDataset(data.x_valid.cpu(), data.y_valid.cpu())

    def objective(trial: optuna.Trial) -> float:
        pl.seed_everything(seed * 100_003 + trial.number, verbose=False)
        module = DigitsModule(trial, data.image_shape)
        batch_size = trial.suggest_categorical("batch_size", [32, 64, 128])
        trainer = pl.Trainer(
            max_epochs=epochs,
            accelerator="auto",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            callbacks=[PyTorchLightningPruningCallback(trial, monitor="val_acc")],
        )
        trainer.fit(
            module,
            train_dataloaders=DataLoader(train_set, batch_size=batch_size, shuffle=True),
            val_dataloaders=DataLoader(valid_set, batch_size=len(valid_set)),
        )
        return trainer.callback_metrics["val_acc"].item()

    return objective


def run(n_trials: int, epochs: int, seed: int = 0, n_startup_trials: int = 8) -> optuna.Study:
    """Run a study of ``n_trials`` Lightning trials under SRPPruner."""
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=SRPPruner(n_startup_trials=n_startup_trials, seed=seed),
    )
    data = example.load_data("digits")
    study.optimize(make_objective(data, epochs, seed), n_trials=n_trials)
    return study


def main(argv: Sequence[str] | None = None) -> example.StudyResult:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for noisy in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    torch.set_num_threads(1)

    start = time.perf_counter()
    study = run(args.n_trials, args.epochs, args.seed)
    result = example.StudyResult("srp", study, args.epochs, time.perf_counter() - start)
    print(example.format_summary(result))
    return result


if __name__ == "__main__":
    main()
