"""Comparing a found structure with the reference crystal (cheap ASE structures; no CHGNet)."""

import math

import pytest
from ase.build import bulk

from gapkit.search.compare import calls_to_half_success, method_summary, reference_lattice_a


def test_reference_lattice_a_of_the_reference_crystal():
    reference = bulk("Si", "diamond", a=5.43, cubic=True)  # conventional 8-atom cell
    found = bulk("Si", "diamond", a=5.47)  # primitive 2-atom cell, a little larger
    found.rotate(30, "z", rotate_cell=True)
    assert reference_lattice_a(found, reference) == pytest.approx(5.47, abs=1e-3)
    assert reference_lattice_a(reference, reference) == pytest.approx(5.43, abs=1e-3)


def test_reference_lattice_a_is_nan_for_another_crystal():
    reference = bulk("Si", "diamond", a=5.43)
    assert math.isnan(reference_lattice_a(bulk("Si", "bct", a=4.9, c=2.7), reference))
    assert math.isnan(reference_lattice_a(bulk("Si", "fcc", a=3.9), reference))


def test_label_study_compares_the_three_labellings():
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from gapkit.search.compare import LABELLINGS, label_study
    from gapkit.search.potential import TrainSettings

    structures, energies, forces, stresses = [], [], [], []
    for k in range(14):
        atoms = bulk("Cu", "fcc", 3.6, cubic=True)
        atoms.rattle(0.12, seed=k)
        atoms.set_cell(atoms.cell * (0.96 + 0.006 * k), scale_atoms=True)
        atoms.calc = EMT()
        energies.append(atoms.get_potential_energy())
        forces.append(atoms.get_forces())
        stresses.append(atoms.get_stress(voigt=False))
        atoms.calc = None
        structures.append(atoms)
    table = label_study(structures[:12], energies[:12], forces[:12], stresses[:12], structures[12:],
                        energies[12:], [29], TrainSettings(max_epochs=300, patience=100), seed=0, n_folds=3)
    assert list(table["training labels"]) == list(LABELLINGS)
    assert table.drop(columns=["training labels"]).notna().all().all()
    # the force labels teach forces: the held-out force error drops
    assert table["held-out F RMSE (eV/Å)"].iloc[1] < table["held-out F RMSE (eV/Å)"].iloc[0]
    with pytest.raises(ValueError, match="folds"):
        label_study(structures[:4], energies[:4], forces[:4], stresses[:4], [], [], [29], n_folds=4)


def test_recorded_calls_reads_a_benchmark_record(tmp_path):
    from gapkit.results import record_results
    from gapkit.search.compare import recorded_calls

    assert recorded_calls("medium", tmp_path) is None
    rows = [{"seed": 0, "budget": 900, "ga_potential": 120.0, "random": None, "ase_ga": 800.0, "wall_s": 60.0}]
    record_results("search", "medium", {"per_seed": rows, "summary": {}}, device="cpu", wall_time_s=60.0,
                   directory=tmp_path)
    calls, provenance = recorded_calls("medium", tmp_path)
    assert calls.loc[0, "random"] == math.inf and calls.loc[0, "ga_potential"] == 120.0
    assert provenance["device"] == "cpu"


def test_calls_to_half_success_and_summary():
    inf = float("inf")
    assert calls_to_half_success([30, 10, inf, 20]) == 20  # 2 of 4 seeds by 20 calls
    assert calls_to_half_success([5, inf, inf]) == inf  # 1 of 3 is not half
    assert calls_to_half_success([7]) == 7
    with pytest.raises(ValueError):
        calls_to_half_success([])
    import pandas as pd

    table = method_summary(pd.DataFrame({"ga_potential": [10, 30, inf], "random": [inf, 200, 50]}))
    assert list(table["method"]) == ["GA + potential", "random search"]
    assert list(table["found"]) == [2, 2]
    assert list(table["median calls when found"]) == [20, 125]
    assert list(table["calls to 50 % success"]) == [30, 200]


