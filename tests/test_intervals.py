"""predict(X, interval=p): calibrated (scaled conformal / recalibrated) intervals, saved with the model; the CLI."""

import warnings

import numpy as np
import pandas as pd
import pytest

from gapkit.cli import main
from gapkit.estimators import CrabNet, UncalibratedIntervalWarning, load_estimator
from gapkit.evaluate.uncertainty import conformal_quantile, laplace_halfwidth
from tests.test_estimators import params, tiny_frame


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, shared_data_dir):
    tmp = tmp_path_factory.mktemp("crab")
    frame = tiny_frame()
    return CrabNet(**params(CrabNet, tmp, max_epochs=1)).fit(frame.iloc[:9], frame.iloc[9:]), frame, tmp


def test_uncalibrated_intervals_are_laplace_and_warn(fitted):
    model, frame, _ = fitted
    model.calibration_ = None
    with pytest.warns(UncalibratedIntervalWarning):
        pred = model.predict(frame, interval=0.9)
    half = laplace_halfwidth(pred["uncertainty_ev"].to_numpy(), 0.9)
    np.testing.assert_allclose(pred["upper_ev"], pred["gap_ev"] + half, rtol=1e-6)
    np.testing.assert_allclose(pred["lower_ev"], np.clip(pred["gap_ev"] - half, 0, None), rtol=1e-6)
    with pytest.raises(ValueError, match="calibrate"):
        model.predict(frame, interval=0.9, interval_method="recalibrated")
    with pytest.raises(ValueError, match="interval"):
        model.predict(frame, interval=90)


def test_calibrated_intervals_are_scaled_conformal_and_survive_save_load(fitted, tmp_path):
    model, frame, _ = fitted
    model.calibrate(frame)
    cal = model.calibration_
    assert cal["method"] == "conformal_scaled" and cal["n"] == len(frame) and cal["factor"] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncalibratedIntervalWarning)
        pred = model.predict(frame, interval=0.5)
    q = conformal_quantile(np.asarray(cal["scores"]), 0.5)
    np.testing.assert_allclose(pred["upper_ev"], pred["gap_ev"] + q * pred["uncertainty_ev"], rtol=1e-5)
    inside = (frame["gap_ev"] >= pred["lower_ev"]) & (frame["gap_ev"] <= pred["upper_ev"])
    assert inside.mean() >= 0.5  # on its own calibration data, conformal covers at least the level
    re = model.predict(frame, interval=0.9, interval_method="recalibrated")
    np.testing.assert_allclose(re["upper_ev"] - re["gap_ev"],
                               laplace_halfwidth(cal["factor"] * re["uncertainty_ev"].to_numpy(), 0.9), rtol=1e-5)
    back = load_estimator(model.save(tmp_path / "m.pt"))
    assert back.calibration_["scores"] == cal["scores"]
    pd.testing.assert_frame_equal(back.predict(frame, interval=0.5), pred)


def test_cli_interval_columns(fitted, tmp_path):
    model, frame, _ = fitted
    model.calibrate(frame)
    model.save(tmp_path / "crab.pt")
    frame[["formula"]].to_csv(tmp_path / "in.csv", index=False)
    assert main(["predict", "--model", str(tmp_path / "crab.pt"), str(tmp_path / "in.csv"), "--interval", "0.9",
                 "-o", str(tmp_path / "out.csv"), "-q"]) == 0
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["formula", "source", "gap_ev", "uncertainty_ev", "lower_ev", "upper_ev"]
    assert (out["lower_ev"] <= out["gap_ev"]).all() and (out["gap_ev"] <= out["upper_ev"]).all()
    with pytest.raises(SystemExit):
        main(["predict", "--model", str(tmp_path / "crab.pt"), str(tmp_path / "in.csv"), "--interval", "90"])
