"""ASE's bulk genetic algorithm (the ``ase_ga`` package) with the oracle relaxing every candidate: the
established GA baseline, run at the same budget of oracle calls as the other methods."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from tqdm.auto import tqdm

from gapkit.search.oracle import CalculatorFactory, relax
from gapkit.search.population import stoichiometry
from gapkit.search.random_search import SearchTrace
from gapkit.search.state import Improvement

# ase-ga's random stream: SeedSequence([seed, ASE_GA_STREAM]); the value every recorded run used
ASE_GA_STREAM = 171717


def ase_ga_search(formula: str, n_atoms: int, oracle: CalculatorFactory, budget: int, seed: int = 0,
                  relax_steps: int = 30, fmax: float = 0.05, population_size: int = 10,
                  n_initial: int = 10, db_path: str | None = None, progress: bool = True
                  ) -> SearchTrace:
    """ASE's bulk GA (the ``ase_ga`` package) with the oracle relaxing every candidate, until ``budget``
    oracle calls are spent: StartGenerator random cells, cut-and-splice pairing or strain mutation,
    OFPComparator for duplicates — the setup of ASE's bulk GA tutorial, scaled to a small cell."""
    import os
    import tempfile

    from ase.data import atomic_numbers as znum
    from ase_ga.cutandsplicepairing import CutAndSplicePairing
    from ase_ga.data import DataConnection, PrepareDB
    from ase_ga.ofp_comparator import OFPComparator
    from ase_ga.population import Population
    from ase_ga.standardmutations import PermutationMutation, StrainMutation
    from ase_ga.startgenerator import StartGenerator
    from ase_ga.utilities import CellBounds, closest_distances_generator

    counts = stoichiometry(formula, n_atoms)
    # ase_ga calls the legacy API (rng.randint, rng.rand), so it gets a seeded RandomState
    rng = np.random.RandomState(np.random.SeedSequence([seed, ASE_GA_STREAM]).generate_state(1)[0])
    numbers = [znum[el] for el, k in counts.items() for _ in range(k)]
    blocks = [(el, k) for el, k in counts.items()]
    blmin = closest_distances_generator(sorted(set(numbers)), ratio_of_covalent_radii=0.5)
    cellbounds = CellBounds(bounds={"phi": [35, 145], "chi": [35, 145], "psi": [35, 145],
                                    "a": [2, 40], "b": [2, 40], "c": [2, 40]})
    # box volume from covalent radii, as ASE's tutorial does (about 2x the atoms' own volume)
    from ase.data import covalent_radii
    volume = float(sum(2.0 * 4 / 3 * np.pi * covalent_radii[z] ** 3 for z in numbers))
    slab = Atoms("", pbc=True)
    start = StartGenerator(slab, blocks, blmin, box_volume=volume, number_of_variable_cell_vectors=3,
                           cellbounds=cellbounds, rng=rng)
    pairing = CutAndSplicePairing(slab, n_atoms, blmin, p1=1.0, p2=0.0, minfrac=0.15,
                                  number_of_variable_cell_vectors=3, cellbounds=cellbounds,
                                  use_tags=False, rng=rng)
    strain = StrainMutation(blmin, stddev=0.7, cellbounds=cellbounds, use_tags=False, rng=rng)
    permute = PermutationMutation(n_atoms, probability=0.3, rng=rng) if len(counts) > 1 else None
    comparator = OFPComparator(n_top=n_atoms, dE=1.0, cos_dist_max=1e-3, rcut=10.0, binwidth=0.05,
                               pbc=[True] * 3, sigma=0.05, nsigma=4, recalculate=False)
    trace = SearchTrace()

    def evaluate(atoms: Atoms) -> Atoms:
        """Relax with the oracle (counted), store energy as the raw score (higher = better)."""
        steps = max(0, min(relax_steps, budget - trace.counter.total - 1))
        result = relax(atoms, oracle, fmax=fmax, steps=steps)
        trace.counter.add(result)
        bar.update(result.n_calls)
        out = result.atoms
        out.info = atoms.info
        kvp = out.info.setdefault("key_value_pairs", {})
        if result.failed:  # ase-ga needs a score; a failed structure sinks to the bottom
            kvp["raw_score"] = -1e9
            return out
        kvp["raw_score"] = -result.energy_per_atom
        best = trace.improvements[-1].energy_per_atom if trace.improvements else np.inf
        if result.energy_per_atom < best - 1e-9:  # not trace.record: ase-ga's own copy of the atoms is kept
            trace.improvements.append(Improvement(trace.counter.total, result.energy_per_atom, out.copy(),
                                                  relaxed=result.relaxed))
        from ase.calculators.singlepoint import SinglePointCalculator
        out.calc = SinglePointCalculator(out, energy=result.energy_ev, forces=np.zeros((len(out), 3)),
                                         stress=np.zeros(6))
        return out

    with tempfile.TemporaryDirectory() as tmp, \
            tqdm(total=budget, desc="ase-ga", leave=False, disable=not progress) as bar:
        db_file = db_path or os.path.join(tmp, "ga.db")
        prep = PrepareDB(db_file, simulation_cell=slab, stoichiometry=numbers)
        for _ in range(n_initial):
            prep.add_unrelaxed_candidate(start.get_new_candidate())
        db = DataConnection(db_file)
        while db.get_number_of_unrelaxed_candidates() > 0 and trace.counter.total < budget:
            db.add_relaxed_step(evaluate(db.get_an_unrelaxed_candidate()))
        population = Population(data_connection=db, population_size=population_size,
                                comparator=comparator, use_extinct=True, rng=rng)
        n_fail = 0
        while trace.counter.total < budget and n_fail < 100:
            a1, a2 = population.get_two_candidates()
            r = rng.uniform()
            if r < 0.5:
                child, desc = pairing.get_new_individual([a1, a2])
            elif permute is not None and r < 0.7:
                child, desc = permute.get_new_individual([a1])
            else:
                child, desc = strain.get_new_individual([a1])
            if child is None:
                n_fail += 1
                continue
            n_fail = 0
            db.add_unrelaxed_candidate(child, description=desc)
            db.add_relaxed_step(evaluate(child))
            population.update()
    return trace
