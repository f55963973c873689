"""One trainer for every gapkit model (Lightning underneath), and the losses."""

from gapkit.train.losses import laplace_nll, masked_mae
from gapkit.train.trainer import TrainConfig, fit, make_trainer

__all__ = ["TrainConfig", "fit", "make_trainer", "laplace_nll", "masked_mae"]
