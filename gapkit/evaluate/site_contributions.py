"""What each site contributes: per-site outputs of a linear-readout CGCNN, perovskite A/B maps, a site-map screen.

With ``readout="linear"`` a CGCNN's prediction for a crystal is the mean of one scalar per site (Xie &
Grossman 2018, linear pooling). ``site_contributions`` returns those scalars in the target's units, so their
mean over a crystal's sites is exactly the model's prediction (before a band gap's clipping at 0).

For the Castelli ABX3 perovskites (5-atom cells), ``perovskite_roles`` says which site is A, B or X (the
Castelli name lists A, then B, then the anions), ``element_site_means`` averages each element's
contribution on one site into the values of a periodic-table map, ``tolerance_check`` compares the maps
with the Goldschmidt tolerance factor, and ``screen_by_site_map`` ranks A × B × anion combinations by the
map's additive estimate (A + B + the three anion contributions) / 5.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from gapkit.featurize.perovskite_factors import ShannonRadiusError, mean_shannon_radius, tolerance_factor

# the paper's examples of known perovskites among A in groups 13-15 and B in groups 4-6
KNOWN_GROUP_13_15_PEROVSKITES = ("PbTiO3", "PbZrO3", "SnTaO3", "PbMoO3")


class PerovskiteSiteError(ValueError):
    """A structure that is not a 5-atom ABX3 cell whose name says which element is A and which B."""


@torch.no_grad()
def site_contributions(model: Any, X: Any, batch_size: int = 64) -> pd.DataFrame:
    """Per-site contributions (target units) of a fitted linear-readout CGCNN: columns row, site, element, contribution.

    ``row`` numbers the inputs of ``X`` (a DataFrame with a ``structure`` column, or Structures); the mean of
    ``contribution`` over one row's sites equals ``model.predict(X)`` (unclipped for a band gap).
    """
    from pymatgen.core import Element

    task = model._check_fitted() if hasattr(model, "_check_fitted") else None
    if task is None or not hasattr(task, "target_mean"):
        raise TypeError(f"site_contributions needs a fitted regression estimator (CGCNN), got {type(model).__name__}.")
    if getattr(task.model, "readout", None) != "linear":
        raise ValueError("Per-site contributions need a CGCNN trained with readout='linear' (the 'mean' readout "
                         "mixes the sites in its fully connected layers): CGCNN(readout='linear').fit(...).")
    ds = model.dataset(X)
    task = task.cpu().eval()
    mean, std = float(task.target_mean), float(task.target_std)
    frames, offset = [], 0
    for batch in ds.loader(batch_size):
        z = task.model.site_outputs_batch(batch)[:, 0].double().numpy()
        n_atoms = batch["n_atoms"].numpy()
        rows = np.repeat(np.arange(offset, offset + len(n_atoms)), n_atoms)
        sites = np.concatenate([np.arange(n) for n in n_atoms])
        frames.append(pd.DataFrame({"row": rows, "site": sites, "Z": batch["atomic_numbers"].numpy(),
                                    "contribution": z * std + mean}))
        offset += len(n_atoms)
    out = pd.concat(frames, ignore_index=True)
    out.insert(2, "element", [Element.from_Z(int(z)).symbol for z in out.pop("Z")])
    return out


def _name_elements(name: str) -> list[str]:
    return re.findall(r"[A-Z][a-z]?", name)


def perovskite_roles(name: str, structure: Any) -> list[str]:
    """'A', 'B' or 'X' for each site of a 5-atom ABX3 cell; ``name`` lists A, B, then the anions (e.g. 'MgTiO2S')."""
    if len(structure) != 5:
        raise PerovskiteSiteError(f"{name}: expected a 5-atom ABX3 cell, got {len(structure)} sites.")
    names = _name_elements(name)
    if len(names) < 3:
        raise PerovskiteSiteError(f"{name!r} does not name A, B and the anions (e.g. 'SrTiO3', 'MgTiO2S').")
    a_el, b_el = names[0], names[1]
    symbols = [site.specie.symbol for site in structure]
    a_sites = [i for i, el in enumerate(symbols) if el == a_el]
    b_sites = [i for i, el in enumerate(symbols) if el == b_el]
    if not a_sites or not b_sites:
        raise PerovskiteSiteError(f"{name}: cannot find one A ({a_el}) and one B ({b_el}) site among {symbols}.")
    if len(a_sites) > 1 or len(b_sites) > 1:
        # one element on two kinds of site (e.g. CdCdO3, or B = O): A is the candidate farthest from its six
        # nearest neighbours (a 12-fold cage, a/sqrt 2), B the nearest (an octahedron, a/2)
        nl = structure.get_neighbor_list(6.0)
        d6 = [float(np.sort(nl[3][nl[0] == i])[:6].mean()) for i in range(5)]
        a_sites = [max(a_sites, key=lambda i: d6[i])]
        b_sites = [min((i for i in b_sites if i != a_sites[0]), key=lambda i: d6[i], default=None)]
        if b_sites[0] is None:
            raise PerovskiteSiteError(f"{name}: cannot find a B ({b_el}) site apart from the A site among {symbols}.")
    roles = ["X"] * 5
    roles[a_sites[0]], roles[b_sites[0]] = "A", "B"
    return roles


def label_sites(contributions: pd.DataFrame, names: Sequence[str], structures: Sequence[Any]) -> pd.DataFrame:
    """``contributions`` with a ``role`` column (A, B, X) from each row's name and structure."""
    roles = {row: perovskite_roles(names[row], structures[row]) for row in contributions["row"].unique()}
    out = contributions.copy()
    out["role"] = [roles[r][s] for r, s in zip(out["row"], out["site"])]
    return out


