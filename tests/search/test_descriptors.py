"""Symmetry functions: agree with DScribe's ACSF and are invariant to rotation, translation, permutation."""

import numpy as np
import pytest
from ase.build import bulk
from dscribe.descriptors import ACSF

from gapkit.search.descriptors import SymmetryFunctionParams, atoms_descriptors, cosine_cutoff

PARAMS = SymmetryFunctionParams()


def _structures():
    si = bulk("Si", "diamond", 5.43, cubic=True)
    nacl = bulk("NaCl", "rocksalt", 5.6)
    tio = bulk("Ti", "hcp", 2.95) * (1, 1, 2)
    tio.numbers[1] = 8
    out = []
    for k, atoms in enumerate((si, nacl, tio)):
        atoms = atoms.copy()
        atoms.rattle(0.05, seed=k)
        out.append(atoms)
    return out


@pytest.mark.parametrize("atoms", _structures(), ids=["Si", "NaCl", "TiO"])
def test_matches_dscribe_acsf(atoms):
    species = sorted(set(atoms.numbers.tolist()))
    ref = ACSF(species=species, r_cut=PARAMS.r_cut, g2_params=[list(p) for p in PARAMS.g2],
               g4_params=[list(p) for p in PARAMS.g4], periodic=True).create(atoms)
    mine = atoms_descriptors(atoms, species, PARAMS)
    assert mine.shape == ref.shape == (len(atoms), PARAMS.n_features(len(species)))
    assert np.abs(ref).max() > 0.1
    np.testing.assert_allclose(mine, ref, rtol=1e-8, atol=1e-10)


def test_invariances():
    atoms = _structures()[2] * (2, 1, 1)
    species = [8, 22]
    base = atoms_descriptors(atoms, species, PARAMS)
    moved = atoms.copy()
    moved.translate([0.3, -0.7, 1.1])
    moved.wrap()
    np.testing.assert_allclose(atoms_descriptors(moved, species, PARAMS), base, atol=1e-10)
    rotated = atoms.copy()
    rotated.rotate(37, "z", rotate_cell=True)
    rotated.rotate(21, "x", rotate_cell=True)
    np.testing.assert_allclose(atoms_descriptors(rotated, species, PARAMS), base, atol=1e-10)
    perm = np.random.default_rng(0).permutation(len(atoms))
    np.testing.assert_allclose(atoms_descriptors(atoms[perm], species, PARAMS), base[perm], atol=1e-10)


def test_cutoff_and_unknown_element():
    import torch
    r = torch.tensor([0.0, 2.5, 5.0, 6.0])
    np.testing.assert_allclose(cosine_cutoff(r, 5.0).numpy(), [1.0, 0.5, 0.0, 0.0], atol=1e-7)
    with pytest.raises(ValueError, match="not among"):
        atoms_descriptors(bulk("Si", "diamond", 5.43), [6], PARAMS)
