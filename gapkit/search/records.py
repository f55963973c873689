"""Recorded structure searches (``results/search-*.json``, written by benchmarks/search_oracle_calls.py), selected
by what is stored inside them (formula, cell size, methods run, search settings, seeds), never by file name."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
from ase import Atoms

from gapkit.results import short_commit
from gapkit.search.config import SearchConfig

# the value a setting had before the benchmark began to store it (the SearchConfig default of that time);
# records of the first runs store no settings at all and ran these defaults
SETTING_DEFAULTS: dict[str, Any] = {"final_rounds": 1, "round_patience": 2, "frames_every": 0, "total_budget": None,
                                    "screen_final_picks": False, "relax_per_round": None, "stopped_when_found": False,
                                    "known_error_cap": None, "stale_random_relaxations": 0}

# the method search_config builds (profiles.RECOMMENDED_FINAL and BUDGETS, given a target) as a record stores it:
# 40 final rounds that learn from every 5th frame of the oracle's relaxations, picks screened by single points, 3
# relaxed per round, random starts after a round with no lower energy, stopped once the reference is found, 1,000
# oracle calls in all (tests/search/test_config.py holds the two together)
RECOMMENDED: dict[str, Any] = {"final_rounds": 40, "round_patience": 40, "frames_every": 5, "total_budget": 1000,
                               "screen_final_picks": True, "relax_per_round": 3, "known_error_cap": None,
                               "stale_random_relaxations": 1, "stopped_when_found": True}

# columns of a record's per-seed rows that hold each method's calls
_METHOD_COLUMNS = ("ga_potential", "random", "ase_ga")


def record_settings(record: dict[str, Any]) -> dict[str, Any]:
    """The search settings of ``record``, with :data:`SETTING_DEFAULTS` for those it predates."""
    return {**SETTING_DEFAULTS, **(record["metrics"].get("settings") or {})}


def record_methods(record: dict[str, Any]) -> tuple[str, ...]:
    """The methods whose calls ``record`` holds per seed ("ga_potential", "random", "ase_ga")."""
    rows = record["metrics"].get("per_seed") or []
    return tuple(m for m in _METHOD_COLUMNS if rows and m in rows[0])


def record_seeds(record: dict[str, Any]) -> list[int]:
    """The seeds ``record`` holds, ascending."""
    return sorted(int(row["seed"]) for row in record["metrics"].get("per_seed") or [])


def search_records(directory: Path | str | None = None) -> list[dict[str, Any]]:
    """Every search record with per-seed rows in ``directory`` (default: the repository's ``results/``)."""
    from gapkit.results import load_results, results_dir

    folder = Path(directory) if directory is not None else results_dir()
    if not folder.is_dir():
        return []
    return [r for r in load_results(folder) if r.get("chapter") == "search" and r["metrics"].get("per_seed")]


def select_records(records: Iterable[dict[str, Any]] | None = None, *, formula: str | None = None,
                   n_atoms: int | None = None, method: str | None = None, seeds: Iterable[int] | None = None,
                   **settings: Any) -> list[dict[str, Any]]:
    """The records (default: :func:`search_records`) that ran ``formula`` in cells of ``n_atoms``, hold the calls of
    ``method`` per seed, cover every seed of ``seeds`` and whose :func:`record_settings` equal ``settings``; newest
    first (by the time the record was finished). ``None`` for any of the first four matches anything."""
    unknown = set(settings) - set(SETTING_DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown search setting(s) {sorted(unknown)}; records store {sorted(SETTING_DEFAULTS)}.")
    if method is not None and method not in _METHOD_COLUMNS:
        raise ValueError(f"Unknown method {method!r}; choose from {list(_METHOD_COLUMNS)}.")
    records = search_records() if records is None else list(records)
    wanted_seeds = None if seeds is None else set(seeds)
    out = []
    for record in records:
        metrics, stored = record["metrics"], record_settings(record)
        if formula is not None and metrics.get("formula") != formula:
            continue
        if n_atoms is not None and metrics.get("n_atoms") != n_atoms:
            continue
        if method is not None and method not in record_methods(record):
            continue
        if wanted_seeds is not None and not wanted_seeds <= set(record_seeds(record)):
            continue
        if any(stored[key] != value for key, value in settings.items()):
            continue
        out.append(record)
    return sorted(out, key=lambda r: r["provenance"].get("finished_utc") or "", reverse=True)


def per_seed_calls(record: dict[str, Any]) -> pd.DataFrame:
    """A record's per-seed rows, sorted by seed; calls columns as floats with ``inf`` for "never found" (stored as
    null, JSON having no infinity)."""
    calls = pd.DataFrame(record["metrics"]["per_seed"])
    columns = [c for m in _METHOD_COLUMNS for c in (m, f"{m}_below", f"{m}_relaxed", f"{m}_energy") if c in calls]
    calls[columns] = calls[columns].astype(float).fillna(np.inf)
    return calls.sort_values("seed").reset_index(drop=True)


def seconds_per_call(calls: pd.DataFrame, record: dict[str, Any]) -> float:
    """Wall seconds per oracle call of the one method a record ran (NaN where it holds several: their wall times
    were summed per seed). A GA stopped when found counts the calls it spent, a baseline its whole budget."""
    if len(record_methods(record)) != 1 or "wall_s" not in calls:
        return float("nan")
    return float(calls["wall_s"].sum() / calls["budget"].sum())


def latest_run(records: Iterable[dict[str, Any]] | None = None, **selection: Any) -> tuple[pd.DataFrame, dict] | None:
    """Per-seed calls and the record itself of the newest record :func:`select_records` finds (None if none)."""
    found = select_records(records, **selection)
    return (per_seed_calls(found[0]), found[0]) if found else None


def longest_baseline(method: str, seeds: Iterable[int], records: Iterable[dict[str, Any]] | None = None,
                     **selection: Any) -> tuple[pd.DataFrame, dict] | None:
    """Per-seed calls (restricted to ``seeds``) and record of the baseline run (``method`` "random" or "ase_ga")
    with the largest per-seed budget among those :func:`select_records` finds for ``seeds``; the newest on a tie.
    A baseline's trace does not depend on its budget, so the longest run answers every shorter question too."""
    seeds = [int(s) for s in seeds]
    found = select_records(records, method=method, seeds=seeds, **selection)
    if not found:
        return None
    best = max(found, key=lambda r: max(row["budget"] for row in r["metrics"]["per_seed"]))  # max: first (newest) wins ties
    calls = per_seed_calls(best)
    return calls[calls["seed"].isin(seeds)].reset_index(drop=True), best


def settings_differences(record: dict[str, Any], reference: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings of ``record`` that differ from ``reference`` (default :data:`RECOMMENDED`), as stored."""
    reference = RECOMMENDED if reference is None else reference
    stored = record_settings(record)
    return {key: stored[key] for key in reference if stored[key] != reference[key]}


# a record's setting name -> the FinalStage field it stands for; ``total_budget`` is SearchConfig.budget and
# ``stopped_when_found`` whether the search had a target (the reference); ``known_error_cap`` was a setting measured
# no better and deleted: records of it stay selectable, but no configuration reruns them
FINAL_FIELDS = {"final_rounds": "rounds", "round_patience": "patience", "frames_every": "frames_every",
                "screen_final_picks": "screen_picks", "relax_per_round": "relax_per_round",
                "stale_random_relaxations": "stale_random_relaxations"}


def config_changes(settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The :meth:`SearchConfig.replace` changes (final stage and budget) that a record's ``settings`` (default
    :data:`RECOMMENDED`) stand for; the target (``stopped_when_found``) needs the reference, so the caller adds it.
    With one final round the between-round settings a record stores (the benchmark wrote its flags' defaults)
    meant nothing, and are left at none."""
    settings = {**SETTING_DEFAULTS, **(RECOMMENDED if settings is None else settings)}
    if settings["known_error_cap"] is not None:
        raise ValueError("known_error_cap was measured no better and deleted; a record of it cannot be rerun.")
    final = {field: settings[key] for key, field in FINAL_FIELDS.items()}
    budget = settings["total_budget"]
    if final["rounds"] == 1:  # the paper's single round: nothing acts between rounds, and no budget was enforced
        final.update(patience=None, frames_every=0, stale_random_relaxations=0)
        budget = None
    return {"final": final, "budget": budget}


def config_settings(config: SearchConfig, stopped_when_found: bool | None = None) -> dict[str, Any]:
    """The settings a record stores for a search of ``config`` (the inverse of :func:`config_changes`)."""
    stored = {key: getattr(config.final, field) for key, field in FINAL_FIELDS.items()}
    return {**stored, "total_budget": config.budget, "known_error_cap": None,
            "stopped_when_found": config.target is not None if stopped_when_found is None else stopped_when_found}


def recommended_run(formula: str, n_atoms: int,
                    records: Iterable[dict[str, Any]] | None = None) -> tuple[pd.DataFrame, dict] | None:
    """Per-seed calls and record of the newest run of the :data:`RECOMMENDED` method on ``formula`` in cells of
    ``n_atoms`` (None if none). Random starts after a stale round change a search only once a final round found no
    lower energy, so where no record has them the newest record identical but for them stands in; its
    :func:`settings_differences` say so."""
    records = search_records() if records is None else list(records)
    run = latest_run(records, formula=formula, n_atoms=n_atoms, method="ga_potential", **RECOMMENDED)
    if run is None:
        run = latest_run(records, formula=formula, n_atoms=n_atoms, method="ga_potential",
                         **{**RECOMMENDED, "stale_random_relaxations": 0})
    return run


def method_comparison(formula: str, n_atoms: int, records: Iterable[dict[str, Any]] | None = None
                      ) -> tuple[dict[str, Any], dict[str, pd.Series], dict[str, dict]] | None:
    """The recommended GA against random search and (where recorded) ase-ga on one system: the headline row with
    its costs (:func:`~gapkit.search.tables.headline_row`, :func:`~gapkit.search.tables.cost_row`), each method's
    calls per seed by name, and the records used; None without a GA and a random-search record of its seeds."""
    from gapkit.search.statistics import oracle_savings
    from gapkit.search.tables import cost_row, headline_row

    records = search_records() if records is None else list(records)
    ga_run = recommended_run(formula, n_atoms, records)
    if ga_run is None:
        return None
    ga, ga_record = ga_run
    rs_run = latest_run(records, formula=formula, n_atoms=n_atoms, method="random", seeds=ga["seed"])
    if rs_run is None:
        return None
    rs, rs_record = rs_run
    ase = longest_baseline("ase_ga", ga["seed"], records, formula=formula, n_atoms=n_atoms)
    saving = oracle_savings(ga, rs)  # once: the headline's ratio and the costs' break-even share its calls to 50 %
    row = {**headline_row(ga, rs, ase[0] if ase else None, saving),
           **cost_row(saving, seconds_per_call(ga, ga_record), seconds_per_call(rs, rs_record))}
    calls = {"GA + learned potential": ga["ga_potential"], "random search": rs["random"],
             **({"ase-ga": ase[0]["ase_ga"]} if ase else {})}
    used = {"GA": ga_record, "random search": rs_record, **({"ase-ga": ase[1]} if ase else {})}
    return row, calls, used


def savings_table(variants: dict[str, dict[str, Any]], systems: list[tuple[str, int]],
                  records: Iterable[dict[str, Any]] | None = None, newest: bool = True,
                  seeds: Iterable[int] | None = range(10)) -> pd.DataFrame:
    """For each variant (``{label: settings}``) and system (formula, atoms per cell) that has a GA record, the GA's
    success and calls to 50 % against the newest random-search record of the same seeds
    (:func:`gapkit.search.statistics.oracle_savings`), with the record's commit. Only records holding every seed of
    ``seeds`` count (None: any); ``newest=False`` takes the oldest record of those settings instead (an earlier
    version of the search code)."""
    from gapkit.search.statistics import oracle_savings

    records = search_records() if records is None else list(records)
    rows = []
    for label, settings in variants.items():
        for formula, n_atoms in systems:
            found = select_records(records, formula=formula, n_atoms=n_atoms, method="ga_potential", seeds=seeds,
                                   **settings)
            if not found:
                continue
            record = found[0] if newest else found[-1]
            ga = per_seed_calls(record)
            random = latest_run(records, formula=formula, n_atoms=n_atoms, method="random", seeds=ga["seed"])
            saving = oracle_savings(ga, random[0]) if random is not None else None
            rows.append({"variant": label, "system": f"{formula}, {n_atoms} atoms",
                         "GA found": f"{int(np.isfinite(ga['ga_potential']).sum())}/{len(ga)}",
                         "GA calls to 50 %": saving.calls_to_half if saving else np.nan,
                         "random calls to 50 %": saving.random_calls_to_half if saving else np.nan,
                         "fewer calls": saving.ratio if saving else np.nan,
                         "90 % interval": "{:.1f}-{:.1f}".format(*saving.interval) if saving else "-",
                         "commit": short_commit(record["provenance"]["commit"])})
    return pd.DataFrame(rows)


def records_overview(records: Iterable[dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per search record, oldest first: what it ran (system, methods, seeds), how its settings differ from
    :data:`RECOMMENDED`, and the commit and day it was finished."""
    records = search_records() if records is None else list(records)
    rows = []
    for record in sorted(records, key=lambda r: r["provenance"].get("finished_utc") or ""):
        seeds, methods = record_seeds(record), record_methods(record)
        if "ga_potential" in methods:
            unlike = ", ".join(f"{k}={v}" for k, v in settings_differences(record).items()) or "-"
        else:  # the GA's settings mean nothing in a record of the baselines alone
            unlike = f"(no GA; up to {max(row['budget'] for row in record['metrics']['per_seed'])} calls)"
        rows.append({"record": record["profile"], "system": f"{record['metrics'].get('formula')}, "
                     f"{record['metrics'].get('n_atoms')} atoms", "methods": ", ".join(methods),
                     "seeds": f"{seeds[0]}-{seeds[-1]}" if seeds else "", "settings unlike the recommended": unlike,
                     "commit": short_commit(record["provenance"]["commit"]),
                     "finished": (record["provenance"].get("finished_utc") or "")[:10]})
    return pd.DataFrame(rows)


def atoms_record(atoms: Atoms, energy_per_atom: float) -> dict[str, Any]:
    """A cell as a record stores it: symbols, cell (Å), fractional positions and the oracle energy per atom."""
    return {"symbols": atoms.get_chemical_symbols(), "cell": np.round(atoms.cell[:], 6).tolist(),
            "scaled_positions": np.round(atoms.get_scaled_positions(), 6).tolist(),
            "energy_per_atom": round(float(energy_per_atom), 5)}


def atoms_from_record(entry: dict[str, Any]) -> tuple[Atoms, float]:
    """(Atoms, energy per atom) back from :func:`atoms_record`."""
    atoms = Atoms(entry["symbols"], cell=entry["cell"], scaled_positions=entry["scaled_positions"], pbc=True)
    return atoms, float(entry["energy_per_atom"])


def table2_record(directory: Path | str | None = None) -> dict[str, Any] | None:
    """The record of benchmarks/search_table2.py (found cells of the paper's systems), or None if not run yet."""
    from gapkit.results import load_results, results_dir

    folder = Path(directory) if directory is not None else results_dir()
    found = [r for r in load_results(folder) if r.get("chapter") == "search" and r.get("profile") == "table2"]
    return found[0] if found else None
