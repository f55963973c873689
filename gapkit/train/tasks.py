"""The band-gap regression task: any gapkit model + the Laplace loss + Lamb + a cyclic learning rate.

``MetalTask`` is its classification sibling (metal or semiconductor: softmax and cross-entropy on the
model's two outputs read as logits), trained by the same ``gapkit.train.trainer.fit`` with the same
optimiser and schedule (``lamb_cyclic``).

``BandGapTask`` is the small LightningModule that ``gapkit.train.trainer.fit`` trains. It keeps the
target mean and standard deviation as buffers (saved in every checkpoint), trains on standardised
targets and reports MAE in eV. ``MaterialsDataset`` + ``collate`` turn compositions and/or crystal
graphs into the batch dicts that every model's ``forward_batch`` reads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from gapkit.featurize.graphs import CrystalGraph, collate_graphs
from gapkit.train.losses import LOSSES, laplace_nll, laplace_scale  # noqa: F401 - laplace_nll re-exported


class MaterialsDataset(Dataset):
    """Rows of (composition Z/fractions, crystal graph, target); absent parts are None."""

    def __init__(self, elements: np.ndarray | None = None, fractions: np.ndarray | None = None,
                 graphs: Sequence[CrystalGraph] | None = None, targets: np.ndarray | None = None) -> None:
        sizes = {len(x) for x in (elements, graphs, targets) if x is not None}
        if len(sizes) != 1:
            raise ValueError(f"elements, graphs and targets must have one common length, got {sorted(sizes)}.")
        if (elements is None) != (fractions is None):
            raise ValueError("elements and fractions go together.")
        self.elements = None if elements is None else torch.as_tensor(elements, dtype=torch.long)
        self.fractions = None if fractions is None else torch.as_tensor(fractions, dtype=torch.float32)
        self.graphs = None if graphs is None else list(graphs)
        self.targets = None if targets is None else torch.as_tensor(np.asarray(targets), dtype=torch.float32)
        self.n = sizes.pop()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i  # collation gathers rows in one vectorised step

    def collate(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """Batch dict of the rows ``indices``: elements/fractions, graph tensors, target."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        batch: dict[str, torch.Tensor] = {}
        if self.elements is not None:
            batch["elements"] = self.elements[idx]
            batch["fractions"] = self.fractions[idx]
        if self.graphs is not None:
            batch.update(collate_graphs([self.graphs[i] for i in indices]))
        if self.targets is not None:
            batch["target"] = self.targets[idx]
        return batch

    def loader(self, batch_size: int = 256, shuffle: bool = False, seed: int = 0) -> DataLoader:
        """A DataLoader over this dataset (seeded shuffling, in-process collation)."""
        return seeded_loader(self, batch_size, shuffle, seed)


def seeded_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, seed: int = 0) -> DataLoader:
    """A DataLoader over a dataset with a ``collate`` method: indices in, one batch dict out, seeded shuffling."""
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=dataset.collate,
                      generator=gen if shuffle else None)