def test_oracle_savings_reads_the_target():
    import pandas as pd

    from gapkit.search.compare import oracle_savings

    inf = float("inf")
    ga = pd.DataFrame({"budget": [300] * 4, "ga_potential": [10.0, 20.0, 30.0, 40.0]})
    slow = pd.DataFrame({"budget": [3000] * 4, "random": [100.0, 150.0, inf, 900.0]})
    out = oracle_savings(ga, slow)
    assert out["GA calls to 50 %"] == 20 and out["random calls to 50 %"] == 150
    assert out["ratio"] == 7.5 and out["ratio is"] == "=" and out["target met"]
    assert not oracle_savings(ga, slow, min_ratio=8)["target met"]
    never = pd.DataFrame({"budget": [3000] * 4, "random": [inf, inf, inf, 5.0]})
    bounded = oracle_savings(ga, never)
    assert bounded["ratio"] == 150 and bounded["ratio is"] == ">"  # 3000 / 20: a lower bound
    weak = pd.DataFrame({"budget": [300] * 4, "ga_potential": [10.0, 20.0, inf, 40.0]})
    assert not oracle_savings(weak, slow)["target met"]  # 3/4 found < 90 %
    lost = pd.DataFrame({"budget": [300] * 4, "ga_potential": [inf, inf, inf, 40.0]})
    assert math.isnan(oracle_savings(lost, slow)["ratio"]) and not oracle_savings(lost, slow)["target met"]
    other = oracle_savings(ga.assign(ga_potential_energy=[5.0, 8.0, 9.0, 9.0]), slow.assign(random_energy=[90.0] * 4),
                           column="ga_potential_energy", random_column="random_energy")
    assert other["GA calls to 50 %"] == 8 and other["random calls to 50 %"] == 90 and other["ratio"] == 90 / 8


def test_savings_by_criterion_reads_each_criterion_the_runs_have_columns_for():
    import pandas as pd

    from gapkit.search.compare import oracle_savings, savings_by_criterion

    inf = float("inf")
    ga = pd.DataFrame({"budget": [300] * 4, "ga_potential": [10.0, 20.0, 30.0, 40.0],
                       "ga_potential_energy": [5.0, 8.0, 9.0, 9.0]})
    slow = pd.DataFrame({"budget": [3000] * 4, "random": [100.0, 150.0, inf, 900.0], "random_energy": [90.0] * 4})
    table = savings_by_criterion({"Cu": (ga, slow), "Ag": (ga, None)})
    # no relaxed column, no random-search rows for Ag: two rows, each the oracle_savings of its columns
    assert list(table.index) == [("Cu", "match"), ("Cu", "energy")]
    assert table.loc[("Cu", "energy"), "ratio"] == oracle_savings(
        ga, slow, column="ga_potential_energy", random_column="random_energy")["ratio"] == 90 / 8
    assert table.loc[("Cu", "match"), "ratio"] == 7.5


def test_calls_to_ground_state_resumes_from_its_state_dir(tmp_path):
    import dataclasses

    from ase.calculators.emt import EMT

    from gapkit.search.compare import calls_to_ground_state
    from gapkit.search.ga import GASettings
    from gapkit.search.potential import TrainSettings
    from gapkit.search.profiles import search_config
    from gapkit.search.runner import state_file

    small = {"crystal_systems": ("cubic", "hexagonal"), "ga": GASettings(population_size=6, n_children=3),
             "ga_generations": 1, "final_generations": 1, "max_cycles": 1, "recommend_per_system": 2,
             "final_per_system": 1, "min_training_size": 1000, "final_relax_steps": 10,
             "potential_relax_steps": 2, "train": TrainSettings(max_epochs=40, patience=20)}
    reference = bulk("Cu", "fcc", a=3.6)
    made = []

    def counted_emt():
        made.append(1)
        return EMT()

    first = calls_to_ground_state("Cu", 2, reference, counted_emt, "quick", [3], small, baselines=(),
                                  state_dir=tmp_path)
    assert [p.name.startswith("Cu2-seed3-") for p in tmp_path.iterdir()] == [True]
    assert first["budget"].iloc[0] > 0 and made
    made.clear()
    again = calls_to_ground_state("Cu", 2, reference, counted_emt, "quick", [3], small, baselines=(),
                                  state_dir=tmp_path)
    assert again.equals(first) and made == []  # resumed from the finished state: no oracle call
    # another setting is another search, with its own state file
    base = dataclasses.replace(search_config("quick", "Cu", 2, 3), **small)
    assert state_file(tmp_path, base) != state_file(tmp_path, dataclasses.replace(base, final_relax_steps=11))