def element_site_means(labelled: pd.DataFrame, role: str, min_count: int = 1) -> pd.DataFrame:
    """Mean contribution and count of each element on one site (``role`` 'A', 'B' or 'X'), by atomic number."""
    from pymatgen.core import Element

    if role not in ("A", "B", "X"):
        raise ValueError(f"role must be 'A', 'B' or 'X', got {role!r}.")
    on_site = labelled[labelled["role"] == role]
    if on_site.empty:
        raise ValueError(f"No sites with role {role!r}: label the contributions with label_sites first.")
    table = on_site.groupby("element")["contribution"].agg(["mean", "count"])
    table = table[table["count"] >= min_count]
    return table.loc[sorted(table.index, key=lambda s: Element(s).Z)]


def _anion_key(names: list[str]) -> str:
    return "".join(sorted(names))


def structure_table(labelled: pd.DataFrame) -> pd.DataFrame:
    """One row per structure: A, B, the anions (sorted, e.g. 'NOO'), and the A, B and summed X contributions."""
    rows = []
    for row, sites in labelled.groupby("row", sort=True):
        a = sites[sites["role"] == "A"].iloc[0]
        b = sites[sites["role"] == "B"].iloc[0]
        x = sites[sites["role"] == "X"]
        rows.append({"row": row, "A": a["element"], "B": b["element"], "anions": _anion_key(list(x["element"])),
                     "c_A": a["contribution"], "c_B": b["contribution"], "c_X": float(x["contribution"].sum()),
                     "prediction": float(sites["contribution"].mean())})
    return pd.DataFrame(rows).set_index("row")


