"""Janus feature matrices: M, X, Y vectors plus structure features, complete for all 93 semiconductors."""

from __future__ import annotations

import numpy as np
import pytest

from gapkit.data.janus import janus_table
from gapkit.featurize.embeddings import get_embedding, list_embeddings
from gapkit.featurize.janus import STRUCTURE_COLUMNS, feature_sets, janus_features, structure_features


@pytest.fixture(scope="module")
def semis(shared_data_dir):
    return janus_table(nonzero=True)


def test_no_nan_for_all_93_and_every_embedding(semis):
    assert len(semis) == 93
    sets = feature_sets(semis, [*list_embeddings(), "structure"])
    for name, X in sets.items():
        assert np.isfinite(X).all(), name
        d = 0 if name == "structure" else get_embedding(name).shape[1]
        assert X.shape == (93, 3 * d + len(STRUCTURE_COLUMNS)), name


def test_layout_and_structure_features(semis):
    f = janus_features(semis, "magpie")
    row = semis.index[semis["formula"] == "MoSSe"][0]
    np.testing.assert_allclose(f.filter(like="M:").loc[row].to_numpy(), get_embedding("magpie").loc["Mo"].to_numpy())
    np.testing.assert_allclose(f.filter(like="Y:").loc[row].to_numpy(), get_embedding("magpie").loc["Se"].to_numpy())
    s = structure_features(semis)
    is_1t = (semis["prototype"] == "1T").to_numpy()
    assert (s.loc[is_1t, "x_M"] == 0).all() and (s.loc[~is_1t, "x_M"] > 0.3).all()
    cov = structure_features(semis, heights="covalent")
    assert not np.allclose(cov["h_X_A"], s["h_X_A"])
    with pytest.raises(KeyError, match="covalent"):
        structure_features(semis, heights="dft")
