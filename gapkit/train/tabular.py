"""Regression on fixed-length feature vectors with the shared trainer: a dataset, one fit, one predict.

The task is the shared ``BandGapTask`` (Laplace loss, Lamb, cyclic learning rate, target
standardisation); this module only adds what tabular data needs: a dataset whose batches carry ``x``,
a frozen config, a seeded inner validation split for early stopping, and restoring the best epoch.
Any ``nn.Module`` with ``forward_batch(batch) -> (prediction, log_scale)`` reading ``batch["x"]`` works.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from gapkit.train.tasks import BandGapTask, seeded_loader
from gapkit.train.trainer import TrainConfig, fit

logger = logging.getLogger(__name__)


class TabularDataset(Dataset):
    """Rows of a float feature matrix ``x`` and (optionally) a target vector."""

    def __init__(self, x: np.ndarray, y: np.ndarray | None = None) -> None:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"x must be a 2-d feature matrix, got shape {x.shape}.")
        if not np.isfinite(x).all():
            raise ValueError("x contains NaN or inf: impute or drop those features before training.")
        if y is not None and len(y) != len(x):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}.")
        self.x = torch.from_numpy(x)
        self.y = None if y is None else torch.as_tensor(np.asarray(y, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> int:
        return i  # collation slices the tensors in one step

    def collate(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """Batch dict of the rows ``indices``: ``x`` and, when known, ``target``."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        batch = {"x": self.x[idx]}
        if self.y is not None:
            batch["target"] = self.y[idx]
        return batch

    def loader(self, batch_size: int = 64, shuffle: bool = False, seed: int = 0) -> DataLoader:
        """A DataLoader over this dataset (seeded shuffling)."""
        return seeded_loader(self, batch_size, shuffle, seed)


@dataclass(frozen=True)
class TabularFitConfig:
    """One training run of a tabular regressor (optimiser, schedule, early stopping, inner validation)."""

    max_epochs: int = 200
    batch_size: int = 64
    lr_min: float = 1e-4
    lr_max: float = 3e-3
    cycle_epochs: int = 10
    weight_decay: float = 0.0
    patience: int | None = 30
    val_fraction: float = 0.1
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        if self.max_epochs < 1 or self.batch_size < 1:
            raise ValueError("max_epochs and batch_size must be >= 1.")
        if not 0.0 < self.lr_min <= self.lr_max:
            raise ValueError(f"need 0 < lr_min <= lr_max, got {self.lr_min}, {self.lr_max}.")
        if not 0.0 < self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be in (0, 0.5), got {self.val_fraction}.")


def inner_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, val) row indices for early stopping inside a training set."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(val_fraction * n)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def make_task(model: nn.Module, y: np.ndarray, config: TabularFitConfig,
              target_scale: tuple[float, float] | None = None) -> BandGapTask:
    """The shared task around ``model``; targets standardised by ``target_scale`` or by ``y``'s mean/std."""
    mean, std = target_scale if target_scale is not None else (float(np.mean(y)), float(np.std(y)))
    return BandGapTask(model, target_mean=mean, target_std=std, lr_min=config.lr_min, lr_max=config.lr_max,
                       cycle_epochs=config.cycle_epochs, weight_decay=config.weight_decay)


def fit_task(task: BandGapTask, x: np.ndarray, y: np.ndarray, config: TabularFitConfig,
             run_dir: Path | str) -> BandGapTask:
    """Train ``task`` on (x, y) with the shared trainer (inner val split, early stopping); keep the best epoch."""
    train_idx, val_idx = inner_split(len(x), config.val_fraction, config.seed)
    train = TabularDataset(x[train_idx], y[train_idx]).loader(config.batch_size, shuffle=True, seed=config.seed)
    val = TabularDataset(x[val_idx], y[val_idx]).loader(1024)
    train_config = TrainConfig(max_epochs=config.max_epochs, run_dir=run_dir, device="cpu",
                               patience=config.patience, progress=config.progress, seed=config.seed,
                               log_every_n_steps=50, keep_allocations=False)
    # resume=False: a CV fold must never pick up the checkpoint a previous (different) fold left behind
    trainer = fit(task, train, val, train_config, resume=False)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
        task.load_state_dict(state)
    task.eval()
    return task


@torch.no_grad()
def predict_task(task: BandGapTask, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, Laplace-scale uncertainty) in target units for a feature matrix."""
    task.eval()
    pred, unc = task({"x": torch.as_tensor(np.asarray(x, dtype=np.float32))})
    return pred.numpy().astype(float), unc.numpy().astype(float)


@torch.no_grad()
def task_loss(task: BandGapTask, x: np.ndarray, y: np.ndarray) -> float:
    """The task's training loss (standardised Laplace NLL) on (x, y), in eval mode: what step 0 would see."""
    from gapkit.train.losses import laplace_nll

    task.eval()
    z, s = task.model.forward_batch({"x": torch.as_tensor(np.asarray(x, dtype=np.float32))})
    target = (torch.as_tensor(np.asarray(y, dtype=np.float32)) - task.target_mean) / task.target_std
    return float(laplace_nll(z.float(), s.float(), target))
