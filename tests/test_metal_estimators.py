"""MetalClassifier and TwoStageGap: probabilities, 0 eV for a predicted metal, save/load; other regression targets."""

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

from gapkit.estimators import (CGCNN, BadTargetError, MetalClassifier, TwoStageGap, load_estimator)
from gapkit.models.cgcnn import atom_init_table
from gapkit.train.tasks import METAL, BandGapTask, MetalTask

SMALL = dict(node_features="onehot", node_dim=8, n_conv=1, hidden_dim=8, cutoff=6.0, gaussian_step=0.5,
             progress=False, graph_cache=False)


def fcc(el: str, a: float) -> Structure:
    return Structure(Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]]), [el], [[0, 0, 0]])


def salt(a: str, b: str, lat: float) -> Structure:
    return Structure(Lattice([[0, lat / 2, lat / 2], [lat / 2, 0, lat / 2], [lat / 2, lat / 2, 0]]), [a, b],
                     [[0, 0, 0], [0.5, 0.5, 0.5]])


def structures() -> list[Structure]:
    return [fcc("Cu", 3.61), salt("Na", "Cl", 5.64), salt("Mg", "O", 4.21)]


def classifier_saying(p_metal_logit: float) -> MetalClassifier:
    """A classifier whose output ignores the input: logits (0, p_metal_logit) -> metal when the logit is > 0."""
    clf = MetalClassifier(**SMALL)
    torch.manual_seed(0)
    model = clf.build_model({"atom_vectors": atom_init_table("onehot")})
    with torch.no_grad():
        model.out.weight.zero_()
        model.out.bias.copy_(torch.tensor([0.0, p_metal_logit]) if METAL == 1 else torch.tensor([p_metal_logit, 0.0]))
    clf.task_ = MetalTask(model).eval()
    return clf


def regressor_saying(gap_ev: float) -> CGCNN:
    reg = CGCNN(**SMALL)
    torch.manual_seed(0)
    model = reg.build_model({"atom_vectors": atom_init_table("onehot")})
    with torch.no_grad():
        model.out.weight.zero_()
        model.out.bias.zero_()
    reg.task_ = BandGapTask(model, target_mean=gap_ev, target_std=1.0).eval()
    return reg


def test_two_stage_gives_zero_for_a_predicted_metal():
    pred = TwoStageGap(classifier_saying(8.0), regressor_saying(2.5)).predict(structures())
    assert (pred["gap_ev"] == 0.0).all() and pred["is_metal"].all()
    np.testing.assert_allclose(pred["regressor_gap_ev"], 2.5, atol=1e-6)
    assert (pred["p_metal"] > 0.99).all()


def test_two_stage_gives_the_regressors_gap_for_a_predicted_semiconductor():
    pred = TwoStageGap(classifier_saying(-8.0), regressor_saying(2.5)).predict(structures())
    np.testing.assert_allclose(pred["gap_ev"], 2.5, atol=1e-6)
    assert not pred["is_metal"].any()


def test_classifier_probabilities_sum_to_one():
    clf = classifier_saying(0.3)
    torch.manual_seed(1)
    with torch.no_grad():  # random head weights: probabilities that differ per structure
        clf.task_.model.out.weight.normal_(0.0, 0.3)
    p = clf.predict_proba(structures())
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-6)
    assert p[:, METAL].std() > 0
    with pytest.raises(ValueError, match="threshold"):
        clf.predict(structures(), threshold=1.5)


def test_two_stage_saves_and_loads(tmp_path):
    model = TwoStageGap(classifier_saying(-8.0), regressor_saying(1.7), threshold=0.4)
    path = model.save(tmp_path / "two_stage.pt")
    loaded = load_estimator(path)
    assert isinstance(loaded, TwoStageGap) and loaded.threshold == 0.4
    pd.testing.assert_frame_equal(loaded.predict(structures()), model.predict(structures()))
    assert isinstance(load_estimator(model.classifier.save(tmp_path / "clf.pt")), MetalClassifier)


