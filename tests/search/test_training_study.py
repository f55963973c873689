"""The reduced activation/optimizer study: the random labelled set and the study grids."""

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from gapkit.search.oracle import emt_calculator
from gapkit.search.potential import TrainSettings
from gapkit.search.descriptors import ChebyshevParams, SymmetryFunctionParams
from gapkit.search.training_study import (PAPER_TI_O_SET, activation_study, descriptor_study,
                                          labelled_random_set, optimizer_study, reference_baselines,
                                          ti_o_compositions)


class NoAluminiumEMT(Calculator):
    """EMT that fails on every cell holding Al (a stand-in for an SCF that does not converge)."""

    implemented_properties = ["energy", "forces", "stress"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if "Al" in self.atoms.get_chemical_symbols():
            raise RuntimeError("SCF did not converge")
        copy = self.atoms.copy()
        copy.calc = EMT()
        self.results = {"energy": copy.get_potential_energy(), "forces": copy.get_forces(),
                        "stress": copy.get_stress()}


def no_aluminium_calculator():
    return NoAluminiumEMT()


def test_paper_compositions():
    assert sum(row[3] for row in PAPER_TI_O_SET) == 6056  # the paper's total
    assert len(ti_o_compositions()) == 15
    small = ti_o_compositions(9)
    assert len(small) == 6 and all(c["Ti"] + c["O"] in (6, 9) for c in small)


def test_labelled_set_counts_calls_and_skips_failures():
    comps = [{"Cu": 2}, {"Cu": 1, "Al": 1}]
    data = labelled_random_set(comps, 3, no_aluminium_calculator, seed=0, progress=False)
    assert data.oracle_calls == 6 and data.failed == 3 and len(data.structures) == 3
    assert all(a.get_chemical_formula() == "Cu2" for a in data.structures)
    again = labelled_random_set(comps, 3, no_aluminium_calculator, seed=0, progress=False)
    assert again.energies == data.energies  # reproducible from the seed
    assert list(data.table()["structures"]) == [3]
    with pytest.raises(ValueError):
        labelled_random_set([], 3, emt_calculator)


@pytest.fixture(scope="module")
def copper_set():
    return labelled_random_set([{"Cu": 2}, {"Cu": 3}], 8, emt_calculator, seed=0, progress=False)


def test_activation_and_optimizer_grids(copper_set):
    settings = TrainSettings(max_epochs=30, patience=30)
    table, curves = activation_study(copper_set, [29], ["tanh", "relu"], settings, seeds=[0, 1], progress=False)
    assert len(table) == 4 and set(curves) == {"tanh", "relu"}
    assert np.isfinite(table["test RMSE (eV/atom)"]).all()
    grid = optimizer_study(copper_set, [29], ["adam", "sgd"], [4, None], [1e-2, 1e9], settings, seeds=[0],
                           progress=False)
    assert len(grid) == 8 and set(grid["batch size"]) == {"4", "full"}
    sane = grid[grid["lr"] == 1e-2]
    assert np.isfinite(sane["test RMSE (eV/atom)"]).all() and (sane["diverged"] == 0).all()
    # plain SGD at lr 1e9 blows the weights up: reported as diverged, not as a number
    assert grid[(grid["optimizer"] == "sgd") & (grid["lr"] == 1e9)]["diverged"].eq(1).all()


def test_descriptor_study_and_reference_baselines(copper_set):
    kinds = {"symmetry functions": SymmetryFunctionParams(), "Chebyshev": ChebyshevParams(radial_order=6)}
    table = descriptor_study(copper_set, [29], kinds, TrainSettings(max_epochs=30, patience=30), seeds=[0],
                             progress=False)
    assert list(table["descriptor"]) == list(kinds)
    assert list(table["features per atom"]) == [11, 12]
    assert np.isfinite(table["test RMSE (eV/atom)"]).all()
    floor = reference_baselines(copper_set, seeds=[0, 1])
    assert set(floor["model"]) == {"training mean", "composition only"} and len(floor) == 4
    # one element only: composition alone can do no better than the mean energy
    by_model = floor.groupby("model")["test RMSE (eV/atom)"].mean()
    assert by_model["composition only"] == pytest.approx(by_model["training mean"])


def test_label_study_compares_the_three_labellings():
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from gapkit.search.training_study import LABELLINGS, label_study
    from gapkit.search.potential import TrainSettings

    structures, energies, forces, stresses = [], [], [], []
    for k in range(14):
        atoms = bulk("Cu", "fcc", 3.6, cubic=True)
        atoms.rattle(0.12, seed=k)
        atoms.set_cell(atoms.cell * (0.96 + 0.006 * k), scale_atoms=True)
        atoms.calc = EMT()
        energies.append(atoms.get_potential_energy())
        forces.append(atoms.get_forces())
        stresses.append(atoms.get_stress(voigt=False))
        atoms.calc = None
        structures.append(atoms)
    table = label_study(structures[:12], energies[:12], forces[:12], stresses[:12], structures[12:],
                        energies[12:], [29], TrainSettings(max_epochs=300, patience=100), seed=0, n_folds=3)
    assert list(table["training labels"]) == list(LABELLINGS)
    assert table.drop(columns=["training labels"]).notna().all().all()
    # the force labels teach forces: the held-out force error drops
    assert table["held-out F RMSE (eV/Å)"].iloc[1] < table["held-out F RMSE (eV/Å)"].iloc[0]
    with pytest.raises(ValueError, match="folds"):
        label_study(structures[:4], energies[:4], forces[:4], stresses[:4], [], [], [29], n_folds=4)
