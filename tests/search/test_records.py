"""Selecting recorded searches by the settings stored inside them (tiny records written to a temporary folder)."""

import math

import numpy as np
import pytest

from gapkit.results import record_results
from gapkit.search.records import (RECOMMENDED, latest_run, record_methods, record_settings, search_records,
                                   select_records, settings_differences)


def _write(folder, name, formula, n_atoms, rows, settings=None):
    metrics = {"formula": formula, "n_atoms": n_atoms, "per_seed": rows, "summary": {}}
    if settings is not None:
        metrics["settings"] = settings
    record_results("search", name, metrics, device="cpu", wall_time_s=1.0, directory=folder)


@pytest.fixture
def folder(tmp_path):
    ga = [{"seed": s, "budget": 300, "ga_potential": 100.0 + s} for s in range(3)]
    _write(tmp_path, "zz-misleading-name", "Si", 8, ga, RECOMMENDED)
    _write(tmp_path, "recommended-TiO2", "Si", 8, [{**r, "ga_potential": None} for r in ga],
           {**RECOMMENDED, "stale_random_relaxations": 0})
    _write(tmp_path, "first", "Si", 8, [{"seed": 0, "budget": 90, "ga_potential": 50.0, "random": None,
                                         "ase_ga": 80.0}])  # predates stored settings
    _write(tmp_path, "random", "Si", 8, [{"seed": s, "budget": 3000, "random": 600.0} for s in range(3)],
           {"final_rounds": 1, "methods": ["random"]})
    _write(tmp_path, "other", "TiO2", 6, ga, RECOMMENDED)
    return tmp_path


def test_records_are_found_by_their_settings_not_their_names(folder):
    records = search_records(folder)
    assert len(records) == 5
    (match,) = select_records(records, formula="Si", n_atoms=8, method="ga_potential", **RECOMMENDED)
    assert match["profile"] == "zz-misleading-name"
    calls, record = latest_run(records, formula="Si", n_atoms=8, **{**RECOMMENDED, "stale_random_relaxations": 0})
    assert record["profile"] == "recommended-TiO2" and (calls["ga_potential"] == math.inf).all()
    assert settings_differences(record) == {"stale_random_relaxations": 0}


def test_records_without_stored_settings_read_the_old_defaults(folder):
    records = search_records(folder)
    (first,) = select_records(records, formula="Si", final_rounds=1, method="ase_ga")
    assert record_settings(first)["screen_final_picks"] is False
    assert record_methods(first) == ("ga_potential", "random", "ase_ga")
    calls, _ = latest_run(records, formula="Si", method="random", seeds=range(3))
    assert list(calls["seed"]) == [0, 1, 2] and (calls["random"] == 600.0).all()
    assert latest_run(records, formula="Si", method="random", seeds=range(4)) is None  # seed 3 not recorded


def test_unknown_settings_and_methods_are_refused(folder):
    with pytest.raises(ValueError, match="Unknown search setting"):
        select_records(search_records(folder), final_round=40)
    with pytest.raises(ValueError, match="Unknown method"):
        select_records(search_records(folder), method="ga")


def test_the_committed_records_hold_the_recommended_method_for_two_systems():
    assert select_records(formula="TiO2", n_atoms=6, method="ga_potential", **RECOMMENDED)
    assert select_records(formula="Si", n_atoms=8, method="ga_potential", **RECOMMENDED)


def test_recommended_run_falls_back_to_the_record_without_random_starts(folder):
    from gapkit.search.records import recommended_run

    records = search_records(folder)
    _, record = recommended_run("Si", 8, records)
    assert record["profile"] == "zz-misleading-name"
    _, record = recommended_run("Si", 8, [r for r in records if r["profile"] != "zz-misleading-name"])
    assert settings_differences(record) == {"stale_random_relaxations": 0}
    assert recommended_run("CaTiO3", 5, records) is None


def test_config_changes_rebuild_the_recorded_method():
    from gapkit.search.profiles import search_config
    from gapkit.search.records import config_changes

    config = search_config("quick", "Si", 2).replace(final={"rounds": 1, "patience": None, "frames_every": 0,
                                                             "stale_random_relaxations": 0}, budget=None)
    config = config.replace(**config_changes())
    assert config.final.frames_every == 5 and config.final.stale_random_relaxations == 1
    assert config.final.screen_picks and config.final.relax_per_round == 3 and config.budget == 1000


def test_savings_table_and_overview(folder):
    from gapkit.search.records import records_overview, savings_table

    records = search_records(folder)
    table = savings_table({"recommended": RECOMMENDED}, [("Si", 8), ("TiO2", 6)], records, seeds=range(3))
    assert list(table["system"]) == ["Si, 8 atoms", "TiO2, 6 atoms"]
    assert table.loc[1, "90 % interval"] == "-"  # no random-search record of TiO2: no ratio
    assert table.loc[0, "GA found"] == "3/3" and table.loc[0, "GA calls to 50 %"] == 101
    assert table.loc[0, "random calls to 50 %"] == 600 and table.loc[0, "fewer calls"] == 600 / 101
    overview = records_overview(records)
    assert len(overview) == 5
    assert overview.set_index("record").loc["first", "settings unlike the recommended"].startswith("final_rounds=1")


def test_atoms_round_trip_through_a_record(tmp_path):
    import json

    from ase.build import bulk

    from gapkit.search.records import atoms_from_record, atoms_record, table2_record

    si = bulk("Si", "diamond", 5.43, cubic=True)
    entry = json.loads(json.dumps(atoms_record(si, -5.4321)))  # as the JSON file holds it
    atoms, energy = atoms_from_record(entry)
    assert energy == pytest.approx(-5.4321) and atoms.get_chemical_formula() == "Si8"
    assert np.allclose(atoms.cell[:], si.cell[:]) and np.allclose(atoms.positions, si.positions, atol=1e-5)
    assert table2_record(tmp_path) is None  # not run yet: the chapter says so instead of failing


def test_longest_baseline_prefers_the_largest_budget_and_keeps_the_asked_seeds(tmp_path):
    from gapkit.search.records import longest_baseline

    def write(profile, budget, seeds):
        rows = [{"seed": s, "budget": budget, "ase_ga": 50.0 + s, "wall_s": 1.0} for s in seeds]
        record_results("search", profile, {"formula": "Si", "n_atoms": 2, "per_seed": rows}, device="cpu",
                       wall_time_s=1.0, directory=tmp_path)

    write("short", 300, range(3))
    write("long", 3000, range(5))
    records = search_records(tmp_path)
    calls, record = longest_baseline("ase_ga", [0, 1, 2], records, formula="Si", n_atoms=2)
    assert record["profile"] == "long" and calls["seed"].tolist() == [0, 1, 2]
    assert longest_baseline("ase_ga", [7], records, formula="Si") is None


def test_seconds_per_call_only_for_a_record_of_one_method(folder):
    from gapkit.search.records import per_seed_calls, seconds_per_call

    records = search_records(folder)
    (one,) = select_records(records, formula="Si", method="random", final_rounds=1, seeds=range(3))
    calls = per_seed_calls(one).assign(wall_s=[30.0, 60.0, 90.0])
    assert seconds_per_call(calls, one) == pytest.approx(180 / 9000)
    (several,) = select_records(records, formula="Si", method="ase_ga")
    assert math.isnan(seconds_per_call(per_seed_calls(several).assign(wall_s=1.0), several))
