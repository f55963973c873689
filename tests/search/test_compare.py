"""Comparing a found structure with the reference crystal (cheap ASE structures; no CHGNet)."""

import math

import pytest
from ase.build import bulk

from gapkit.search.compare import reference_lattice_a


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


def test_force_label_study_compares_both_labellings():
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from gapkit.search.compare import force_label_study
    from gapkit.search.potential import TrainSettings

    structures, energies, forces = [], [], []
    for k in range(16):
        atoms = bulk("Cu", "fcc", 3.6, cubic=True)
        atoms.rattle(0.12, seed=k)
        atoms.calc = EMT()
        energies.append(atoms.get_potential_energy())
        forces.append(atoms.get_forces())
        atoms.calc = None
        structures.append(atoms)
    table = force_label_study(structures[:12], energies[:12], forces[:12], structures[12:], energies[12:], [29],
                              TrainSettings(max_epochs=300, patience=100), seed=0)
    assert list(table["training labels"]) == ["energies only (paper)", "energies + forces"]
    assert (table["oracle calls used"] == 9).all()
    assert table.drop(columns=["training labels"]).notna().all().all()
    assert table["held-out F RMSE (eV/Å)"].iloc[1] < table["held-out F RMSE (eV/Å)"].iloc[0]
