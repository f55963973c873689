"""Goldschmidt tolerance factor t and octahedral factor μ of ABX3 perovskites from Shannon radii (pymatgen).

    t = (r_A + r_X) / (√2 (r_B + r_X)),        μ = r_B / r_X

Two ways to pick the radii:

* ``shannon_radius(el, oxidation_state, coordination)``: the textbook choice, one Shannon ionic radius
  for a given charge and coordination (A: XII, B: VI, O²⁻: VI = 1.40 Å). Raises ``ShannonRadiusError``
  with the available entries when the table has no such radius.
* ``mean_shannon_radius(el)``: the mean of an element's Shannon ionic radii over its listed oxidation
  states (cations: positive ones, anions: negative) and coordinations. No charge has to be guessed, which
  is why a screen over thousands of hypothetical ABO3 can use it; for O²⁻ it gives 1.382 Å, and with it
  μ of every B element with a single Shannon oxidation state reproduces the Li 2023 candidate table
  (see ``compare_with_table``).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8, "IX": 9, "X": 10,
         "XI": 11, "XII": 12, "XIII": 13, "XIV": 14}


class ShannonRadiusError(KeyError):
    """The Shannon table has no ionic radius for this element, oxidation state and coordination."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


def _roman(coordination: int | str) -> str:
    if isinstance(coordination, str):
        return coordination.upper()
    for name, value in ROMAN.items():
        if value == coordination:
            return name
    raise ValueError(f"coordination must be 1..14 or a Roman numeral, got {coordination!r}.")


@lru_cache(maxsize=None)
def shannon_entries(element: str) -> tuple[tuple[int, str, str, float], ...]:
    """Every Shannon ionic radius of ``element`` as (oxidation state, coordination, spin, radius Å)."""
    from pymatgen.core import Element

    try:
        data = Element(element).data.get("Shannon radii", {})
    except ValueError as err:
        raise ShannonRadiusError(f"{element!r} is not an element symbol.") from err
    rows = []
    for ox, by_cn in data.items():
        if not ox.lstrip("-").isdigit():
            continue
        for cn, by_spin in by_cn.items():
            for spin, radii in by_spin.items():
                rows.append((int(ox), cn, spin, float(radii["ionic_radius"])))
    return tuple(rows)


def shannon_radius(element: str, oxidation_state: int, coordination: int | str) -> float:
    """Shannon ionic radius (Å) of ``element`` with this charge and coordination (high spin if both exist)."""
    cn = _roman(coordination)
    entries = shannon_entries(element)
    hits = [(spin, r) for ox, c, spin, r in entries if ox == oxidation_state and c == cn]
    if not hits:
        have = sorted({(ox, c) for ox, c, _, _ in entries})
        raise ShannonRadiusError(
            f"No Shannon radius for {element}{oxidation_state:+d} in coordination {cn}; the table has "
            f"{have or 'none'} for {element}. Pick another oxidation state or coordination, or use "
            "mean_shannon_radius for the table-average convention.")
    by_spin = dict(hits)
    return by_spin.get("High Spin", hits[0][1])


def mean_shannon_radius(element: str, anion: bool = False) -> float:
    """Mean Shannon ionic radius (Å) over the element's cation (or, with ``anion``, anion) entries."""
    radii = [r for ox, _, _, r in shannon_entries(element) if (ox < 0) == anion and ox != 0]
    if not radii:
        kind = "anion" if anion else "cation"
        raise ShannonRadiusError(f"The Shannon table lists no {kind} radius for {element}.")
    return float(np.mean(radii))


def li2023_radius(element: str) -> float:
    """The Li 2023 table's convention (reverse-engineered): mean Shannon radius, over its coordinations, of the
    element's oxidation state nearest +3 (ties: the lower one)."""
    states = sorted({ox for ox, *_ in shannon_entries(element) if ox > 0})
    if not states:
        raise ShannonRadiusError(f"The Shannon table lists no cation radius for {element}.")
    state = min(states, key=lambda ox: (abs(ox - 3), ox))
    return float(np.mean([r for ox, _, _, r in shannon_entries(element) if ox == state]))


def tolerance_factor(r_a: float, r_b: float, r_x: float) -> float:
    """Goldschmidt tolerance factor t = (r_A + r_X) / (√2 (r_B + r_X))."""
    return (r_a + r_x) / (math.sqrt(2.0) * (r_b + r_x))


def octahedral_factor(r_b: float, r_x: float) -> float:
    """Octahedral factor μ = r_B / r_X."""
    return r_b / r_x


def perovskite_factors(a: str, b: str, x: str = "O", oxidation_states: tuple[int, int, int] | None = None,
                       coordinations: tuple[int, int, int] = (12, 6, 6)) -> tuple[float, float]:
    """(t, μ) of A B X3: Shannon radii at ``oxidation_states`` (e.g. (2, 4, -2)), else table means."""
    if oxidation_states is None:
        ra, rb, rx = mean_shannon_radius(a), mean_shannon_radius(b), mean_shannon_radius(x, anion=True)
    else:
        ra, rb, rx = (shannon_radius(el, ox, cn) for el, ox, cn in zip((a, b, x), oxidation_states, coordinations))
    return tolerance_factor(ra, rb, rx), octahedral_factor(rb, rx)


def factors_table(a_elements, b_elements, x: str = "O", convention: str = "li2023") -> pd.DataFrame:
    """t and μ for pairs of A and B elements (radii: ``li2023_radius`` or ``mean_shannon_radius``)."""
    radius = {"li2023": li2023_radius, "mean": mean_shannon_radius}.get(convention)
    if radius is None:
        raise ValueError(f"convention must be 'li2023' or 'mean', got {convention!r}.")
    rx = mean_shannon_radius(x, anion=True)
    ra = np.array([radius(el) for el in a_elements])
    rb = np.array([radius(el) for el in b_elements])
    return pd.DataFrame({"A": list(a_elements), "B": list(b_elements),
                         "t": (ra + rx) / (np.sqrt(2.0) * (rb + rx)), "mu": rb / rx})


def in_perovskite_window(t, mu, t_range: tuple[float, float] = (0.7, 1.1),
                         mu_range: tuple[float, float] = (0.45, 0.7)):
    """The paper's structural window 0.7 < t ≤ 1.1 and 0.45 < μ < 0.7 (element-wise on arrays)."""
    t, mu = np.asarray(t), np.asarray(mu)
    return (t > t_range[0]) & (t <= t_range[1]) & (mu > mu_range[0]) & (mu < mu_range[1])


def compare_with_table(candidates: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """Per B element: the table's μ·r_O, our mean radius, whether they agree, and which oxidation state does."""
    rx = mean_shannon_radius("O", anion=True)
    per_b = candidates.groupby("B")["octahedral_factor"].first()
    rows = []
    for el, mu in per_b.items():
        ours = mean_shannon_radius(el)
        states = sorted({ox for ox, *_ in shannon_entries(el) if ox > 0})
        tol = 0.5 * 10 ** -decimals + 1e-9  # the table's radii carry ``decimals`` decimals
        # which single oxidation state (mean over its coordinations) gives the table's radius, if any
        match = [ox for ox in states
                 if abs(np.mean([r for o, _, _, r in shannon_entries(el) if o == ox]) - mu * rx) < tol]
        rows.append({"B": el, "r_table": round(mu * rx, 4), "r_mean_shannon": round(ours, 4),
                     "oxidation_states": states, "agrees": abs(mu * rx - ours) < tol,
                     "table_state": match[0] if match else None})
    return pd.DataFrame(rows).set_index("B")
