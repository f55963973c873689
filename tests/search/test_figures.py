import math

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from gapkit.search.figures import plot_success_curves

inf = math.inf


def test_success_curves_one_panel_per_system_with_the_longer_baseline_runs():
    ga = pd.DataFrame({"budget": [100, 200], "ga_potential": [10.0, inf], "random": [inf, 150.0],
                       "ase_ga": [inf, inf]})
    longer = pd.DataFrame({"budget": [1000, 1000], "random": [400.0, 150.0]})
    both = longer.assign(ase_ga=[inf, 700.0], ase_ga_below=[20.0, inf])
    fig = plot_success_curves({"Si": ga, "TiO2": ga, "CaTiO3": ga}, {"TiO2": longer, "CaTiO3": both})
    left, middle, right = fig.axes
    assert [line.get_label() for line in left.get_lines()][:3] == ["GA + potential", "random search", "ase-ga"]
    dashed = [line for line in middle.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_label() == "random search, 1000 calls"
    x, y = dashed[0].get_data()
    assert y[x == 149][0] == 0 and y[x == 150][0] == 0.5 and y[-1] == 1.0  # both seeds by 400 calls
    dashed = [line for line in right.get_lines() if line.get_linestyle() == "--"]
    assert [line.get_label() for line in dashed] == ["random search, 1000 calls", "ase-ga, 1000 calls"]
    x, y = dashed[1].get_data()
    assert y[x == 699][0] == 0 and y[-1] == 0.5


def test_success_curves_draw_other_runs_of_the_ga_in_its_colour_with_their_own_styles():
    ga = pd.DataFrame({"budget": [100, 200], "ga_potential": [10.0, inf]})
    rounds = pd.DataFrame({"budget": [300, 900], "ga_potential": [10.0, 600.0]})
    screened = pd.DataFrame({"budget": [40, 1000], "ga_potential": [35.0, inf]})
    (ax,) = plot_success_curves({"Si": ga}, ga_variants={"more rounds": {"Si": rounds},
                                                         "screened": {"Si": screened}, "absent": {}}).axes
    (dashed,) = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert dashed.get_label() == "GA + potential, more rounds"
    x, y = dashed.get_data()
    assert x[-1] == 900 and y[x == 599][0] == 0.5 and y[-1] == 1.0
    (dash_dot,) = [line for line in ax.get_lines() if line.get_linestyle() == "-."]
    assert dash_dot.get_label() == "GA + potential, screened"
    x, y = dash_dot.get_data()
    assert x[-1] == 1000 and y[x == 34][0] == 0 and y[-1] == 0.5


def test_success_bands_shade_an_interval_around_each_curve():
    from gapkit.search.figures import plot_success_bands

    fig = plot_success_bands({"Si": {"GA": pd.Series([10.0, 20.0, inf]), "random": pd.Series([300.0, inf, inf])},
                              "TiO2": {"GA": pd.Series([5.0, 6.0])}})
    left, right = fig.axes
    ga, rs = left.get_lines()[:2]
    assert ga.get_label() == "GA (3 seeds)" and rs.get_label() == "random (3 seeds)"
    x, y = ga.get_data()
    assert y[x == 20][0] == pytest.approx(2 / 3) and y[-1] == pytest.approx(2 / 3)
    assert len(left.collections) == 2 and len(right.collections) == 1  # one shaded band per curve
