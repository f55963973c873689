"""The search loop with a cheap oracle (EMT): learning cycles, final rounds, the one budget, the target, resume."""

import math
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import all_changes
from ase.calculators.emt import EMT

from gapkit.search import FinalStage, LearningLoop, SearchConfig, Target, run_search
from gapkit.search.ga import GASettings
from gapkit.search.loop import SerialExecutor, _screened, ga_task, init_state, random_starts, run_final
from gapkit.search.oracle import emt_calculator, relax, single_point
from gapkit.search.potential import NNPotential, TrainSettings
from gapkit.search.state import Phase, SearchState, load_state
from tests.search.test_oracle import flaky_calculator

BASE = SearchConfig(formula="Cu", n_atoms=2, crystal_systems=("cubic", "hexagonal", "triclinic"),
                    ga=GASettings(population_size=8, n_children=4),
                    learning=LearningLoop(generations=2, picks_per_system=3, max_cycles=2, min_training_size=1000),
                    final=FinalStage(generations=3, picks_per_system=1, relax_steps=40),
                    train=TrainSettings(max_epochs=200, patience=50))
# final rounds that learn from the oracle's relaxations
ROUNDS = {"rounds": 3, "patience": 3, "frames_every": 4}


def _config(**changes) -> SearchConfig:
    return BASE.replace(**changes)


def _run(config: SearchConfig, oracle=emt_calculator, **kwargs) -> SearchState:
    return run_search(config, oracle, executor=SerialExecutor(), **kwargs)


def test_final_rounds_learn_from_relaxations_and_resume_exactly(tmp_path):
    config = _config(seed=2, learning={"max_cycles": 1}, final=ROUNDS)
    full = _run(config)
    assert full.finished and full.final_round == 3
    # an improvement is flagged relaxed only when a converged oracle relaxation (a final round's) made it
    assert all(imp.phase is Phase.RELAXATION for imp in full.improvements if imp.relaxed)
    assert {imp.relaxed for imp in full.improvements} == {True, False}
    single = _run(_config(seed=2, learning={"max_cycles": 1}))
    assert single.final_round == 1 and len(full.training) > len(single.training)  # frames joined
    assert len(full.final_results) > len(single.final_results)
    path = tmp_path / "state.pkl"
    part = _run(config, state_path=path, stop_after=2)
    assert part.final_round == 1 and not part.finished  # killed between two final rounds
    resumed = _run(config, state_path=path)
    assert resumed.counter == full.counter
    np.testing.assert_allclose(resumed.train_energies, full.train_energies)


def test_one_budget_bounds_the_learning_loop_and_the_final_rounds():
    spent = _run(_config(seed=2, learning={"max_cycles": 1}, final={**ROUNDS, "rounds": 50, "patience": 50},
                         budget=60))
    assert spent.finished and spent.final_round < 50
    assert 59 <= spent.counter.total <= 60  # the last round's relaxations were cut to fit the budget
    early = _run(_config(seed=2, budget=5))  # the first cycle alone asks for up to 9 single points
    assert early.finished and early.counter.total == 5 and early.final_round == 0 and early.cycle == 1
    stale = _run(_config(seed=2, learning={"max_cycles": 1}, final={**ROUNDS, "rounds": 50, "patience": 1}))
    assert stale.finished and stale.stale_rounds == 1 and stale.final_round < 50


def test_a_target_stops_the_search_once_found_and_the_trajectory_until_then_is_the_same():
    config = _config(seed=2, learning={"max_cycles": 1}, final=ROUNDS)
    whole = _run(config)
    assert not whole.target_reached
    # a goal found before the cycle or round of the last improvement: the search stops after the one that found it
    last = whole.best
    goal = [i for i in whole.improvements if (i.phase is Phase.LEARNING_CYCLE) != (last.phase is Phase.LEARNING_CYCLE)
            or i.step != last.step][-1]
    stopped = _run(config.replace(target=Target(energy_per_atom=goal.energy_per_atom, tolerance=0.0)))
    assert stopped.finished and stopped.target_reached and stopped.best.energy_per_atom <= goal.energy_per_atom
    assert stopped.counter.total < whole.counter.total
    n = len(stopped.improvements)
    assert [i.calls for i in stopped.improvements] == [i.calls for i in whole.improvements[:n]]
    never = _run(config.replace(target=Target(energy_per_atom=whole.best.energy_per_atom - 1.0)))
    assert never.finished and not never.target_reached and never.counter == whole.counter


