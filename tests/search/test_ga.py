"""GA operators keep stoichiometry and distances; PyXtal populations; duplicates; bad inputs."""

from collections import Counter

import numpy as np
import pytest
from ase.build import bulk
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from gapkit.featurize.composition import FormulaError
from gapkit.search.ga import (GASettings, PopulationCollapsedError, cut_and_splice, make_child, mutate_displace, mutate_strain,
                              mutate_swap, run_ga, select_parents)
from gapkit.search.population import (CRYSTAL_SYSTEMS, StructureGenerationError, is_duplicate, random_crystal,
                                      random_structure, same_structure, stoichiometry, too_close)

TIO2 = {"Ti": 2, "O": 4}


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    return (random_structure(TIO2, "tetragonal", rng), random_structure(TIO2, "monoclinic", rng), rng)


def test_stoichiometry_and_bad_inputs():
    assert stoichiometry("TiO2", 12) == {"Ti": 4, "O": 8}
    assert stoichiometry("CaTiO3", 5) == {"Ca": 1, "Ti": 1, "O": 3}
    with pytest.raises(ValueError, match="multiple of 3"):
        stoichiometry("TiO2", 5)
    with pytest.raises(FormulaError):
        stoichiometry("XyO2", 6)
    with pytest.raises(ValueError, match="crystal system"):
        random_structure({"Si": 2}, "rhombic", np.random.default_rng(0))
    with pytest.raises(StructureGenerationError):  # 1 atom cannot be triclinic-with-inversion-only... nor anything in 3 tries
        random_structure({"Si": 1}, "cubic", np.random.default_rng(0), max_tries=0)


def test_random_crystal_draws_the_system_then_the_structure_from_one_generator():
    systems = ("cubic", "tetragonal", "hexagonal")
    drawn = [random_crystal(TIO2, systems, np.random.default_rng(k)) for k in range(6)]
    assert {system for system, _ in drawn} <= set(systems) and len({system for system, _ in drawn}) > 1
    for system, atoms in drawn:
        assert atoms.info["crystal_system"] == system and Counter(atoms.get_chemical_symbols()) == Counter(TIO2)
    # the same draws as picking the system, then building it: runs recorded before the helper repeat exactly
    rng = np.random.default_rng(3)
    by_hand = random_structure(TIO2, systems[int(rng.integers(len(systems)))], rng)
    system, atoms = random_crystal(TIO2, systems, np.random.default_rng(3))
    assert system == by_hand.info["crystal_system"] and np.allclose(atoms.positions, by_hand.positions)
    with pytest.raises(StructureGenerationError, match="cubic"):
        random_crystal({"Si": 1}, ("cubic",), np.random.default_rng(0), max_tries=0)


@pytest.mark.parametrize("system", list(CRYSTAL_SYSTEMS))
def test_pyxtal_structures_per_crystal_system(system):
    rng = np.random.default_rng(1)
    atoms = random_structure(TIO2, system, rng)
    assert Counter(atoms.get_chemical_symbols()) == Counter(TIO2)
    lo, hi = CRYSTAL_SYSTEMS[system]
    assert lo <= atoms.info["spacegroup"] <= hi and atoms.info["crystal_system"] == system
    assert not too_close(atoms)
    # the structure really has at least the symmetry it was built with
    found = SpacegroupAnalyzer(AseAtomsAdaptor.get_structure(atoms), symprec=1e-3).get_space_group_number()
    assert found >= lo


def test_crossover_keeps_stoichiometry_and_mixes_cells():
    a, b, rng = _pair()
    for _ in range(20):
        child = cut_and_splice(a, b, rng)
        assert Counter(child.numbers.tolist()) == Counter(a.numbers.tolist())
        v = child.get_volume()
        assert min(a.get_volume(), b.get_volume()) * 0.5 < v < max(a.get_volume(), b.get_volume()) * 1.5
    with pytest.raises(ValueError, match="composition"):
        cut_and_splice(a, bulk("Si", "diamond", 5.43) * (1, 1, 3), rng)


def test_mutations_keep_composition_and_children_keep_distance():
    a, b, rng = _pair(2)
    for op in (mutate_displace, mutate_strain, mutate_swap):
        out = op(a, rng)
        assert Counter(out.numbers.tolist()) == Counter(a.numbers.tolist())
    swapped = mutate_swap(a, rng)
    assert (swapped.numbers != a.numbers).sum() == 2
    settings = GASettings(mutation_prob=1.0)
    for _ in range(10):
        child = make_child([a, b], rng, settings)
        assert child is not None and not too_close(child, settings.min_distance_factor)


