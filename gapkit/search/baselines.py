"""Baselines and the success metric: random symmetric search (AIRSS-style) and ground-state references.

Success means the lowest structure found so far matches the oracle's own ground-state reference
under pymatgen's StructureMatcher; counting oracle calls to that point lets every method be compared
at the same budget.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.spacegroup import crystal
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from tqdm.auto import tqdm

from gapkit.search.active import Improvement
from gapkit.search.oracle import CalculatorFactory, OracleCounter, OracleResult, relax
from gapkit.search.population import CRYSTAL_SYSTEMS, random_structure, same_structure, stoichiometry

log = logging.getLogger(__name__)


def reference_candidates(formula: str) -> dict[str, Atoms]:
    """Experimental ground-state prototypes: diamond Si, rutile/anatase TiO2, cubic CaTiO3."""
    if formula == "Si":
        return {"diamond": bulk("Si", "diamond", 5.43)}
    if formula == "TiO2":
        return {"rutile": crystal(["Ti", "O"], [(0, 0, 0), (0.3048, 0.3048, 0)], spacegroup=136,
                                  cellpar=[4.594, 4.594, 2.959, 90, 90, 90]),
                "anatase": crystal(["Ti", "O"], [(0, 0, 0), (0, 0, 0.2081)], spacegroup=141,
                                   cellpar=[3.785, 3.785, 9.514, 90, 90, 90])}
    if formula == "CaTiO3":
        return {"cubic perovskite": crystal(["Ca", "Ti", "O"], [(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0)],
                                            spacegroup=221, cellpar=[3.897] * 3 + [90] * 3)}
    raise ValueError(f"No reference structure for {formula!r}; known: Si, TiO2, CaTiO3.")


def reference_structure(formula: str, oracle: CalculatorFactory, steps: int = 200) -> tuple[str, OracleResult]:
    """The oracle-relaxed reference: the lowest of the relaxed prototypes (not counted in budgets)."""
    relaxed = {name: relax(atoms, oracle, fmax=0.01, steps=steps)
               for name, atoms in reference_candidates(formula).items()}
    name = min(relaxed, key=lambda k: relaxed[k].energy_per_atom)
    return name, relaxed[name]


def conventional_lattice(atoms: Atoms, symprec: float = 0.05) -> tuple[float, float, float]:
    """Lattice constants a, b, c (Å) of the conventional standard cell."""
    conv = SpacegroupAnalyzer(AseAtomsAdaptor.get_structure(atoms), symprec=symprec
                              ).get_conventional_standard_structure()
    return tuple(float(x) for x in conv.lattice.abc)


@dataclass
class SearchTrace:
    """What any search leaves for comparison: improvements of the best energy vs oracle calls."""

    improvements: list[Improvement] = field(default_factory=list)
    counter: OracleCounter = field(default_factory=OracleCounter)


def random_search(formula: str, n_atoms: int, oracle: CalculatorFactory, budget: int, seed: int = 0,
                  relax_steps: int = 100, fmax: float = 0.05,
                  crystal_systems: tuple[str, ...] = tuple(CRYSTAL_SYSTEMS), progress: bool = True
                  ) -> SearchTrace:
    """AIRSS-style: random symmetric structure (random crystal system) -> oracle relaxation, until
    ``budget`` oracle calls are spent."""
    counts = stoichiometry(formula, n_atoms)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 424242]))
    trace = SearchTrace()
    with tqdm(total=budget, desc="random search", leave=False, disable=not progress) as bar:
        while trace.counter.total < budget:
            system = crystal_systems[int(rng.integers(len(crystal_systems)))]
            atoms = random_structure(counts, system, rng)
            steps = min(relax_steps, budget - trace.counter.total - 1)
            result: OracleResult = relax(atoms, oracle, fmax=fmax, steps=max(steps, 0))
            trace.counter.add(result)
            bar.update(result.n_calls)
            best = trace.improvements[-1].energy_per_atom if trace.improvements else np.inf
            if not result.failed and result.energy_per_atom < best - 1e-9:
                trace.improvements.append(Improvement(trace.counter.total, result.energy_per_atom,
                                                      result.atoms.copy()))
    return trace


def calls_to_success(improvements: list[Improvement], reference: Atoms) -> float:
    """Oracle calls after which the best-so-far structure first matches ``reference`` (inf if never)."""
    for imp in improvements:
        if same_structure(imp.atoms, reference):
            return float(imp.calls)
    return float("inf")


def success_rate(calls: list[float], budgets: np.ndarray) -> np.ndarray:
    """Fraction of seeds that reached the ground state within each budget of oracle calls."""
    calls_arr = np.asarray(calls, dtype=float)
    return np.array([(calls_arr <= b).mean() for b in np.asarray(budgets)])


def best_energy_curve(improvements: list[Improvement], budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Step curve of the best oracle energy per atom (eV/atom) against oracle calls, up to ``budget``."""
    calls = np.arange(1, budget + 1)
    best = np.full(budget, np.nan)
    for imp in improvements:
        if imp.calls <= budget:
            best[imp.calls - 1:] = imp.energy_per_atom
    return calls, best
