"""Tables of the chapter and its appendix: formatting of per-seed calls and of the paper's Table 2."""

import math

import numpy as np
import pandas as pd
import pytest
from ase.build import bulk

from gapkit.search.tables import (headline_row, method_summary, savings_by_criterion, seeds_side_by_side,
                                  table2_beside_paper, variant_side_by_side)

inf = math.inf


def test_method_summary_counts_found_seeds_and_lower_crystals():
    table = method_summary(pd.DataFrame({"ga_potential": [10, 30, inf], "random": [inf, 200, 50]}))
    assert list(table["method"]) == ["GA + potential", "random search"]
    assert list(table["found"]) == [2, 2]
    assert list(table["median calls when found"]) == [20, 125]
    assert list(table["calls to 50 % success"]) == [30, 200]
    calls = pd.DataFrame({"random": [20, np.inf, np.inf], "random_below": [30, 5, np.inf]})
    assert method_summary(calls)["found lower crystal"].tolist() == [2]
    assert "found lower crystal" not in method_summary(calls[["random"]])


def test_savings_by_criterion_reads_each_criterion_the_runs_have_columns_for():
    ga = pd.DataFrame({"budget": [300] * 4, "ga_potential": [10.0, 20.0, 30.0, 40.0],
                       "ga_potential_energy": [5.0, 8.0, 9.0, 9.0]})
    slow = pd.DataFrame({"budget": [3000] * 4, "random": [100.0, 150.0, inf, 900.0], "random_energy": [90.0] * 4})
    table = savings_by_criterion({"Cu": (ga, slow), "Ag": (ga, None)})
    # no relaxed column, no random-search rows for Ag: two rows
    assert list(table.index) == [("Cu", "match"), ("Cu", "energy")]
    assert table.loc[("Cu", "energy"), "ratio"] == 90 / 8 and table.loc[("Cu", "match"), "ratio"] == 7.5
    assert table.loc[("Cu", "match"), "GA found"] == "4/4" and table.loc[("Cu", "match"), "target met"]


def test_variant_side_by_side_puts_two_runs_outcomes_under_their_names():
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
    first = pd.DataFrame({"seed": [1, 0], "ga_potential": [30.0, inf]})
    second = pd.DataFrame({"seed": [0, 1, 2], "ga_potential": [12.0, 30.0, 50.0]})
    table = seeds_side_by_side({"first": first, "second": second})
    assert list(table.index) == [0, 1, 2] and list(table.columns) == ["first", "second"]
    assert table.loc[0, "first"] == inf and table.loc[0, "second"] == 12.0 and math.isnan(table.loc[2, "first"])
    with pytest.raises(ValueError, match="No runs"):
        seeds_side_by_side({})


def test_headline_row():
    ga = pd.DataFrame({"seed": range(4), "budget": 500, "ga_potential": [10.0, 20.0, 30.0, inf]})
    rs = pd.DataFrame({"seed": range(4), "budget": 3000, "random": [100.0, 200.0, inf, inf]})
    row = headline_row(ga, rs)
    assert row["GA: found"].startswith("3/4 (") and row["random: found"].startswith("2/4 (")
    assert row["GA: calls to 50 %"] == 20 and row["random: calls to 50 %"] == 200
    assert row["fewer calls than random"].startswith("10.0x (") and "ase-ga: found" not in row
    ase = pd.DataFrame({"seed": range(4), "budget": 3000, "ase_ga": [inf, inf, 40.0, inf]})
    row = headline_row(ga, rs, ase)
    assert row["ase-ga: found"].startswith("1/4 (") and row["ase-ga: calls to 50 %"] == inf


def test_table2_beside_paper_scales_our_energy_to_the_papers_cell():
    table = table2_beside_paper("Si", {"ours": (bulk("Si", "diamond", a=5.45), -5.3)})
    assert list(table["structure"]) == ["paper: experimental structure (DFT)", "paper: GA + NN found (DFT)", "ours"]
    ours = table.iloc[-1]
    assert ours["a (Å)"] == pytest.approx(5.45, abs=1e-3) and ours["c (Å)"] == pytest.approx(5.45, abs=1e-3)
    assert ours["E per 8-atom cell (eV)"] == pytest.approx(-42.4)
    assert table.iloc[0]["E per 8-atom cell (eV)"] == -43.19
    with pytest.raises(ValueError, match="no GaAs"):
        table2_beside_paper("GaAs", {})


def test_cost_row_gives_the_oracle_cost_where_the_ga_finishes_first():
    from gapkit.search.statistics import oracle_savings
    from gapkit.search.tables import cost_row

    ga = pd.DataFrame({"seed": range(4), "budget": 500, "ga_potential": [10.0, 20.0, 30.0, inf]})
    rs = pd.DataFrame({"seed": range(4), "budget": 3000, "random": [100.0, 200.0, inf, inf]})
    saving = oracle_savings(ga, rs)
    row = cost_row(saving, 2.0, 0.1)
    # times to 50 %: 20 x 2 s and 200 x 0.1 s; equal when an oracle call costs 0.1 + 20 / 180 s
    assert row["GA first above (s per oracle call)"] == round(0.1 + 20 / 180, 1)
    assert math.isnan(cost_row(saving, 2.0, math.nan)["GA first above (s per oracle call)"])
