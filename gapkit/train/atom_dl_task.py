"""Pretraining Atom_DL with the shared trainer: the Lightning task, the data loaders and one entry point."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import lightning as L
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from gapkit.models.atom_dl import IGNORE, AtomDL, AtomDLDataset, build_pairs, collate, tokenize_formulas
from gapkit.train.length_batches import LengthGroupedBatches
from gapkit.runtime import seed_everything

logger = logging.getLogger(__name__)


def atom_dl_losses(model: AtomDL, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """loss = loss_lm + loss_label, with masked-element and pair accuracies."""
    mlm_logits, pair_logits = model(batch["input_ids"], batch["segment_ids"])
    labels = batch["mlm_labels"]
    loss_lm = F.cross_entropy(mlm_logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
    loss_label = F.cross_entropy(pair_logits.float(), batch["pair_label"])
    chosen = labels != IGNORE
    mlm_acc = (mlm_logits.argmax(-1)[chosen] == labels[chosen]).float().mean()
    pair_acc = (pair_logits.argmax(-1) == batch["pair_label"]).float().mean()
    return {"loss": loss_lm + loss_label, "loss_lm": loss_lm, "loss_label": loss_label,
            "mlm_acc": mlm_acc, "pair_acc": pair_acc}


class AtomDLTask(L.LightningModule):
    """Lightning wrapper: AdamW, both objectives, per-epoch train_/val_ metrics in the CSV log."""

    def __init__(self, model_config: dict | None = None, lr: float = 2e-3, weight_decay: float = 0.01,
                 elements: Sequence[int] = ()) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = AtomDL(**(model_config or {}))
        self.elements = [int(z) for z in elements]  # the Z seen in pretraining: the vectors worth keeping

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        out = atom_dl_losses(self.model, batch)
        self.log_dict({f"{stage}_{k}": v.detach() if k != "loss" else v for k, v in out.items()},
                      on_step=False, on_epoch=True, batch_size=len(batch["pair_label"]),
                      prog_bar=stage == "train")
        return out["loss"]

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    def element_vectors(self) -> pd.DataFrame:
        """16-d vectors of the elements seen in pretraining, indexed by symbol."""
        return self.model.element_vectors(self.elements or None)


@dataclass(frozen=True)
class AtomDLConfig:
    """Size of an Atom_DL pretraining run (paper: 560,130 samples, 8 layers, 8 heads, d 16, 80 epochs)."""

    n_samples: int = 20_000
    val_fraction: float = 0.05
    d_model: int = 16
    n_layers: int = 8
    n_heads: int = 8
    dim_feedforward: int = 64
    dropout: float = 0.1
    epochs: int = 3
    batch_size: int = 256
    lr: float = 2e-3
    seed: int = 0
    num_workers: int = 0  # >0 on a GPU machine: per-sample masking in Python is then the bottleneck

    def __post_init__(self) -> None:
        for name in ("n_samples", "d_model", "n_layers", "n_heads", "dim_feedforward", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads}).")
        if not 0 < self.val_fraction < 1 or not 0 <= self.dropout < 1 or self.lr <= 0 or self.num_workers < 0:
            raise ValueError("need 0 < val_fraction < 1, 0 <= dropout < 1, lr > 0 and num_workers >= 0.")


def _reseed_worker(worker_id: int) -> None:
    """Give each loader worker its own masking stream (else every worker repeats the same masks)."""
    info = torch.utils.data.get_worker_info()
    # torch's per-worker seed changes every epoch and derives from the loader's seeded generator
    info.dataset._rng = np.random.default_rng([info.dataset.seed, worker_id, torch.initial_seed() % 2**32])


def make_loaders(formulas: Sequence[str], config: AtomDLConfig, progress: bool = True):
    """Build balanced pairs from formulas, split train/val, and return (train_loader, val_loader, elements)."""
    rng = np.random.default_rng(config.seed)
    unique = np.array(list(dict.fromkeys(formulas)), dtype=object)
    # one formula per sample at most, as in the paper (560k samples from 562k formulas)
    pool = unique if len(unique) <= config.n_samples else rng.choice(unique, size=config.n_samples, replace=False)
    tokens = tokenize_formulas(list(pool), progress=progress)
    pairs = build_pairs(list(pool), config.n_samples, seed=config.seed, progress=progress)
    n_val = max(1, int(round(config.val_fraction * len(pairs))))
    elements = np.unique(np.concatenate(list(tokens.values())))
    train = AtomDLDataset(pairs.iloc[n_val:].reset_index(drop=True), tokens, elements, seed=config.seed)
    val = AtomDLDataset(pairs.iloc[:n_val].reset_index(drop=True), tokens, elements, seed=config.seed + 1,
                        static=True)
    workers = {"num_workers": config.num_workers, "worker_init_fn": _reseed_worker} if config.num_workers else {}
    # batches of similar length: ~3x less work per epoch than padding random batches (benchmarks/atom_dl_throughput)
    train_loader = torch.utils.data.DataLoader(
        train, batch_sampler=LengthGroupedBatches(train.lengths(), config.batch_size, seed=config.seed),
        collate_fn=collate, **workers)
    val_loader = torch.utils.data.DataLoader(
        val, batch_sampler=LengthGroupedBatches(val.lengths(), config.batch_size, shuffle=False),
        collate_fn=collate, **workers)
    return train_loader, val_loader, elements


def pretrain_atom_dl(formulas: Sequence[str], config: AtomDLConfig, run_dir: Path | str, device: str = "auto",
                     progress: bool = True, resume: bool = True) -> AtomDLTask:
    """Pretrain Atom_DL on formulas through gapkit.train.trainer.fit; returns the trained task."""
    from gapkit.train.trainer import TrainConfig, fit

    train_loader, val_loader, elements = make_loaders(formulas, config, progress=progress)
    seed_everything(config.seed)
    model_config = {k: v for k, v in asdict(config).items()
                    if k in ("d_model", "n_layers", "n_heads", "dim_feedforward", "dropout")}
    task = AtomDLTask(model_config, lr=config.lr, elements=elements.tolist())
    train_config = TrainConfig(max_epochs=config.epochs, run_dir=run_dir, device=device, monitor="val_loss",
                               patience=None, progress=progress, seed=config.seed, log_every_n_steps=50)
    fit(task, train_loader, val_loader, train_config, resume=resume)
    return task


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: pretrain on all OQMD formulas and write the element vectors (see data/atom_dl/PROVENANCE.md)."""
    import argparse
    import json
    import time

    from gapkit.data import load_oqmd_bandgap
    from gapkit.runtime import describe_device
    from gapkit.train.trainer import read_log

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--samples", type=int, default=560_130)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--run-dir", default="runs/atom_dl_full")
    parser.add_argument("--out", default="data/atom_dl/vectors.csv")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    config = AtomDLConfig(n_samples=args.samples, n_layers=args.layers, n_heads=args.heads, epochs=args.epochs,
                          batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                          num_workers=args.num_workers)
    formulas = load_oqmd_bandgap(split="all")["formula"]
    task = pretrain_atom_dl(formulas, config, args.run_dir, device=args.device, progress=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    task.element_vectors().round(6).to_csv(out)
    log = read_log(args.run_dir)
    summary = {"config": asdict(config), "device": describe_device(args.device),
               "wall_time_s": round(time.perf_counter() - start, 1),
               "final": log.iloc[-1].to_dict()}
    (out.parent / "run_summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    log.to_csv(out.parent / "training_log.csv", index=False)
    logger.info("wrote %s: %s", out, summary)


if __name__ == "__main__":
    main()
