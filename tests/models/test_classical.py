"""Classical baselines learn a simple signal, nested CV is deterministic and never leaks the test fold."""

from __future__ import annotations

import numpy as np
import pytest

import gapkit.models.classical as classical
from gapkit.evaluate.metrics import regression_metrics
from gapkit.models.classical import (PAPER_SETTINGS, PARAM_GRIDS, QUICK_GRIDS, CVConfig, compare_baselines,
                                     corrected_paired_ttest, grid_search, make_pipeline, nested_cv,
                                     outer_splits, paired_test)


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = 1.5 * X[:, 0] - X[:, 1] ** 2 + 0.05 * rng.normal(size=120)
    return X, y


def test_every_method_beats_the_mean(toy):
    X, y = toy
    table = compare_baselines(X[:90], y[:90], X[90:], y[90:], params={
        "rf": {"n_estimators": 50}, "et": {"n_estimators": 50}, "svr": {"C": 10.0}, "gbr": {"n_estimators": 100},
        "krr": {"kernel": "rbf", "alpha": 0.1, "gamma": 0.2}, "mean": {}})
    assert (table.drop(index="mean")["mae"] < 0.6 * table.loc["mean", "mae"]).all(), table


def test_nested_cv_rf_beats_the_mean_by_a_margin(toy):
    X, y = toy
    config = CVConfig(n_outer=4, n_repeats=2, n_inner=3, seed=0, quick_grids=True)
    rf, mean = nested_cv(X, y, "rf", config), nested_cv(X, y, "mean", config)
    assert rf.fold_mae.shape == (2, 4) and rf.oof.shape == (2, 120)
    assert np.isfinite(rf.oof).all()  # every sample has a held-out prediction in every repeat
    assert rf.mae < 0.5 * mean.mae, (rf.mae, mean.mae)
    test = paired_test(rf, mean, alternative="less")
    assert test["mean_diff"] < 0 and test["p"] < 0.01
    # the mean of the fold MAEs equals the MAE of the out-of-fold predictions for equal fold sizes
    assert rf.repeat_mae.mean() == pytest.approx(rf.mae, rel=1e-9)


def test_nested_cv_is_deterministic_with_a_seed(toy):
    X, y = toy
    cfg = CVConfig(n_outer=3, n_repeats=2, n_inner=2, seed=3, quick_grids=True)
    a, b = nested_cv(X, y, "rf", cfg), nested_cv(X, y, "rf", cfg)
    np.testing.assert_array_equal(a.fold_mae, b.fold_mae)
    np.testing.assert_array_equal(a.oof, b.oof)
    c = nested_cv(X, y, "rf", CVConfig(n_outer=3, n_repeats=2, n_inner=2, seed=4, quick_grids=True))
    assert not np.array_equal(a.oof, c.oof)


def test_outer_test_fold_never_reaches_the_inner_search(toy, monkeypatch):
    X, y = toy
    X = np.column_stack([X, np.arange(len(y))])  # last column: the sample's index, to see what a search sees
    seen: list[np.ndarray] = []

    class Recording(classical.GridSearchCV):
        def fit(self, X, y=None, **kw):  # noqa: N803 - sklearn's name
            seen.append(np.asarray(X)[:, -1].astype(int))
            return super().fit(X, y, **kw)

    monkeypatch.setattr(classical, "GridSearchCV", Recording)
    config = CVConfig(n_outer=4, n_repeats=2, n_inner=3, seed=1, quick_grids=True)
    result = nested_cv(X, y, "krr", config)
    folds = [t for repeat in result.test_indices for t in repeat]
    assert len(seen) == len(folds) == 8
    for rows, test in zip(seen, folds):
        assert not set(rows) & set(test)
        assert len(rows) + len(test) == len(y)
    # every sample is tested exactly once per repeat
    for repeat in result.test_indices:
        assert sorted(np.concatenate(repeat)) == list(range(len(y)))


def test_outer_splits_shared_across_methods_and_grouped():
    config = CVConfig(n_outer=5, n_repeats=3, seed=0)
    a, b = outer_splits(50, config), outer_splits(50, config)
    assert all(np.array_equal(x[1], z[1]) for ra, rb in zip(a, b) for x, z in zip(ra, rb))
    groups = np.repeat(np.arange(25), 2)
    for repeat in outer_splits(50, config, groups):
        for train, test in repeat:
            assert not set(groups[train]) & set(groups[test])


def test_grids_contain_the_papers_settings():
    for method, settings in PAPER_SETTINGS.items():
        for setting in settings:
            point = {f"model__{k}": v for k, v in setting.items()}
            assert any(all(k in g and v in g[k] for k, v in point.items()) for g in PARAM_GRIDS[method]), \
                (method, setting)
    for method in ("krr", "svr"):
        for setting in classical.ATOMDL_JANUS_PARAMS[method].values():
            point = {f"model__{k}": v for k, v in setting.items()}
            assert any(all(k in g and v in g[k] for k, v in point.items()) for g in QUICK_GRIDS[method])
    assert {"n_estimators": 500, "learning_rate": 0.2, "max_depth": 4, "loss": "absolute_error"} in PAPER_SETTINGS["gbr"]
    assert len(PAPER_SETTINGS["krr"]) == 3 and len(PAPER_SETTINGS["svr"]) == 4


def test_corrected_ttest_is_more_conservative_than_naive():
    rng = np.random.default_rng(0)
    a = 0.30 + 0.03 * rng.normal(size=25)
    b = a + 0.01 + 0.02 * rng.normal(size=25)
    corrected = corrected_paired_ttest(a, b, test_fraction=0.2)
    naive_t = (a - b).mean() / ((a - b).std(ddof=1) / np.sqrt(25))
    assert corrected["t"] > naive_t  # t is negative: the correction shrinks its size
    assert 0 < corrected["p"] < 0.5 and corrected["df"] == 24
    assert corrected_paired_ttest(b, a, 0.2, "greater")["p"] == pytest.approx(corrected["p"])
    with pytest.raises(ValueError, match="alternative"):
        corrected_paired_ttest(a, b, 0.2, alternative="bigger")


def test_grouped_grid_search(toy):
    X, y = toy
    groups = [f"g{i % 30}" for i in range(len(y))]
    search = grid_search("krr", X, y, groups=groups, grid={"model__alpha": [0.01, 100.0],
                                                          "model__kernel": ["rbf"]}, n_splits=3, n_jobs=1)
    assert search.best_params_["model__alpha"] == 0.01
    assert search.best_score_ < 0  # negative MAE


def test_bad_inputs(toy):
    X, y = toy
    with pytest.raises(KeyError, match="rf, et"):
        make_pipeline("xgb")
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        compare_baselines(X_nan, y, X, y)
    with pytest.raises(ValueError, match="same length"):
        nested_cv(X, y[:-1], "rf")
    with pytest.raises(ValueError, match="n_outer"):
        CVConfig(n_outer=1)


def test_one_regression_metrics():
    assert classical.regression_metrics is regression_metrics
    m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert m["mae"] == pytest.approx(1 / 3) and m["rmse"] == pytest.approx(np.sqrt(1 / 3))
