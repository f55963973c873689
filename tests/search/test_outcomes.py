"""Outcomes of a search against a reference, typed per seed, and the target check (cheap structures, EMT)."""

import math

import numpy as np
import pytest
from ase.build import bulk

from gapkit.search import Target, search_config
from gapkit.search.oracle import OracleResult, emt_calculator, relax
from gapkit.search.outcomes import (MethodOutcome, SeedOutcome, best_energy_curve, calls_below, calls_to_energy,
                                    calls_to_success, check_target, relaxed_match, search_outcome, trajectory_outcome,
                                    with_target)
from gapkit.search.state import Improvement, Phase, SearchState

QUICK_CU = search_config("quick", "Cu", 2, 0)


def test_success_metric():
    diamond = bulk("Si", "diamond", 5.43)
    beta = bulk("Si", "bct", a=4.9, c=2.7)
    imps = [Improvement(10, -4.9, beta), Improvement(25, -5.3, diamond * (1, 1, 2))]
    assert calls_to_success(imps, diamond) == 25
    assert calls_to_success(imps[:1], diamond) == math.inf
    calls, best = best_energy_curve(imps, 30)
    assert np.isnan(best[8]) and best[9] == -4.9 and best[24] == -5.3 and len(calls) == 30


def test_lower_crystal_than_the_reference_is_reported_apart():
    diamond = bulk("Si", "diamond", 5.43)
    beta, fcc = bulk("Si", "bct", a=4.9, c=2.7), bulk("Si", "fcc", a=3.9)
    strained = bulk("Si", "diamond", 5.5)  # the reference crystal, a little lower: not "another crystal"
    imps = [Improvement(10, -5.30, beta), Improvement(20, -5.40, strained), Improvement(30, -5.50, fcc)]
    assert calls_below(imps, diamond, -5.31) == 30
    assert calls_below(imps, diamond, -5.31, margin=0.5) == math.inf
    assert calls_below(imps[:2], diamond, -5.31) == math.inf
    assert trajectory_outcome(imps, diamond).columns("random") == {"random": 20}  # no energy: match only
    ref = OracleResult(diamond, -5.31 * len(diamond))
    assert trajectory_outcome(imps, ref).columns("random") == {"random": 20, "random_below": 30, "random_energy": 20}


def test_calls_to_energy_counts_any_cell_as_low_as_the_reference():
    trail = [Improvement(5, -3.0, bulk("Cu", "bcc", a=2.87)), Improvement(9, -3.497, bulk("Cu", "hcp", a=2.55)),
             Improvement(20, -3.6, bulk("Cu", "fcc", a=3.6))]
    assert calls_to_energy(trail, -3.5) == 9  # another crystal, level with the reference within the margin
    assert calls_to_energy(trail, -3.5, margin=0.001) == 20
    assert calls_to_energy(trail, -4.0) == math.inf


def test_an_outcome_is_typed_and_reads_back_from_a_records_columns():
    outcome = MethodOutcome(12.0, below=math.inf, energy=15.0, phase="final round 2 relaxation")
    row = SeedOutcome(3, 100, {"ga_potential": outcome, "random": MethodOutcome(math.inf)}, wall_s=2.5).row()
    assert row == {"seed": 3, "budget": 100, "ga_potential": 12.0, "ga_potential_below": math.inf,
                   "ga_potential_energy": 15.0, "ga_potential_phase": "final round 2 relaxation",
                   "random": math.inf, "wall_s": 2.5}
    stored = {**row, "ga_potential_below": None}  # JSON has no infinity: records store null
    assert MethodOutcome.from_columns(stored, "ga_potential") == outcome
    assert MethodOutcome.from_columns(row, "random") == MethodOutcome(math.inf)


def test_search_outcome_names_the_phase_of_the_first_match_and_the_best_energy_above_the_reference():
    fcc, bcc = bulk("Cu", "fcc", a=3.6), bulk("Cu", "bcc", a=2.87)
    reference = OracleResult(fcc, -3.5 * len(fcc), 0, 10, "", {})
    trail = [Improvement(5, -3.2, bcc, Phase.LEARNING_CYCLE, 0), Improvement(40, -3.49, fcc, Phase.SCREENING, 1),
             Improvement(60, -3.52, fcc, Phase.RELAXATION, 1, relaxed=True)]
    found = search_outcome(SearchState(improvements=trail), reference, emt_calculator, QUICK_CU)
    assert found.phase == "final round 1 screening" and found.best_mev_above_reference == -20.0
    # the screened match is relaxed further (EMT: a few calls); only the relaxation at 60 is as low as the reference
    assert found.match == 40 and 40 < found.relaxed < 60 and found.energy == 60 and found.below == math.inf
    missed = search_outcome(SearchState(improvements=trail[:1]), reference, emt_calculator, QUICK_CU)
    assert missed.phase == "" and missed.best_mev_above_reference == 300.0 and missed.relaxed == math.inf
    bare = search_outcome(SearchState(improvements=trail), fcc, emt_calculator, QUICK_CU, relax_match=False)
    assert bare.phase == "final round 1 screening" and math.isnan(bare.best_mev_above_reference)
    stopped = search_outcome(SearchState(improvements=trail), reference, emt_calculator, with_target(QUICK_CU, fcc))
    assert stopped.below is None  # a search stopped at its target never looked further for a lower crystal
    # a search that stopped on its target check's relaxation of a screened match ends as low as that relaxation
    checked = SearchState(improvements=trail[:2], match_checked=True,
                          relaxed_match=Improvement(45, -3.51, fcc, Phase.RELAXED_MATCH, relaxed=True))
    assert search_outcome(checked, reference, emt_calculator, QUICK_CU).best_mev_above_reference == -10.0


