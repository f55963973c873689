"""Screen hypothetical cubic ABX3 perovskites: candidates, t/μ filter, ensemble band gaps, solar-window ranking.

Candidates combine the A, B and X elements seen among the 175 targets (so every element is one the
fine-tuned models have met) into formulas that are not targets, keep charge-balanced ones (common
oxidation states of A and B that cancel three X), and keep those inside the Goldschmidt/octahedral window
(``gapkit.featurize.perovskite_factors``). Each is built as the Pm-3m cell with the radius estimate of its
lattice constant, scaled by the median CHGNet/estimate ratio of the targets (relaxing thousands with
CHGNet would cost more than the screen). The fold models' predictions give a mean gap, the spread
between folds (model disagreement) and the mean Laplace scale (the networks' own noise estimate).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from gapkit.data.perovskites import build_perovskite, estimate_lattice_constant
from gapkit.data.splits import reduced_formulas
from gapkit.featurize.perovskite_factors import (ShannonRadiusError, in_perovskite_window, mean_shannon_radius,
                                                 octahedral_factor, tolerance_factor)

X_CHARGE = {"O": -2, "F": -1, "Cl": -1, "Br": -1, "I": -1}
SOLAR_WINDOW_EV = (1.1, 1.8)


def charge_balanced(a: str, b: str, x: str) -> bool:
    """True when common oxidation states of A and B cancel the charge of three X."""
    from pymatgen.core import Element

    need = -3 * X_CHARGE[x]
    return any(oa + ob == need and oa > 0 and ob > 0 for oa in Element(a).common_oxidation_states
               for ob in Element(b).common_oxidation_states)


def candidate_table(targets: pd.DataFrame, exclude_formulas: Sequence[str] = ()) -> pd.DataFrame:
    """Charge-balanced ABX3 from the targets' A, B, X elements, not among ``targets``/``exclude``, with t and μ."""
    known = set(reduced_formulas(list(targets["formula"]) + list(exclude_formulas)))
    rows = []
    for a, b, x in itertools.product(sorted(set(targets["A"])), sorted(set(targets["B"])), sorted(set(targets["X"]))):
        if a == b or not charge_balanced(a, b, x):
            continue
        try:
            ra, rb, rx = mean_shannon_radius(a), mean_shannon_radius(b), mean_shannon_radius(x, anion=True)
        except ShannonRadiusError:
            continue  # no Shannon radius: t and μ cannot be computed, so the filter cannot vouch for it
        rows.append({"A": a, "B": b, "X": x, "formula": f"{a}{b}{x}3",
                     "t": tolerance_factor(ra, rb, rx), "mu": octahedral_factor(rb, rx)})
    df = pd.DataFrame(rows)
    df = df[~reduced_formulas(df["formula"]).isin(known).to_numpy()]
    return df.drop_duplicates("formula").reset_index(drop=True)


def filter_window(candidates: pd.DataFrame) -> pd.DataFrame:
    """Candidates inside 0.7 < t ≤ 1.1 and 0.45 < μ < 0.7."""
    return candidates[in_perovskite_window(candidates["t"], candidates["mu"])].reset_index(drop=True)


def attach_structures(candidates: pd.DataFrame, scale: float = 1.0) -> pd.DataFrame:
    """Add the Pm-3m ``structure`` with edge ``scale`` × the radius estimate."""
    out = candidates.copy()
    out["a_ang"] = [scale * estimate_lattice_constant(r.A, r.B, r.X) for r in out.itertuples()]
    out["structure"] = [build_perovskite(r.A, r.B, r.X, r.a_ang) for r in out.itertuples()]
    return out


def ensemble_predict(models: Sequence, df: pd.DataFrame) -> pd.DataFrame:
    """Mean predicted gap over ``models``, their spread (std) and the mean Laplace scale, in eV."""
    preds = [m.predict(df) for m in models]
    gaps = np.stack([p["gap_ev"].to_numpy() for p in preds])
    scales = np.stack([p["uncertainty_ev"].to_numpy() for p in preds])
    out = pd.DataFrame({"gap_ev": gaps.mean(0), "model_spread_ev": gaps.std(0, ddof=1) if len(models) > 1 else 0.0,
                        "laplace_scale_ev": scales.mean(0)}, index=df.index)
    # a Laplace scale b has standard deviation √2·b; the total adds the models' disagreement in quadrature
    out["uncertainty_ev"] = np.sqrt(out["model_spread_ev"] ** 2 + 2 * out["laplace_scale_ev"] ** 2)
    return out


def rank_for_window(screen: pd.DataFrame, window: tuple[float, float] = SOLAR_WINDOW_EV) -> pd.DataFrame:
    """Candidates predicted inside ``window``, most confident first (lowest uncertainty, then nearest the centre)."""
    lo, hi = window
    inside = screen[(screen["gap_ev"] >= lo) & (screen["gap_ev"] <= hi)].copy()
    inside["distance_to_centre_ev"] = (inside["gap_ev"] - (lo + hi) / 2).abs()
    return inside.sort_values(["uncertainty_ev", "distance_to_centre_ev"]).reset_index(drop=True)


def lattice_scale(lattice: pd.DataFrame) -> float:
    """Median CHGNet / radius-estimate ratio of the targets' lattice constants."""
    ratio = lattice["a_chgnet"] / lattice["a_estimate"]
    return float(np.median(ratio)) if len(ratio) else math.nan
