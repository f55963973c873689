"""Random search, the baseline (EMT oracle)."""

import numpy as np

from gapkit.search.oracle import emt_calculator
from gapkit.search.random_search import random_search


def test_random_search_spends_exactly_the_budget_and_improves():
    kwargs = dict(budget=40, seed=0, relax_steps=15, crystal_systems=("cubic", "hexagonal"), progress=False)
    trace = random_search("Cu", 2, emt_calculator, **kwargs)
    assert trace.counter.total == 40 and trace.counter.single_points == 0
    energies = [imp.energy_per_atom for imp in trace.improvements]
    assert energies and np.all(np.diff(energies) < 0)
    assert all(1 <= imp.calls <= 40 for imp in trace.improvements)
    again = random_search("Cu", 2, emt_calculator, **kwargs)
    assert [i.energy_per_atom for i in again.improvements] == energies  # seeded
