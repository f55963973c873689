"""Calibration metrics on samples drawn from known Laplace distributions."""

from __future__ import annotations

import numpy as np
import pytest

from gapkit.evaluate.uncertainty import (
    error_uncertainty_spearman,
    interval_coverage,
    laplace_scale,
    mae_by_uncertainty_bin,
    miscalibration_area,
)


@pytest.fixture
def laplace_sample():
    rng = np.random.default_rng(0)
    log_scale = rng.uniform(-2, 1, size=20_000)
    scale = laplace_scale(log_scale)
    return rng.laplace(0.0, scale), scale


def test_calibrated_when_errors_follow_the_predicted_laplace(laplace_sample):
    errors, scale = laplace_sample
    cov = interval_coverage(errors, scale)
    assert miscalibration_area(cov) < 0.01
    assert error_uncertainty_spearman(errors, scale) > 0.4
    bins = mae_by_uncertainty_bin(errors, scale)
    assert bins["mae"].is_monotonic_increasing


def test_overconfident_model_is_detected(laplace_sample):
    errors, scale = laplace_sample
    cov = interval_coverage(errors, scale / 3)  # claims 3x smaller errors than it makes
    assert (cov["observed"] < cov["expected"]).all() and miscalibration_area(cov) > 0.15


def test_laplace_scale_matches_loss():
    # the loss 2 exp(-S)|e| + S is the Laplace NLL with b = exp(S)/2, minus log(1): check at S = 0
    assert laplace_scale(np.array([0.0]))[0] == pytest.approx(0.5)


def test_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        interval_coverage(np.zeros(3), np.ones(4))
    with pytest.raises(ValueError, match="positive"):
        interval_coverage(np.zeros(3), np.zeros(3))
