"""Element statistics drawn on the periodic table (the layout comes from pymatgen)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from pymatgen.core import Element

from gapkit.featurize.composition import parse_formula


def element_counts(formulas: Iterable[str]) -> pd.Series:
    """Count, for each element, how many formulas contain it (sorted by atomic number)."""
    counts: Counter[str] = Counter()
    for formula in formulas:
        counts.update(el.symbol for el in parse_formula(formula).elements)
    series = pd.Series(counts, dtype=int)
    return series.loc[sorted(series.index, key=lambda s: Element(s).Z)]


def _grid_position(el: Element) -> tuple[int, int]:
    # Lanthanides/actinides go to two rows below the main table, as printed tables do.
    if el.is_lanthanoid:
        return 8, el.Z - 57 + 3
    if el.is_actinoid:
        return 9, el.Z - 89 + 3
    return el.row, el.group


def periodic_table_heatmap(values: pd.Series, ax: plt.Axes | None = None, log: bool = True,
                           label: str = "count", cmap: str = "viridis") -> plt.Axes:
    """Draw ``values`` (indexed by element symbol) as a coloured periodic table (``log=False``: any sign)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 6.2))
    grid = np.full((10, 19), np.nan)
    for symbol, value in values.items():
        row, col = _grid_position(Element(symbol))
        grid[row, col] = value
    positive = values[values > 0]
    norm = LogNorm(vmin=max(positive.min(), 1e-9), vmax=positive.max()) if log and len(positive) else None
    image = ax.imshow(grid[1:, 1:], cmap=cmap, norm=norm, aspect="equal")
    for z in range(1, 104):
        el = Element.from_Z(z)
        row, col = _grid_position(el)
        # a log scale shows positive values only; a linear one any finite value, negative ones included
        present = el.symbol in values.index and (values[el.symbol] > 0 if log else np.isfinite(values[el.symbol]))
        ax.text(col - 1, row - 1, el.symbol, ha="center", va="center", fontsize=7,
                color="white" if present else "0.6")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    plt.colorbar(image, ax=ax, fraction=0.025, pad=0.01, label=label)
    return ax