def test_two_stage_rejects_wrong_parts():
    with pytest.raises(TypeError, match="MetalClassifier"):
        TwoStageGap(classifier=regressor_saying(1.0))
    with pytest.raises(TypeError, match="band-gap estimator"):
        TwoStageGap(regressor=CGCNN(target="heat_all_ev_per_atom"))
    with pytest.raises(ValueError, match="threshold"):
        TwoStageGap(threshold=0.0)


def test_another_target_accepts_negative_values_and_is_not_clipped():
    df = pd.DataFrame({"structure": structures() * 4, "heat_ev": np.linspace(-1.0, 1.0, 12)})
    est = CGCNN(**SMALL, target="heat_ev", max_epochs=2, patience=None, batch_size=4, loss="l1")
    est.fit(df.iloc[:8], df.iloc[8:])
    pred = est.predict(df)
    assert "heat_ev" in pred.columns and "gap_ev" not in pred.columns
    with pytest.raises(BadTargetError, match="finite"):
        CGCNN(**SMALL, target="heat_ev").fit(df.assign(heat_ev=np.nan), df)
    with pytest.raises(BadTargetError, match="negative"):
        CGCNN(**SMALL).fit(df.assign(gap_ev=-1.0), df.assign(gap_ev=1.0))


def test_original_cgcnn_classifier_converts(shared_data_dir):
    import gapkit.data as gd
    from gapkit.featurize.graphs import build_graph, collate_graphs
    from gapkit.models.cgcnn import from_original_checkpoint
    from gapkit.train.cgcnn_insight import ORIGINAL_METAL_CLASS

    model = from_original_checkpoint(gd.load_cgcnn_checkpoint("semi-metal-classification"))
    with torch.no_grad():
        p = torch.softmax(model.outputs_batch(collate_graphs([build_graph(s, 8.0, 12) for s in structures()])), -1)
    assert p[0, ORIGINAL_METAL_CLASS] > 0.9 and (p[1:, ORIGINAL_METAL_CLASS] < 0.1).all()  # Cu metal; NaCl, MgO not
    with pytest.raises(ValueError, match="original CGCNN checkpoint"):
        from_original_checkpoint({"state_dict": {}})


def test_two_stage_fits_end_to_end_with_the_shared_trainer():
    structs = structures() + [fcc("Al", 4.05), fcc("Ag", 4.09), salt("K", "Br", 6.6)]
    df = pd.DataFrame({"structure": structs * 2, "formula": [s.composition.reduced_formula for s in structs] * 2,
                       "gap_ev": [0.0, 5.0, 4.5, 0.0, 0.0, 4.0] * 2})
    tiny = dict(SMALL, max_epochs=2, patience=None, batch_size=4)
    model = TwoStageGap(MetalClassifier(**tiny), CGCNN(**tiny)).fit(df.iloc[:8], df.iloc[8:])
    history = model.classifier.history()
    assert {"val_loss", "val_accuracy", "train_loss"} <= set(history.columns) and len(history) == 2
    pred = model.predict(df)
    assert (pred.loc[pred["is_metal"], "gap_ev"] == 0).all() and pred["p_metal"].between(0, 1).all()
    with pytest.raises(NotImplementedError):
        model.classifier.calibrate(df)


def test_choose_threshold_reads_the_validation_labels(monkeypatch):
    model = TwoStageGap(classifier_saying(-8.0), regressor_saying(1.7))
    val = pd.DataFrame({"structure": structures() * 2, "gap_ev": [0.0, 5.0, 7.0, 0.0, 4.0, 6.0]})
    p = np.array([0.35, 0.1, 0.05, 0.3, 0.2, 0.15])  # the metals score higher, but below 0.5
    monkeypatch.setattr(model.classifier, "predict", lambda X, *a, **k: pd.DataFrame({"p_metal": p[:len(X)]}))
    assert model.choose_threshold(val) is model and 0.2 < model.threshold <= 0.3
    with pytest.raises(KeyError, match="gap_ev"):
        model.choose_threshold(val.drop(columns="gap_ev"))
