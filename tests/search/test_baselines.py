"""Random-search baseline, references, and the success-rate metric (EMT oracle; no CHGNet)."""

import numpy as np
import pytest
from ase.build import bulk

from gapkit.search.active import Improvement
from gapkit.search.baselines import (best_energy_curve, calls_below, calls_to_success, conventional_lattice,
                                     random_search, reference_candidates, success_rate)
from gapkit.search.oracle import OracleResult, emt_calculator


def test_random_search_spends_exactly_the_budget_and_improves():
    trace = random_search("Cu", 2, emt_calculator, budget=40, seed=0, relax_steps=15,
                          crystal_systems=("cubic", "hexagonal"), progress=False)
    assert trace.counter.total == 40 and trace.counter.single_points == 0
    energies = [imp.energy_per_atom for imp in trace.improvements]
    assert energies and np.all(np.diff(energies) < 0)
    assert all(1 <= imp.calls <= 40 for imp in trace.improvements)
    again = random_search("Cu", 2, emt_calculator, budget=40, seed=0, relax_steps=15,
                          crystal_systems=("cubic", "hexagonal"), progress=False)
    assert [i.energy_per_atom for i in again.improvements] == energies  # seeded


def test_success_metric():
    diamond = bulk("Si", "diamond", 5.43)
    beta = bulk("Si", "bct", a=4.9, c=2.7)
    imps = [Improvement(10, -4.9, beta), Improvement(25, -5.3, diamond * (1, 1, 2))]
    assert calls_to_success(imps, diamond) == 25
    assert calls_to_success(imps[:1], diamond) == float("inf")
    np.testing.assert_allclose(success_rate([25, np.inf, 10, 40], np.array([0, 10, 30, 50])),
                               [0, 0.25, 0.5, 0.75])
    calls, best = best_energy_curve(imps, 30)
    assert np.isnan(best[8]) and best[9] == -4.9 and best[24] == -5.3 and len(calls) == 30


def test_lower_crystal_than_the_reference_is_reported_apart():
    import pandas as pd

    from gapkit.search.compare import method_summary, outcomes

    diamond = bulk("Si", "diamond", 5.43)
    beta, fcc = bulk("Si", "bct", a=4.9, c=2.7), bulk("Si", "fcc", a=3.9)
    strained = bulk("Si", "diamond", 5.5)  # the reference crystal, a little lower: not "another crystal"
    imps = [Improvement(10, -5.30, beta), Improvement(20, -5.40, strained), Improvement(30, -5.50, fcc)]
    assert calls_below(imps, diamond, -5.31) == 30
    assert calls_below(imps, diamond, -5.31, margin=0.5) == float("inf")
    assert calls_below(imps[:2], diamond, -5.31) == float("inf")
    assert outcomes("random", imps, diamond) == {"random": 20}  # no energy on the reference: match only
    ref = OracleResult(diamond, -5.31 * len(diamond))
    assert outcomes("random", imps, ref) == {"random": 20, "random_below": 30, "random_energy": 20}
    calls = pd.DataFrame({"random": [20, np.inf, np.inf], "random_below": [30, 5, np.inf]})
    assert method_summary(calls)["found lower crystal"].tolist() == [2]
    assert "found lower crystal" not in method_summary(calls[["random"]])


def test_reference_structure_is_the_lowest_relaxed_candidate(monkeypatch):
    import gapkit.search.baselines as baselines

    monkeypatch.setattr(baselines, "reference_candidates",
                        lambda formula: {"fcc": bulk("Cu", "fcc", 3.7), "bcc": bulk("Cu", "bcc", 2.9)})
    name, ref = baselines.reference_structure("Cu", emt_calculator, steps=60)
    assert name == "fcc" and not ref.failed  # EMT copper: fcc below bcc


def test_references():
    assert set(reference_candidates("TiO2")) == {"rutile", "anatase"}
    assert len(reference_candidates("TiO2")["anatase"]) == 12  # conventional anatase: Ti4O8
    a, _, _ = conventional_lattice(reference_candidates("CaTiO3")["cubic perovskite"])
    assert a == pytest.approx(3.897)
    assert conventional_lattice(bulk("Si", "diamond", 5.43))[0] == pytest.approx(5.43)
    with pytest.raises(ValueError, match="No reference"):
        reference_candidates("GaAs")


def test_ase_ga_baseline_spends_the_budget_and_is_seeded():
    from gapkit.search.baselines import ase_ga_search

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
