"""Regression metrics, the parity-plot linear fit and the plots of the models chapter."""

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from gapkit.evaluate import plots
from gapkit.evaluate.metrics import linear_fit, regression_metrics


def test_regression_metrics_by_hand():
    m = regression_metrics([1.0, 2.0, 3.0], [1.5, 2.0, 2.0])
    assert m["mae"] == pytest.approx(0.5) and m["rmse"] == pytest.approx(np.sqrt(1.25 / 3))
    assert m["r2"] == pytest.approx(1 - 1.25 / 2.0) and m["n"] == 3
    with pytest.raises(ValueError):
        regression_metrics([1.0], [1.0, 2.0])


def test_linear_fit_recovers_a_line():
    x = np.linspace(0, 5, 20)
    fit = linear_fit(x, 0.8 * x + 0.3)
    assert fit["slope"] == pytest.approx(0.8) and fit["intercept"] == pytest.approx(0.3) and fit["r"] == pytest.approx(1)


def test_plots_draw_with_labels():
    ax = plots.parity_plot([1.0, 2.0, 3.0], [1.1, 1.8, 3.3], title="t")
    assert "eV" in ax.get_xlabel() and len(ax.lines) == 2
    log = pd.DataFrame({"epoch": [0, 1], "train_loss": [1.0, 0.5], "val_loss": [1.1, 0.7]})
    ax = plots.training_curves(log)
    assert len(ax.lines) == 2 and ax.get_xlabel() == "epoch"
    ax = plots.architecture_diagram()
    assert any("CGCrabNet" in t.get_text() for t in ax.texts)


def test_balanced_threshold_maximises_balanced_accuracy():
    from gapkit.evaluate.metrics import balanced_threshold, classification_metrics

    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.3
    p = np.clip(0.25 + 0.3 * y + rng.normal(0, 0.12, 400), 0, 1)  # positives score higher, all below 0.5-ish
    t = balanced_threshold(y, p)
    best = classification_metrics(y, p, threshold=t)["balanced_accuracy"]
    assert best >= max(classification_metrics(y, p, threshold=u)["balanced_accuracy"] for u in np.linspace(0.05, 0.95, 91))
    assert best > classification_metrics(y, p, threshold=0.5)["balanced_accuracy"] + 0.05
    with pytest.raises(ValueError, match="both classes"):
        balanced_threshold(np.ones(3, bool), [0.2, 0.5, 0.9])