def test_a_single_point_match_is_relaxed_and_its_calls_added():
    reference = relax(bulk("Cu", "fcc", a=3.6), emt_calculator, steps=100)
    squeezed = bulk("Cu", "fcc", a=3.3)  # matches fcc (StructureMatcher scales volumes) far above its minimum
    e_squeezed = relax(squeezed, emt_calculator, steps=0).energy_per_atom
    again = relax(squeezed, emt_calculator, steps=60)
    trail = [Improvement(7, e_squeezed + 0.1, bulk("Cu", "bcc", a=2.87), Phase.LEARNING_CYCLE, 0),
             Improvement(12, e_squeezed, squeezed, Phase.LEARNING_CYCLE, 1)]
    assert e_squeezed > reference.energy_per_atom + 0.05
    calls = 12 + again.n_calls - 1
    match = relaxed_match(trail, reference.atoms, emt_calculator, steps=60)
    assert match.calls == calls and match.phase is Phase.RELAXED_MATCH
    outcome = search_outcome(SearchState(improvements=trail), reference, emt_calculator, QUICK_CU)
    assert (outcome.relaxed, outcome.energy) == (calls, calls)
    assert relaxed_match(trail[:1], reference.atoms, emt_calculator) is None


def test_the_target_check_waits_after_the_match_for_a_cell_as_low_as_the_reference():
    reference = relax(bulk("Cu", "fcc", a=3.6), emt_calculator, steps=100)
    config = with_target(QUICK_CU, reference)
    bcc = Improvement(5, reference.energy_per_atom + 0.3, bulk("Cu", "bcc", a=2.87), Phase.LEARNING_CYCLE, 0)
    state = SearchState(improvements=[bcc])
    assert not check_target(state, config, emt_calculator)  # no match yet
    capped = relax(bulk("Cu", "fcc", a=3.3), emt_calculator, steps=1)  # a relaxation cut at its cap
    assert capped.energy_per_atom > reference.energy_per_atom + 0.005 and not capped.relaxed
    cut = SearchState(improvements=[bcc, Improvement(20, capped.energy_per_atom, capped.atoms, Phase.RELAXATION, 1)])
    assert check_target(cut, config, emt_calculator)  # relaxed further, it reaches the reference
    assert cut.match_checked and cut.check_calls > 1 and cut.relaxed_match.calls > 20
    # the outcome reuses the check's relaxation: an oracle that would fail shows it is not called again
    assert search_outcome(cut, reference, lambda: None, config).relaxed == cut.relaxed_match.calls
    # a match at a minimum above the reference (made up: a converged cell too high) does not reach the target
    state.improvements.append(Improvement(20, capped.energy_per_atom, capped.atoms, Phase.RELAXATION, 1, True))
    assert not check_target(state, config, emt_calculator)
    state.improvements.append(Improvement(30, reference.energy_per_atom, reference.atoms, Phase.RELAXATION, 2, True))
    assert check_target(state, config, emt_calculator)
    squeezed = relax(bulk("Cu", "fcc", a=3.3), emt_calculator, steps=0)  # a single point that matches
    single = [bcc, Improvement(12, squeezed.energy_per_atom, squeezed.atoms, Phase.LEARNING_CYCLE, 1)]
    assert check_target(SearchState(improvements=list(single)), config, emt_calculator)
    no_relax = QUICK_CU.replace(target=Target.from_reference(reference, relax_match=False))
    assert not check_target(SearchState(improvements=list(single)), no_relax, emt_calculator)
    structure_only = with_target(QUICK_CU, reference.atoms)  # no reference energy: the match reaches it
    assert check_target(SearchState(improvements=list(single)), structure_only, emt_calculator)
    assert not check_target(SearchState(improvements=list(single)), QUICK_CU, emt_calculator)  # no target
