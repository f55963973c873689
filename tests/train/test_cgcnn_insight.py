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


@pytest.mark.parametrize("bad", [dict(threshold=1.0), dict(n_materials=10), dict(regressor_epochs=0)])
def test_metal_config_refuses_bad_values(bad):
    with pytest.raises(ValueError):
        MetalGapConfig().with_(**bad)


def test_two_stage_mae_splits_metals_and_semiconductors():
    test = pd.DataFrame({"gap_ev": [0.0, 0.0, 2.0, 1.0]})
    pred = pd.DataFrame({"gap_ev": [0.0, 0.5, 1.5, 0.0]})
    m = two_stage_mae(test, pred)
    assert m["all"] == pytest.approx(2.0 / 4) and m["metals"] == pytest.approx(0.25)
    assert m["semiconductors"] == pytest.approx(0.75) and m["n"] == 4
    assert np.isfinite(m["all"])
