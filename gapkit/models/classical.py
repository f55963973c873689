"""Classical baselines (mean, RF, ExtraTrees, GBR, SVR, KRR) with nested repeated K-fold CV and paired tests.

The papers compare their networks with these models on fixed-length feature vectors (e.g. the
element vectors of M, X and Y concatenated for Janus monolayers, or of the A, B and X sites for
perovskites). Everything here takes a feature matrix ``X``; featurization lives in
``gapkit.featurize``; metrics come from ``gapkit.evaluate.metrics``.

* ``make_pipeline(method, seed, **params)``: a scikit-learn pipeline (``StandardScaler`` in front of
  the kernel methods, whose kernels depend on feature scales; trees get the raw features).
* ``PARAM_GRIDS[method]``: one shared grid per method that contains every published setting
  (``PAPER_SETTINGS``): the Atom_DL paper's Janus settings and the CGCrabNet paper's perovskite ones.
* ``nested_cv(X, y, method, config)``: repeated K-fold where each outer training part runs its own
  inner ``GridSearchCV``; the outer test fold never reaches the search. The outer splits depend only
  on ``config`` (seed, folds, repeats) and ``len(y)``, so two methods run with one config are scored
  on the same folds and can be compared fold by fold with ``paired_test``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor, RandomForestRegressor
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, ParameterGrid
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from gapkit.evaluate.metrics import regression_metrics

logger = logging.getLogger(__name__)

METHODS = ("mean", "rf", "et", "gbr", "svr", "krr")
METHOD_NAMES = {"mean": "mean predictor", "rf": "random forest", "et": "extra trees",
                "gbr": "gradient boosting", "svr": "SVR", "krr": "kernel ridge"}
_MODELS: dict[str, type] = {"mean": DummyRegressor, "rf": RandomForestRegressor, "et": ExtraTreesRegressor,
                            "gbr": GradientBoostingRegressor, "svr": SVR, "krr": KernelRidge}
_SCALED = {"svr", "krr"}  # kernel methods depend on feature scales; trees and the mean do not
_SEEDED = {"rf", "et", "gbr"}

# Published settings, as model parameters (without the pipeline's "model__" prefix).
# Atom_DL paper (Sun & Yuan, Acta Phys. Sin. 72, 028901, 2023), Tables 1-3, one per embedding.
ATOMDL_JANUS_PARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "rf": {"magpie": {"n_estimators": 50}, "atom2vec": {"n_estimators": 80}, "atom_dl": {"n_estimators": 10}},
    "krr": {"magpie": {"kernel": "poly", "degree": 1, "alpha": 1.0, "gamma": 0.01, "coef0": 1.0},
            "atom2vec": {"kernel": "poly", "degree": 2, "alpha": 1.0, "gamma": 0.001, "coef0": 0.5},
            "atom_dl": {"kernel": "poly", "degree": 4, "alpha": 1.0, "gamma": 0.3, "coef0": 1.5}},
    "svr": {"magpie": {"kernel": "poly", "degree": 1, "C": 0.1, "gamma": 0.01, "coef0": 0.5},
            "atom2vec": {"kernel": "poly", "degree": 2, "C": 1.0, "gamma": 0.01, "coef0": 2.0},
            "atom_dl": {"kernel": "poly", "degree": 3, "C": 1.0, "gamma": 0.15, "coef0": 2.5}},
}
# CGCrabNet paper (Sun & Yuan, Acta Phys. Sin. 72, 218901, 2023), Table 4: perovskite baselines.
CGCRABNET_PAPER_PARAMS: dict[str, dict[str, Any]] = {
    "rf": {"n_estimators": 90},
    "svr": {"kernel": "poly", "degree": 3, "C": 2.0, "gamma": 2.0, "coef0": 1.5},
    "gbr": {"n_estimators": 500, "learning_rate": 0.2, "max_depth": 4, "loss": "absolute_error"},
}
PAPER_SETTINGS: dict[str, list[dict[str, Any]]] = {
    method: [*ATOMDL_JANUS_PARAMS.get(method, {}).values()]
    + ([CGCRABNET_PAPER_PARAMS[method]] if method in CGCRABNET_PAPER_PARAMS else [])
    for method in METHODS
}


def _prefixed(grid: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    return {f"model__{k}": list(v) for k, v in grid.items()}


def _points(settings: Sequence[Mapping[str, Any]]) -> list[dict[str, list[Any]]]:
    return [_prefixed({k: [v] for k, v in s.items()}) for s in settings]


# One shared grid per method: a small cartesian grid plus every published setting as its own point
# (a list of dicts is a union of grids for GridSearchCV). Sized for nested repeated CV on one shared
# CPU core: the tree ensembles' cost grows with the total number of trees in the grid.
PARAM_GRIDS: dict[str, list[dict[str, list[Any]]]] = {
    "mean": [{}],
    "rf": [_prefixed({"n_estimators": [10, 50, 80, 90], "max_features": [1.0]}),
           _prefixed({"n_estimators": [90], "max_features": [0.33]})],
    "et": [_prefixed({"n_estimators": [100], "max_features": [1.0, 0.33]})],
    "gbr": [_prefixed({"n_estimators": [100], "learning_rate": [0.1], "max_depth": [2, 4]}),
            *_points(PAPER_SETTINGS["gbr"])],
    "svr": [_prefixed({"kernel": ["rbf"], "C": [1.0, 10.0], "gamma": ["scale", 0.01], "epsilon": [0.05, 0.1]}),
            *_points(PAPER_SETTINGS["svr"])],
    "krr": [_prefixed({"kernel": ["rbf"], "alpha": [0.01, 0.1, 1.0], "gamma": [0.001, 0.01, 0.03]}),
            _prefixed({"kernel": ["poly"], "degree": [1, 2, 4], "alpha": [1.0], "gamma": [0.001, 0.01, 0.3],
                       "coef0": [0.5, 1.0, 1.5]})],
}
# Quick grids for CI-sized runs: they still contain the Atom_DL paper's Janus settings for KRR and SVR.
# RF gets one setting (the paper's 50 trees): a one-point grid skips the inner search, which for
# random forests costs more than everything else in a quick run.
QUICK_GRIDS: dict[str, list[dict[str, list[Any]]]] = {
    "mean": [{}],
    "rf": [_prefixed({"n_estimators": [50]})],
    "et": [_prefixed({"n_estimators": [50], "max_features": [1.0, 0.33]})],
    "gbr": [_prefixed({"n_estimators": [100], "learning_rate": [0.1], "max_depth": [2, 4]})],
    "svr": [_prefixed({"kernel": ["rbf"], "C": [1.0, 10.0], "gamma": ["scale"]}),
            *_points(ATOMDL_JANUS_PARAMS["svr"].values())],
    "krr": [_prefixed({"kernel": ["rbf"], "alpha": [0.01, 0.1], "gamma": [0.001, 0.01]}),
            *_points(ATOMDL_JANUS_PARAMS["krr"].values())],
}


@dataclass(frozen=True)
class CVConfig:
    """Nested repeated K-fold settings: outer folds x repeats scored, inner folds for the grid search."""

    n_outer: int = 5
    n_repeats: int = 5
    n_inner: int = 3
    seed: int = 0
    quick_grids: bool = False

    def __post_init__(self) -> None:
        if self.n_outer < 2 or self.n_inner < 2 or self.n_repeats < 1:
            raise ValueError(f"Need n_outer >= 2, n_inner >= 2, n_repeats >= 1; got {self}.")

    def grid(self, method: str) -> list[dict[str, list[Any]]]:
        """The parameter grid this config searches for ``method``."""
        _check_method(method)
        return (QUICK_GRIDS if self.quick_grids else PARAM_GRIDS)[method]


def _check_method(method: str) -> None:
    if method not in _MODELS:
        raise KeyError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")


def make_pipeline(method: str, seed: int = 0, **params: Any) -> Pipeline:
    """Return an (optionally standardise-then-) regress pipeline for ``method`` with model ``params``."""
    _check_method(method)
    if method in _SEEDED:
        params.setdefault("random_state", seed)
    if method in ("rf", "et"):
        params.setdefault("n_jobs", 1)  # the machines are shared; parallelism belongs to the caller
    if method == "svr":
        params.setdefault("max_iter", 1_000_000)  # polynomial kernels with large gamma can stall libsvm
    if method == "mean":
        params.setdefault("strategy", "mean")
    steps: list[tuple[str, Any]] = [("scale", StandardScaler())] if method in _SCALED else []
    return Pipeline([*steps, ("model", _MODELS[method](**params))])


# The old name, kept for callers of the former gapkit.baselines.
make_baseline = make_pipeline


def grid_search(
    method: str,
    X: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str] | None = None,
    grid: list[dict[str, list[Any]]] | dict[str, list[Any]] | None = None,
    n_splits: int = 5,
    seed: int = 0,
    n_jobs: int = 1,
) -> GridSearchCV:
    """Fit a (grouped when ``groups`` is given) k-fold grid search minimising MAE; return the fitted search."""
    X, y = _check_xy(X, y)
    cv = (GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed) if groups is not None
          else KFold(n_splits=n_splits, shuffle=True, random_state=seed))
    search = GridSearchCV(make_pipeline(method, seed=seed), grid if grid is not None else PARAM_GRIDS[method],
                          scoring="neg_mean_absolute_error", cv=cv, n_jobs=n_jobs, refit=True)
    search.fit(X, y, groups=None if groups is None else np.asarray(groups))
    return search


def compare_baselines(
    X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
    params: Mapping[str, Mapping[str, Any]] | None = None, seed: int = 0,
) -> pd.DataFrame:
    """Fit each method with fixed ``params`` (default: the CGCrabNet paper's) and score it on the test set."""
    params = params if params is not None else CGCRABNET_PAPER_PARAMS
    X_train, y_train = _check_xy(X_train, y_train)
    X_test, y_test = _check_xy(X_test, y_test)
    rows = []
    for method, kwargs in params.items():
        model = make_pipeline(method, seed=seed, **dict(kwargs)).fit(X_train, y_train)
        rows.append({"model": method, **regression_metrics(y_test, model.predict(X_test))})
    return pd.DataFrame(rows).set_index("model")


@dataclass
class NestedCVResult:
    """Per-fold MAEs, out-of-fold predictions and chosen parameters of one nested repeated K-fold run."""

    method: str
    config: CVConfig
    fold_mae: np.ndarray  # (n_repeats, n_outer), eV
    oof: np.ndarray  # (n_repeats, n_samples): every sample's held-out prediction in each repeat
    test_indices: list[list[np.ndarray]]  # [repeat][fold] -> indices of the outer test fold
    best_params: list[list[dict[str, Any]]] = field(default_factory=list)
    y: np.ndarray | None = None

    @property
    def mae(self) -> float:
        """Mean MAE over all outer folds and repeats (eV)."""
        return float(self.fold_mae.mean())

    @property
    def mae_std(self) -> float:
        """Standard deviation of the per-fold MAEs over all folds and repeats (eV)."""
        return float(self.fold_mae.std(ddof=1)) if self.fold_mae.size > 1 else 0.0

    @property
    def repeat_mae(self) -> np.ndarray:
        """MAE of each repeat's out-of-fold predictions (eV)."""
        return np.abs(self.oof - self.y[None, :]).mean(axis=1)

    def mean_prediction(self) -> np.ndarray:
        """Each sample's held-out prediction averaged over the repeats."""
        return self.oof.mean(axis=0)

    def summary(self) -> dict[str, float]:
        """{'mean', 'std'} of the per-fold MAEs (eV): the numbers a chapter records."""
        return {"mean": self.mae, "std": self.mae_std}


def outer_splits(n_samples: int, config: CVConfig, groups: Sequence[Any] | None = None) -> list[list[tuple]]:
    """The outer (train, test) index pairs of every repeat: a function of the config and size only."""
    splits = []
    index = np.zeros((n_samples, 1))
    for r in range(config.n_repeats):
        rs = config.seed * 1000 + r
        cv = (GroupKFold(n_splits=config.n_outer, shuffle=True, random_state=rs) if groups is not None
              else KFold(n_splits=config.n_outer, shuffle=True, random_state=rs))
        splits.append(list(cv.split(index, groups=None if groups is None else np.asarray(groups))))
    return splits


def nested_cv(
    X: np.ndarray,
    y: np.ndarray,
    method: str,
    config: CVConfig = CVConfig(),
    groups: Sequence[Any] | None = None,
    grid: list[dict[str, list[Any]]] | None = None,
) -> NestedCVResult:
    """Nested repeated K-fold CV of ``method``: an inner grid search per outer training part, scored on its test fold."""
    X, y = _check_xy(X, y)
    grid = grid if grid is not None else config.grid(method)
    candidates = list(ParameterGrid(grid))
    splits = outer_splits(len(y), config, groups)
    fold_mae = np.zeros((config.n_repeats, config.n_outer))
    oof = np.full((config.n_repeats, len(y)), np.nan)
    tests: list[list[np.ndarray]] = []
    params: list[list[dict[str, Any]]] = []
    for r, repeat in enumerate(splits):
        tests.append([])
        params.append([])
        for k, (train, test) in enumerate(repeat):
            inner_seed = config.seed * 1000 + 100 * r + k
            inner_groups = None if groups is None else np.asarray(groups)[train]
            inner = (GroupKFold(n_splits=config.n_inner, shuffle=True, random_state=inner_seed)
                     if groups is not None else KFold(n_splits=config.n_inner, shuffle=True, random_state=inner_seed))
            if len(candidates) == 1:  # nothing to choose: skip the inner search, fit the one setting
                model = make_pipeline(method, seed=inner_seed).set_params(**candidates[0]).fit(X[train], y[train])
                chosen = candidates[0]
            else:
                model = GridSearchCV(make_pipeline(method, seed=inner_seed), grid, scoring="neg_mean_absolute_error",
                                     cv=inner, n_jobs=1, refit=True, error_score="raise")
                model.fit(X[train], y[train], groups=inner_groups)  # only the outer training part
                chosen = model.best_params_
            pred = model.predict(X[test])
            oof[r, test] = pred
            fold_mae[r, k] = regression_metrics(y[test], pred)["mae"]
            tests[-1].append(test)
            params[-1].append({k_.removeprefix("model__"): v for k_, v in chosen.items()})
        logger.debug("%s repeat %d: MAE %.3f", method, r, fold_mae[r].mean())
    return NestedCVResult(method, config, fold_mae, oof, tests, params, y)


def cv_estimator(
    X: np.ndarray,
    y: np.ndarray,
    estimator: Any,
    config: CVConfig = CVConfig(),
    name: str = "fixed",
    groups: Sequence[Any] | None = None,
) -> NestedCVResult:
    """Repeated K-fold CV of one fixed (un-searched) estimator on the same outer folds as ``nested_cv``."""
    from sklearn.base import clone

    X, y = _check_xy(X, y)
    splits = outer_splits(len(y), config, groups)
    fold_mae = np.zeros((config.n_repeats, config.n_outer))
    oof = np.full((config.n_repeats, len(y)), np.nan)
    tests: list[list[np.ndarray]] = []
    for r, repeat in enumerate(splits):
        tests.append([])
        for k, (train, test) in enumerate(repeat):
            pred = clone(estimator).fit(X[train], y[train]).predict(X[test])
            oof[r, test] = pred
            fold_mae[r, k] = regression_metrics(y[test], pred)["mae"]
            tests[-1].append(test)
    return NestedCVResult(name, config, fold_mae, oof, tests, [], y)


def corrected_paired_ttest(
    mae_a: np.ndarray, mae_b: np.ndarray, test_fraction: float, alternative: str = "less",
) -> dict[str, float]:
    """Nadeau-Bengio corrected resampled t-test on paired per-fold MAEs (A minus B) of repeated K-fold CV.

    Why this test: the folds of repeated K-fold share most of their training data, so per-fold
    differences are correlated; a plain paired t-test or a Wilcoxon signed-rank test treats the
    r x k differences as independent and gives p-values that are far too small. The corrected
    variance (1/(r k) + n_test/n_train) * s^2 (Nadeau & Bengio 2003; Bouckaert & Frank 2004) keeps the
    type-I error near its nominal level. ``alternative="less"`` tests "A has the lower MAE".
    """
    d = np.asarray(mae_a, float).ravel() - np.asarray(mae_b, float).ravel()
    if d.size < 2:
        raise ValueError("The paired test needs at least two paired folds.")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}.")
    mean, var = float(d.mean()), float(d.var(ddof=1))
    df = d.size - 1
    if var == 0.0:
        t = 0.0 if mean == 0.0 else float(np.sign(mean) * np.inf)
    else:
        t = mean / np.sqrt((1.0 / d.size + test_fraction / (1.0 - test_fraction)) * var)
    if alternative == "less":
        p = float(stats.t.cdf(t, df))
    elif alternative == "greater":
        p = float(stats.t.sf(t, df))
    elif alternative == "two-sided":
        p = float(2 * stats.t.sf(abs(t), df))
    else:
        raise ValueError(f"alternative must be 'less', 'greater' or 'two-sided', got {alternative!r}.")
    return {"mean_diff": mean, "t": float(t), "df": float(df), "p": p, "n_pairs": int(d.size)}


def paired_test(a: NestedCVResult, b: NestedCVResult, alternative: str = "less") -> dict[str, float]:
    """Corrected paired t-test of "a has a lower MAE than b" over the same outer folds of two nested CV runs."""
    if a.config.n_outer != b.config.n_outer or a.config.n_repeats != b.config.n_repeats \
            or a.config.seed != b.config.seed or a.oof.shape != b.oof.shape:
        raise ValueError("Paired tests need two runs on the same outer folds: same n_outer, n_repeats, seed, data.")
    for ta, tb in zip(a.test_indices, b.test_indices):
        if any(not np.array_equal(x, z) for x, z in zip(ta, tb)):
            raise ValueError("The two runs were scored on different outer folds; run both with one CVConfig.")
    return corrected_paired_ttest(a.fold_mae, b.fold_mae, 1.0 / a.config.n_outer, alternative)


def _check_xy(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"X must be 2-D and y 1-D of the same length; got X{X.shape}, y{y.shape}.")
    if not np.isfinite(X).all() or not np.isfinite(y).all():
        raise ValueError("X or y contains NaN or infinity: impute or drop those rows first.")
    return X, y
