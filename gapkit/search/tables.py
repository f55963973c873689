"""Tables of the structure-search chapter and its appendix: per-method summaries, seeds side by side, the
headline row, savings rows and the paper's Table 2 beside ours (formatting only: the numbers come from
:mod:`gapkit.search.statistics` and :mod:`gapkit.search.outcomes`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from ase import Atoms

from gapkit.search.references import conventional_lattice
from gapkit.search.statistics import (Savings, break_even_oracle_seconds, calls_to_half_success, oracle_savings,
                                     success_rate, wilson_interval)

# the methods' columns in a record's per-seed rows, and their names in tables and figures
METHODS = {"ga_potential": "GA + potential", "random": "random search", "ase_ga": "ase-ga"}

# the three calls columns of a GA row under the names the chapter prints
OUTCOME_COLUMNS = {"ga_potential": "match", "ga_potential_relaxed": "relaxed", "ga_potential_energy": "energy"}

# how a seed counts as having found the ground state: (GA column, random-search column) of a per-seed row
SAVINGS_CRITERIA = {"match": ("ga_potential", "random"), "relaxed match": ("ga_potential_relaxed", "random"),
                    "energy": ("ga_potential_energy", "random_energy")}


def success_table(calls: pd.DataFrame | dict[str, list[float]], budgets: np.ndarray) -> pd.DataFrame:
    """Success rate of each method (columns of ``calls`` named as in METHODS) at each budget."""
    out = {"oracle calls": np.asarray(budgets)}
    for key, label in METHODS.items():
        if key in calls:
            out[label] = success_rate(list(calls[key]), budgets)
    return pd.DataFrame(out)


def method_summary(calls: pd.DataFrame) -> pd.DataFrame:
    """Per method (columns named as in METHODS): seeds, seeds that found the ground state, median calls of those
    that did, the calls to 50 % success and (where tracked) the seeds that found a lower other crystal."""
    rows = []
    for key, label in METHODS.items():
        if key not in calls:
            continue
        found = calls[key].astype(float)
        hits = found[np.isfinite(found)]
        row = {"method": label, "seeds": len(found), "found": len(hits),
               "median calls when found": float(hits.median()) if len(hits) else float("nan"),
               "calls to 50 % success": calls_to_half_success(list(found))}
        if f"{key}_below" in calls:
            row["found lower crystal"] = int(np.isfinite(calls[f"{key}_below"].astype(float)).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def seeds_side_by_side(runs: dict[str, pd.DataFrame], column: str = "ga_potential") -> pd.DataFrame:
    """Per seed (rows), ``column`` of each run (columns, by label); a seed that a run lacks is NaN."""
    if not runs:
        raise ValueError("No runs to put side by side.")
    return pd.DataFrame({label: calls.set_index("seed")[column] for label, calls in runs.items()}).sort_index()


def variant_side_by_side(base: pd.DataFrame, variant: pd.DataFrame, names: tuple[str, str],
                         phase: bool = False) -> pd.DataFrame:
    """Two GA runs seed by seed (columns): each one's calls by :data:`OUTCOME_COLUMNS` (rows under its name), then
    the variant's calls spent, (``phase``) the part of the search whose call first matched, and how far above the
    reference (meV/atom) its best cell ended."""
    base_name, variant_name = names
    side = pd.concat({name: run.set_index("seed")[list(OUTCOME_COLUMNS)].rename(columns=OUTCOME_COLUMNS)
                      for name, run in ((base_name, base), (variant_name, variant))}, axis=1)
    detail = variant.set_index("seed")
    side[(variant_name, "calls spent")] = detail["budget"]
    if phase:
        side[(variant_name, "first match in")] = detail["ga_potential_phase"].fillna("").replace("", "-")
    side[(variant_name, "best (meV/atom above)")] = detail["ga_potential_best_meV_above_reference"]
    return side.T


def savings_row(savings: Savings) -> dict[str, object]:
    """A :class:`Savings` as a table row (found as "k/n", the interval as "low-high")."""
    low, high = savings.interval
    return {"GA found": f"{savings.found}/{savings.seeds}", "GA calls to 50 %": savings.calls_to_half,
            "random found": f"{savings.random_found}/{savings.random_seeds}", "random budget": savings.random_budget,
            "random calls to 50 %": savings.random_calls_to_half, "ratio": savings.ratio, "ratio is": savings.bound,
            "ratio, 90 % bootstrap": f"{low:.1f}-{high:.1f}", "target met": savings.target_met()}


def savings_by_criterion(runs: dict[str, tuple[pd.DataFrame, pd.DataFrame | None]],
                         criteria: dict[str, tuple[str, str]] | None = None) -> pd.DataFrame:
    """:func:`savings_row` per (system, criterion) for ``runs`` = {system: (GA rows, random-search rows)}, for each
    criterion (default :data:`SAVINGS_CRITERIA`) whose columns both runs have; a system with no random-search rows
    is left out."""
    rows = {}
    for system, (ga, random) in runs.items():
        for criterion, (ga_column, random_column) in (criteria or SAVINGS_CRITERIA).items():
            if random is not None and ga_column in ga and random_column in random:
                rows[(system, criterion)] = savings_row(oracle_savings(ga, random, ga_column, random_column))
    return pd.DataFrame(rows).T


def headline_row(ga: pd.DataFrame, random: pd.DataFrame, ase_ga: pd.DataFrame | None = None,
                 saving: Savings | None = None) -> dict[str, object]:
    """One system's row of the chapter's headline table: for the GA, random search and (if given) ase-ga, the seeds
    that found the reference (with a 90 % Wilson interval) and the calls by which half the seeds had it (inf: never
    within the run's budget); then random search's calls to 50 % over the GA's with a 90 % bootstrap interval
    (``>`` where random search never got there and its budget bounds the ratio). ``saving``: the GA's
    :func:`oracle_savings` over ``random`` where the caller has it already."""
    saving = oracle_savings(ga, random) if saving is None else saving
    methods = [("GA", ga, "ga_potential"), ("random", random, "random")]
    if ase_ga is not None:
        methods.append(("ase-ga", ase_ga, "ase_ga"))
    row: dict[str, object] = {}
    for name, frame, column in methods:
        calls = frame[column].astype(float)
        hits = int(np.isfinite(calls).sum())
        low, high = wilson_interval(hits, len(calls), 0.9)
        row[f"{name}: found"] = f"{hits}/{len(calls)} ({low:.2f}-{high:.2f})"
    known = {"GA": saving.calls_to_half, "random": saving.random_calls_to_half}  # computed once, in the saving
    for name, frame, column in methods:
        row[f"{name}: calls to 50 %"] = (known[name] if name in known
                                         else calls_to_half_success(list(frame[column].astype(float))))
    row["random budget"] = saving.random_budget
    low, high = saving.interval
    row["fewer calls than random"] = f"{saving.bound.replace('=', '')}{saving.ratio:.1f}x ({low:.1f}-{high:.1f})"
    return row


def cost_row(saving: Savings, ga_seconds_per_call: float, random_seconds_per_call: float) -> dict[str, float]:
    """Wall seconds per oracle call of the GA and of random search in their runs (each with its own records' wall
    times), and the oracle cost per call above which the GA reaches 50 % success first, from the calls to 50 % in
    ``saving`` (:func:`~gapkit.search.statistics.break_even_oracle_seconds`; NaN where a run's time is not its
    own)."""
    ga_half, rs_half = saving.calls_to_half, saving.random_calls_to_half
    known = np.isfinite(ga_seconds_per_call) and np.isfinite(random_seconds_per_call)
    return {"GA: s per call": round(ga_seconds_per_call, 2), "random: s per call": round(random_seconds_per_call, 2),
            "GA first above (s per oracle call)": round(break_even_oracle_seconds(
                ga_half, ga_seconds_per_call, rs_half, random_seconds_per_call), 1) if known else float("nan")}


def table2_beside_paper(formula: str, ours: dict[str, tuple[Atoms, float]]) -> pd.DataFrame:
    """The paper's Table 2 for ``formula`` (its found and experimental structures: conventional a, b, c in Å and
    the DFT total energy of its cell) beside ``ours`` (``{label: (atoms, oracle energy per atom in eV)}``), whose
    energies are scaled to the paper's cell. Energies of different oracles differ in kind: compare lattices across
    sources and energies within one."""
    from gapkit.results import published_table

    table = published_table("search", "Table 2")
    rows = table[table["dataset"].str.split().str[0] == formula]
    if rows.empty:
        raise ValueError(f"The paper's Table 2 has no {formula}; it lists Si, TiO2 and CaTiO3.")
    n_cell = int(rows["dataset"].iloc[0].split()[1])
    paper = rows.set_index("metric")
    out = []
    for column, label in (("experiment", "paper: experimental structure (DFT)"), ("found", "paper: GA + NN found (DFT)")):
        a = float(paper.loc["lattice a", column])
        c = float(paper.loc["lattice c", column]) if "lattice c" in paper.index else a  # cubic rows give a alone
        out.append({"structure": label, "a (Å)": a, "b (Å)": a, "c (Å)": c,
                    f"E per {n_cell}-atom cell (eV)": float(paper.loc["E (DFT total)", column])})
    for label, (atoms, energy_per_atom) in ours.items():
        a, b, c = conventional_lattice(atoms)
        out.append({"structure": label, "a (Å)": round(a, 3), "b (Å)": round(b, 3), "c (Å)": round(c, 3),
                    f"E per {n_cell}-atom cell (eV)": round(energy_per_atom * n_cell, 2)})
    return pd.DataFrame(out)
