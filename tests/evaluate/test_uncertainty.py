"""Uncertainty metrics on samples drawn from known Laplace distributions; recalibration; conformal; training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from gapkit.evaluate.uncertainty import (
    calibration_curve,
    confidence_curve,
    conformal_halfwidth,
    conformal_quantile,
    coverage,
    ensemble_predictions,
    error_uncertainty_spearman,
    evaluate_methods,
    interval_coverage,
    laplace_halfwidth,
    laplace_interval,
    laplace_scale,
    mae_by_uncertainty_bin,
    miscalibration_area,
    nll,
    recalibration_factor,
    sharpness,
    spearman,
)


@pytest.fixture
def laplace_sample():
    rng = np.random.default_rng(0)
    log_scale = rng.uniform(-2, 1, size=20_000)
    scale = laplace_scale(log_scale)
    return rng.laplace(0.0, scale), scale


def test_calibrated_when_errors_follow_the_predicted_laplace(laplace_sample):
    errors, scale = laplace_sample
    cov = calibration_curve(errors, scale)
    assert miscalibration_area(cov) < 0.01
    assert error_uncertainty_spearman(errors, scale) > 0.4
    bins = mae_by_uncertainty_bin(errors, scale)
    assert bins["mae"].is_monotonic_increasing


@pytest.mark.parametrize("level", [0.68, 0.9, 0.95])
def test_interval_coverage_matches_the_nominal_level(laplace_sample, level):
    errors, scale = laplace_sample
    lo, hi = laplace_interval(10.0 + errors, scale, level)  # true value 10, prediction 10 + error
    assert ((lo <= 10.0) & (10.0 <= hi)).mean() == pytest.approx(level, abs=0.01)
    assert coverage(errors, laplace_halfwidth(scale, level)) == pytest.approx(level, abs=0.01)
    assert laplace_halfwidth(np.array([1.0]), 0.9)[0] == pytest.approx(np.log(10))


def test_interval_lower_end_is_never_negative():
    lo, hi = laplace_interval(np.array([0.1, 3.0]), np.array([1.0, 0.1]), 0.9)
    assert lo[0] == 0.0 and lo[1] > 0 and (hi > lo).all()


def test_overconfident_model_is_detected(laplace_sample):
    errors, scale = laplace_sample
    cov = interval_coverage(errors, scale / 3)  # claims 3x smaller errors than it makes
    assert (cov["observed"] < cov["expected"]).all() and miscalibration_area(cov) > 0.15


def test_nll_is_lowest_at_the_true_scale(laplace_sample):
    errors, scale = laplace_sample
    assert nll(errors, scale) < nll(errors, scale * 1.5) and nll(errors, scale) < nll(errors, scale / 1.5)


@pytest.mark.parametrize("wrong", [0.3, 1.0, 2.5])
def test_recalibration_recovers_a_global_factor_and_never_worsens_calibration(laplace_sample, wrong):
    errors, scale = laplace_sample
    c = recalibration_factor(errors, scale * wrong)
    assert c * wrong == pytest.approx(1.0, rel=0.05)
    before = miscalibration_area(calibration_curve(errors, scale * wrong))
    after = miscalibration_area(calibration_curve(errors, c * scale * wrong))
    assert after <= before + 1e-12 and after < 0.01


def test_recalibration_never_worsens_validation_calibration_of_a_misspecified_model():
    rng = np.random.default_rng(1)
    for _ in range(5):  # Gaussian errors, scales with the wrong ranking: no factor makes these calibrated
        scale = rng.uniform(0.1, 2.0, 500)
        errors = rng.normal(0, 1, 500) * rng.permutation(scale)
        before = miscalibration_area(calibration_curve(errors, scale))
        after = miscalibration_area(calibration_curve(errors, recalibration_factor(errors, scale) * scale))
        assert after <= before + 1e-12


@pytest.mark.parametrize("level", [0.68, 0.9, 0.95])
def test_conformal_covers_at_least_the_nominal_level_on_exchangeable_data(level):
    rng = np.random.default_rng(2)
    hits_plain, hits_scaled, widths = [], [], []
    for _ in range(200):  # average over many calibration/test draws: coverage >= p in expectation
        scale = np.exp(rng.uniform(np.log(0.05), np.log(2.0), 300))
        errors = rng.standard_t(3, 300) * scale  # heavy tails, not Laplace: conformal needs no model
        cal, new = slice(0, 200), slice(200, 300)
        plain = conformal_halfwidth(errors[cal], level)
        scaled = conformal_halfwidth(errors[cal], level, scale[cal], scale[new])
        hits_plain.append(coverage(errors[new], plain))
        hits_scaled.append(coverage(errors[new], scaled))
        widths.append((sharpness(plain), sharpness(scaled)))
    assert np.mean(hits_plain) >= level - 0.005 and np.mean(hits_scaled) >= level - 0.005
    widths = np.array(widths)
    if level >= 0.9:  # informative scales give narrower wide intervals (not always at 68 %: the mean width
        assert widths[:, 1].mean() < widths[:, 0].mean()  # of scaled intervals is dominated by large scales)


def test_conformal_quantile_is_finite_sample_corrected():
    scores = np.arange(1, 10, dtype=float)  # n = 9: ceil(10*0.9) = 9th smallest
    assert conformal_quantile(scores, 0.9) == 9.0
    assert conformal_quantile(scores, 0.95) == np.inf  # too few points for 95 %
    with pytest.raises(ValueError, match="both"):
        conformal_halfwidth(scores, 0.9, val_scale=np.ones(9))


def test_spearman_on_nonzero_gaps_only():
    # metals (true gap 0) predicted 0 with tiny scales inflate the correlation of the rest
    errors = np.array([0.0, 0.0, 0.0, 0.0, 0.1, 0.5, 0.3, 0.2])
    scale = np.array([0.01, 0.01, 0.01, 0.01, 0.3, 0.2, 0.4, 0.1])
    targets = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0])
    assert spearman(errors, scale, targets) < 0.5 < spearman(errors, scale)


def test_confidence_curve_falls_and_oracle_is_below(laplace_sample):
    errors, scale = laplace_sample
    curve = confidence_curve(errors, scale)
    assert curve["mae_ev"].iloc[0] == pytest.approx(np.abs(errors).mean())
    assert curve["mae_ev"].iloc[-1] < curve["mae_ev"].iloc[0] / 2
    assert (curve["oracle_mae_ev"] <= curve["mae_ev"] + 1e-12).all()


def test_evaluate_methods_table(laplace_sample):
    errors, scale = laplace_sample
    frame = pd.DataFrame({"target_ev": np.abs(errors) + 1, "uncertainty_ev": scale * 2})
    frame["gap_ev"] = frame["target_ev"] + errors
    table, head = evaluate_methods(frame.iloc[:10_000], frame.iloc[10_000:])
    assert set(table["method"]) == {"laplace", "recalibrated", "conformal", "conformal_scaled"}
    assert head["laplace"]["coverage_90"] > 0.95  # scales twice too large
    for m in ("recalibrated", "conformal", "conformal_scaled"):
        assert head[m]["coverage_90"] == pytest.approx(0.9, abs=0.015)
    assert head["recalibrated"]["miscalibration_area"] < 0.01
    assert head["conformal_scaled"]["width_90_ev"] < head["conformal"]["width_90_ev"]
    assert head["recalibration_factor"] == pytest.approx(0.5, rel=0.05)


def test_ensemble_combines_spread_and_scale():
    a = pd.DataFrame({"gap_ev": [1.0, 2.0], "uncertainty_ev": [0.1, 0.2]})
    b = pd.DataFrame({"gap_ev": [1.0, 3.0], "uncertainty_ev": [0.3, 0.2]})
    out = ensemble_predictions([a, b])
    assert out["gap_ev"].tolist() == [1.0, 2.5] and out["spread_ev"].iloc[0] == 0.0
    assert out["uncertainty_ev"].iloc[0] == pytest.approx(np.sqrt((0.01 + 0.09) / 2))
    assert out["uncertainty_ev"].iloc[1] > out["aleatoric_ev"].iloc[1]


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        calibration_curve(np.zeros(3), np.ones(4))
    with pytest.raises(ValueError, match="positive"):
        calibration_curve(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="level"):
        laplace_halfwidth(np.ones(2), 1.0)


class Heteroscedastic(torch.nn.Module):
    """forward_batch over one scalar feature x: z = a*x + c, S = d*x + f (a model that can learn it)."""

    def __init__(self) -> None:
        super().__init__()
        self.z = torch.nn.Linear(1, 1)
        self.s = torch.nn.Linear(1, 1)

    def forward_batch(self, batch):
        x = batch["fractions"][:, :1]
        return self.z(x).squeeze(-1), self.s(x).squeeze(-1)


def test_laplace_training_learns_larger_scales_where_the_noise_is_larger():
    from gapkit.train.tasks import BandGapTask, MaterialsDataset

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n = 2000
    x = rng.uniform(0, 1, n)
    noise_scale = 0.05 * 10.0 ** x  # Laplace scale 10x larger at x = 1 than at x = 0 (log-linear in x)
    y = 2.0 + x + rng.laplace(0, noise_scale)
    elements = np.ones((n, 2), dtype=np.int64)
    fractions = np.stack([x, np.zeros(n)], 1).astype(np.float32)
    ds = MaterialsDataset(elements, fractions, None, y.astype(np.float32))
    task = BandGapTask(Heteroscedastic(), float(y.mean()), float(y.std()))
    task.log = lambda *a, **k: None  # the task's own loss step, outside a Lightning Trainer
    opt = torch.optim.Adam(task.parameters(), lr=0.05)
    batch = ds.collate(list(range(n)))  # full-batch: converges in a few hundred cheap steps
    for _ in range(600):
        opt.zero_grad()
        task.training_step(batch, 0).backward()
        opt.step()
    task.eval()
    probe = MaterialsDataset(np.ones((2, 2), dtype=np.int64), np.array([[0.1, 0], [0.9, 0]], np.float32))
    with torch.no_grad():
        _, b = task(probe.collate([0, 1]))
    truth = 0.05 * 10.0 ** np.array([0.1, 0.9])  # 0.063 and 0.397 eV, ratio 6.3
    assert b[1] > 3 * b[0]
    # and the output is the Laplace scale itself, in eV: near the truth at both ends
    np.testing.assert_allclose(b.numpy(), truth, rtol=0.25)
