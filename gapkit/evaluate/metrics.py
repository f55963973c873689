"""Regression metrics for band-gap models: MAE, RMSE, R², the parity-plot linear fit, per-split tables."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """MAE, RMSE, R² and the count of a set of predictions (eV in, eV out)."""
    y, p = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"y_true and y_pred must be non-empty and of one shape, got {y.shape} and {p.shape}.")
    err = p - y
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err**2).mean())),
            "r2": 1.0 - float((err**2).sum()) / ss_tot if ss_tot > 0 else float("nan"), "n": int(y.size)}


def linear_fit(y_true, y_pred) -> dict[str, float]:
    """Least-squares line y_pred = slope * y_true + intercept, with Pearson r (the parity-plot fit)."""
    y, p = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    if y.size < 2:
        raise ValueError("A linear fit needs at least two points.")
    slope, intercept = np.polyfit(y, p, 1)
    return {"slope": float(slope), "intercept": float(intercept), "r": float(np.corrcoef(y, p)[0, 1])}


def split_mae(estimator, splits: Mapping[str, pd.DataFrame], target: str = "gap_ev") -> dict[str, float]:
    """MAE (eV) of a fitted estimator on each named split, e.g. {'train': ..., 'val': ..., 'test': ...}."""
    return {name: regression_metrics(df[target], estimator.predict(df)["gap_ev"])["mae"]
            for name, df in splits.items()}


def balanced_threshold(is_positive, p_positive) -> float:
    """The probability threshold that maximises balanced accuracy on labelled data (Youden's J = TPR - FPR)."""
    from sklearn.metrics import roc_curve

    y = np.asarray(is_positive, dtype=bool)
    if not 0 < y.sum() < y.size:
        raise ValueError("choosing a threshold needs both classes in the labels.")
    fpr, tpr, thresholds = roc_curve(y, np.asarray(p_positive, dtype=float))
    best = float(thresholds[1:][np.argmax((tpr - fpr)[1:])])  # the first threshold is +inf (nothing positive)
    return min(max(best, 1e-6), 1 - 1e-6)  # a probability strictly inside (0, 1)


def classification_metrics(is_positive, p_positive, threshold: float = 0.5) -> dict[str, float]:
    """ROC AUC, accuracy, balanced accuracy and the accuracy on each class of probabilistic predictions."""
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    y = np.asarray(is_positive, dtype=bool)
    p = np.asarray(p_positive, dtype=float)
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"labels and probabilities must be non-empty and of one shape, got {y.shape} and {p.shape}.")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError("probabilities must be finite numbers in [0, 1].")
    pred = p >= threshold
    both = 0 < y.sum() < y.size
    return {"roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
            "accuracy": float((pred == y).mean()),
            "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if both else float("nan"),
            "positive_accuracy": float(pred[y].mean()) if y.any() else float("nan"),
            "negative_accuracy": float((~pred[~y]).mean()) if (~y).any() else float("nan"),
            "n": int(y.size), "n_positive": int(y.sum())}