def test_failing_oracle_marks_structures_failed_and_run_goes_on():
    state = _run(_config(), flaky_calculator)
    assert state.finished and state.counter.failed > 0
    assert len(state.failed) == state.counter.failed
    assert {"system", "error"} <= set(state.failed[0])
    assert state.training and all(np.isfinite(state.train_energies))
    assert state.best is not None and np.isfinite(state.best.energy_per_atom)


def test_resume_after_kill_equals_uninterrupted(tmp_path):
    config = _config(seed=3)
    full = _run(config)
    path = tmp_path / "state.pkl"
    part = _run(config, state_path=path, stop_after=1)  # "killed" after one cycle
    assert not part.finished and load_state(path).cycle == 1
    resumed = run_search(config, emt_calculator, executor=ThreadPoolExecutor(2), state_path=path)
    assert resumed.finished
    assert resumed.counter == full.counter
    np.testing.assert_allclose(resumed.train_energies, full.train_energies)
    np.testing.assert_allclose(resumed.rmse_history, full.rmse_history)
    assert [r.energy_per_atom for r in resumed.final_results] == pytest.approx(
        [r.energy_per_atom for r in full.final_results])
    pickle.loads(pickle.dumps(resumed))  # the whole state stays picklable


def test_loop_finds_fcc_copper_with_emt():
    state = _run(_config(seed=1, learning={"max_cycles": 3}, final={"picks_per_system": 2}))
    ref = relax(bulk("Cu", "fcc", 3.6) * (2, 1, 1), emt_calculator, steps=100)
    assert state.best.energy_per_atom <= ref.energy_per_atom + 0.01


def test_a_system_the_potential_cannot_score_sits_the_cycle_out():
    config = _config(crystal_systems=("cubic",))
    population = init_state(config).populations["cubic"]
    wrong_species = NNPotential([13])  # an Al potential cannot score Cu cells (ValueError inside)
    system, pop, picks = ga_task("cubic", population, wrong_species, config, stream=1, n_generations=2,
                                 n_recommend=3)
    assert system == "cubic" and picks == [] and pop is population


def test_screening_ranks_final_picks_by_one_counted_oracle_single_point_each():
    volumes = [14.35, 12.25, 13.05, 11.75]  # Å^3/atom; the flaky oracle fails on the last two (see FlakyEMT)
    batch = [("cubic", bulk("Cu", "fcc", (4 * v) ** (1 / 3)) * (2, 1, 1)) for v in volumes]
    state = SearchState()
    ranked, starts, points = _screened(state, _config(), emt_calculator, SerialExecutor(), batch)
    assert len(points) == 4 and [p.n_single_points for p in points] == [1] * 4
    for (_, atoms), start in zip(ranked, starts):  # each pick's own single point, for its relaxation to reuse
        assert np.array_equal(start.atoms.positions, atoms.positions)
    assert state.counter.single_points == 4 and state.counter.relax_steps == 0
    energies = [single_point(a, emt_calculator).energy_per_atom for _, a in ranked]
    assert energies == sorted(energies) and len(ranked) == 4
    assert state.best.energy_per_atom == pytest.approx(energies[0]) and state.best.phase is Phase.SCREENING
    capped = SearchState()
    _screened(capped, _config(budget=4), emt_calculator, SerialExecutor(), batch)
    assert capped.counter.total == 2  # room is left for a relaxation step after the screening
    flaky = SearchState()
    kept, _, _ = _screened(flaky, _config(), flaky_calculator, SerialExecutor(), batch)
    assert flaky.counter.failed == 2 and flaky.counter.single_points == 4
    assert [a.get_volume() / len(a) for _, a in kept] == pytest.approx([12.25, 14.35])  # failed ones dropped


def test_a_search_with_screened_final_picks_finds_fcc_copper():
    changes = dict(seed=1, learning={"max_cycles": 3})
    state = _run(_config(**changes, final={"picks_per_system": 2, "screen_picks": True}))
    plain = _run(_config(**changes, final={"picks_per_system": 2}))
    ref = relax(bulk("Cu", "fcc", 3.6) * (2, 1, 1), emt_calculator, steps=100)
    assert state.best.energy_per_atom <= ref.energy_per_atom + 0.01
    assert state.counter.single_points > plain.counter.single_points  # the screening's calls are counted


