"""Summaries of a band-gap dataset: size, metals vs gapped, spread of the gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd


def gap_summary(gaps: pd.Series, name: str = "") -> dict[str, float | int | str]:
    """Return n, number and fraction of zero gaps, and quartiles of the nonzero gaps (eV)."""
    gaps = pd.to_numeric(gaps, errors="coerce").dropna()
    nonzero = gaps[gaps > 0]
    return {
        "dataset": name,
        "n": int(len(gaps)),
        "n_zero_gap": int((gaps == 0).sum()),
        "frac_zero_gap": round(float((gaps == 0).mean()), 3) if len(gaps) else float("nan"),
        "median_nonzero_ev": round(float(nonzero.median()), 3) if len(nonzero) else float("nan"),
        "q90_nonzero_ev": round(float(nonzero.quantile(0.9)), 3) if len(nonzero) else float("nan"),
        "max_ev": round(float(gaps.max()), 3) if len(gaps) else float("nan"),
    }


def polymorph_counts(formulas: pd.Series) -> pd.Series:
    """How many entries share each reduced formula (the reason splits are grouped by formula)."""
    from gapkit.data.splits import reduced_formulas

    return reduced_formulas(formulas).value_counts()


def worst_standard_score(reference: np.ndarray, x: np.ndarray) -> float:
    """Largest |z| of any entry of ``x`` standardised by the column means / stds of ``reference`` (constant columns: std 1).

    What a network that standardises its inputs on ``reference`` would see: a descriptor-table slip shows up as
    thousands of standard deviations.
    """
    reference, x = np.asarray(reference, dtype=float), np.asarray(x, dtype=float)
    if reference.ndim != 2 or x.ndim != 2 or reference.shape[1] != x.shape[1] or len(reference) < 2:
        raise ValueError(f"need two 2-D arrays with the same columns and >= 2 reference rows, got "
                         f"{reference.shape} and {x.shape}.")
    from gapkit.models.mlp import column_scale  # the same scaling the MLP's inputs get

    return float(np.abs((x - reference.mean(axis=0)) / column_scale(reference)).max())
