"""Seeded splits grouped by reduced formula, so that polymorphs never straddle train and test."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from gapkit.featurize.composition import parse_formula


def reduced_formulas(formulas: Iterable[str]) -> pd.Series:
    """Return the pymatgen reduced formula of each formula (e.g. 'Si2O4' -> 'SiO2')."""
    cache: dict[str, str] = {}
    out = []
    for f in formulas:
        if f not in cache:
            cache[f] = parse_formula(f).reduced_formula
        out.append(cache[f])
    return pd.Series(out, dtype=object)


def _groups(df: pd.DataFrame, formula_col: str) -> np.ndarray:
    if formula_col not in df.columns:
        raise KeyError(f"Column {formula_col!r} not in the DataFrame (columns: {list(df.columns)}).")
    return reduced_formulas(df[formula_col]).to_numpy()


def train_val_test_split(
    df: pd.DataFrame,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    formula_col: str = "formula",
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split rows 6:2:2 (by default) with every reduced formula in exactly one part."""
    fr = np.asarray(fractions, dtype=float)
    if fr.shape != (3,) or (fr < 0).any() or not np.isclose(fr.sum(), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}.")
    groups = _groups(df, formula_col)
    unique, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    # Fill train, then val, by cumulative row count so the row fractions match even with big groups.
    cum = np.cumsum(counts[order]) / len(df)
    part_of_group = np.empty(len(unique), dtype=np.int8)
    part_of_group[order] = np.searchsorted([fr[0], fr[0] + fr[1]], cum, side="left")
    part = part_of_group[inverse]
    return tuple(df[part == k].reset_index(drop=True) for k in range(3))  # type: ignore[return-value]


def grouped_kfold(
    df: pd.DataFrame, n_splits: int = 5, seed: int = 0, formula_col: str = "formula"
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (train_idx, test_idx) positional indices of a seeded k-fold grouped by reduced formula."""
    groups = _groups(df, formula_col)
    if len(np.unique(groups)) < n_splits:
        raise ValueError(f"Only {len(np.unique(groups))} distinct formulas: cannot make {n_splits} folds.")
    kfold = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    yield from kfold.split(np.zeros(len(df)), groups=groups)


def remove_materials(
    df: pd.DataFrame,
    ids: Iterable[str] | None = None,
    formulas: Iterable[str] | None = None,
    id_col: str = "mp_id",
    formula_col: str = "formula",
) -> pd.DataFrame:
    """Drop rows whose id is in ``ids`` or whose reduced formula matches one in ``formulas``."""
    keep = np.ones(len(df), dtype=bool)
    if ids is not None:
        if id_col not in df.columns:
            raise KeyError(f"Column {id_col!r} not in the DataFrame (columns: {list(df.columns)}).")
        keep &= ~df[id_col].isin(set(ids)).to_numpy()
    if formulas is not None:
        banned = set(reduced_formulas(formulas))
        keep &= ~np.isin(_groups(df, formula_col), list(banned))
    return df[keep].reset_index(drop=True)
