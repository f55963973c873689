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
