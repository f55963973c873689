"""Reference crystals: the paper's prototypes, any structure a user gives, and lattice constants."""

import math

import pytest
from ase.build import bulk

from gapkit.search.oracle import emt_calculator
from gapkit.search.references import (conventional_lattice, load_structure, reference_candidates,
                                      reference_lattice_a, reference_structure)


def test_references():
    assert set(reference_candidates("TiO2")) == {"rutile", "anatase"}
    assert len(reference_candidates("TiO2")["anatase"]) == 12  # conventional anatase: Ti4O8
    a, _, _ = conventional_lattice(reference_candidates("CaTiO3")["cubic perovskite"])
    assert a == pytest.approx(3.897)
    assert conventional_lattice(bulk("Si", "diamond", 5.43))[0] == pytest.approx(5.43)
    with pytest.raises(ValueError, match="No reference"):
        reference_candidates("GaAs")


def test_reference_structure_of_any_compound_is_the_lowest_relaxed_candidate(tmp_path):
    from pymatgen.io.ase import AseAtomsAdaptor

    bulk("Cu", "fcc", 3.7).write(tmp_path / "fcc.cif")
    candidates = {"fcc": tmp_path / "fcc.cif", "bcc": AseAtomsAdaptor.get_structure(bulk("Cu", "bcc", 2.9)),
                  "sc": bulk("Cu", "sc", 2.4)}
    name, ref = reference_structure("Cu", emt_calculator, steps=60, candidates=candidates)
    assert name == "fcc" and not ref.failed  # EMT copper: fcc below bcc and simple cubic
    with pytest.raises(FileNotFoundError, match="CIF"):
        load_structure(tmp_path / "missing.cif")
    with pytest.raises(TypeError):
        load_structure(42)


def test_reference_lattice_a_of_the_reference_crystal():
    reference = bulk("Si", "diamond", a=5.43, cubic=True)  # conventional 8-atom cell
    found = bulk("Si", "diamond", a=5.47)  # primitive 2-atom cell, a little larger
    found.rotate(30, "z", rotate_cell=True)
    assert reference_lattice_a(found, reference) == pytest.approx(5.47, abs=1e-3)
    assert reference_lattice_a(reference, reference) == pytest.approx(5.43, abs=1e-3)


def test_reference_lattice_a_is_nan_for_another_crystal():
    reference = bulk("Si", "diamond", a=5.43)
    assert math.isnan(reference_lattice_a(bulk("Si", "bct", a=4.9, c=2.7), reference))
    assert math.isnan(reference_lattice_a(bulk("Si", "fcc", a=3.9), reference))
