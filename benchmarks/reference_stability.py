"""Is each reference crystal a minimum of the oracle? And what are the best structures a search kept?

Run: ``python benchmarks/reference_stability.py [--formula CaTiO3 TiO2 Si] [--states DIR]``. For every reference
prototype (``gapkit.search.references.reference_candidates``) it prints the oracle-relaxed energy and space
group, then relaxes it again after a 0.05 Å rattle (two seeds): a reference that drops is a saddle of the
oracle, not its minimum. With ``--states DIR`` (the ``<csv>.states`` folder that
``search_oracle_calls.py --csv`` keeps) it describes each saved search's best structure: energy, space
group, volume per atom, shortest distance, coordination, and whether it matches the reference.
CHGNet is the oracle. Not a test: it measures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from ase import Atoms
from pymatgen.analysis.local_env import CrystalNN
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from gapkit.search.references import reference_candidates, reference_structure
from gapkit.search.oracle import chgnet_calculator, relax
from gapkit.search.population import same_structure
from gapkit.search.state import load_state


def describe(atoms: Atoms) -> str:
    """Space group (symprec 0.1), volume per atom, shortest distance and coordination numbers of a cell."""
    structure = AseAtomsAdaptor.get_structure(atoms)
    group = SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_symbol()
    shortest = min(structure.get_distance(i, j) for i in range(len(structure)) for j in range(i))
    neighbours = CrystalNN()
    coordination = " ".join(f"{site.specie}{neighbours.get_cn(structure, i)}" for i, site in enumerate(structure))
    return (f"{group:8s} {structure.volume / len(structure):5.2f} Å³/atom, shortest {shortest:.2f} Å, "
            f"coordination {coordination}")


def main() -> None:
    """Relax each reference again from rattled positions; describe saved searches' best structures."""
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formula", nargs="+", default=["CaTiO3", "TiO2", "Si"])
    parser.add_argument("--states", help="folder of saved search states to describe")
    args = parser.parse_args()
    for formula in args.formula:
        for name, atoms in reference_candidates(formula).items():
            relaxed = relax(atoms, chgnet_calculator, fmax=0.01, steps=200)
            print(f"{formula} {name}: {relaxed.energy_per_atom:.4f} eV/atom, {describe(relaxed.atoms)}")
            for seed in (0, 1):
                rattled = relaxed.atoms.copy()
                rattled.rattle(0.05, seed=seed)
                again = relax(rattled, chgnet_calculator, fmax=0.01, steps=400)
                print(f"  rattled (seed {seed}), relaxed: {again.energy_per_atom:.4f} eV/atom "
                      f"({1000 * (again.energy_per_atom - relaxed.energy_per_atom):+.1f} meV/atom), "
                      f"{describe(again.atoms)}, matches: {same_structure(again.atoms, relaxed.atoms)}")
    if args.states:
        references: dict[str, tuple] = {}  # one oracle relaxation per formula
        for path in sorted(Path(args.states).glob("*.pkl")):
            state = load_state(path)
            formula = AseAtomsAdaptor.get_structure(state.train_atoms[0]).composition.reduced_formula
            if formula not in references:
                references[formula] = reference_structure(formula, chgnet_calculator)
            name, ref = references[formula]
            best = state.best
            print(f"{path.name}: best {best.energy_per_atom:.4f} eV/atom after {best.calls} calls "
                  f"({1000 * (best.energy_per_atom - ref.energy_per_atom):+.1f} meV/atom against {name}), "
                  f"{describe(best.atoms)}, matches {name}: {same_structure(best.atoms, ref.atoms)}")


if __name__ == "__main__":
    main()
