"""Transfer learning for any ``nn.Module``: load pretrained weights, freeze all but some layers, fine-tune.

Three small steps that every transfer chapter shares:

1. ``load_pretrained(model, source)`` copies the weights (and buffers, e.g. input scaling) of a trained
   module, a state dict, a saved ``.pt`` or a Lightning checkpoint into a freshly built model, and says
   precisely which names did not match;
2. ``freeze_except(model, prefixes)`` leaves only parameters whose names start with one of ``prefixes``
   trainable (``()`` fine-tunes all layers);
3. ``fine_tune(task, ...)`` trains a LightningModule around such a model with the shared trainer and
   restores the best epoch.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import lightning as L
import torch
from torch import nn

from gapkit.train.trainer import TrainConfig, fit

logger = logging.getLogger(__name__)

StateSource = nn.Module | Mapping[str, torch.Tensor] | str | Path


def _state_dict(source: StateSource, prefix: str) -> dict[str, torch.Tensor]:
    if isinstance(source, nn.Module):
        return {k: v.detach().clone() for k, v in source.state_dict().items()}
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"No pretrained weights at {path}: train the source model first.")
        source = torch.load(path, map_location="cpu", weights_only=False)
        if isinstance(source, Mapping) and "state_dict" in source:  # a Lightning checkpoint
            source = source["state_dict"]
    state = dict(source)
    if prefix:  # e.g. "model." inside a LightningModule's checkpoint
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return {k: torch.as_tensor(v).clone() for k, v in state.items()}


def load_pretrained(model: nn.Module, source: StateSource, prefix: str = "", strict: bool = True) -> nn.Module:
    """Copy pretrained weights into ``model`` (in place; returns it); mismatches raise with their names."""
    state = _state_dict(source, prefix)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
              for k in set(own) & set(state) if state[k].shape != own[k].shape]
    if shapes:
        raise ValueError(f"pretrained shapes differ from the model's: {shapes[:5]}; build the model with "
                         "the source model's configuration.")
    if strict and (missing or unexpected):
        raise KeyError(f"pretrained weights do not match the model: missing {missing[:5]}, "
                       f"unexpected {unexpected[:5]} (pass strict=False to load the common part, or a prefix).")
    model.load_state_dict(state, strict=strict)
    logger.info("loaded %d pretrained tensors (%d missing, %d unexpected)", len(state), len(missing), len(unexpected))
    return model


def freeze_except(model: nn.Module, trainable: Sequence[str] = ()) -> list[str]:
    """Freeze every parameter whose name starts with none of ``trainable`` (``()``: all stay trainable).

    Returns the names of the parameters left trainable. A prefix that matches nothing raises, because a
    typo would otherwise silently freeze the whole network.
    """
    names = [name for name, _ in model.named_parameters()]
    for prefix in trainable:
        if not any(n == prefix or n.startswith(prefix + ".") or n.startswith(prefix) for n in names):
            raise KeyError(f"no parameter of the model starts with {prefix!r}; names start with "
                           f"{sorted({n.split('.')[0] for n in names})}.")
    kept = []
    for name, param in model.named_parameters():
        param.requires_grad_(not trainable or any(name.startswith(p) for p in trainable))
        if param.requires_grad:
            kept.append(name)
    return kept


def transferred_copy(source: nn.Module, trainable: Sequence[str] = ()) -> nn.Module:
    """A deep copy of a trained module (weights, buffers, config) with only ``trainable`` left trainable."""
    model = copy.deepcopy(source)
    model.train()
    freeze_except(model, trainable)
    return model


def restore_best(task: L.LightningModule, trainer: L.Trainer) -> L.LightningModule:
    """Load the best checkpoint of a finished ``trainer`` back into ``task`` (no-op without one)."""
    callback = trainer.checkpoint_callback
    best = callback.best_model_path if callback is not None else ""
    if best:
        task.load_state_dict(torch.load(best, map_location="cpu", weights_only=False)["state_dict"])
    return task


def fine_tune(task: L.LightningModule, train_loader, val_loader, config: TrainConfig,
              trainable: Sequence[str] = (), model_attr: str = "model") -> L.LightningModule:
    """Fine-tune ``task`` (whose ``model_attr`` holds the pretrained model) with the shared trainer.

    Only parameters named by ``trainable`` prefixes are updated (``()``: all layers); the best epoch on
    the validation loader is restored at the end. ``resume`` is off so that a fine-tuning run never
    continues from an unrelated checkpoint left in ``config.run_dir``.
    """
    freeze_except(getattr(task, model_attr), trainable)
    trainer = fit(task, train_loader, val_loader, config, resume=False)
    restore_best(task, trainer)
    task.eval()
    return task