def test_stop_when_found_keeps_the_calls_to_the_reference_and_spends_fewer():
    from gapkit.search.compare import calls_to_ground_state
    from gapkit.search.ga import GASettings
    from gapkit.search.oracle import emt_calculator, relax
    from gapkit.search.potential import TrainSettings

    rounds = {"crystal_systems": ("cubic", "hexagonal", "triclinic"), "ga": GASettings(population_size=8, n_children=4),
              "ga_generations": 2, "final_generations": 3, "max_cycles": 2, "recommend_per_system": 3,
              "final_per_system": 1, "min_training_size": 1000, "final_relax_steps": 40,
              "potential_relax_steps": 2, "final_rounds": 6, "round_patience": 6, "relaxation_frames_every": 4,
              "train": TrainSettings(max_epochs=200, patience=50)}
    reference = relax(bulk("Cu", "fcc", 3.6), emt_calculator, steps=100)  # with its energy, as reference_structure
    whole = calls_to_ground_state("Cu", 2, reference, emt_calculator, "quick", [1], rounds, baselines=())
    cut = calls_to_ground_state("Cu", 2, reference, emt_calculator, "quick", [1], rounds, baselines=(),
                                stop_when_found=True)
    assert math.isfinite(whole["ga_potential"].iloc[0])
    assert cut["ga_potential"].iloc[0] == whole["ga_potential"].iloc[0]
    assert cut["budget"].iloc[0] < whole["budget"].iloc[0]
    assert "ga_potential_below" in whole and "ga_potential_below" not in cut  # not looked for past the stop
    phase = cut["ga_potential_phase"].iloc[0]
    assert phase == whole["ga_potential_phase"].iloc[0] and phase.startswith(("learning cycle", "final round"))
    assert abs(cut["ga_potential_best_meV_above_reference"].iloc[0]) < 5  # it stopped at the reference
    assert cut["ga_potential_relaxed"].iloc[0] >= cut["ga_potential"].iloc[0]
    with pytest.raises(ValueError, match="GA alone"):
        calls_to_ground_state("Cu", 2, reference, emt_calculator, "quick", [1], rounds, stop_when_found=True)


def test_where_found_names_the_phase_of_the_first_match_and_the_best_energy_above_the_reference():
    from gapkit.search.active import Improvement
    from gapkit.search.compare import where_found
    from gapkit.search.oracle import OracleResult

    fcc, bcc = bulk("Cu", "fcc", a=3.6), bulk("Cu", "bcc", a=2.87)
    reference = OracleResult(fcc, -3.5 * len(fcc), 0, 10, "", {})
    trail = [Improvement(5, -3.2, bcc, "learning cycle 0"), Improvement(40, -3.49, fcc, "final round 1 screening"),
             Improvement(60, -3.52, fcc, "final round 1 relaxation")]
    assert where_found(trail, reference) == {"phase": "final round 1 screening", "best_meV_above_reference": -20.0}
    assert where_found(trail[:1], reference) == {"phase": "", "best_meV_above_reference": 300.0}
    bare = where_found(trail, fcc)  # no reference energy: nothing to measure against
    assert bare["phase"] == "final round 1 screening" and math.isnan(bare["best_meV_above_reference"])


def test_variant_side_by_side_puts_two_runs_outcomes_under_their_names():
    import pandas as pd

    from gapkit.search.compare import variant_side_by_side

    inf = float("inf")
    base = pd.DataFrame({"seed": [0, 1], "budget": [99, 40], "ga_potential": [inf, 30.0],
                         "ga_potential_relaxed": [inf, 32.0], "ga_potential_energy": [70.0, 32.0]})
    variant = base.assign(ga_potential=[50.0, 30.0], budget=[55, 40], ga_potential_phase=["final round 2 relaxation", None],
                          ga_potential_best_meV_above_reference=[-0.4, 2.0])
    table = variant_side_by_side(base, variant, ("before", "after"), phase=True)
    assert list(table.columns) == [0, 1]
    assert table.loc[("before", "match"), 0] == inf and table.loc[("after", "match"), 0] == 50
    assert table.loc[("after", "calls spent"), 0] == 55 and table.loc[("after", "first match in"), 1] == "-"
    assert table.loc[("after", "best (meV/atom above)"), 0] == -0.4
    assert ("after", "first match in") not in variant_side_by_side(base, variant, ("before", "after")).index


