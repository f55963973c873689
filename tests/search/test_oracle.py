"""The oracle wrapper: counted calls, failures, relaxations and the labels they give at no extra call (EMT)."""

import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from gapkit.search.oracle import OracleCounter, emt_calculator, relax, single_point


class FlakyEMT(Calculator):
    """EMT that raises on some structures and returns NaN on others (decided by volume)."""

    implemented_properties = ["energy", "forces", "stress"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        v = self.atoms.get_volume() / len(self.atoms)
        if int(v * 10) % 3 == 0:
            raise RuntimeError("SCF did not converge")
        copy = self.atoms.copy()
        copy.calc = EMT()
        self.results = {"energy": copy.get_potential_energy(), "forces": copy.get_forces(),
                        "stress": copy.get_stress()}
        if int(v * 10) % 3 == 1:
            self.results["energy"] = float("nan")


def flaky_calculator():
    return FlakyEMT()


def test_oracle_counts_and_failures():
    atoms = bulk("Cu", "fcc", 3.5)
    ok = single_point(atoms, emt_calculator)
    assert not ok.failed and ok.n_single_points == 1 and ok.n_relax_steps == 0
    assert ok.forces is not None and ok.forces.shape == (len(atoms), 3)  # free with the energy
    assert ok.stress is not None and ok.stress.shape == (3, 3)
    relaxed = relax(atoms, emt_calculator, steps=50)
    assert relaxed.energy_ev < ok.energy_ev and relaxed.n_relax_steps > 1
    assert relaxed.relaxed and not ok.relaxed  # converged to fmax: a minimum
    assert not relax(atoms, emt_calculator, steps=0).relaxed and not relax(atoms, emt_calculator, steps=1).relaxed
    counter = OracleCounter()
    for res in (ok, relaxed):
        counter.add(res)
    assert counter.total == 1 + relaxed.n_relax_steps
    bad = single_point(bulk("Si", "diamond", 5.43), emt_calculator)  # EMT has no Si: it raises
    assert bad.failed and "NotImplementedError" in bad.error and math.isinf(bad.energy_per_atom)


class Spring(Calculator):
    """Two atoms tied by a spring of rest length 0: an oracle whose minimum is two atoms on one spot."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        d = self.atoms.positions[1] - self.atoms.positions[0]
        self.results = {"energy": float(d @ d), "forces": np.array([2 * d, -2 * d])}


def test_relaxation_into_collapsed_atoms_is_a_failure_with_its_calls_counted():
    atoms = Atoms("Cu2", positions=[(0, 0, 0), (2.2, 0, 0)], cell=[10, 10, 10], pbc=True)
    result = relax(atoms, Spring, fmax=0.01, steps=60, relax_cell=False, keep_every=1)
    assert result.failed and "collapsed" in result.error
    assert result.n_relax_steps > 1 and result.frames == []
    assert math.isinf(result.energy_per_atom)  # never the best structure of a search
    short = relax(atoms, Spring, fmax=0.01, steps=1, relax_cell=False)  # stopped while still apart
    assert not short.failed


def test_relaxation_frames_are_the_oracle_labels_at_no_extra_call():
    atoms = bulk("Cu", "fcc", 3.4)
    atoms.rattle(0.1, seed=0)
    plain = relax(atoms, emt_calculator, steps=30)
    kept = relax(atoms, emt_calculator, steps=30, keep_every=3)
    assert kept.n_calls == plain.n_calls and kept.energy_ev == pytest.approx(plain.energy_ev)
    assert not plain.frames and 2 <= len(kept.frames) <= plain.n_calls
    assert kept.frames[-1].energy_ev == pytest.approx(kept.energy_ev)
    for frame in kept.frames:  # what a fresh oracle call on the frame's atoms would say
        fresh = single_point(frame.atoms, emt_calculator)
        assert frame.energy_ev == pytest.approx(fresh.energy_ev)
        np.testing.assert_allclose(frame.forces, fresh.forces, atol=1e-10)
        np.testing.assert_allclose(frame.stress, fresh.stress, atol=1e-10)


class CountingEMT(EMT):
    """EMT that counts the evaluations it really performs."""

    evaluations = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        CountingEMT.evaluations += 1
        super().calculate(atoms, properties, system_changes)


def test_a_relaxation_started_from_its_single_point_reuses_it_instead_of_a_new_call():
    atoms = bulk("Cu", "fcc", 3.45) * (2, 1, 1)
    atoms.rattle(0.05, seed=1)
    point = single_point(atoms, CountingEMT)
    plain = relax(atoms, CountingEMT, steps=40, keep_every=1)
    CountingEMT.evaluations = 0
    primed = relax(atoms, CountingEMT, steps=40, keep_every=1, start=point)
    assert CountingEMT.evaluations == primed.n_relax_steps == plain.n_relax_steps - 1
    assert primed.energy_ev == pytest.approx(plain.energy_ev, abs=1e-10)  # the same trajectory
    assert primed.frames[0].energy_ev == pytest.approx(point.energy_ev)
    moved = atoms.copy()
    moved.positions[0, 0] += 0.01
    CountingEMT.evaluations = 0
    other = relax(moved, CountingEMT, steps=40, start=point)  # a single point of other atoms cannot serve
    assert CountingEMT.evaluations == other.n_relax_steps
