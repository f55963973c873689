"""Data summaries and the periodic-table heatmap."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from gapkit.evaluate.data_summary import gap_summary, polymorph_counts
from gapkit.evaluate.periodic_table import element_counts, periodic_table_heatmap


def test_gap_summary():
    s = gap_summary(pd.Series([0, 0, 1.0, 2.0, 3.0]), "toy")
    assert (s["n"], s["n_zero_gap"], s["frac_zero_gap"], s["median_nonzero_ev"]) == (5, 2, 0.4, 2.0)


def test_polymorph_counts():
    counts = polymorph_counts(pd.Series(["SiO2", "Si2O4", "NaCl"]))
    assert counts["SiO2"] == 2 and counts["NaCl"] == 1


def test_element_counts_and_heatmap():
    counts = element_counts(["SiO2", "NaCl", "Na2O", "La2O3", "UO2"])
    assert counts["O"] == 4 and counts["Na"] == 2 and list(counts.index[:2]) == ["O", "Na"]
    ax = periodic_table_heatmap(counts)
    image = ax.images[0].get_array()
    # O sits at row 2, group 16; La in the lanthanide row; U in the actinide row
    assert image[1, 15] == 4 and image[7, 2] == 1 and image[8, 5] == 1
    assert np.ma.is_masked(image[0, 1]) or np.isnan(image[0, 1])


def test_worst_standard_score_finds_a_slip_and_rejects_bad_shapes():
    from gapkit.evaluate.data_summary import worst_standard_score

    rng = np.random.default_rng(0)
    reference = rng.normal(size=(30, 3))
    assert worst_standard_score(reference, reference) < 4
    slipped = reference.copy()
    slipped[0, 1] = 1000.0  # a lost decimal point
    assert worst_standard_score(reference, slipped) > 500
    const = np.c_[reference, np.ones(30)]
    assert np.isfinite(worst_standard_score(const, const))
    with pytest.raises(ValueError, match="same columns"):
        worst_standard_score(reference, reference[:, :2])
