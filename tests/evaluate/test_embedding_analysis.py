"""Embedding analysis on toy tables whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gapkit.evaluate.embedding_analysis import (
    MAIN_GROUP_34,
    PAPER_CLUSTERS,
    cluster_labels,
    cluster_purity,
    embedding_summary,
    pc1_valence_spearman,
    pca_scores,
    pooled_features,
    purity,
    valence_electrons,
)


def _group_table(noise: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """Each element = one-hot of its group + small noise (so cosine clusters = groups), plus a valence axis."""
    from gapkit.evaluate.embedding_analysis import periodic_group

    rng = np.random.default_rng(seed)
    groups = sorted({periodic_group(e) for e in MAIN_GROUP_34})
    rows = []
    for e in MAIN_GROUP_34:
        v = np.zeros(len(groups) + 1)
        v[groups.index(periodic_group(e))] = 1.0
        v[-1] = 3.0 * valence_electrons(e)  # a dominant axis ordered by valence electrons
        rows.append(v + noise * rng.normal(size=v.shape))
    return pd.DataFrame(rows, index=pd.Index(MAIN_GROUP_34, name="element"))


def test_paper_lists():
    assert len(MAIN_GROUP_34) == 34 == len(set(MAIN_GROUP_34))
    assert set(PAPER_CLUSTERS) <= set(MAIN_GROUP_34)
    assert set(MAIN_GROUP_34) - set(PAPER_CLUSTERS) == {"O", "Si", "Te"}


def test_valence_electrons():
    assert [valence_electrons(e) for e in ("H", "Mg", "Al", "C", "N", "O", "Cl")] == [1, 2, 3, 4, 5, 6, 7]
    with pytest.raises(ValueError):
        valence_electrons("Fe")


def test_purity_by_hand():
    assert purity([1, 1, 2, 2], ["a", "a", "b", "b"]) == 1.0
    assert purity([1, 1, 1, 1], ["a", "a", "b", "b"]) == 0.5


def test_group_table_clusters_perfectly():
    table = _group_table()
    pur, ari = cluster_purity(table)
    assert pur == pytest.approx(1.0) and ari == pytest.approx(1.0)
    assert cluster_labels(table, 7).nunique() == 7


def test_random_table_clusters_poorly():
    rng = np.random.default_rng(1)
    table = pd.DataFrame(rng.normal(size=(34, 16)), index=MAIN_GROUP_34)
    pur, ari = cluster_purity(table)
    assert pur < 0.7 and ari < 0.3


def test_pc1_tracks_valence_axis():
    table = _group_table()
    assert pc1_valence_spearman(table) > 0.8
    rng = np.random.default_rng(2)
    assert pc1_valence_spearman(pd.DataFrame(rng.normal(size=(34, 16)), index=MAIN_GROUP_34)) < 0.6


def test_pca_scores_shape_and_missing_elements():
    table = _group_table().drop(index=["O", "Cs"])
    scores = pca_scores(table)
    assert scores.shape == (32, 4) and "O" not in scores.index


def test_embedding_summary_rows():
    summary = embedding_summary({"toy": _group_table()})
    assert summary.loc["toy", "n_elements"] == 34
    assert summary.loc["toy", "cluster_purity"] == pytest.approx(1.0)


def test_pooled_features():
    matrix = np.zeros((104, 2), dtype=np.float32)
    matrix[14] = [1.0, 0.0]  # Si
    matrix[8] = [0.0, 3.0]  # O
    feats = pooled_features(["SiO2"], matrix)
    np.testing.assert_allclose(feats[0], [1 / 3, 2.0, 0.0, 0.0, 1.0, 3.0], rtol=1e-6)


def test_downstream_mae_prefers_an_informative_table():
    from gapkit.evaluate.embedding_analysis import downstream_mae

    rng = np.random.default_rng(0)
    metals, anions = ["Li", "Na", "K", "Rb", "Cs", "Mg", "Ca", "Sr", "Ba", "Al"], ["F", "Cl", "Br", "I", "O", "S"]
    formulas = [f"{m}{a}{k}" for m in metals for a in anions for k in range(1, 5)]
    # target = property of the anion only; the informative table carries it, the other is noise
    prop = {a: i for i, a in enumerate(anions)}
    df = pd.DataFrame({"formula": formulas, "gap_ev": [prop[a] for m in metals for a in anions for k in range(1, 5)]})
    good = pd.DataFrame({"p": [prop.get(e, -1.0) for e in metals + anions]}, index=metals + anions)
    noise = pd.DataFrame({"p": rng.normal(size=len(metals + anions))}, index=metals + anions)
    noise.loc[anions, "p"] = 0.5  # anions indistinguishable
    result = downstream_mae(df, {"good": good, "noise": noise}, seeds=(0, 1), n_estimators=20)
    assert result.loc["good", "mae_mean"] < 0.5 * result.loc["noise", "mae_mean"]
    assert set(result.columns) >= {"mae_mean", "mae_std", "mae_seed0", "mae_seed1"}


def test_pc1_of_a_one_hot_table_is_not_a_number():
    # every direction of a one-hot table explains the same variance: PC1 is arbitrary
    one_hot = pd.DataFrame(np.eye(len(MAIN_GROUP_34)), index=MAIN_GROUP_34)
    assert np.isnan(pc1_valence_spearman(one_hot))
