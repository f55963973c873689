"""Pm-3m perovskite builder: site roles from the topology, space group 221, 12-fold A and 6-fold B."""

import numpy as np
import pandas as pd
import pytest

from gapkit.data.perovskites import (PerovskiteSiteError, build_perovskite, coordination_numbers,
                                     estimate_lattice_constant, relax_lattice_constant, site_roles,
                                     space_group_number)
from gapkit.data.splits import reduced_formulas, remove_materials


def test_built_perovskite_is_pm3m_with_12_fold_a_and_6_fold_b():
    s = build_perovskite("Sr", "Ti", "O", 3.905)
    assert space_group_number(s) == 221
    cn = coordination_numbers(s)
    assert cn[0] == 12 and cn[1] == 6  # A: cuboctahedron of O; B: octahedron of O
    d_bx = s.get_distance(1, 2)
    assert d_bx == pytest.approx(3.905 / 2)


def test_site_roles_read_a_from_the_topology_not_the_formula_order():
    # HfMgO3 of the targets: site 1 (Mg) sees only O sites (2, 3, 4), so Mg is A although written second
    nbr = np.array([[4, 2, 3, 4, 3, 2, 1, 1, 1, 1, 1, 1], [3, 2, 4, 4, 3, 2, 3, 4, 2, 4, 3, 2],
                    [0, 0, 4, 1, 3, 4, 3, 4, 1, 1, 1, 3], [0, 0, 4, 1, 4, 2, 2, 4, 2, 1, 4, 2],
                    [0, 0, 3, 1, 3, 2, 2, 3, 2, 1, 3, 2]])
    assert site_roles([72, 12, 8, 8, 8], nbr) == ("Mg", "Hf", "O")
    with pytest.raises(PerovskiteSiteError):
        site_roles([72, 12, 8, 8, 9], nbr)


def test_lattice_estimate_and_one_dimensional_relaxation_find_a_known_minimum():
    a0 = estimate_lattice_constant("Sr", "Ti", "O")
    assert 3.6 < a0 < 4.4  # SrTiO3 is 3.905 Å

    def fake_energy(structures):  # a parabola in the cubic edge with its minimum at 3.95 Å
        return np.array([(s.lattice.a - 3.95) ** 2 for s in structures])

    a, e = relax_lattice_constant("Sr", "Ti", "O", a0, fake_energy)
    assert a == pytest.approx(3.95, abs=1e-3) and e == pytest.approx(0.0, abs=1e-6)


def test_target_removal_leaves_no_target_formula(shared_data_dir):
    from gapkit.data import load_mp_structures, load_perovskites_175

    targets = load_perovskites_175()
    mp = load_mp_structures(nonzero=True, structures=False)
    clean = remove_materials(mp, ids=targets["mp_id"], formulas=targets["formula"])
    assert len(clean) < len(mp)
    assert not set(reduced_formulas(clean["formula"])) & set(reduced_formulas(targets["formula"]))
    assert not set(clean["mp_id"]) & set(targets["mp_id"])


def test_committed_lattice_constants_cover_every_target_and_are_cubic(shared_data_dir):
    from gapkit.data.perovskites import LATTICE_CSV, load_perovskite_structures

    if not LATTICE_CSV.is_file():
        pytest.skip("lattice-constant table not written yet")
    df = load_perovskite_structures()
    assert len(df) == 175 and df["a_chgnet"].between(3.0, 7.5).all()
    assert {space_group_number(s) for s in df["structure"].iloc[:10]} == {221}
    with_mp = df.dropna(subset=["a_mp"])
    assert (with_mp["a_chgnet"] - with_mp["a_mp"]).abs().median() < 0.15  # CHGNet vs PBE: within ~3 %
