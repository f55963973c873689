"""Every loader on the real data: shapes, columns, units, and the bad-input paths."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from pymatgen.core import Composition, Structure

import gapkit.data as gd
from gapkit.data import structures as gstruct
from gapkit.featurize.composition import FormulaError, parse_formula


@pytest.fixture(autouse=True)
def _data(shared_data_dir, monkeypatch, isolated_cache):
    monkeypatch.setenv("GAPKIT_DATA_DIR", str(shared_data_dir))
    gstruct._memory.clear()


def test_list_datasets_covers_every_folder():
    table = gd.list_datasets()
    assert set(table["folder"]) == set(gd.registry.known_datasets())
    assert table["name"].is_unique


def test_oqmd_sizes_and_nonzero():
    df = gd.load_oqmd_bandgap()
    assert len(df) == 239_125 + 51_241 + 51_242
    assert set(df.columns) == {"formula", "gap_ev", "split"}
    nz = gd.load_oqmd_bandgap(nonzero=True)
    assert len(nz) == 15_787 + 3_435 + 3_484 and (nz["gap_ev"] > 0).all()
    assert len(gd.load_oqmd_bandgap(split="val")) == 51_241
    with pytest.raises(ValueError, match="split"):
        gd.load_oqmd_bandgap(split="dev")


def test_mp_table_without_parsing():
    df = gd.load_mp_structures(structures=False)
    assert len(df) == 36_737 and (df["gap_ev"] > 0).sum() == 21_153
    si = df[df["mp_id"] == "mp-149"].iloc[0]
    assert si["formula"] == "Si2" and si["nsites"] == 2 and si["gap_ev"] == pytest.approx(0.853, abs=1e-3)
    assert "cif" not in df.columns


def test_mp_structures_subset_is_seeded_and_cached(isolated_cache, monkeypatch):
    opened = []
    connect = gstruct._connect
    monkeypatch.setattr(gstruct, "_connect", lambda *a: opened.append(a) or connect(*a))
    a = gd.load_mp_structures(nonzero=True, n=20, seed=1, progress=False)
    shards = len(opened)
    assert shards >= 1 and len(set(opened)) == shards  # a miss reads and writes through one connection per file
    b = gd.load_mp_structures(nonzero=True, n=20, seed=1, progress=False)
    assert len(opened) == shards  # rows held in memory touch no disk cache
    assert list(a["id"]) == list(b["id"])
    assert all(isinstance(s, Structure) for s in a["structure"])
    assert (a["structure"].map(len) == a["nsites"]).all()
    # a fresh process would read the disk cache: clear memory and check nothing is re-parsed
    gstruct._memory.clear()
    calls = []
    orig = gstruct.structure_from_cif
    gstruct.structure_from_cif = lambda *a, **k: calls.append(1) or orig(*a, **k)
    try:
        gd.load_mp_structures(nonzero=True, n=20, seed=1, progress=False)
    finally:
        gstruct.structure_from_cif = orig
    assert calls == []
    assert list((isolated_cache / "parsed").rglob("*.sqlite"))


def test_unparsable_cif_rows_warn_or_raise(monkeypatch):
    df = pd.DataFrame({
        "id": [1, 2, 3],
        "cif": [gd.load_mp_structures(structures=False, n=1).iloc[0:1].pipe(lambda _: _good_cif()),
                "data_broken\n_cell_length_a 3\n", ""],
        "_source_file": ["mp_structures_shard0.csv.gz"] * 3,
    })
    # use ids that cannot collide with real cached rows
    df["id"] = [-1, -2, -3]
    with pytest.warns(gstruct.UnparsableRowsWarning, match="Skipped 2 of 3"):
        out = gstruct.attach_structures(df, "mp_structures_kdmsit", progress=False)
    assert list(out["id"]) == [-1]
    gstruct._memory.clear()
    with pytest.raises(gstruct.CIFParseError, match="row id -2"):
        gstruct.attach_structures(df, "mp_structures_kdmsit", errors="raise", progress=False)


def _good_cif() -> str:
    from pymatgen.core import Lattice

    return Structure(Lattice.cubic(5.43), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]]).to(fmt="cif")


def test_cif_without_atoms_is_an_error():
    empty = "data_x\n_cell_length_a 4\n_cell_length_b 4\n_cell_length_c 4\n" \
            "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
    with pytest.raises(gstruct.CIFParseError):
        gstruct.structure_from_cif(empty, "toy")


def test_small_tables():
    p = gd.load_perovskites_175()
    assert len(p) == 175 and (p["gap_ev"] > 0).all()
    assert p["neighbor_index"].iloc[0].shape == (5, 12) and len(p["atomic_numbers"].iloc[0]) == 5
    assert len(gd.load_li2023_spinels()) == 5_174
    assert len(gd.load_li2023_perovskites()) == 855
    assert len(gd.load_li2023_candidates()) == 5_329
    janus = gd.load_c2db_janus()
    assert len(janus) == 216 and (janus["gap_ev"] > 0).sum() == 93
    c2db = gd.load_c2db()
    assert len(c2db) == 4_034 and not any("\u2715" in c for c in c2db.columns)
    mc2d = gd.load_mc2d()
    assert len(mc2d) == 258 and all(len(s) == n for s, n in zip(mc2d["structure"], mc2d["nsites"]))
    assert len(gd.load_mc2d_campi()) == 2_936
    a2v = gd.load_atom2vec()
    assert a2v.shape == (87, 20) and "H" in a2v.index and "Ne" not in a2v.index
    assert gd.load_cgcnn_atom_init().shape == (100, 92)
    ckpt = gd.load_cgcnn_checkpoint("band-gap")
    assert float(ckpt["normalizer"]["mean"]) == pytest.approx(2.3538, abs=1e-3)


def test_element_tables():
    for name in gd.element_property_tables():
        table = gd.load_element_properties(name)
        assert table.index.name == "element" and len(table) >= 82
    assert gd.load_element_properties("mat2vec").shape[1] == 200
    with pytest.raises(gd.UnknownDatasetError, match="mat2vec"):
        gd.load_element_properties("word2vec")


def test_load_by_name_and_unknown_name():
    assert len(gd.load("matbench_castelli")) == 18_928
    with pytest.raises(gd.UnknownDatasetError, match="oqmd_bandgap"):
        gd.load("oqmd")


@pytest.mark.parametrize("bad, reason", [
    ("", "Empty"), ("Xx2O", "Xx"), ("Si(O2", "parse"), ("Si-1O2", "negative"), ("Si0O2", "zero amount of Si"), ("X2", "not a chemical element"), (None, "missing value"), (3.5, "string"),
])
def test_formula_errors(bad, reason):
    with pytest.raises(FormulaError, match=reason):
        parse_formula(bad)


def test_formula_ok():
    assert parse_formula(" Si2O4 ").reduced_formula == "SiO2"


def test_structure_cache_reads_back_only_the_rows_asked_for(isolated_cache):
    a = gd.load_mp_structures(n=5, seed=3, progress=False)
    for formula, s in zip(a["formula"], a["structure"]):
        assert Composition(formula).reduced_formula == s.composition.reduced_formula
    gstruct._memory.clear()
    b = gd.load_mp_structures(n=3, seed=4, progress=False)  # other rows: parsed, added to the same tables
    gstruct._memory.clear()
    again = gd.load_mp_structures(n=5, seed=3, progress=False)
    assert [s == t for s, t in zip(a["structure"], again["structure"])] == [True] * 5
    held = sum(len(t) for t in gstruct._memory.values())
    assert held == 5  # a subset reads its own rows, not the whole file's cache
    assert len(b) == 3


def test_corrupt_structure_cache_is_rebuilt(isolated_cache):
    gd.load_mp_structures(n=2, seed=0, progress=False)
    for f in (isolated_cache / "parsed").rglob("*.sqlite"):
        f.write_bytes(b"not a database" * 100)
    gstruct._memory.clear()
    df = gd.load_mp_structures(n=2, seed=0, progress=False)
    assert len(df) == 2 and all(isinstance(s, Structure) for s in df["structure"])
    gstruct._memory.clear()
    calls = []
    orig = gstruct.structure_from_cif
    gstruct.structure_from_cif = lambda *a, **k: calls.append(1) or orig(*a, **k)
    try:
        gd.load_mp_structures(n=2, seed=0, progress=False)
    finally:
        gstruct.structure_from_cif = orig
    assert calls == []  # the rebuilt cache serves them


def test_li2023_errata_correct_the_slips_and_nothing_else():
    published, corrected = gd.load_li2023_element_properties(errata=False), gd.load_li2023_element_properties()
    assert published.at["Mg", "RM"] == 1602.0 and corrected.at["Mg", "RM"] == pytest.approx(1.602)
    changed = (published != corrected) & published.notna()
    assert int(changed.to_numpy().sum()) == 4
    # after the errata no corrected property has a value 100x away from its median (the slips were 100-10,000x)
    for prop in ("RM", "DFVE", "MHC", "RC"):
        ratio = corrected[prop].abs() / corrected[prop].abs().median()
        assert ratio.max() < 100 and ratio[ratio > 0].min() > 0.01, prop
