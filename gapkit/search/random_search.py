"""Random search (AIRSS-style), the baseline every method must beat: random symmetric structure of a random
crystal system -> oracle relaxation, until the budget is spent."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from gapkit.search.oracle import CalculatorFactory, OracleCounter, OracleResult, relax
from gapkit.search.population import CRYSTAL_SYSTEMS, random_crystal, stoichiometry
from gapkit.search.state import Improvement

# the random stream of random search: SeedSequence([seed, RANDOM_SEARCH_STREAM]), apart from the GA's streams;
# the value every recorded run used
RANDOM_SEARCH_STREAM = 424242


@dataclass
class SearchTrace:
    """What any search leaves for comparison: improvements of the best energy vs oracle calls."""

    improvements: list[Improvement] = field(default_factory=list)
    counter: OracleCounter = field(default_factory=OracleCounter)

    def record(self, result: OracleResult) -> None:
        """Count an oracle relaxation and keep it if it is a new lowest energy."""
        self.counter.add(result)
        best = self.improvements[-1].energy_per_atom if self.improvements else np.inf
        if not result.failed and result.energy_per_atom < best - 1e-9:
            self.improvements.append(Improvement(self.counter.total, result.energy_per_atom, result.atoms.copy(),
                                                 relaxed=result.relaxed))


def random_search(formula: str, n_atoms: int, oracle: CalculatorFactory, budget: int, seed: int = 0,
                  relax_steps: int = 100, fmax: float = 0.05,
                  crystal_systems: tuple[str, ...] = tuple(CRYSTAL_SYSTEMS), progress: bool = True) -> SearchTrace:
    """Random symmetric structures relaxed by the oracle until ``budget`` oracle calls are spent."""
    counts = stoichiometry(formula, n_atoms)
    rng = np.random.default_rng(np.random.SeedSequence([seed, RANDOM_SEARCH_STREAM]))
    trace = SearchTrace()
    with tqdm(total=budget, desc="random search", leave=False, disable=not progress) as bar:
        while trace.counter.total < budget:
            _, atoms = random_crystal(counts, crystal_systems, rng)
            steps = min(relax_steps, budget - trace.counter.total - 1)
            result = relax(atoms, oracle, fmax=fmax, steps=max(steps, 0))
            trace.record(result)
            bar.update(result.n_calls)
    return trace
