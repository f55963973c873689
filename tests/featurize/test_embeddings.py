"""The element-embedding registry: every name loads, one interface, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from gapkit.featurize.composition import encode_formula
from gapkit.featurize.embeddings import coverage, embedding_matrix, get_embedding, list_embeddings

NEEDS_SHARED = {"atom2vec", "crabnet_mat2vec", "crabnet_onehot", "crabnet_magpie", "jarvis", "cgcnn", "elemnet", "matscholar"}


@pytest.mark.parametrize("name", list_embeddings())
def test_every_registered_embedding_loads(name, request):
    if name in NEEDS_SHARED:
        request.getfixturevalue("shared_data_dir")
    table = get_embedding(name)
    assert table.index.name == "element"
    assert len(table) >= 80 and table.shape[1] >= 16
    assert "O" in table.index and "Na" in table.index
    assert table.index.is_unique
    assert np.isfinite(table.loc[["O", "Na"]].to_numpy()).all()
    # distinct elements have distinct vectors: the table carries information
    assert not np.allclose(table.loc["O"], table.loc["Na"])


def test_registry_names():
    names = list_embeddings()
    for required in ("atomic", "magpie", "mat2vec", "megnet16", "oliynyk", "skipatom", "atom2vec", "atom_dl"):
        assert required in names


def test_atom_dl_is_16_dimensional():
    assert get_embedding("atom_dl").shape[1] == 16


def test_unknown_name_lists_known_ones():
    with pytest.raises(KeyError, match="magpie"):
        get_embedding("nope")


def test_get_embedding_returns_a_copy():
    table = get_embedding("megnet16")
    table.iloc[0, 0] = 1e9
    assert get_embedding("megnet16").iloc[0, 0] != 1e9


def test_megnet_null_row_dropped():
    assert "Null" not in get_embedding("megnet16").index


def test_embedding_matrix_indexed_by_atomic_number():
    matrix = embedding_matrix("megnet16")
    table = get_embedding("megnet16")
    assert matrix.shape == (104, 16) and matrix.dtype == np.float32
    assert np.all(matrix[0] == 0)  # padding
    np.testing.assert_allclose(matrix[8], table.loc["O"], rtol=1e-6)
    z, _ = encode_formula("SiO2")
    vectors = matrix[z]
    np.testing.assert_allclose(vectors[1], table.loc["O"], rtol=1e-6)
    assert np.all(vectors[2:] == 0)


def test_missing_elements_are_zero_rows():
    matrix = embedding_matrix("oliynyk")  # oliynyk stops before the heavy actinides
    assert "Lr" not in get_embedding("oliynyk").index
    assert np.all(matrix[103] == 0)


def test_coverage():
    assert coverage("megnet16", ["O", "Na"]) == 1.0
    assert coverage("oliynyk", ["O", "Lr"]) == 0.5
