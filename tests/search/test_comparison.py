"""The GA against the baselines over seeds, on any compound with a reference (EMT copper)."""

import math

import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from gapkit.search import FinalStage, LearningLoop, SearchConfig
from gapkit.search.comparison import baseline_outcomes, calls_to_ground_state
from gapkit.search.ga import GASettings
from gapkit.search.oracle import emt_calculator, relax
from gapkit.search.outcomes import with_target
from gapkit.search.potential import TrainSettings
from gapkit.search.state import state_file

SMALL = SearchConfig(formula="Cu", n_atoms=2, crystal_systems=("cubic", "hexagonal"),
                     ga=GASettings(population_size=6, n_children=3, potential_relax_steps=2),
                     learning=LearningLoop(generations=1, picks_per_system=2, max_cycles=1, min_training_size=1000),
                     final=FinalStage(generations=1, picks_per_system=1, relax_steps=10),
                     train=TrainSettings(max_epochs=40, patience=20))


def test_calls_to_ground_state_resumes_from_its_state_dir(tmp_path):
    reference = bulk("Cu", "fcc", a=3.6)
    made = []

    def counted_emt():
        made.append(1)
        return EMT()

    first = calls_to_ground_state(SMALL, reference, counted_emt, [3], baselines=(), state_dir=tmp_path)
    assert [p.name.startswith("Cu2-seed3-") for p in tmp_path.iterdir()] == [True]
    assert first["budget"].iloc[0] > 0 and made
    made.clear()
    again = calls_to_ground_state(SMALL, reference, counted_emt, [3], baselines=(), state_dir=tmp_path)
    assert again.equals(first) and made == []  # resumed from the finished state: no oracle call
    assert state_file(tmp_path, SMALL.replace(seed=3)) != state_file(tmp_path, SMALL.replace(seed=3, final={
        "relax_steps": 11}))  # another setting is another search, with its own state file


def test_the_baselines_get_the_gas_budget():
    reference = relax(bulk("Cu", "fcc", 3.6), emt_calculator, steps=100)
    row = calls_to_ground_state(SMALL, reference, emt_calculator, [1]).iloc[0]
    assert {"ga_potential", "random", "random_below", "random_energy", "ase_ga", "ase_ga_energy"} <= set(row.index)
    with pytest.raises(ValueError, match="Unknown baseline"):
        baseline_outcomes("Cu", 2, reference, emt_calculator, 10, 0, methods=("airss",))


def test_a_search_stopped_at_its_target_keeps_the_calls_to_it_and_spends_fewer():
    rounds = SMALL.replace(crystal_systems=("cubic", "hexagonal", "triclinic"),
                           ga={"population_size": 8, "n_children": 4},
                           learning={"generations": 2, "max_cycles": 2, "picks_per_system": 3},
                           final={"generations": 3, "relax_steps": 40, "rounds": 6, "patience": 6, "frames_every": 4},
                           train={"max_epochs": 200, "patience": 50})
    reference = relax(bulk("Cu", "fcc", 3.6), emt_calculator, steps=100)  # with its energy, as reference_structure
    whole = calls_to_ground_state(rounds, reference, emt_calculator, [1], baselines=())
    cut = calls_to_ground_state(with_target(rounds, reference), reference, emt_calculator, [1], baselines=())
    assert math.isfinite(whole["ga_potential"].iloc[0])
    assert cut["ga_potential"].iloc[0] == whole["ga_potential"].iloc[0]
    assert cut["budget"].iloc[0] < whole["budget"].iloc[0]
    assert "ga_potential_below" in whole and "ga_potential_below" not in cut  # not looked for past the stop
    phase = cut["ga_potential_phase"].iloc[0]
    assert phase == whole["ga_potential_phase"].iloc[0] and phase.startswith(("learning cycle", "final round"))
    assert abs(cut["ga_potential_best_meV_above_reference"].iloc[0]) < 5  # it stopped at the reference
    assert cut["ga_potential_relaxed"].iloc[0] >= cut["ga_potential"].iloc[0]
    with pytest.raises(ValueError, match="GA alone"):
        calls_to_ground_state(with_target(rounds, reference), reference, emt_calculator, [1])
