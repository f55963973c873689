"""CGCrabNet (Sun & Yuan, Acta Phys. Sin. 72, 218901, 2023): CrabNet and CGCNN predictions fused.

    z = w1 * z1 + w2 * z2,   w1 + w2 = 1

with z1 from the composition branch (CrabNet) and z2 from the structure branch (CGCNN). The paper fixes
w1:w2 = 7:3; ``weights="learned"`` instead learns them as the softmax of two logits (started at 7:3).
The Laplace log-scale S is fused with the same weights, so the loss sees one (z, S) pair.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gapkit.models.cgcnn import CGCNNModel
from gapkit.models.crabnet import CrabNetModel


class CGCrabNetModel(nn.Module):
    """Weighted fusion of a CrabNet and a CGCNN branch: batch -> (z [B], S [B])."""

    def __init__(self, crabnet: CrabNetModel, cgcnn: CGCNNModel,
                 weights: tuple[float, float] | str = (0.7, 0.3)) -> None:
        super().__init__()
        self.crabnet = crabnet
        self.cgcnn = cgcnn
        if weights == "learned":
            self.logits = nn.Parameter(torch.tensor([math.log(0.7), math.log(0.3)]))
        else:
            if isinstance(weights, str):
                raise ValueError(f"weights must be 'learned' or two numbers summing to 1, got {weights!r}.")
            w = torch.as_tensor(weights, dtype=torch.float32)
            if w.shape != (2,) or (w < 0).any() or not math.isclose(float(w.sum()), 1.0, abs_tol=1e-6):
                raise ValueError(f"weights must be 'learned' or two non-negative numbers summing to 1, got {weights}.")
            self.register_buffer("fixed_weights", w)
            self.logits = None

    @property
    def weights(self) -> torch.Tensor:
        """The current (w1, w2)."""
        return torch.softmax(self.logits, dim=0) if self.logits is not None else self.fixed_weights

    def forward_batch(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict (z, S) from a batch holding both composition and graph tensors."""
        z1, s1 = self.crabnet.forward_batch(batch)
        z2, s2 = self.cgcnn.forward_batch(batch)
        w = self.weights.to(z1.dtype)
        return w[0] * z1 + w[1] * z2.to(z1.dtype), w[0] * s1 + w[1] * s2.to(z1.dtype)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Same as ``forward_batch``."""
        return self.forward_batch(batch)
