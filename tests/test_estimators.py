"""Estimator API: fit / predict / save / load on tiny synthetic crystals, and the helpful errors."""

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

from gapkit.estimators import CGCNN, BandGapEstimator, CGCrabNet, CrabNet, StructureRequiredError

PAIRS = [("Na", "Cl", 5.64), ("Mg", "O", 4.21), ("K", "Br", 6.60), ("Li", "F", 4.03), ("Ca", "S", 5.69),
         ("Ba", "O", 5.52), ("Na", "F", 4.63), ("K", "Cl", 6.29), ("Sr", "S", 6.02), ("Li", "Cl", 5.13),
         ("Rb", "I", 7.34), ("Ca", "O", 4.81)]
TINY = dict(d_model=16, n_layers=1, n_heads=2, d_ff=32, head_dims=(16,), node_dim=8, hidden_dim=16,
            cutoff=6.0, batch_size=4, max_epochs=2, progress=False, device="cpu")




def tiny_frame() -> pd.DataFrame:
    """12 rock-salt crystals with made-up gaps that depend on the lattice constant."""
    rows = []
    for a, b, lat in PAIRS:
        fcc = Lattice([[0, lat / 2, lat / 2], [lat / 2, 0, lat / 2], [lat / 2, lat / 2, 0]])
        s = Structure(fcc, [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])  # primitive rock-salt cell
        rows.append({"formula": s.composition.reduced_formula, "structure": s,
                     "gap_ev": round(12.0 - 1.3 * lat, 3)})
    return pd.DataFrame(rows)


def params(cls, tmp_path, **kw):
    keys = set(cls.model_defaults) | {"batch_size", "max_epochs", "progress", "device"}
    base = {k: v for k, v in TINY.items() if k in keys}
    return {**base, "run_dir": tmp_path / "run", "graph_cache": tmp_path / "graphs", **kw}


@pytest.mark.parametrize("cls", [CrabNet, CGCNN, CGCrabNet])
def test_fit_predict_save_load_round_trip(cls, tmp_path, shared_data_dir):
    df = tiny_frame()
    model = cls(**params(cls, tmp_path)).fit(df.iloc[:9], df.iloc[9:])
    pred = model.predict(df)
    assert list(pred.columns) == ["gap_ev", "uncertainty_ev"] and len(pred) == len(df)
    assert np.isfinite(pred.to_numpy()).all() and (pred["uncertainty_ev"] > 0).all()
    assert model.history()["epoch"].tolist() == [0, 1]
    path = model.save(tmp_path / "model.pt")
    again = BandGapEstimator.load(path)
    assert type(again) is cls
    pd.testing.assert_frame_equal(again.predict(df), pred)  # identical, not merely close


def test_crabnet_predicts_from_formulas_dataframes_and_structures(tmp_path, shared_data_dir):
    df = tiny_frame()
    model = CrabNet(**params(CrabNet, tmp_path)).fit(df.iloc[:9], df.iloc[9:])
    from_df = model.predict(df[["formula"]])
    from_list = model.predict(list(df["formula"]))
    from_structs = model.predict(list(df["structure"]))
    np.testing.assert_allclose(from_df["gap_ev"], from_list["gap_ev"], rtol=1e-6)
    np.testing.assert_allclose(from_structs["gap_ev"], from_list["gap_ev"], rtol=1e-5)
    assert model.predict("NaCl").shape == (1, 2)


def test_structure_model_asked_for_formulas_says_what_to_do(tmp_path, shared_data_dir):
    df = tiny_frame()
    model = CGCNN(**params(CGCNN, tmp_path, max_epochs=1)).fit(df.iloc[:9], df.iloc[9:])
    with pytest.raises(StructureRequiredError, match="structure.*CrabNet"):
        model.predict(["NaCl", "MgO"])
    with pytest.raises(StructureRequiredError):
        model.predict(df[["formula"]])


def test_fine_tune_starts_from_the_trained_weights(tmp_path, shared_data_dir):
    df = tiny_frame()
    base = CrabNet(**params(CrabNet, tmp_path, max_epochs=3)).fit(df.iloc[:9], df.iloc[9:])
    tuned = base.fine_tune(df.iloc[3:], df.iloc[:3], max_epochs=1, lr_max=1e-3, lr_min=1e-5,
                           run_dir=tmp_path / "tune")
    assert float(tuned.task_.target_mean) == float(base.task_.target_mean)  # scaling carried over
    assert tuned.history()["epoch"].tolist() == [0]
    with pytest.raises(TypeError, match="init_from"):
        CGCNN(**params(CGCNN, tmp_path, run_dir=tmp_path / "x")).fit(df, init_from=base)


def test_bad_usage_errors(tmp_path):
    with pytest.raises(TypeError, match="unknown parameters"):
        CrabNet(d_modle=4)
    with pytest.raises(ValueError, match="not fitted"):
        CrabNet().predict(["NaCl"])
    with pytest.raises(KeyError, match="gap_ev"):
        CrabNet(**params(CrabNet, tmp_path)).fit(pd.DataFrame({"formula": ["NaCl"]}))
    with pytest.raises(FileNotFoundError):
        BandGapEstimator.load(tmp_path / "missing.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a gapkit estimator"):
        BandGapEstimator.load(tmp_path / "other.pt")


def test_fused_edges_auto_uses_them_only_for_long_trainings(tmp_path, monkeypatch, shared_data_dir):
    from gapkit.models import fused_edges
    from gapkit.models.cgcnn import GatedConv

    monkeypatch.setitem(fused_edges._state, "compiled", False)  # the maths, without compile time
    with pytest.raises(ValueError, match="fused_edges"):
        CGCNN(fused_edges="yes")
    df = tiny_frame()
    for setting, expected in [("auto", False), (True, True), (False, False)]:
        est = CGCNN(**params(CGCNN, tmp_path / str(setting), fused_edges=setting)).fit(df)
        assert {m.fused for m in est.task_.model.modules() if isinstance(m, GatedConv)} == {expected}
    monkeypatch.setattr("gapkit.estimators.FUSED_MIN_BATCHES", 2)
    est = CGCNN(**params(CGCNN, tmp_path / "long")).fit(df)
    assert all(m.fused for m in est.task_.model.modules() if isinstance(m, GatedConv))


def test_a_finished_kept_run_is_read_back_not_retrained(tmp_path, shared_data_dir):
    df = tiny_frame()
    first = CGCNN(**params(CGCNN, tmp_path)).fit(df.iloc[:9], df.iloc[9:])
    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("*.ckpt"))
    stamps = [p.stat().st_mtime_ns for p in ckpts]
    again = CGCNN(**params(CGCNN, tmp_path)).fit(df.iloc[:9], df.iloc[9:])  # resume=True by default
    assert [p.stat().st_mtime_ns for p in ckpts] == stamps  # nothing trained, nothing written
    pd.testing.assert_frame_equal(again.predict(df), first.predict(df))
    assert again.history()["epoch"].tolist() == [0, 1]
    fresh = CGCNN(**params(CGCNN, tmp_path, max_epochs=3)).fit(df.iloc[:9], df.iloc[9:], resume=False)
    assert fresh.history()["epoch"].tolist() == [0, 1, 2]  # resume=False starts over