def test_min_distance_rejection():
    atoms = bulk("Si", "diamond", 5.43)
    assert not too_close(atoms)
    atoms.positions[1] = atoms.positions[0] + [0.5, 0, 0]
    assert too_close(atoms)


def test_duplicates():
    si = bulk("Si", "diamond", 5.43)
    rotated = si.copy()
    rotated.rotate(30, "z", rotate_cell=True)
    supercell = bulk("Si", "diamond", 5.43, cubic=True)
    beta = bulk("Si", "bct", a=4.9, c=2.7)  # a different crystal (beta-tin-like)
    assert same_structure(si, rotated) and same_structure(si, supercell)
    assert not same_structure(si, beta)
    assert is_duplicate(rotated, -5.0, [beta, si], [-5.0, -5.001])
    assert not is_duplicate(rotated, -5.0, [si], [-4.0])  # outside the energy window: not compared


def test_select_parents_and_ga_lowers_a_simple_score():
    assert select_parents(np.array([3.0, 1.0, 2.0, 0.0, 5.0, 4.0])).tolist() == [3, 1]
    rng = np.random.default_rng(0)
    pop = [random_structure({"Si": 2}, s, rng) for s in ("triclinic", "monoclinic", "orthorhombic",
                                                          "hexagonal", "trigonal", "cubic")]

    def score(atoms):  # toy fitness: volume per atom close to 20 Å^3
        return atoms, abs(atoms.get_volume() / len(atoms) - 20.0)

    start = min(score(a)[1] for a in pop)
    out, energies = run_ga(pop, score, rng, 10, GASettings(population_size=6, n_children=6))
    assert len(out) == 6 and np.all(np.diff(energies) >= 0)
    assert energies[0] <= start


def test_ga_removes_collapsed_duplicates_and_takes_immigrants():
    rng = np.random.default_rng(1)
    diamond = bulk("Si", "diamond", 5.43)
    pop = [random_structure({"Si": 2}, "cubic", rng) for _ in range(4)]

    def collapse(atoms):  # a scorer whose "relaxation" sends every structure to one minimum
        return diamond.copy(), -1.0

    out, energies = run_ga(pop, collapse, rng, 0, GASettings(population_size=4))
    assert len(out) == 2  # four copies of one minimum keep only the two parents the GA needs

    made = []

    def immigrant(gen):
        atoms = random_structure({"Si": 2}, "hexagonal", gen)
        made.append(atoms)
        return atoms

    def volume_score(atoms):
        return atoms, abs(atoms.get_volume() / len(atoms) - 20.0)

    settings = GASettings(population_size=8, n_children=3, n_immigrants=2)
    out, energies = run_ga(pop, volume_score, rng, 3, settings, new_random=immigrant)
    assert len(made) == 6 and len(out) <= 8
    out2, _ = run_ga(pop, volume_score, rng, 3, settings)  # no generator: no immigrants
    assert len(made) == 6


def test_ga_refills_an_unscorable_population_from_fresh_structures():
    rng = np.random.default_rng(2)
    pop = [random_structure({"Si": 2}, "cubic", rng) for _ in range(4)]
    fresh = []

    def immigrant(gen):
        atoms = random_structure({"Si": 2}, "hexagonal", gen)
        atoms.info["fresh"] = True
        fresh.append(atoms)
        return atoms

    def only_fresh(atoms):  # a potential that fails (None) on every old member
        return (atoms, abs(atoms.get_volume() / len(atoms) - 20.0)) if atoms.info.get("fresh") else None

    out, _ = run_ga(pop, only_fresh, rng, 1, GASettings(population_size=4, n_children=2), new_random=immigrant)
    assert len(fresh) >= 2 and all(a.info.get("fresh") for a in out)
    with pytest.raises(PopulationCollapsedError, match="Fewer than two"):
        run_ga(pop, lambda atoms: None, rng, 1, GASettings(population_size=4), new_random=immigrant)
    with pytest.raises(PopulationCollapsedError):
        run_ga(pop, lambda atoms: None, rng, 1, GASettings(population_size=4))
