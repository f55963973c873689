"""The CE transfer study: paired folds shared by networks and trees, the screen's rules."""

import numpy as np
import pandas as pd
import pytest
import torch

from gapkit.train import ce_study
from gapkit.train.tabular import TabularFitConfig

TINY = TabularFitConfig(max_epochs=2, batch_size=32, patience=None)


def test_networks_and_trees_are_scored_on_the_same_folds(tmp_path):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    xs, xt = rng.normal(size=(120, 4)), rng.normal(size=(40, 4))
    ys, yt = xs[:, 0] - xs[:, 1], xt[:, 0] - xt[:, 1] + 0.3
    config = ce_study.CEStudyConfig(hidden=(8,), source_fit=TINY, scratch_fit=TINY, finetune_fit=TINY, n_folds=2,
                                    n_repeats=2, n_last_layers=1, tree_params={"et": {"n_estimators": 5}})
    source = ce_study.pretrain_source(xs, ys, config, tmp_path / "src")
    nn = ce_study.cv_neural(source, xt, yt, config, tmp_path / "cv", x_extra=xt[:3], progress=False)
    trees = ce_study.cv_trees(xt, yt, config, methods=("et",), progress=False)
    assert set(nn.results) == set(ce_study.NEURAL)
    for res in (*nn.results.values(), trees["et"]):
        assert res.fold_mae.shape == (2, 2) and np.isfinite(res.oof).all()
        for a, b in zip(res.test_indices, trees["et"].test_indices):
            assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert nn.extra_predictions["transfer (all layers)"].shape == (4, 3)  # one row per fold model
    # the untouched source model scores the same in every fold it is asked about
    direct = nn.results["source model, no fine-tuning"].oof
    assert np.allclose(direct[0], direct[1])
    table = ce_study.summary_table({**nn.results, "et": trees["et"]})
    assert table["mae_mean"].is_monotonic_increasing


def test_screen_applies_the_window_threshold_and_spread():
    cand = pd.DataFrame({"compound": list("abcd"), "tolerance_factor": [0.9, 0.9, 1.2, 0.9],
                         "octahedral_factor": [0.5, 0.5, 0.5, 0.5]})
    out = ce_study.screen(cand, energy=[-2.0, -1.1, -3.0, -0.5], spread=[0.1, 0.1, 0.1, 0.1])
    assert out["stable"].tolist() == [True, True, False, False]
    assert out["stable_strict"].tolist() == [True, False, False, False]  # -1.1 + 2*0.1 is not below -1.0


def test_config_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n_folds"):
        ce_study.CEStudyConfig(n_folds=1)
    with pytest.raises(ValueError, match="n_last_layers"):
        ce_study.CEStudyConfig(hidden=(8,), n_last_layers=3)