def test_seeds_side_by_side_lines_up_runs_by_seed():
    import pandas as pd

    from gapkit.search.compare import seeds_side_by_side

    inf = math.inf
    first = pd.DataFrame({"seed": [1, 0], "ga_potential": [30.0, inf]})
    second = pd.DataFrame({"seed": [0, 1, 2], "ga_potential": [12.0, 30.0, 50.0]})
    table = seeds_side_by_side({"first": first, "second": second})
    assert list(table.index) == [0, 1, 2] and list(table.columns) == ["first", "second"]
    assert table.loc[0, "first"] == inf and table.loc[0, "second"] == 12.0 and math.isnan(table.loc[2, "first"])
    with pytest.raises(ValueError, match="No runs"):
        seeds_side_by_side({})


def test_savings_interval_brackets_the_ratio_and_narrows_with_more_seeds():
    from gapkit.search.compare import savings_interval

    inf = math.inf
    ga, rs = [10.0, 12.0, 14.0, 16.0, inf], [100.0, 120.0, 140.0, 160.0, inf]
    low, high = savings_interval(ga, rs, 3000)
    assert low <= 10.0 <= high  # the point estimate, 140 / 14
    assert savings_interval(ga, rs, 3000) == (low, high)  # seeded
    wide = high - low
    low10, high10 = savings_interval(ga * 10, rs * 10, 3000)
    assert high10 - low10 < wide
    assert savings_interval([5.0] * 4, [inf] * 4, 3000) == (600.0, 600.0)  # random never: its budget bounds
    assert savings_interval([inf] * 4, [50.0] * 4, 3000) == (0.0, 0.0)  # the GA never: no saving


def test_relaxed_outcomes_add_the_relaxation_of_a_single_point_match():
    from gapkit.search.active import Improvement
    from gapkit.search.compare import relaxed_outcomes
    from gapkit.search.oracle import emt_calculator, relax

    reference = relax(bulk("Cu", "fcc", a=3.6), emt_calculator, steps=100)
    squeezed = bulk("Cu", "fcc", a=3.3)  # matches fcc (StructureMatcher scales volumes) far above its minimum
    e_squeezed = relax(squeezed, emt_calculator, steps=0).energy_per_atom
    again = relax(squeezed, emt_calculator, steps=100)
    point = [Improvement(7, e_squeezed + 0.1, bulk("Cu", "bcc", a=2.87), "learning cycle 0"),
             Improvement(12, e_squeezed, squeezed, "learning cycle 1")]
    assert e_squeezed > reference.energy_per_atom + 0.05
    calls = 12 + again.n_calls - 1
    assert relaxed_outcomes(point, reference, emt_calculator) == {"ga_potential_relaxed": calls,
                                                                  "ga_potential_energy": calls}
    relaxed = point[:1] + [Improvement(30, again.energy_per_atom, again.atoms, "final round 1", relaxed=True)]
    assert relaxed_outcomes(relaxed, reference, emt_calculator)["ga_potential_relaxed"] == 30  # relaxed already
    assert relaxed_outcomes(point[:1], reference, emt_calculator) == {"ga_potential_relaxed": math.inf,
                                                                      "ga_potential_energy": math.inf}
    assert relaxed_outcomes(point, reference.atoms, emt_calculator) == {"ga_potential_relaxed": calls}


def test_calls_to_energy_counts_any_cell_as_low_as_the_reference():
    from gapkit.search.active import Improvement
    from gapkit.search.baselines import calls_to_energy

    trail = [Improvement(5, -3.0, bulk("Cu", "bcc", a=2.87)), Improvement(9, -3.497, bulk("Cu", "hcp", a=2.55)),
             Improvement(20, -3.6, bulk("Cu", "fcc", a=3.6))]
    assert calls_to_energy(trail, -3.5) == 9  # another crystal, level with the reference within the margin
    assert calls_to_energy(trail, -3.5, margin=0.001) == 20
    assert calls_to_energy(trail, -4.0) == math.inf


