"""Baselines learn a simple signal, grid search respects groups, bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest

from gapkit.baselines import compare_baselines, grid_search, make_baseline, regression_metrics


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = 1.5 * X[:, 0] - X[:, 1] ** 2 + 0.05 * rng.normal(size=120)
    return X, y


def test_every_baseline_beats_the_mean(toy):
    X, y = toy
    table = compare_baselines(X[:90], y[:90], X[90:], y[90:], params={
        "rf": {"n_estimators": 50}, "svr": {"C": 10.0}, "gbr": {"n_estimators": 100},
        "krr": {"kernel": "rbf", "alpha": 0.1, "gamma": 0.2}})
    dummy_mae = np.abs(y[90:] - y[:90].mean()).mean()
    assert (table["mae"] < 0.6 * dummy_mae).all(), table


def test_grouped_grid_search(toy):
    X, y = toy
    groups = [f"g{i % 30}" for i in range(len(y))]
    search = grid_search("krr", X, y, groups=groups, grid={"model__alpha": [0.01, 100.0],
                                                          "model__kernel": ["rbf"]}, n_splits=3, n_jobs=1)
    assert search.best_params_["model__alpha"] == 0.01
    assert search.best_score_ < 0  # negative MAE


def test_bad_inputs(toy):
    X, y = toy
    with pytest.raises(KeyError, match="rf, svr"):
        make_baseline("xgb")
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        compare_baselines(X_nan, y, X, y)
    with pytest.raises(ValueError, match="same length"):
        grid_search("rf", X, y[:-1])


def test_regression_metrics():
    m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert m["mae"] == pytest.approx(1 / 3) and m["rmse"] == pytest.approx(np.sqrt(1 / 3))