class BandGapTask(L.LightningModule):
    """Train a ``forward_batch`` model on standardised gaps with the Laplace loss, Lamb and a cyclic LR."""

    def __init__(self, model: nn.Module, target_mean: float = 0.0, target_std: float = 1.0,
                 lr_min: float = 1e-4, lr_max: float = 1e-2, cycle_epochs: int = 2,
                 weight_decay: float = 0.0, loss: str = "laplace") -> None:
        super().__init__()
        if target_std <= 0 or not math.isfinite(target_std):
            raise ValueError(f"target_std must be a positive number, got {target_std}.")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}.")
        self.model = model
        self.register_buffer("target_mean", torch.tensor(float(target_mean)))
        self.register_buffer("target_std", torch.tensor(float(target_std)))
        self.save_hyperparameters(ignore=["model"])

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(gap in eV, Laplace scale b in eV = exp(S)/2 * std; see gapkit.train.losses) for a batch."""
        z, s = self.model.forward_batch(batch)
        z, s = z.float(), s.float()
        return z * self.target_std + self.target_mean, laplace_scale(s, self.target_std)

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        z, s = self.model.forward_batch(batch)
        z, s = z.float(), s.float()
        y = (batch["target"] - self.target_mean) / self.target_std
        loss = LOSSES[getattr(self.hparams, "loss", "laplace")](z, s, y)
        mae = ((z - y).abs() * self.target_std).mean()
        n = y.shape[0]
        # epoch means over all data-parallel ranks (a no-op in one process)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        self.log(f"{stage}_mae", mae, on_step=False, on_epoch=True, batch_size=n, prog_bar=stage == "val",
                 sync_dist=True)
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """One optimisation step."""
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Validation loss and MAE (eV)."""
        self._step(batch, "val")

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(gap, Laplace scale) in eV."""
        return self(batch)

    def configure_optimizers(self) -> dict:
        """Lamb, with the learning rate cycling lr_min -> lr_max -> lr_min every ``cycle_epochs`` epochs."""
        return lamb_cyclic(self)


def lamb_cyclic(task: L.LightningModule) -> dict:
    """Lamb + a triangular cyclic LR (``lr_min``, ``lr_max``, ``cycle_epochs``, ``weight_decay`` from hparams)."""
    from pytorch_optimizer import Lamb

    hp = task.hparams
    optimizer = Lamb(task.parameters(), lr=hp.lr_max, weight_decay=hp.weight_decay)
    steps_per_epoch = max(1, int(task.trainer.estimated_stepping_batches) // max(1, task.trainer.max_epochs))
    half_cycle = max(1, steps_per_epoch * hp.cycle_epochs // 2)
    scheduler = torch.optim.lr_scheduler.CyclicLR(
        optimizer, base_lr=hp.lr_min, max_lr=hp.lr_max, step_size_up=half_cycle,
        mode="triangular", cycle_momentum=False,
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


METAL, SEMICONDUCTOR = 1, 0  # class indices of MetalTask's two logits


class MetalTask(L.LightningModule):
    """Metal (1) or semiconductor (0): softmax + cross-entropy on a model's two outputs (``outputs_batch``).

    The batch's ``target`` holds the class (1.0 for a metal, 0.0 for a semiconductor). Logs loss and accuracy;
    train it with ``gapkit.train.trainer.fit`` and ``TrainConfig(monitor="val_loss")``.
    """

    def __init__(self, model: nn.Module, lr_min: float = 1e-4, lr_max: float = 1e-2, cycle_epochs: int = 2,
                 weight_decay: float = 0.0) -> None:
        super().__init__()
        if not hasattr(model, "outputs_batch"):
            raise TypeError(f"{type(model).__name__} has no outputs_batch(batch) -> [B, 2] logits; use a CGCNNModel.")
        self.model = model
        self.save_hyperparameters(ignore=["model"])

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Class probabilities [B, 2] (column 1: metal); each row sums to one."""
        return torch.softmax(self.model.outputs_batch(batch).float(), dim=-1)

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        logits = self.model.outputs_batch(batch).float()
        label = batch["target"].round().long()
        if label.numel() and (label.min() < 0 or label.max() > 1):
            raise ValueError("MetalTask targets must be 0 (semiconductor) or 1 (metal).")
        loss = F.cross_entropy(logits, label)
        accuracy = (logits.argmax(-1) == label).float().mean()
        n = label.shape[0]
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=n, prog_bar=stage == "val",
                 sync_dist=True)
        self.log(f"{stage}_accuracy", accuracy, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """One optimisation step."""
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Validation loss and accuracy."""
        self._step(batch, "val")

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Class probabilities."""
        return self(batch)

    def configure_optimizers(self) -> dict:
        """The regression task's Lamb + cyclic learning rate."""
        return lamb_cyclic(self)
