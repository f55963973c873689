"""Losses: the Laplace aleatoric loss of CrabNet/CGCrabNet, plain MAE, and the one Laplace-scale conversion.

The loss of the papers, on standardised targets, with S the network's second output:

    L(S, e) = 2*exp(-S)*|e| + S,            e = prediction - target.

The negative log-likelihood of a Laplace distribution with location mu and scale b is
``log(2b) + |e|/b``. With ``b = exp(S)/2`` it is ``log(exp(S)) + 2*exp(-S)*|e| = S + 2*exp(-S)*|e|``:
the loss *is* the Laplace NLL, with no constant left over. Minimising it over S for a fixed set of errors
gives ``exp(S) = 2*mean|e|``, i.e. ``b = mean|e|``, the maximum-likelihood Laplace scale. So the one
quantity gapkit calls the uncertainty is

    b_eV = exp(S)/2 * target_std                 (``laplace_scale``),

a Laplace scale in eV: ``P(|error| <= t) = 1 - exp(-t/b)``, mean |error| = b, standard deviation = sqrt(2)*b.
Every caller (``BandGapTask.forward``, ``BandGapEstimator.predict``, ``gapkit.evaluate.uncertainty``) uses
``laplace_scale``; nothing else converts S.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

ArrayLike = TypeVar("ArrayLike", torch.Tensor, np.ndarray)


def laplace_scale(log_scale: ArrayLike, target_std: float | torch.Tensor = 1.0) -> ArrayLike:
    """Laplace scale ``b = exp(S)/2 * target_std`` of the loss's log-scale output S (tensor or array)."""
    if isinstance(log_scale, torch.Tensor):
        return torch.exp(log_scale) * (0.5 * target_std)
    return np.exp(np.asarray(log_scale, dtype=float)) * (0.5 * float(target_std))


def log_scale_from_laplace_scale(scale: ArrayLike, target_std: float = 1.0) -> ArrayLike:
    """Inverse of ``laplace_scale``: the S whose Laplace scale is ``scale`` (same units as target_std)."""
    if isinstance(scale, torch.Tensor):
        return torch.log(2.0 * scale / target_std)
    return np.log(2.0 * np.asarray(scale, dtype=float) / float(target_std))


def laplace_nll(pred: torch.Tensor, log_scale: torch.Tensor, target: torch.Tensor,
                reduction: str = "mean") -> torch.Tensor:
    """Laplace aleatoric loss ``2*exp(-S)*|pred - target| + S`` (S = predicted log-scale; = the Laplace NLL)."""
    if pred.shape != target.shape or log_scale.shape != target.shape:
        raise ValueError(f"shapes differ: pred {tuple(pred.shape)}, log_scale {tuple(log_scale.shape)}, "
                         f"target {tuple(target.shape)}")
    # exactly -log Laplace(target | pred, b) with b = exp(S)/2 (see the module docstring); no log 2 dropped
    loss = 2.0 * torch.exp(-log_scale) * (pred - target).abs() + log_scale
    return _reduce(loss, reduction)


def l1_loss(pred: torch.Tensor, log_scale: torch.Tensor, target: torch.Tensor,
            reduction: str = "mean") -> torch.Tensor:
    """Plain |pred - target| (the log-scale output is ignored: a model trained on it has no uncertainty)."""
    if pred.shape != target.shape:
        raise ValueError(f"shapes differ: pred {tuple(pred.shape)}, target {tuple(target.shape)}")
    # 0 * S keeps S in the graph, so every parameter gets a (zero) gradient and optimisers see no None grads
    return _reduce((pred - target).abs() + 0.0 * log_scale, reduction)


LOSSES = {"laplace": laplace_nll, "l1": l1_loss}


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def laplace_nll_ev(error_ev: np.ndarray, scale_ev: np.ndarray) -> float:
    """Mean Laplace negative log-likelihood ``log(2b) + |e|/b`` in eV units (comparable across models)."""
    e, b = np.abs(np.asarray(error_ev, float)), np.asarray(scale_ev, float)
    return float(np.mean(np.log(2.0 * b) + e / b))


def masked_mae(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error over the entries where ``mask`` is true (all when mask is None)."""
    err = (pred - target).abs()
    if mask is None:
        return err.mean()
    return err[mask].mean()


__all__ = ["LOSSES", "l1_loss", "laplace_nll", "laplace_nll_ev", "laplace_scale", "log_scale_from_laplace_scale",
           "masked_mae"]
