"""Janus cells: the site rule, P3m1 prototypes with C2DB's area, committed CHGNet geometries."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from gapkit.data.janus import (JanusFormulaError, build_janus, janus_sites, janus_table, lattice_constant,
                               layer_heights, load_geometries, prototype)


def test_site_rule():
    assert janus_sites("MoSSe") == ("Mo", "S", "Se")
    assert janus_sites("AsBrTe") == ("As", "Br", "Te")  # As between Br and Te, as Bi in BiTeI
    assert janus_sites("BiNbAs") == ("Nb", "As", "Bi")
    with pytest.raises(JanusFormulaError, match="MXY"):
        janus_sites("MoS2")
    with pytest.raises(KeyError, match="ABC-156-ac"):
        prototype("AB2-187-bi")


@pytest.mark.parametrize("crystal_type", ["ABC-156-ac", "ABC-156-abc"])
def test_built_cell_is_p3m1_with_the_area(crystal_type):
    s = build_janus("MoSSe", crystal_type, 9.5)
    assert SpacegroupAnalyzer(s, symprec=0.01).get_space_group_number() == 156
    assert s.lattice.a * s.lattice.b * np.sin(np.radians(s.lattice.gamma)) == pytest.approx(9.5)
    assert s.lattice.a == pytest.approx(lattice_constant(9.5))
    h_x, h_y = layer_heights(s)
    assert 1.0 < h_x < h_y < 2.5  # covalent heights: Se (larger) sits farther from Mo than S


def test_committed_geometries_all_216(shared_data_dir):
    table = janus_table()
    assert len(table) == 216 and len(load_geometries()) == 216
    for s, area in zip(table["structure"], table["area_a2"]):
        assert SpacegroupAnalyzer(s, symprec=0.01).get_space_group_number() == 156
        assert s.lattice.volume / s.lattice.c == pytest.approx(area, rel=1e-6)
    # CHGNet heights are physical: every layer atom 0.5-3.5 A from M's plane
    assert table[["h_x_A", "h_y_A"]].to_numpy().min() > 0.5
    assert table[["h_x_A", "h_y_A"]].to_numpy().max() < 3.5
    assert (table["gap_ev"] > 0).sum() == 93


@pytest.mark.slow
def test_chgnet_relaxation_keeps_p3m1():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from gapkit.data.janus import relax_janus

    start = build_janus("MoSSe", "ABC-156-ac", 9.66)  # C2DB's MoSSe area within 0.1 A^2
    relaxed, energy, steps = relax_janus(start)
    assert SpacegroupAnalyzer(relaxed, symprec=0.01).get_space_group_number() == 156
    h_s, h_se = layer_heights(relaxed)
    assert 1.4 < h_s < h_se < 1.9 and energy < -5 and steps < 300
