"""Formula-grouped splits: no reduced formula in two parts, seeded, right proportions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gapkit.data.splits import grouped_kfold, reduced_formulas, remove_materials, train_val_test_split


@pytest.fixture
def polymorphs() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    base = ["SiO2", "TiO2", "NaCl", "GaAs", "ZnO", "MgO", "CaTiO3", "Al2O3", "BN", "C",
            "Si", "Ge", "KCl", "LiF", "CsCl", "CdTe", "InP", "GaN", "AlN", "SnO2"]
    rows = []
    for i, f in enumerate(base):
        # each formula appears 1-4 times, sometimes written un-reduced (Si2O4 is SiO2)
        for k in range(1 + i % 4):
            written = f if k % 2 == 0 else parse_multiple(f, 2)
            rows.append({"mp_id": f"mp-{len(rows)}", "formula": written, "gap_ev": rng.random()})
    return pd.DataFrame(rows)


def parse_multiple(formula: str, n: int) -> str:
    from pymatgen.core import Composition

    return (Composition(formula) * n).formula.replace(" ", "")


def test_reduced_formulas():
    assert list(reduced_formulas(["Si2O4", "SiO2", "O2Si"])) == ["SiO2"] * 3


def test_no_formula_in_two_parts(polymorphs):
    parts = train_val_test_split(polymorphs, seed=3)
    sets = [set(reduced_formulas(p["formula"])) for p in parts]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert sum(len(p) for p in parts) == len(polymorphs)


def test_split_is_seeded(polymorphs):
    a = train_val_test_split(polymorphs, seed=7)
    b = train_val_test_split(polymorphs, seed=7)
    c = train_val_test_split(polymorphs, seed=8)
    assert all(x["mp_id"].tolist() == y["mp_id"].tolist() for x, y in zip(a, b))
    assert any(x["mp_id"].tolist() != y["mp_id"].tolist() for x, y in zip(a, c))


def test_split_fractions_on_many_groups():
    df = pd.DataFrame({"formula": [f"Li{i}O{i + 1}" for i in range(1, 1001)]})
    train, val, test = train_val_test_split(df, seed=0)
    assert (len(train), len(val), len(test)) == (600, 200, 200)
    with pytest.raises(ValueError, match="sum"):
        train_val_test_split(df, fractions=(0.5, 0.2, 0.2))


def test_grouped_kfold(polymorphs):
    groups = reduced_formulas(polymorphs["formula"]).to_numpy()
    seen = []
    for train_idx, test_idx in grouped_kfold(polymorphs, n_splits=5, seed=0):
        assert not set(groups[train_idx]) & set(groups[test_idx])
        seen.extend(test_idx)
    assert sorted(seen) == list(range(len(polymorphs)))
    with pytest.raises(ValueError, match="distinct formulas"):
        next(grouped_kfold(polymorphs.head(3), n_splits=5))


def test_remove_materials(polymorphs):
    out = remove_materials(polymorphs, ids=["mp-0"], formulas=["Ti2O4"])
    assert "mp-0" not in set(out["mp_id"])
    assert "TiO2" not in set(reduced_formulas(out["formula"]))
    assert len(out) < len(polymorphs)
    with pytest.raises(KeyError, match="material_id"):
        remove_materials(polymorphs, ids=["x"], id_col="material_id")
