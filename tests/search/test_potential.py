"""The per-element network potential: autograd forces, overfitting a tiny set, relaxation via ASE."""

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.filters import UnitCellFilter
from ase.optimize import BFGS

from gapkit.search.potential import (ACTIVATIONS, OPTIMIZERS, NNPotential, PotentialCalculator, TrainSettings,
                                     fit_potential)


def _emt_set(n=24, seed=0):
    rng = np.random.default_rng(seed)
    structures, energies = [], []
    for k in range(n):
        atoms = bulk("Cu", "fcc", 3.6 + 0.08 * rng.normal(), cubic=True)
        atoms.rattle(0.08, seed=k)
        atoms.calc = EMT()
        structures.append(atoms)
        energies.append(atoms.get_potential_energy())
    return structures, energies


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_forces_and_stress_are_minus_gradients(activation):
    pot = NNPotential([14], activation=activation)
    atoms = bulk("Si", "diamond", 5.43, cubic=True)
    atoms.rattle(0.1, seed=1)
    energy, forces, stress = pot.energy_forces_stress(atoms)
    assert energy == pytest.approx(pot.predict(atoms))
    h = 1e-5
    for atom, axis in [(0, 0), (3, 2), (5, 1)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        fd = -(pot.predict(plus) - pot.predict(minus)) / (2 * h)
        assert forces[atom, axis] == pytest.approx(fd, rel=1e-5, abs=1e-7)
    # stress_xx = dE/d(eps_xx) / V
    plus, minus = atoms.copy(), atoms.copy()
    for a, sign in ((plus, 1), (minus, -1)):
        a.set_cell(a.cell.array @ np.diag([1 + sign * h, 1, 1]), scale_atoms=True)
    fd = (pot.predict(plus) - pot.predict(minus)) / (2 * h) / atoms.get_volume()
    assert stress[0, 0] == pytest.approx(fd, rel=1e-5, abs=1e-8)


def test_overfits_tiny_set_and_relaxes():
    structures, energies = _emt_set()
    pot, hist = fit_potential(structures, energies, [29],
                              TrainSettings(max_epochs=1500, patience=1500, val_fraction=0.2), seed=0)
    pred = np.array([pot.predict(s) / len(s) for s in structures])
    true = np.array(energies) / 4
    assert np.sqrt(np.mean((pred - true) ** 2)) < 0.01  # eV/atom, spread of targets ~0.1
    assert hist.best_val_rmse < np.std(true)
    atoms = structures[0].copy()
    atoms.calc = PotentialCalculator(pot)
    e0 = atoms.get_potential_energy()
    BFGS(UnitCellFilter(atoms), logfile=None).run(fmax=0.05, steps=40)
    assert atoms.get_potential_energy() < e0


def test_calculator_skips_ase_comparison_only_for_identical_atoms(monkeypatch):
    import ase.calculators.calculator as ase_calc

    seen = []
    real = ase_calc.compare_atoms
    monkeypatch.setattr(ase_calc, "compare_atoms", lambda *a, **kw: seen.append(1) or real(*a, **kw))
    atoms = bulk("Si", "diamond", 5.43)
    atoms.calc = PotentialCalculator(NNPotential([14]))
    e0 = atoms.get_potential_energy()  # first call: nothing cached, ASE's check runs once
    atoms.get_forces(), atoms.get_stress(), atoms.get_potential_energy()
    assert len(seen) == 1  # same atoms: answered from the cache without ASE's comparison
    same = atoms.copy()
    same.positions[0, 0] += 1e-17  # below ASE's tolerance: ASE compares and finds no change
    assert atoms.calc.check_state(same) == [] and len(seen) == 2
    moved = atoms.copy()
    moved.positions[0, 0] += 0.05
    assert atoms.calc.check_state(moved) == ["positions"]
    assert atoms.calc.get_potential_energy(moved) != e0
    strained = atoms.copy()
    strained.set_cell(strained.cell.array * 1.01, scale_atoms=True)
    assert set(atoms.calc.check_state(strained)) == {"cell", "positions"}


def test_bad_inputs():
    with pytest.raises(ValueError, match="activation"):
        NNPotential([14], activation="swish")
    with pytest.raises(ValueError, match="species"):
        NNPotential([29]).predict(bulk("Si", "diamond", 5.43))
    with pytest.raises(ValueError, match="at least 2"):
        fit_potential([bulk("Cu")], [1.0, 2.0], [29])


def _rattled_cu_with_forces(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    structures, energies, forces = [], [], []
    for k in range(n):
        atoms = bulk("Cu", "fcc", 3.6, cubic=True)
        atoms.rattle(0.15, seed=seed * 1000 + k)
        atoms.set_cell(atoms.cell * rng.uniform(0.95, 1.05), scale_atoms=True)
        atoms.calc = EMT()
        energies.append(atoms.get_potential_energy())
        forces.append(atoms.get_forces())
        atoms.calc = None
        structures.append(atoms)
    return structures, energies, forces


def test_gradient_labels_equal_autograd_forces_and_stress():
    from gapkit.search.potential import _GradientLabels, _stack_descriptors

    structures, _, forces = _rattled_cu_with_forces(3)
    structures[1] = structures[1].repeat((1, 1, 2))  # structures of different sizes share the padding
    structures[2].set_cell(structures[2].cell.array @ [[1, 0.05, 0], [0, 1, 0], [0, 0, 0.97]], scale_atoms=True)
    forces[1] = np.zeros((8, 3))
    pot = NNPotential([29])
    desc, sp, owner = _stack_descriptors(structures, pot)
    labels = _GradientLabels(structures, forces, [np.zeros((3, 3))] * 3, pot, owner)
    desc.requires_grad_(True)
    grad_desc, = torch.autograd.grad(pot.atomic_energies(desc, sp).sum(), desc)
    f_pred, s_pred = labels.predict(grad_desc)
    for k, atoms in enumerate(structures):
        _, f_ref, s_ref = pot.energy_forces_stress(atoms)
        np.testing.assert_allclose(f_pred[k, :len(atoms)].numpy(), f_ref, atol=1e-10)
        np.testing.assert_allclose(s_pred[k].numpy(), s_ref, atol=1e-10)


def test_training_on_forces_generalises_better_from_few_structures():
    structures, energies, forces = _rattled_cu_with_forces(24, seed=1)
    held_out, held_e, held_f = _rattled_cu_with_forces(8, seed=2)
    errors = {}
    for weight in (0.0, 1.0):
        pot, _ = fit_potential(structures, energies, [29],
                               TrainSettings(max_epochs=800, patience=200, force_weight=weight), forces=forces)
        e_rmse = np.sqrt(np.mean([((pot.predict(a) - e) / len(a)) ** 2 for a, e in zip(held_out, held_e)]))
        f_rmse = np.sqrt(np.mean([(pot.energy_forces_stress(a)[1] - f) ** 2 for a, f in zip(held_out, held_f)]))
        errors[weight] = (e_rmse, f_rmse)
    assert errors[1.0][1] < 0.75 * errors[0.0][1]  # forces: 3N labels per oracle call
    assert errors[1.0][0] < errors[0.0][0]
    with pytest.raises(ValueError, match="force arrays"):
        fit_potential(structures, energies, [29], forces=forces[:3])


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_optimizer_learns_in_minibatches(optimizer):
    structures, energies = _emt_set(16)
    lr = 1.0 if optimizer in ("adadelta", "lbfgs") else 1e-2  # Adadelta and LBFGS work at unit scale
    _, hist = fit_potential(structures, energies, [29], TrainSettings(
        optimizer=optimizer, batch_size=4, lr=lr, max_epochs=40, patience=40), seed=0)
    assert len(hist.train_rmse) == 40
    assert min(hist.train_rmse[1:]) < hist.train_rmse[0]


def test_batch_of_whole_set_equals_full_batch():
    structures, energies = _emt_set(10)
    runs = [fit_potential(structures, energies, [29], TrainSettings(batch_size=b, max_epochs=30), seed=1)[1]
            for b in (None, 100)]
    assert runs[0].train_rmse == runs[1].train_rmse


def test_bad_training_settings():
    structures, energies = _emt_set(4)
    with pytest.raises(ValueError, match="optimizer"):
        fit_potential(structures, energies, [29], TrainSettings(optimizer="adamw2"))
    with pytest.raises(ValueError, match="batch_size"):
        fit_potential(structures, energies, [29], TrainSettings(batch_size=0))
    with pytest.raises(ValueError, match="full-batch"):
        fit_potential(structures, energies, [29], TrainSettings(batch_size=2, force_weight=1.0))
    with pytest.raises(ValueError, match="weight decay"):
        fit_potential(structures, energies, [29], TrainSettings(optimizer="lbfgs", weight_decay=1e-3))


def test_kept_descriptors_and_the_relaxation_s_last_energy_are_the_numbers_computed_afresh():
    from gapkit.search.descriptors import atoms_descriptors
    from gapkit.search.loop import make_scorer
    from gapkit.search.potential import cached_descriptors

    torch.manual_seed(0)
    pot = NNPotential([29])
    atoms = bulk("Cu", "fcc", a=3.7) * (1, 1, 2)
    atoms.rattle(0.05, seed=1)
    np.testing.assert_array_equal(cached_descriptors(atoms, pot.species, pot.params).numpy(),
                                  atoms_descriptors(atoms, pot.species, pot.params))
    assert pot.predict_known(atoms) == pot.predict(atoms)
    relaxed, e = make_scorer(pot, relax_steps=5)(atoms)
    assert e == pot.predict(relaxed) / len(relaxed)  # bit for bit: GA rankings are unchanged
