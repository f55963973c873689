"""The oracle wrapper and the active-learning loop with a cheap oracle (EMT): failures, resume, results."""

import dataclasses
import math
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from gapkit.search.active import SearchConfig, SearchState, accept_for_training
from gapkit.search.ga import GASettings
from gapkit.search.oracle import OracleCounter, OracleResult, emt_calculator, relax, single_point
from gapkit.search.potential import TrainSettings
from gapkit.search.runner import (SerialExecutor, _settings_text, load_state, random_starts, run_final, run_search,
                                  state_file)


class FlakyEMT(Calculator):
    """EMT that raises on some structures and returns NaN on others (decided by volume)."""

    implemented_properties = ["energy", "forces", "stress"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        v = self.atoms.get_volume() / len(self.atoms)
        if int(v * 10) % 3 == 0:
            raise RuntimeError("SCF did not converge")
        copy = self.atoms.copy()
        copy.calc = EMT()
        self.results = {"energy": copy.get_potential_energy(), "forces": copy.get_forces(),
                        "stress": copy.get_stress()}
        if int(v * 10) % 3 == 1:
            self.results["energy"] = float("nan")


def flaky_calculator():
    return FlakyEMT()


def _config(**kw):
    base = dict(formula="Cu", n_atoms=2, crystal_systems=("cubic", "hexagonal", "triclinic"),
                ga=GASettings(population_size=8, n_children=4), ga_generations=2, final_generations=3,
                recommend_per_system=3, final_per_system=1, max_cycles=2, min_training_size=1000,
                final_relax_steps=40, train=TrainSettings(max_epochs=200, patience=50))
    base.update(kw)
    return SearchConfig(**base)


def test_oracle_counts_and_failures():
    atoms = bulk("Cu", "fcc", 3.5)
    ok = single_point(atoms, emt_calculator)
    assert not ok.failed and ok.n_single_points == 1 and ok.n_relax_steps == 0
    assert ok.forces is not None and ok.forces.shape == (len(atoms), 3)  # free with the energy
    assert ok.stress is not None and ok.stress.shape == (3, 3)
    relaxed = relax(atoms, emt_calculator, steps=50)
    assert relaxed.energy_ev < ok.energy_ev and relaxed.n_relax_steps > 1
    assert relaxed.relaxed and not ok.relaxed  # converged to fmax: a minimum
    assert not relax(atoms, emt_calculator, steps=0).relaxed and not relax(atoms, emt_calculator, steps=1).relaxed
    counter = OracleCounter()
    for res in (ok, relaxed):
        counter.add(res)
    assert counter.total == 1 + relaxed.n_relax_steps
    bad = single_point(bulk("Si", "diamond", 5.43), emt_calculator)  # EMT has no Si: it raises
    assert bad.failed and "NotImplementedError" in bad.error and math.isinf(bad.energy_per_atom)


class Spring(Calculator):
    """Two atoms tied by a spring of rest length 0: an oracle whose minimum is two atoms on one spot."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        d = self.atoms.positions[1] - self.atoms.positions[0]
        self.results = {"energy": float(d @ d), "forces": np.array([2 * d, -2 * d])}


def test_relaxation_into_collapsed_atoms_is_a_failure_with_its_calls_counted():
    atoms = Atoms("Cu2", positions=[(0, 0, 0), (2.2, 0, 0)], cell=[10, 10, 10], pbc=True)
    result = relax(atoms, Spring, fmax=0.01, steps=60, relax_cell=False, keep_every=1)
    assert result.failed and "collapsed" in result.error
    assert result.n_relax_steps > 1 and result.frames == []
    assert math.isinf(result.energy_per_atom)  # never the best structure of a search
    short = relax(atoms, Spring, fmax=0.01, steps=1, relax_cell=False)  # stopped while still apart
    assert not short.failed


def test_relaxation_frames_are_the_oracle_labels_at_no_extra_call():
    atoms = bulk("Cu", "fcc", 3.4)
    atoms.rattle(0.1, seed=0)
    plain = relax(atoms, emt_calculator, steps=30)
    kept = relax(atoms, emt_calculator, steps=30, keep_every=3)
    assert kept.n_calls == plain.n_calls and kept.energy_ev == pytest.approx(plain.energy_ev)
    assert not plain.frames and 2 <= len(kept.frames) <= plain.n_calls
    assert kept.frames[-1].energy_ev == pytest.approx(kept.energy_ev)
    for frame in kept.frames:  # what a fresh oracle call on the frame's atoms would say
        fresh = single_point(frame.atoms, emt_calculator)
        assert frame.energy_ev == pytest.approx(fresh.energy_ev)
        np.testing.assert_allclose(frame.forces, fresh.forces, atol=1e-10)
        np.testing.assert_allclose(frame.stress, fresh.stress, atol=1e-10)


def test_final_rounds_learn_from_relaxations_and_resume_exactly(tmp_path):
    config = _config(seed=2, max_cycles=1, final_rounds=3, round_patience=3, relaxation_frames_every=4)
    full = run_search(config, emt_calculator, executor=SerialExecutor())
    assert full.finished and full.final_round == 3
    # an improvement is flagged relaxed only when a converged oracle relaxation (a final round's) made it
    assert all(imp.phase.endswith("relaxation") for imp in full.improvements if imp.relaxed)
    assert {imp.relaxed for imp in full.improvements} == {True, False}
    single = run_search(_config(seed=2, max_cycles=1), emt_calculator, executor=SerialExecutor())
    assert single.final_round == 1 and len(full.train_atoms) > len(single.train_atoms)  # frames joined
    assert len(full.final_results) > len(single.final_results)
    path = tmp_path / "state.pkl"
    part = run_search(config, emt_calculator, executor=SerialExecutor(), state_path=path, stop_after_cycles=2)
    assert part.final_round == 1 and not part.finished  # killed between two final rounds
    resumed = run_search(config, emt_calculator, executor=SerialExecutor(), state_path=path)
    assert resumed.counter == full.counter
    np.testing.assert_allclose(resumed.train_energies, full.train_energies)


def test_final_rounds_stop_at_the_total_budget_and_on_patience():
    spent = run_search(_config(seed=2, max_cycles=1, final_rounds=50, round_patience=50, relaxation_frames_every=4,
                               total_budget=60), emt_calculator, executor=SerialExecutor())
    assert spent.finished and spent.final_round < 50
    assert 59 <= spent.counter.total <= 60  # the last round's relaxations were cut to fit the budget
    stale = run_search(_config(seed=2, max_cycles=1, final_rounds=50, round_patience=1, relaxation_frames_every=4),
                       emt_calculator, executor=SerialExecutor())
    assert stale.finished and stale.stale_rounds == 1 and stale.final_round < 50


def test_failing_oracle_marks_structures_failed_and_run_goes_on():
    state = run_search(_config(), flaky_calculator, executor=SerialExecutor())
    assert state.finished and state.counter.failed > 0
    assert len(state.failed) == state.counter.failed
    assert {"system", "error"} <= set(state.failed[0])
    assert state.train_atoms and all(np.isfinite(state.train_energies))
    assert state.best is not None and np.isfinite(state.best.energy_per_atom)


def test_resume_after_kill_equals_uninterrupted(tmp_path):
    config = _config(seed=3)
    full = run_search(config, emt_calculator, executor=SerialExecutor())
    path = tmp_path / "state.pkl"
    part = run_search(config, emt_calculator, executor=SerialExecutor(), state_path=path,
                      stop_after_cycles=1)  # "killed" after one cycle
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
    state = run_search(_config(seed=1, max_cycles=3, final_per_system=2), emt_calculator,
                       executor=SerialExecutor())
    ref = relax(bulk("Cu", "fcc", 3.6) * (2, 1, 1), emt_calculator, steps=100)
    assert state.best.energy_per_atom <= ref.energy_per_atom + 0.01


def test_bad_inputs():
    with pytest.raises(ValueError, match="multiple"):
        run_search(_config(formula="TiO2", n_atoms=4), emt_calculator)
    with pytest.raises(ValueError):
        run_search(_config(formula="Qq"), emt_calculator)


def test_state_saved_before_force_labels_loads_with_empty_labels(tmp_path):
    from gapkit.search.active import SearchState
    from gapkit.search.runner import load_state

    old = SearchState(train_atoms=[bulk("Cu", "fcc", 3.6)] * 3, train_energies=[-1.0] * 3)
    del old.__dict__["train_forces"], old.__dict__["train_stresses"]  # as pickled by the previous version
    path = tmp_path / "old.pkl"
    path.write_bytes(pickle.dumps(old))
    state = load_state(path)
    assert state.train_forces == [None] * 3 and state.train_stresses == [None] * 3


def test_a_system_the_potential_cannot_score_sits_the_cycle_out():
    from gapkit.search.active import ga_task, init_state
    from gapkit.search.potential import NNPotential

    config = _config(crystal_systems=("cubic",))
    population = init_state(config).populations["cubic"]
    wrong_species = NNPotential([13])  # an Al potential cannot score Cu cells (ValueError inside)
    system, pop, picks = ga_task("cubic", population, wrong_species, config, cycle=1, n_generations=2,
                                 n_recommend=3)
    assert system == "cubic" and picks == [] and pop is population


def test_screening_ranks_final_picks_by_one_counted_oracle_single_point_each():
    from gapkit.search.active import SearchState
    from gapkit.search.runner import _screened

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
    assert state.best.energy_per_atom == pytest.approx(energies[0])
    capped = SearchState()
    _screened(capped, _config(total_budget=4), emt_calculator, SerialExecutor(), batch)
    assert capped.counter.total == 2  # room is left for a relaxation step after the screening
    flaky = SearchState()
    kept, _, _ = _screened(flaky, _config(), flaky_calculator, SerialExecutor(), batch)
    assert flaky.counter.failed == 2 and flaky.counter.single_points == 4
    assert [a.get_volume() / len(a) for _, a in kept] == pytest.approx([12.25, 14.35])  # failed ones dropped


def test_a_search_with_screened_final_picks_finds_fcc_copper():
    config = _config(seed=1, max_cycles=3, final_per_system=2, screen_final_picks=True)
    state = run_search(config, emt_calculator, executor=SerialExecutor())
    plain = run_search(_config(seed=1, max_cycles=3, final_per_system=2), emt_calculator, executor=SerialExecutor())
    ref = relax(bulk("Cu", "fcc", 3.6) * (2, 1, 1), emt_calculator, steps=100)
    assert state.best.energy_per_atom <= ref.energy_per_atom + 0.01
    assert state.counter.single_points > plain.counter.single_points  # the screening's calls are counted


def test_relax_per_round_caps_each_rounds_relaxations_and_the_screening_single_points_are_learned():
    rounds = dict(seed=2, max_cycles=1, final_per_system=2, final_rounds=3, round_patience=3,
                  relaxation_frames_every=4, screen_final_picks=True)
    capped = run_search(_config(relax_per_round=1, **rounds), emt_calculator, executor=SerialExecutor())
    assert capped.final_round == 3 and len(capped.final_results) == 3  # one relaxation per round
    every = run_search(_config(**rounds), emt_calculator, executor=SerialExecutor())
    assert len(every.final_results) > 3
    # one round, one relaxation keeping at most 2 frames (first and last): more joined the training set, so
    # the single points of the picks screened but not relaxed did
    sparse = {**rounds, "relaxation_frames_every": 1000, "relax_per_round": 1}
    before = run_search(_config(**sparse), emt_calculator, executor=SerialExecutor(), stop_after_cycles=1)
    after = run_search(_config(**sparse), emt_calculator, executor=SerialExecutor(), stop_after_cycles=2)
    assert before.final_round == 0 and after.final_round == 1 and not after.finished
    assert len(after.train_atoms) - len(before.train_atoms) > 2
    with pytest.raises(ValueError, match="relax_per_round"):
        run_search(_config(relax_per_round=0), emt_calculator)


class CountingEMT(EMT):
    """EMT that counts the evaluations it really performs."""

    evaluations = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        CountingEMT.evaluations += 1
        super().calculate(atoms, properties, system_changes)


def test_a_relaxation_started_from_its_single_point_reuses_it_instead_of_a_new_call():
    atoms = bulk("Cu", "fcc", 3.45) * (2, 1, 1)
    atoms.rattle(0.05, seed=1)
    point = single_point(atoms, CountingEMT)
    plain = relax(atoms, CountingEMT, steps=40, keep_every=1)
    CountingEMT.evaluations = 0
    primed = relax(atoms, CountingEMT, steps=40, keep_every=1, start=point)
    assert CountingEMT.evaluations == primed.n_relax_steps == plain.n_relax_steps - 1
    assert primed.energy_ev == pytest.approx(plain.energy_ev, abs=1e-10)  # the same trajectory
    assert primed.frames[0].energy_ev == pytest.approx(point.energy_ev)
    moved = atoms.copy()
    moved.positions[0, 0] += 0.01
    CountingEMT.evaluations = 0
    other = relax(moved, CountingEMT, steps=40, start=point)  # a single point of other atoms cannot serve
    assert CountingEMT.evaluations == other.n_relax_steps


class RecordingEMT(EMT):
    """EMT that notes the potential's predicted energy of every structure it is handed, in order."""

    predicted: list[float] = []

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        RecordingEMT.predicted.append(atoms.info.get("e_pred", math.nan))
        super().calculate(atoms, properties, system_changes)


def test_a_learning_cycle_sends_its_picks_to_the_oracle_lowest_predicted_first():
    config = _config(seed=3, max_cycles=3)
    bootstrap = run_search(config, RecordingEMT, executor=SerialExecutor(), stop_after_cycles=1)
    assert bootstrap.potential is not None
    RecordingEMT.predicted = []
    state = run_search(config, RecordingEMT, executor=SerialExecutor(), stop_after_cycles=2)
    assert state.cycle == 2
    # the second run repeats the bootstrap (unscored calls) first; the second cycle's calls follow
    scored = RecordingEMT.predicted[bootstrap.counter.total:]
    assert len(scored) == state.counter.total - bootstrap.counter.total > 3
    assert scored == sorted(scored)  # across crystal systems, not system by system


def _labelled(e_atom: float, e_pred: float, a: float = 3.6) -> OracleResult:
    atoms = bulk("Cu", "fcc", a=a)
    atoms.info["e_pred"] = e_pred
    return OracleResult(atoms, e_atom * len(atoms), n_single_points=1)


def test_known_error_cap_keeps_labels_a_badly_fitted_potential_only_seems_to_know():
    state = SearchState(min_loss=1.0)  # a potential fitted on a dozen structures: training RMSE of 1 eV/atom
    off_by_tenths = _labelled(-3.0, -3.3)
    assert not accept_for_training(state, off_by_tenths, SearchConfig())  # the paper's rule: within min_loss
    assert state.dropped["known"] == 1
    capped = SearchConfig(known_error_cap=0.08)
    assert accept_for_training(state, off_by_tenths, capped)
    assert not accept_for_training(state, _labelled(-3.0, -3.05), capped)  # within the cap
    # a cap above min_loss changes nothing: the tolerance is the smaller of the two
    accurate = SearchState(min_loss=0.01)
    assert accept_for_training(accurate, _labelled(-3.0, -3.05), capped)


def test_a_setting_added_later_leaves_the_state_file_of_older_runs_alone(tmp_path):
    config = _config(seed=1)
    assert "known_error_cap" not in _settings_text(config)
    assert _settings_text(config) == repr(config).replace(", known_error_cap=None", "").replace(
        ", stale_random_relaxations=0", "")
    capped = dataclasses.replace(config, known_error_cap=0.08)
    assert "known_error_cap=0.08" in _settings_text(capped)
    assert state_file(tmp_path, capped) != state_file(tmp_path, config)


def test_a_round_after_a_stale_one_relaxes_random_starts_in_place_of_its_last_picks():
    rounds = dict(seed=2, max_cycles=1, final_per_system=2, final_rounds=3, round_patience=3,
                  relaxation_frames_every=4, screen_final_picks=True, relax_per_round=2)
    with_rule = _config(stale_random_relaxations=1, **rounds)
    learned = run_search(with_rule, emt_calculator, executor=SerialExecutor(), stop_after_cycles=1)
    assert learned.final_round == 0
    fresh = run_search(with_rule, emt_calculator, executor=SerialExecutor(), stop_after_cycles=2)
    plain = run_search(_config(**rounds), emt_calculator, executor=SerialExecutor(), stop_after_cycles=2)
    # after a learning cycle nothing is stale: the rule leaves the round as it was
    assert [r.energy_ev for r in fresh.final_results] == [r.energy_ev for r in plain.final_results]
    stale = pickle.loads(pickle.dumps(learned))
    stale.stale_rounds = 1
    (system, start), = random_starts(stale, with_rule, 1)
    assert start.get_chemical_formula() == "Cu2" and start.info["crystal_system"] == system
    run_final(stale, with_rule, emt_calculator, SerialExecutor())
    assert len(stale.final_results) == 2  # still relax_per_round relaxations: one GA pick, one random start
    expected = relax(start, emt_calculator, fmax=with_rule.fmax, steps=with_rule.final_relax_steps)
    assert any(math.isclose(r.energy_ev, expected.energy_ev) for r in stale.final_results)
    # with one relaxation per round the random start is all there is; a new best says where it came from
    alone = pickle.loads(pickle.dumps(learned))
    alone.stale_rounds, alone.improvements[-1].energy_per_atom = 1, 10.0
    run_final(alone, dataclasses.replace(with_rule, relax_per_round=1), emt_calculator, SerialExecutor())
    assert len(alone.final_results) == 1 and math.isclose(alone.final_results[0].energy_ev, expected.energy_ev)
    assert alone.best.phase == "final round 1 random start relaxation"
    # its minimum joins its crystal system's population as a parent (appended after the round's GA)
    assert np.allclose(stale.populations[system][-1].cell[:], expected.atoms.cell[:])
    with pytest.raises(ValueError, match="stale_random_relaxations"):
        run_search(_config(stale_random_relaxations=-1), emt_calculator)
