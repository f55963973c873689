"""Formula -> (Z, fraction) arrays: round trips and every bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition

from gapkit.featurize.composition import (
    FormulaError,
    decode_formula,
    encode_formula,
    encode_formulas,
    parse_formula,
)


def test_encode_sio2_uses_atomic_numbers_and_padding():
    z, frac = encode_formula("SiO2")
    assert z.dtype == np.int64 and frac.dtype == np.float32
    assert z.tolist() == [14, 8, 0, 0, 0, 0, 0]
    np.testing.assert_allclose(frac, [1 / 3, 2 / 3, 0, 0, 0, 0, 0], rtol=1e-6)


@pytest.mark.parametrize("formula", ["SiO2", "Co12Mn5Nd2", "Ba0.5Sr0.5TiO3", "Cu2Er1O4", "H", "LiFePO4"])
def test_round_trip(formula):
    z, frac = encode_formula(formula)
    assert frac.sum() == pytest.approx(1.0, abs=1e-6)
    back = decode_formula(z, frac)
    assert back.almost_equals(Composition(formula).fractional_composition, rtol=1e-5)


def test_max_elements_is_configurable():
    z, frac = encode_formula("NaCl", max_elements=3)
    assert z.shape == frac.shape == (3,)
    with pytest.raises(ValueError):
        encode_formula("NaCl", max_elements=0)


@pytest.mark.parametrize(
    "bad, match",
    [
        ("", "Empty"),
        ("   ", "Empty"),
        ("Xx2O", "not a chemical element|Cannot parse"),  # unknown element
        ("Si(O2", "Cannot parse"),  # unparsable
        ("Si0O2", "zero amount of Si"),  # zero amount (pymatgen would drop it silently)
        ("SiO-2", "non-positive|Cannot parse"),  # negative amount
        (None, r"Empty formula \(a missing value\)"),
        (float("nan"), r"Empty formula \(a missing value\)"),  # pandas reads an empty CSV cell as NaN
        (12, "must be a string"),
    ],
)
def test_bad_formulas_raise_formula_error(bad, match):
    with pytest.raises(FormulaError, match=match):
        encode_formula(bad)


def test_too_many_elements():
    with pytest.raises(FormulaError, match="more than max_elements=7"):
        encode_formula("HLiBeBCNOF")
    z, _ = encode_formula("HLiBeBCNOF", max_elements=8)
    assert (z > 0).sum() == 8


def test_parse_formula_still_returns_composition():
    assert parse_formula("Fe2O3") == Composition("Fe2O3")


def test_encode_formulas_dataframe_column():
    df = pd.DataFrame({"formula": ["SiO2", "NaCl", "Fe2O3"]})
    z, frac = encode_formulas(df["formula"], progress=False)
    assert z.shape == frac.shape == (3, 2)  # as wide as the formula with most elements
    assert z[1, :2].tolist() == [11, 17]
    np.testing.assert_allclose(frac.sum(axis=1), 1.0, rtol=1e-6)


def test_encode_formulas_takes_any_number_of_elements():
    # a real MP mineral with 8 elements: the width follows the data, no max_elements to raise
    z, frac = encode_formulas(["Na1Al6Fe3Si6B3H3O30F1", "NaCl"], progress=False)
    assert z.shape == (2, 8) and (z[1, 2:] == 0).all()
    with pytest.raises(FormulaError, match="more than max_elements=7"):
        encode_formulas(["Na1Al6Fe3Si6B3H3O30F1"], max_elements=7, progress=False)


def test_encode_formulas_reports_the_bad_row():
    with pytest.raises(FormulaError, match="Row 1"):
        encode_formulas(["SiO2", "Qq", "NaCl"], progress=False)
