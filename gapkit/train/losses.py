"""Losses: the Laplace aleatoric loss of CrabNet/CGCrabNet and plain MAE."""

from __future__ import annotations

import torch


def laplace_nll(pred: torch.Tensor, log_scale: torch.Tensor, target: torch.Tensor,
                reduction: str = "mean") -> torch.Tensor:
    """Laplace aleatoric loss ``2*exp(-S)*|pred - target| + S`` (S = predicted log-scale)."""
    if pred.shape != target.shape or log_scale.shape != target.shape:
        raise ValueError(f"shapes differ: pred {tuple(pred.shape)}, log_scale {tuple(log_scale.shape)}, "
                         f"target {tuple(target.shape)}")
    # sqrt(2)*exp(-S)|e| + S is the Laplace NLL with b = exp(S)/sqrt(2); the papers write the factor 2.
    loss = 2.0 * torch.exp(-log_scale) * (pred - target).abs() + log_scale
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def masked_mae(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error over the entries where ``mask`` is true (all when mask is None)."""
    err = (pred - target).abs()
    if mask is None:
        return err.mean()
    return err[mask].mean()
