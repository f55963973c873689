"""Classical baselines (RF, SVR, GBR, KRR) as scikit-learn pipelines, with grouped grid-search CV.

The papers compare their networks with these models on fixed-length feature vectors (e.g. the
Atom_DL vectors of the A, B and X sites concatenated). Everything here takes a feature matrix ``X``;
featurization lives in ``gapkit.featurize``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import RegressorMixin
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

BASELINES = ("rf", "svr", "gbr", "krr")

# Hyperparameters published in the CGCrabNet paper (Table 4) for the perovskite baselines.
CGCRABNET_PAPER_PARAMS: dict[str, dict[str, Any]] = {
    "rf": {"n_estimators": 90},
    "svr": {"kernel": "poly", "degree": 3, "C": 2.0, "gamma": 2.0, "coef0": 1.5},
    "gbr": {"n_estimators": 500, "learning_rate": 0.2, "max_depth": 4, "loss": "absolute_error"},
}

# Grids wide enough to contain the papers' choices, small enough for a 5-fold CV on a laptop.
DEFAULT_GRIDS: dict[str, dict[str, list[Any]]] = {
    "rf": {"model__n_estimators": [10, 50, 90, 200], "model__max_features": [1.0, 0.5, "sqrt"]},
    "svr": {"model__kernel": ["rbf", "poly"], "model__C": [0.1, 1.0, 2.0, 10.0],
            "model__gamma": ["scale", 0.01, 0.15], "model__degree": [2, 3], "model__coef0": [0.5, 1.5]},
    "gbr": {"model__n_estimators": [100, 500], "model__learning_rate": [0.05, 0.2], "model__max_depth": [3, 4]},
    "krr": {"model__kernel": ["rbf", "poly"], "model__alpha": [0.1, 1.0], "model__gamma": [0.001, 0.01, 0.3],
            "model__degree": [1, 2, 4], "model__coef0": [0.5, 1.5]},
}


def make_baseline(name: str, seed: int = 0, **params: Any) -> Pipeline:
    """Return a standardise-then-regress pipeline for 'rf', 'svr', 'gbr' or 'krr' with ``params``."""
    models: dict[str, type[RegressorMixin]] = {
        "rf": RandomForestRegressor, "svr": SVR, "gbr": GradientBoostingRegressor, "krr": KernelRidge,
    }
    if name not in models:
        raise KeyError(f"Unknown baseline {name!r}; choose one of {', '.join(BASELINES)}.")
    cls = models[name]
    if name in ("rf", "gbr"):
        params.setdefault("random_state", seed)
    if name == "rf":
        params.setdefault("n_jobs", -1)
    return Pipeline([("scale", StandardScaler()), ("model", cls(**params))])


def grid_search(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str] | None = None,
    grid: dict[str, list[Any]] | None = None,
    n_splits: int = 5,
    seed: int = 0,
    n_jobs: int = -1,
) -> GridSearchCV:
    """Fit a k-fold grid search (grouped when ``groups`` is given) minimising MAE; return the fitted search."""
    X, y = _check_xy(X, y)
    cv = (GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed) if groups is not None
          else KFold(n_splits=n_splits, shuffle=True, random_state=seed))
    search = GridSearchCV(make_baseline(name, seed=seed), grid if grid is not None else DEFAULT_GRIDS[name],
                          scoring="neg_mean_absolute_error", cv=cv, n_jobs=n_jobs, refit=True)
    search.fit(X, y, groups=None if groups is None else np.asarray(groups))
    return search


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R^2 of a prediction (eV for band gaps)."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    return {"mae": float(mean_absolute_error(y_true, y_pred)),
            "rmse": float(np.sqrt(np.mean((y_true - y_pred) ** 2))),
            "r2": float(r2_score(y_true, y_pred))}


def compare_baselines(
    X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
    params: dict[str, dict[str, Any]] | None = None, seed: int = 0,
) -> pd.DataFrame:
    """Fit each baseline with fixed ``params`` (default: the CGCrabNet paper's) and score it on the test set."""
    params = params if params is not None else CGCRABNET_PAPER_PARAMS
    X_train, y_train = _check_xy(X_train, y_train)
    X_test, y_test = _check_xy(X_test, y_test)
    rows = []
    for name, kwargs in params.items():
        model = make_baseline(name, seed=seed, **kwargs).fit(X_train, y_train)
        rows.append({"model": name, **regression_metrics(y_test, model.predict(X_test))})
    return pd.DataFrame(rows).set_index("model")


def _check_xy(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"X must be 2-D and y 1-D of the same length; got X{X.shape}, y{y.shape}.")
    if not np.isfinite(X).all() or not np.isfinite(y).all():
        raise ValueError("X or y contains NaN or infinity: impute or drop those rows first.")
    return X, y
