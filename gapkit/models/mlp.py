"""A fully connected regressor on fixed-length feature vectors (the DNN of the center-environment chapter).

Like every gapkit model it is a plain ``nn.Module`` with a ``forward_batch`` that returns a prediction
and a log-scale ``S`` (the Laplace uncertainty), so the shared ``BandGapTask`` + trainer train it
unchanged. The layers are named ``body.<i>`` and ``head`` so that a transfer run can freeze "all but
the last layers" by name (see ``gapkit.train.transfer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class MLPConfig:
    """Shape of an MLP regressor: input width, hidden widths, dropout, activation."""

    n_features: int
    hidden: tuple[int, ...] = (256, 128, 64)
    dropout: float = 0.0
    activation: str = "silu"

    def __post_init__(self) -> None:
        if self.n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {self.n_features}.")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden must be a non-empty tuple of positive widths, got {self.hidden}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}.")


def column_scale(x: np.ndarray) -> np.ndarray:
    """Column standard deviations of ``x`` (ddof 1) with 1 for constant or undefined ones (no division by zero)."""
    std = np.asarray(x, dtype=float).std(axis=0, ddof=1) if len(x) > 1 else np.full(np.shape(x)[1], np.nan)
    return np.where(np.isfinite(std) & (std >= 1e-8), std, 1.0)


_ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "tanh": nn.Tanh}


class MLPRegressor(nn.Module):
    """x [B, n_features] -> (prediction [B], log-scale S [B]) through Linear-activation-dropout blocks."""

    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        self.config = config
        widths = (config.n_features, *config.hidden)
        blocks = []
        for d_in, d_out in zip(widths[:-1], widths[1:]):
            blocks.append(nn.Sequential(nn.Linear(d_in, d_out), _ACTIVATIONS[config.activation](),
                                        nn.Dropout(config.dropout)))
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(widths[-1], 2)  # prediction and log-scale, as the Laplace loss wants
        # Input scaling lives in the model (buffers, saved and transferred with the weights), so a
        # pretrained network applied to a new domain sees the features on the scale it was trained on.
        self.register_buffer("x_mean", torch.zeros(config.n_features))
        self.register_buffer("x_std", torch.ones(config.n_features))

    def set_input_scaling(self, x: torch.Tensor) -> None:
        """Standardise inputs with the column means / stds of ``x`` (constant columns get std 1)."""
        # statistics in float64 on the CPU (one definition: column_scale), whatever device x lives on
        x = torch.as_tensor(x).detach().to("cpu", torch.float64)
        if x.ndim != 2 or x.shape[1] != self.config.n_features:
            raise ValueError(f"x must be [n, {self.config.n_features}], got {tuple(x.shape)}.")
        self.x_mean.copy_(x.mean(dim=0))
        self.x_std.copy_(torch.from_numpy(column_scale(x.numpy())))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(prediction, log-scale) for a raw (unscaled) feature matrix."""
        z, s = self.head(self.body((x - self.x_mean) / self.x_std)).unbind(-1)
        return z, s

    def forward_batch(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict from a collated batch dict (key ``x``)."""
        return self(batch["x"])

    def layer_names(self) -> list[str]:
        """Parameter-name prefixes of the trainable layers, input to output (``body.0`` ... ``head``)."""
        return [f"body.{i}" for i in range(len(self.body))] + ["head"]


def last_layers(model: MLPRegressor, n: int) -> Sequence[str]:
    """Name prefixes of the last ``n`` layers of ``model`` (the head counts as one)."""
    names = model.layer_names()
    if not 1 <= n <= len(names):
        raise ValueError(f"n must be between 1 and {len(names)} for this model, got {n}.")
    return names[-n:]
