"""Recorded structure searches (``results/search-*.json``, written by benchmarks/search_oracle_calls.py), selected
by what is stored inside them (formula, cell size, methods run, search settings, seeds), never by file name."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

# the value a setting had before the benchmark began to store it (the SearchConfig default of that time);
# records of the first runs store no settings at all and ran these defaults
SETTING_DEFAULTS: dict[str, Any] = {"final_rounds": 1, "round_patience": 2, "frames_every": 0, "total_budget": None,
                                    "screen_final_picks": False, "relax_per_round": None, "stopped_when_found": False,
                                    "known_error_cap": None, "stale_random_relaxations": 0}

# the method the chapter recommends, as stored in a record's settings: 40 final rounds that learn from every 5th
# frame of the oracle's relaxations, picks screened by single points, 3 relaxed per round, random starts after a
# round with no lower energy, stopped once the reference is found, 1,000 oracle calls in all
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


def latest_run(records: Iterable[dict[str, Any]] | None = None, **selection: Any) -> tuple[pd.DataFrame, dict] | None:
    """Per-seed calls and the record itself of the newest record :func:`select_records` finds (None if none)."""
    found = select_records(records, **selection)
    return (per_seed_calls(found[0]), found[0]) if found else None


def settings_differences(record: dict[str, Any], reference: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings of ``record`` that differ from ``reference`` (default :data:`RECOMMENDED`), as stored."""
    reference = RECOMMENDED if reference is None else reference
    stored = record_settings(record)
    return {key: stored[key] for key in reference if stored[key] != reference[key]}
