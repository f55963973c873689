"""Does a predicted uncertainty mean something? Calibration of Laplace predictive distributions.

The Laplace aleatoric loss ``2*exp(-S)*|e| + S`` is, up to a constant, the negative log-likelihood
of a Laplace distribution with scale ``b = exp(S)/2``. A calibrated model's central p-interval
``|e| <= -b*ln(1-p)`` then contains a fraction p of the test errors, for every p.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr


def laplace_scale(log_scale: np.ndarray) -> np.ndarray:
    """Laplace scale b from the predicted log-scale S of the gapkit loss (b = exp(S)/2)."""
    return np.exp(np.asarray(log_scale, dtype=float)) / 2.0


def interval_coverage(errors: np.ndarray, scale: np.ndarray, levels: np.ndarray | None = None) -> pd.DataFrame:
    """Observed fraction of |errors| inside each central Laplace p-interval, for p in ``levels``."""
    errors, scale = np.abs(np.asarray(errors, float)), np.asarray(scale, float)
    if errors.shape != scale.shape:
        raise ValueError(f"errors {errors.shape} and scale {scale.shape} differ in shape.")
    if (scale <= 0).any():
        raise ValueError("scales must be positive.")
    levels = np.linspace(0.05, 0.95, 19) if levels is None else np.asarray(levels, float)
    observed = [(errors <= -scale * np.log1p(-p)).mean() for p in levels]
    return pd.DataFrame({"expected": levels, "observed": observed})


def miscalibration_area(coverage: pd.DataFrame) -> float:
    """Mean |observed - expected| over the levels: 0 is perfect calibration."""
    return float(np.mean(np.abs(coverage["observed"] - coverage["expected"])))


def error_uncertainty_spearman(errors: np.ndarray, scale: np.ndarray) -> float:
    """Rank correlation between |error| and predicted scale: do larger uncertainties flag larger errors?"""
    return float(spearmanr(np.abs(errors), scale).statistic)


def mae_by_uncertainty_bin(errors: np.ndarray, scale: np.ndarray, n_bins: int = 5) -> pd.DataFrame:
    """MAE within quantile bins of the predicted scale (a calibrated model's MAE grows bin by bin)."""
    frame = pd.DataFrame({"abs_error": np.abs(errors), "scale": scale})
    frame["bin"] = pd.qcut(frame["scale"].rank(method="first"), n_bins, labels=False)
    return frame.groupby("bin").agg(mean_scale=("scale", "mean"), mae=("abs_error", "mean"),
                                    n=("abs_error", "size"))
