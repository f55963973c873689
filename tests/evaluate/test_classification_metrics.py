"""Classification metrics: ROC AUC, accuracy, balanced accuracy by hand."""

import numpy as np
import pytest

from gapkit.evaluate.metrics import classification_metrics


def test_metrics_match_a_hand_computation():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    p = np.array([0.9, 0.6, 0.4, 0.7, 0.2, 0.1, 0.3, 0.05])
    m = classification_metrics(y, p)
    # predicted positive: 0.9, 0.6, 0.7 -> TP 2 of 3, TN 4 of 5
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["positive_accuracy"] == pytest.approx(2 / 3) and m["negative_accuracy"] == pytest.approx(4 / 5)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    # pairs (positive, negative) ranked right: 0.9 beats 5, 0.6 beats 4 (not 0.7), 0.4 beats 4 -> 13 of 15
    assert m["roc_auc"] == pytest.approx(13 / 15)
    assert m["n"] == 8 and m["n_positive"] == 3


def test_bad_probabilities_are_refused():
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        classification_metrics([True, False], [1.2, 0.1])
    with pytest.raises(ValueError, match="one shape"):
        classification_metrics([True, False], [0.5])