def tolerance_check(labelled: pd.DataFrame) -> dict[str, float]:
    """Spearman correlations of the site maps with ionic size: A and B means vs Shannon radius, A+B vs |t - 1|.

    t uses the mean Shannon radius of each cation and of the three anions (``gapkit.featurize.perovskite_factors``).
    Structures with an element the Shannon table lacks are left out (``n_t`` says how many were used).
    """
    from scipy.stats import spearmanr

    out: dict[str, float] = {}
    for role in ("A", "B"):
        means = element_site_means(labelled, role)
        radii, values = [], []
        for el, value in means["mean"].items():
            try:
                radii.append(mean_shannon_radius(el))
                values.append(value)
            except ShannonRadiusError:
                continue
        out[f"rho_{role}_radius"] = float(spearmanr(radii, values).statistic) if len(values) > 2 else float("nan")
        out[f"n_{role}_elements"] = len(values)
    table = structure_table(labelled)
    dev, ab = [], []
    for r in table.itertuples():
        try:
            rx = float(np.mean([mean_shannon_radius(el, anion=True) for el in _name_elements(r.anions)]))
            t = tolerance_factor(mean_shannon_radius(r.A), mean_shannon_radius(r.B), rx)
        except ShannonRadiusError:
            continue
        dev.append(abs(t - 1.0))
        ab.append(r.c_A + r.c_B)
    out["rho_AB_vs_t_deviation"] = float(spearmanr(dev, ab).statistic) if len(ab) > 2 else float("nan")
    out["n_t"] = len(ab)
    return out


def elements_in_groups(elements: Sequence[str], groups: Sequence[int]) -> list[str]:
    """The elements of ``elements`` whose periodic-table group (1-18) is in ``groups``, by atomic number."""
    from pymatgen.core import Element

    return sorted({el for el in elements if Element(el).group in set(groups)}, key=lambda s: Element(s).Z)


def screen_by_site_map(labelled: pd.DataFrame, a_groups: Sequence[int] = (13, 14, 15),
                       b_groups: Sequence[int] = (4, 5, 6), anions: Sequence[str] | None = None) -> pd.DataFrame:
    """Rank A (in ``a_groups``) × B (in ``b_groups``) × anion sets by the map: (c_A + c_B + c_X) / 5, lowest first.

    c_A, c_B: the element's mean contribution on that site; c_X: the mean summed anion contribution of that anion
    set. Only elements seen on the site (and anion sets seen) are screened. ``known`` flags the paper's examples.
    """
    a_map, b_map = element_site_means(labelled, "A")["mean"], element_site_means(labelled, "B")["mean"]
    x_map = structure_table(labelled).groupby("anions")["c_X"].mean()
    anion_sets = list(x_map.index) if anions is None else [_anion_key(_name_elements(a)) for a in anions]
    missing = [a for a in anion_sets if a not in x_map.index]
    if missing:
        raise ValueError(f"No structures with anion sets {missing}; seen: {sorted(x_map.index)}.")
    rows = []
    for a in elements_in_groups(a_map.index, a_groups):
        for b in elements_in_groups(b_map.index, b_groups):
            for x in anion_sets:
                formula = f"{a}{b}{_format_anions(x)}"
                rows.append({"A": a, "B": b, "anions": x, "formula": formula,
                             "map_estimate": (a_map[a] + b_map[b] + x_map[x]) / 5.0,
                             "known": formula in KNOWN_GROUP_13_15_PEROVSKITES})
    if not rows:
        raise ValueError(f"No A element of groups {list(a_groups)} or no B element of groups {list(b_groups)} "
                         "was seen on its site.")
    return pd.DataFrame(rows).sort_values("map_estimate").reset_index(drop=True)


def _format_anions(key: str) -> str:
    """'OOO' -> 'O3', 'NOO' -> 'NO2' (element order of the key, counts after each)."""
    names = _name_elements(key)
    out = []
    for el in dict.fromkeys(names):
        n = names.count(el)
        out.append(el if n == 1 else f"{el}{n}")
    return "".join(out)


def anion_key_of(formula: str) -> tuple[str, str, str]:
    """(A, B, anion key) of a Castelli name such as 'MgTiO2S' (anion key: sorted symbols, 'OOS')."""
    tokens = re.findall(r"([A-Z][a-z]?)(\d*)", formula)
    if len(tokens) < 3:
        raise PerovskiteSiteError(f"{formula!r} does not name A, B and the anions.")
    anions = [el for el, n in tokens[2:] for _ in range(int(n or 1))]
    return tokens[0][0], tokens[1][0], _anion_key(anions)
