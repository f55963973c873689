"""Perovskite transfer study: fine-tuning starts from the pretrained weights; folds; baselines on a toy set."""

import numpy as np
import pandas as pd
import pytest
import torch

import gapkit.train.trainer as trainer_module
from gapkit.data.perovskites import build_perovskite
from gapkit.estimators import CGCrabNet
from gapkit.evaluate.perovskite_screen import candidate_table, charge_balanced, filter_window, rank_for_window
from gapkit.train.perovskite_study import (FitSettings, TransferStudyConfig, fine_tuned, fold_maes, fold_splits,
                                           from_scratch, metrics_record, run_classical)
from gapkit.train.tasks import laplace_nll

TOY = [("Sr", "Ti", "O", 3.91, 1.8), ("Ba", "Ti", "O", 4.00, 1.7), ("Ca", "Ti", "O", 3.84, 2.3),
       ("K", "Mg", "F", 3.99, 6.9), ("Cs", "Pb", "Br", 5.99, 1.8), ("Sr", "Zr", "O", 4.15, 3.7),
       ("Ba", "Zr", "O", 4.24, 3.1), ("K", "Zn", "F", 4.06, 3.6), ("Rb", "Ca", "F", 4.45, 6.2),
       ("Cs", "Sn", "Cl", 5.60, 0.9), ("Na", "Ta", "O", 3.95, 2.4), ("K", "Nb", "O", 4.02, 1.5),
       ("Ba", "Hf", "O", 4.19, 3.5), ("La", "Al", "O", 3.81, 3.9), ("Sr", "Sn", "O", 4.10, 1.7)]
TINY = dict(d_model=16, n_layers=1, n_heads=2, d_ff=32, head_dims=(16,), batch_size=4, max_epochs=2,
            progress=False, device="cpu")


def toy_frame() -> pd.DataFrame:
    rows = [{"mp_id": f"toy-{i}", "formula": f"{a}{b}{x}3", "A": a, "B": b, "X": x, "gap_ev": g,
             "structure": build_perovskite(a, b, x, lat)} for i, (a, b, x, lat, g) in enumerate(TOY)]
    return pd.DataFrame(rows)


def test_folds_are_6_2_2_and_test_each_material_once():
    df = toy_frame()
    folds = fold_splits(df, n_folds=5, seed=0)
    tested = pd.concat([f["test"] for f in folds])["mp_id"]
    assert sorted(tested) == sorted(df["mp_id"])
    for f in folds:
        assert len(f["test"]) == 3 and len(f["train"]) + len(f["val"]) == 12
        assert not set(f["train"]["mp_id"]) & set(f["val"]["mp_id"])


def test_fine_tuning_starts_from_the_pretrained_weights(tmp_path, monkeypatch, shared_data_dir):
    df = toy_frame()
    pre = CGCrabNet(**TINY, graph_cache=tmp_path / "g").fit(df.iloc[:10], df.iloc[10:])
    seen = {}
    real_fit = trainer_module.fit

    def spy(task, train_loader, val_loader, config, resume=True):
        batch = next(iter(val_loader))
        for name, t in (("tuned", task), ("pretrained", pre.task_)):
            t.eval()
            with torch.no_grad():
                z, s = t.model.forward_batch(batch)
                y = (batch["target"] - t.target_mean) / t.target_std
                seen[name] = float(laplace_nll(z.float(), s.float(), y))
        task.train()
        return real_fit(task, train_loader, val_loader, config, resume=resume)

    monkeypatch.setattr(trainer_module, "fit", spy)
    fine_tuned(pre, df.iloc[:8], df.iloc[8:], FitSettings(max_epochs=1, patience=1, batch_size=4), seed=0)
    assert seen["tuned"] == pytest.approx(seen["pretrained"], rel=1e-6)  # before the first step: same loss
    scratch_loss = dict(seen)
    from_scratch(pre, df.iloc[:8], df.iloc[8:], FitSettings(max_epochs=1, patience=1, batch_size=4), seed=0)
    assert seen["tuned"] != pytest.approx(scratch_loss["pretrained"], rel=1e-3)  # scratch does not


def test_baseline_grid_search_runs_on_a_toy_set(shared_data_dir):
    folds = fold_splits(toy_frame(), n_folds=3, seed=0)
    config = TransferStudyConfig(n_folds=3, classical=("rf", "krr"), quick_grids=True, curve_folds=1)
    preds = run_classical(folds, config)
    maes = fold_maes(preds)
    assert set(maes.index) == {"RF", "KRR"} and maes.shape[1] == 3 and np.isfinite(maes.to_numpy()).all()
    record = metrics_record(preds)
    assert set(record["RF"]) == {"mean", "std", "per_split"} and len(record["RF"]["per_split"]) == 3


def test_screen_candidates_exclude_targets_and_respect_the_window():
    df = toy_frame()
    assert charge_balanced("Sr", "Ti", "O") and not charge_balanced("K", "Mg", "O")
    cands = candidate_table(df)
    assert not set(cands["formula"]) & set(df["formula"])
    kept = filter_window(cands)
    assert ((kept["t"] > 0.7) & (kept["t"] <= 1.1) & (kept["mu"] > 0.45) & (kept["mu"] < 0.7)).all()
    screen = pd.DataFrame({"gap_ev": [0.5, 1.4, 1.7, 2.5], "uncertainty_ev": [0.1, 0.3, 0.2, 0.1]})
    assert rank_for_window(screen)["gap_ev"].tolist() == [1.7, 1.4]


def test_load_pretrained_models_names_the_choices_for_an_unknown_model():
    from gapkit.train.perovskite_study import load_pretrained_models

    with pytest.raises(KeyError, match="choose from"):
        load_pretrained_models(["CGCNN", "NoSuchNet"])


def test_record_table_reads_a_recorded_test_mae_like_the_predictions():
    import pandas as pd

    from gapkit.train.perovskite_study import metrics_record, record_table, summary_table

    preds = pd.DataFrame({"model": ["a"] * 4 + ["b"] * 4, "fold": [0, 0, 1, 1] * 2,
                          "gap_ev": [1.0, 2.0, 1.0, 2.0] * 2, "pred_ev": [1.5, 2.0, 1.0, 3.0, 1.0, 2.0, 1.2, 2.0]})
    table = summary_table(preds, {"a": 0.3})
    assert table.index.tolist() == ["b", "a"] and table.loc["a", "n_folds"] == 2
    assert table.loc["a", "mean_mae_ev"] == pytest.approx((0.25 + 0.5) / 2)
    assert table.loc["a", "paper_mae_ev"] == 0.3 and pd.isna(table.loc["b", "paper_mae_ev"])
    assert record_table(metrics_record(preds)).equals(table.drop(columns="paper_mae_ev"))
