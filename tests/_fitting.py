"""Shared check that a model can memorise a tiny batch (an L1 fit with Adam)."""

from __future__ import annotations

import torch


def fit_l1(model: torch.nn.Module, batch, target: torch.Tensor, lr: float, steps: int = 200) -> None:
    """Fit ``model.forward_batch(batch)[0]`` to ``target`` in place by Adam on the mean absolute error."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = (model.forward_batch(batch)[0] - target).abs().mean()
        loss.backward()
        opt.step()
