"""Initial populations: PyXtal random symmetric structures per crystal system, with checks.

Also the structure-level checks the GA needs everywhere: composition parsing with clear errors,
the minimum-distance test (applied before any oracle call) and duplicate detection with
pymatgen's ``StructureMatcher``.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.io.ase import AseAtomsAdaptor

from gapkit.featurize.composition import FormulaError, parse_formula

log = logging.getLogger(__name__)

# Space-group number ranges of the 7 crystal systems (International Tables).
CRYSTAL_SYSTEMS: dict[str, tuple[int, int]] = {
    "triclinic": (1, 2), "monoclinic": (3, 15), "orthorhombic": (16, 74),
    "tetragonal": (75, 142), "trigonal": (143, 167), "hexagonal": (168, 194), "cubic": (195, 230),
}


class StructureGenerationError(RuntimeError):
    """PyXtal could not build a structure with the requested composition and symmetry."""


def stoichiometry(formula: str, n_atoms: int) -> dict[str, int]:
    """Atoms per element for ``n_atoms`` atoms of ``formula`` (e.g. TiO2, 12 -> {Ti: 4, O: 8})."""
    comp = parse_formula(formula)  # FormulaError for unknown elements / bad syntax
    reduced, _ = comp.get_reduced_composition_and_factor()
    per_unit = int(round(reduced.num_atoms))
    if n_atoms <= 0 or n_atoms % per_unit:
        raise ValueError(f"{n_atoms} atoms cannot hold whole formula units of {reduced.reduced_formula} "
                         f"({per_unit} atoms each); use a multiple of {per_unit}.")
    units = n_atoms // per_unit
    return {str(el): int(round(amt)) * units for el, amt in reduced.items()}


def too_close(atoms: Atoms, factor: float = 0.6) -> bool:
    """True when any two atoms (periodic images included) are closer than factor x (r_cov_i + r_cov_j)."""
    from pymatgen.optimization.neighbors import find_points_in_spheres

    radii = covalent_radii[atoms.numbers]
    pos = np.ascontiguousarray(atoms.positions, dtype=float)
    if not np.all(np.isfinite(pos)) or abs(atoms.cell.volume) < 1e-6:
        return True
    i, j, _, d = find_points_in_spheres(pos, pos, float(2 * factor * radii.max()) + 1e-6,
                                        np.array([1, 1, 1], dtype=np.int64),
                                        np.ascontiguousarray(atoms.cell.array, dtype=float), 1e-8)
    keep = d > 1e-8  # self entries; two distinct atoms at the same point still count as too close
    same_site = np.any((d <= 1e-8) & (i != j))
    return bool(same_site or np.any(d[keep] < factor * (radii[i[keep]] + radii[j[keep]])))


def _to_primitive(atoms: Atoms) -> Atoms:
    """Reduce a (possibly centred) cell to its primitive cell."""
    prim = AseAtomsAdaptor.get_structure(atoms).get_primitive_structure(tolerance=0.01)
    return AseAtomsAdaptor.get_atoms(prim)


def random_structure(counts: dict[str, int], crystal_system: str, rng: np.random.Generator,
                     max_tries: int = 60, min_distance_factor: float = 0.6,
                     volume_factor: float = 1.1) -> Atoms:
    """One PyXtal random symmetric structure of the given crystal system and exact atom counts."""
    from pyxtal import pyxtal

    if crystal_system not in CRYSTAL_SYSTEMS:
        raise ValueError(f"Unknown crystal system {crystal_system!r}; use one of {list(CRYSTAL_SYSTEMS)}.")
    for el in counts:
        if el not in atomic_numbers:
            raise FormulaError(f"Unknown element {el!r}.")
    lo, hi = CRYSTAL_SYSTEMS[crystal_system]
    species, num = list(counts), [int(counts[el]) for el in counts]
    n_total = sum(num)
    for _ in range(max_tries):
        group = int(rng.integers(lo, hi + 1))
        crystal = pyxtal()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                crystal.from_random(3, group, species, num, factor=volume_factor, conventional=False,
                                    random_state=int(rng.integers(2**31 - 1)))
        except Exception as err:  # pyxtal raises many types for incompatible Wyckoff sets
            log.debug("pyxtal group %d failed: %s", group, err)
            continue
        if not crystal.valid:
            continue
        atoms = crystal.to_ase(resort=True)
        if len(atoms) != n_total:
            atoms = _to_primitive(atoms)
        if len(atoms) != n_total or too_close(atoms, min_distance_factor):
            continue
        atoms.info.update(crystal_system=crystal_system, spacegroup=group, origin="pyxtal")
        return atoms
    raise StructureGenerationError(
        f"No {crystal_system} structure with {counts} after {max_tries} PyXtal tries; try another "
        f"atom count (Wyckoff multiplicities limit which symmetric cells exist) or more tries.")


def random_crystal(counts: dict[str, int], crystal_systems: list[str] | tuple[str, ...], rng: np.random.Generator,
                   **kwargs) -> tuple[str, Atoms]:
    """A crystal system drawn at random from ``crystal_systems`` and a :func:`random_structure` of it (``kwargs``
    passed on), as (system, atoms); raises :class:`StructureGenerationError` naming the system if PyXtal finds none."""
    system = crystal_systems[int(rng.integers(len(crystal_systems)))]
    return system, random_structure(counts, system, rng, **kwargs)


def initial_population(counts: dict[str, int], crystal_system: str, size: int,
                       rng: np.random.Generator, **kwargs) -> list[Atoms]:
    """``size`` random symmetric structures of one crystal system."""
    return [random_structure(counts, crystal_system, rng, **kwargs) for _ in range(size)]


_MATCHER = StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5, primitive_cell=True, scale=True)


def same_structure(a: Atoms, b: Atoms) -> bool:
    """True when pymatgen's StructureMatcher says a and b are the same crystal."""
    return bool(_MATCHER.fit(AseAtomsAdaptor.get_structure(a), AseAtomsAdaptor.get_structure(b)))


def is_duplicate(atoms: Atoms, energy_per_atom: float, pool: list[Atoms], pool_energies: list[float],
                 energy_window: float = 0.02) -> bool:
    """True when ``atoms`` matches a pool member; only members within ``energy_window`` eV/atom are
    compared, because StructureMatcher is slow and equal crystals have equal energies."""
    for other, e in zip(pool, pool_energies):
        if abs(e - energy_per_atom) <= energy_window and same_structure(atoms, other):
            return True
    return False