def test_settled_waits_after_the_match_for_a_cell_as_low_as_the_reference():
    from gapkit.search.active import Improvement, SearchState
    from gapkit.search.compare import Settled, relaxed_outcomes
    from gapkit.search.oracle import emt_calculator, relax
    from gapkit.search.profiles import search_config

    reference = relax(bulk("Cu", "fcc", a=3.6), emt_calculator, steps=100)
    config = search_config("quick", "Cu", 2, 0)
    bcc = Improvement(5, reference.energy_per_atom + 0.3, bulk("Cu", "bcc", a=2.87), "learning cycle 0")
    state = SearchState(improvements=[bcc])
    test = Settled(reference, emt_calculator, config)
    assert not test(state)  # no match yet
    capped = relax(bulk("Cu", "fcc", a=3.3), emt_calculator, steps=1)  # a relaxation cut at its cap
    assert capped.energy_per_atom > reference.energy_per_atom + 0.005 and not capped.relaxed
    cut = SearchState(improvements=[bcc, Improvement(20, capped.energy_per_atom, capped.atoms, "final round 1 "
                                                     "relaxation", relaxed=capped.relaxed)])
    assert Settled(reference, emt_calculator, config)(cut)  # relaxed further, it reaches the reference
    assert relaxed_outcomes(cut.improvements, reference, emt_calculator)["ga_potential_relaxed"] > 20
    # a match at a minimum above the reference (made up: a converged cell 5 meV/atom too high) does not settle
    state.improvements.append(Improvement(20, capped.energy_per_atom, capped.atoms, "final round 1", relaxed=True))
    assert not test(state)
    state.improvements.append(Improvement(30, reference.energy_per_atom, reference.atoms, "final round 2",
                                          relaxed=True))
    assert test(state)
    squeezed = relax(bulk("Cu", "fcc", a=3.3), emt_calculator, steps=0)  # a single point that matches
    single = SearchState(improvements=[bcc, Improvement(12, squeezed.energy_per_atom, squeezed.atoms, "cycle 1")])
    assert Settled(reference, emt_calculator, config)(single)  # its relaxation reaches the reference
    assert not Settled(reference, emt_calculator, config, relax_match=False)(single)
    assert Settled(reference.atoms, emt_calculator, config)(single)  # no reference energy: the match settles it


def test_the_relaxed_match_settled_computed_is_not_relaxed_again_for_the_row():
    from gapkit.search.active import Improvement, SearchState
    from gapkit.search.compare import Settled, relaxed_outcomes
    from gapkit.search.oracle import emt_calculator, relax
    from gapkit.search.profiles import search_config

    made = []

    def counted_emt():
        made.append(1)
        return emt_calculator()

    reference = relax(bulk("Cu", "fcc", a=3.6), emt_calculator, steps=100)
    squeezed = relax(bulk("Cu", "fcc", a=3.3), emt_calculator, steps=0)
    single = SearchState(improvements=[Improvement(12, squeezed.energy_per_atom, squeezed.atoms, "cycle 1")])
    test = Settled(reference, emt_calculator, search_config("quick", "Cu", 2, 0))
    assert test(single) and len(test.relaxed) == 1
    fresh = relaxed_outcomes(single.improvements, reference, emt_calculator)
    assert relaxed_outcomes(single.improvements, reference, counted_emt, relaxed=test.relaxed) == fresh
    assert not made  # the slot's relaxation was used
    assert relaxed_outcomes(single.improvements, reference, counted_emt) == fresh and made


def test_wilson_interval_and_headline_row():
    import pandas as pd

    from gapkit.search.compare import headline_row, wilson_interval

    low, high = wilson_interval(10, 10)
    assert 0.7 < low < 0.85 and high == 1.0  # all seeds found: the interval still admits misses
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and 0.3 < high < 0.5
    with pytest.raises(ValueError):
        wilson_interval(0, 0)
    inf = float("inf")
    ga = pd.DataFrame({"seed": range(4), "budget": 500, "ga_potential": [10.0, 20.0, 30.0, inf]})
    rs = pd.DataFrame({"seed": range(4), "budget": 3000, "random": [100.0, 200.0, inf, inf]})
    row = headline_row(ga, rs)
    assert row["GA: found"].startswith("3/4 (") and row["random: found"].startswith("2/4 (")
    assert row["GA: calls to 50 %"] == 20 and row["random: calls to 50 %"] == 200
    assert row["fewer calls"] == "10.0x"


def test_table2_beside_paper_scales_our_energy_to_the_papers_cell():
    from gapkit.search.compare import table2_beside_paper

    table = table2_beside_paper("Si", {"ours": (bulk("Si", "diamond", a=5.45), -5.3)})
    assert list(table["structure"]) == ["paper: experimental structure (DFT)", "paper: GA + NN found (DFT)", "ours"]
    ours = table.iloc[-1]
    assert ours["a (Å)"] == pytest.approx(5.45, abs=1e-3) and ours["c (Å)"] == pytest.approx(5.45, abs=1e-3)
    assert ours["E per 8-atom cell (eV)"] == pytest.approx(-42.4)
    assert table.iloc[0]["E per 8-atom cell (eV)"] == -43.19
    with pytest.raises(ValueError, match="no GaAs"):
        table2_beside_paper("GaAs", {})
