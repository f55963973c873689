"""The CGCNN-insight configurations: frozen, validated, one per workflow; the two-stage MAE."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from gapkit.train.cgcnn_insight import (MetalGapConfig, PerovskiteSiteConfig, insight_configs, two_stage_mae)


def test_profiles_and_frozen_configs():
    quick_p, quick_m = insight_configs("quick")
    full_p, full_m = insight_configs("full")
    assert full_p.n_structures is None and full_m.n_materials is None
    assert quick_p.n_structures < 1000 and quick_m.n_materials < 2000
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick_p.max_epochs = 5
    with pytest.raises(ValueError, match="profile"):
        insight_configs("medium")


@pytest.mark.parametrize("bad", [dict(n_structures=3), dict(cutoff=20.0), dict(lr_min=1.0, lr_max=0.1),
                                 dict(node_dim=0)])
def test_perovskite_config_refuses_bad_values(bad):
    with pytest.raises(ValueError):
        PerovskiteSiteConfig().with_(**bad)


@pytest.mark.parametrize("bad", [dict(threshold=1.0), dict(threshold="best"), dict(n_materials=10),
                                 dict(regressor_epochs=0)])
def test_metal_config_refuses_bad_values(bad):
    with pytest.raises(ValueError):
        MetalGapConfig().with_(**bad)


def test_full_profile_chooses_its_metal_threshold_on_validation():
    assert insight_configs("full")[1].threshold == "validation" and insight_configs("quick")[1].threshold == 0.5


def test_two_stage_mae_splits_metals_and_semiconductors():
    test = pd.DataFrame({"gap_ev": [0.0, 0.0, 2.0, 1.0]})
    pred = pd.DataFrame({"gap_ev": [0.0, 0.5, 1.5, 0.0]})
    m = two_stage_mae(test, pred)
    assert m["all"] == pytest.approx(2.0 / 4) and m["metals"] == pytest.approx(0.25)
    assert m["semiconductors"] == pytest.approx(0.75) and m["n"] == 4
    assert np.isfinite(m["all"])


def test_ship_two_stage_exports_the_recorded_run_and_refuses_another(tmp_path, shared_data_dir, monkeypatch):
    import json

    from gapkit.estimators import load_estimator
    from gapkit.train.cgcnn_insight import MetalGapConfig, TWO_STAGE_NAME, fit_two_stage, mp_splits, ship_two_stage

    monkeypatch.setenv("GAPKIT_DATA_DIR", str(shared_data_dir))
    config = MetalGapConfig(n_materials=60, node_dim=8, n_conv=1, hidden_dim=8, max_epochs=2, regressor_epochs=2,
                            patience=None, batch_size=16, run_root=str(tmp_path / "runs"))
    train, val, test = mp_splits(config)
    mae = two_stage_mae(test, fit_two_stage(config, train, val).predict(test))["all"]
    record = {"profile": "tiny", "provenance": {"device": "cpu", "commit": "abc", "wall_time_s": 1.0},
              "metrics": {"two_stage_mae_all": mae, "roc_auc": 0.5, "balanced_accuracy": 0.5}}
    path = ship_two_stage(config, record, tmp_path / "shipped")  # read back from the run folders, not retrained
    card = json.loads((tmp_path / "shipped" / f"{TWO_STAGE_NAME}.json").read_text())
    assert card["metrics"]["test_mae_ev"] == pytest.approx(mae, abs=1e-4)
    shipped = two_stage_mae(test, load_estimator(path).predict(test))["all"]
    assert shipped == pytest.approx(card["metrics"]["test_mae_ev_as_shipped"], abs=1e-4)
    assert card["metal_threshold"] == pytest.approx(load_estimator(path).threshold, abs=1e-4)
    with pytest.raises(ValueError, match="not the recorded run"):
        ship_two_stage(config, {**record, "metrics": {**record["metrics"], "two_stage_mae_all": mae + 0.5}},
                       tmp_path / "other")
