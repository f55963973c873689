"""ASE's bulk GA as a baseline (EMT oracle)."""

import numpy as np

from gapkit.search.ase_ga_search import ase_ga_search
from gapkit.search.oracle import emt_calculator


def test_ase_ga_baseline_spends_the_budget_and_is_seeded():
    kwargs = dict(budget=60, seed=0, relax_steps=10, population_size=4, n_initial=4, progress=False)
    trace = ase_ga_search("Cu", 2, emt_calculator, **kwargs)
    assert trace.counter.total == 60 and trace.counter.single_points == 0
    energies = [imp.energy_per_atom for imp in trace.improvements]
    assert energies and np.all(np.diff(energies) < 0)
    assert all(len(imp.atoms) == 2 and set(imp.atoms.get_chemical_symbols()) == {"Cu"}
               for imp in trace.improvements)
    assert energies[-1] < 0.3  # EMT eV/atom; fcc Cu is ~0; random 2-atom boxes start far above
    again = ase_ga_search("Cu", 2, emt_calculator, **kwargs)
    assert [i.energy_per_atom for i in again.improvements] == energies