def test_relax_per_round_caps_each_rounds_relaxations_and_the_screening_single_points_are_learned():
    rounds = {**ROUNDS, "picks_per_system": 2, "screen_picks": True}
    capped = _run(_config(seed=2, learning={"max_cycles": 1}, final={**rounds, "relax_per_round": 1}))
    assert capped.final_round == 3 and len(capped.final_results) == 3  # one relaxation per round
    every = _run(_config(seed=2, learning={"max_cycles": 1}, final=rounds))
    assert len(every.final_results) > 3
    # one round, one relaxation keeping at most 2 frames (first and last): more joined the training set, so
    # the single points of the picks screened but not relaxed did
    sparse = _config(seed=2, learning={"max_cycles": 1}, final={**rounds, "frames_every": 1000, "relax_per_round": 1})
    before = _run(sparse, stop_after=1)
    after = _run(sparse, stop_after=2)
    assert before.final_round == 0 and after.final_round == 1 and not after.finished
    assert len(after.training) - len(before.training) > 2


class RecordingEMT(EMT):
    """EMT that notes the potential's predicted energy of every structure it is handed, in order."""

    predicted: list[float] = []

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        RecordingEMT.predicted.append(atoms.info.get("e_pred", math.nan))
        super().calculate(atoms, properties, system_changes)


def test_a_learning_cycle_sends_its_picks_to_the_oracle_lowest_predicted_first():
    config = _config(seed=3, learning={"max_cycles": 3})
    bootstrap = _run(config, RecordingEMT, stop_after=1)
    assert bootstrap.potential is not None
    RecordingEMT.predicted = []
    state = _run(config, RecordingEMT, stop_after=2)
    assert state.cycle == 2
    # the second run repeats the bootstrap (unscored calls) first; the second cycle's calls follow
    scored = RecordingEMT.predicted[bootstrap.counter.total:]
    assert len(scored) == state.counter.total - bootstrap.counter.total > 3
    assert scored == sorted(scored)  # across crystal systems, not system by system


def test_a_round_after_a_stale_one_relaxes_random_starts_in_place_of_its_last_picks():
    rounds = {**ROUNDS, "picks_per_system": 2, "screen_picks": True, "relax_per_round": 2}
    with_rule = _config(seed=2, learning={"max_cycles": 1}, final={**rounds, "stale_random_relaxations": 1})
    learned = _run(with_rule, stop_after=1)
    assert learned.final_round == 0
    fresh = _run(with_rule, stop_after=2)
    plain = _run(_config(seed=2, learning={"max_cycles": 1}, final=rounds), stop_after=2)
    # after a learning cycle nothing is stale: the rule leaves the round as it was
    assert [r.energy_ev for r in fresh.final_results] == [r.energy_ev for r in plain.final_results]
    stale = pickle.loads(pickle.dumps(learned))
    stale.stale_rounds = 1
    (system, start), = random_starts(stale, with_rule, 1)
    assert start.get_chemical_formula() == "Cu2" and start.info["crystal_system"] == system
    run_final(stale, with_rule, emt_calculator, SerialExecutor())
    assert len(stale.final_results) == 2  # still relax_per_round relaxations: one GA pick, one random start
    expected = relax(start, emt_calculator, fmax=with_rule.fmax, steps=with_rule.final.relax_steps)
    assert any(math.isclose(r.energy_ev, expected.energy_ev) for r in stale.final_results)
    # with one relaxation per round the random start is all there is; a new best says where it came from
    alone = pickle.loads(pickle.dumps(learned))
    alone.stale_rounds, alone.improvements[-1].energy_per_atom = 1, 10.0
    run_final(alone, with_rule.replace(final={"relax_per_round": 1}), emt_calculator, SerialExecutor())
    assert len(alone.final_results) == 1 and math.isclose(alone.final_results[0].energy_ev, expected.energy_ev)
    assert alone.best.phase is Phase.RANDOM_START and alone.best.label == "final round 1 random start relaxation"
    # its minimum joins its crystal system's population as a parent (appended after the round's GA)
    assert np.allclose(stale.populations[system][-1].cell[:], expected.atoms.cell[:])
