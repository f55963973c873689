"""Chebyshev descriptors: agree with a direct loop over neighbours, invariant, and give exact forces."""

import itertools

import numpy as np
import pytest
from ase.build import bulk
from ase.neighborlist import neighbor_list

from gapkit.search.descriptors import ChebyshevParams, atoms_descriptors, species_weights
from gapkit.search.potential import NNPotential

PARAMS = ChebyshevParams(r_cut=4.5, angular_cut=3.5, radial_order=6, angular_order=3)


def _direct(atoms, species, p):
    """Straight from the definition: loops over ASE's neighbour list and numpy's Chebyshev module."""
    from numpy.polynomial import chebyshev as C

    w = dict(zip(species, species_weights(len(species))))
    fc = lambda r, rc: 0.5 * (np.cos(np.pi * r / rc) + 1) * (r < rc)  # noqa: E731
    ii, jj, dd, vv = neighbor_list("ijdD", atoms, p.r_cut)
    n_r, n_a = p.radial_order + 1, p.angular_order + 1
    out = np.zeros((len(atoms), p.n_features(len(species))))
    for i in range(len(atoms)):
        nb = np.where(ii == i)[0]
        for k in nb:
            t = C.chebvander(2 * dd[k] / p.r_cut - 1, p.radial_order)[0] * fc(dd[k], p.r_cut)
            out[i, :n_r] += t
            if len(species) > 1:
                out[i, n_r + n_a:2 * n_r + n_a] += t * w[atoms.numbers[jj[k]]]
        for a, b in itertools.combinations(nb, 2):
            cos = vv[a] @ vv[b] / (dd[a] * dd[b])
            t = C.chebvander(np.clip(cos, -1, 1), p.angular_order)[0] * fc(dd[a], p.angular_cut) * fc(dd[b], p.angular_cut)
            out[i, n_r:n_r + n_a] += t
            if len(species) > 1:
                out[i, 2 * n_r + n_a:] += t * w[atoms.numbers[jj[a]]] * w[atoms.numbers[jj[b]]]
    return out


def _cells():
    si = bulk("Si", "diamond", 5.43, cubic=True)
    rocksalt = bulk("MgO", "rocksalt", 4.2) * (1, 1, 2)
    out = []
    for k, atoms in enumerate((si, rocksalt)):
        atoms.rattle(0.07, seed=k)
        out.append(atoms)
    return out


@pytest.mark.parametrize("atoms", _cells(), ids=["Si", "MgO"])
def test_matches_direct_loop(atoms):
    species = sorted(set(atoms.numbers.tolist()))
    mine = atoms_descriptors(atoms, species, PARAMS)
    assert mine.shape == (len(atoms), PARAMS.n_features(len(species)))
    np.testing.assert_allclose(mine, _direct(atoms, species, PARAMS), rtol=1e-9, atol=1e-10)


def test_invariances():
    atoms = _cells()[1]
    species = [8, 12]
    base = atoms_descriptors(atoms, species, PARAMS)
    moved = atoms.copy()
    moved.rotate(37, (1, 2, 3), rotate_cell=True)
    moved.translate((0.3, -1.1, 2.0))
    moved.wrap()
    np.testing.assert_allclose(atoms_descriptors(moved, species, PARAMS), base, atol=1e-9)
    perm = np.random.default_rng(0).permutation(len(atoms))
    np.testing.assert_allclose(atoms_descriptors(atoms[perm], species, PARAMS), base[perm], atol=1e-9)


def test_potential_forces_are_minus_gradients():
    atoms = _cells()[1]
    pot = NNPotential([8, 12], params=PARAMS)
    _, forces, _ = pot.energy_forces_stress(atoms)
    h = 1e-5
    for atom, axis in [(0, 0), (2, 1), (3, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        assert forces[atom, axis] == pytest.approx(-(pot.predict(plus) - pot.predict(minus)) / (2 * h),
                                                   rel=1e-5, abs=1e-8)


def test_bad_parameters():
    with pytest.raises(ValueError, match="angular_cut"):
        ChebyshevParams(r_cut=4.0, angular_cut=5.0)
    with pytest.raises(ValueError, match="orders"):
        ChebyshevParams(radial_order=-1)
    with pytest.raises(ValueError, match="species"):
        atoms_descriptors(bulk("Si", "diamond", 5.43), [6], PARAMS)
