"""Shipped models: export -> list -> load round trip, checksum and clear errors, and the shipped files."""

import json

import numpy as np
import pytest

import gapkit.pretrained as pretrained
from gapkit.estimators import CrabNet
from gapkit.pretrained import PretrainedModelError

CARD = dict(training_data="toy", split="toy 9:3", metrics={"test_mae_ev": 1.0}, hyperparameters={},
            provenance={"commit": "test"})


@pytest.fixture
def shipped(tmp_path, monkeypatch, shared_data_dir):
    """One tiny CrabNet exported into a private pretrained folder."""
    from tests.test_estimators import params, tiny_frame

    df = tiny_frame()
    model = CrabNet(**params(CrabNet, tmp_path)).fit(df.iloc[:9], df.iloc[9:])
    folder = tmp_path / "pretrained"
    monkeypatch.setenv(pretrained.PRETRAINED_ENV_VAR, str(folder))
    pretrained.export(model, "toy-crabnet", folder, **CARD)
    return model, folder, df


def test_export_list_load_round_trip_in_half_precision(shipped):
    model, folder, df = shipped
    table = pretrained.list()
    assert table["name"].tolist() == ["toy-crabnet"] and table.loc[0, "estimator"] == "CrabNet"
    loaded = pretrained.load("toy-crabnet")
    a, b = model.predict(df)["gap_ev"], loaded.predict(df)["gap_ev"]
    np.testing.assert_allclose(a, b, atol=0.02)  # half-precision weights: close, not bit-identical
    assert pretrained.resolve("toy-crabnet") == folder / "toy-crabnet.pt"
    assert str(pretrained.resolve("my.pt")) == "my.pt"  # a path stays a path


def test_corrupt_missing_and_unknown_models_say_what_to_do(shipped):
    _, folder, _ = shipped
    with pytest.raises(PretrainedModelError, match="known: toy-crabnet"):
        pretrained.load("nope")
    weights = folder / "toy-crabnet.pt"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    with pytest.raises(PretrainedModelError, match="corrupt"):
        pretrained.load("toy-crabnet")
    weights.unlink()
    with pytest.raises(PretrainedModelError, match="missing"):
        pretrained.load("toy-crabnet")


def test_export_refuses_a_card_without_its_facts(shipped, tmp_path):
    model, _, _ = shipped
    with pytest.raises(ValueError, match="model card needs"):
        pretrained.export(model, "bad", tmp_path / "x", training_data="toy")


def test_every_shipped_model_matches_its_card_and_the_size_budget(monkeypatch):
    monkeypatch.delenv(pretrained.PRETRAINED_ENV_VAR, raising=False)
    folder = pretrained.pretrained_dir()
    cards = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    sizes = [(folder / c["file"]).stat().st_size for c in cards]
    assert all(s < 25e6 for s in sizes) and sum(sizes) < 60e6
    for c in cards:
        assert pretrained.sha256(folder / c["file"]) == c["sha256"], c["name"]


def test_a_two_stage_model_exports_and_loads_by_name(tmp_path, monkeypatch, shared_data_dir):
    from gapkit.estimators import TwoStageGap
    from tests.test_metal_estimators import classifier_saying, regressor_saying, structures

    model = TwoStageGap(classifier_saying(-8.0), regressor_saying(1.7), threshold=0.4)
    folder = tmp_path / "pretrained"
    monkeypatch.setenv(pretrained.PRETRAINED_ENV_VAR, str(folder))
    pretrained.export(model, "toy-two-stage", folder, **CARD)
    assert pretrained.list().loc[0, "estimator"] == "TwoStageGap"
    loaded = pretrained.load("toy-two-stage")
    assert isinstance(loaded, TwoStageGap) and loaded.threshold == 0.4
    np.testing.assert_allclose(loaded.predict(structures())["gap_ev"], model.predict(structures())["gap_ev"],
                               atol=0.02)
