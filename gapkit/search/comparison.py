"""The GA with a learned potential against random search and ase-ga over several seeds, on any compound whose
reference structure is known: per seed, the oracle calls each method needed to find it (at the GA's budget)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from ase import Atoms

from gapkit.search.ase_ga_search import ase_ga_search
from gapkit.search.config import SearchConfig
from gapkit.search.loop import SerialExecutor, run_search
from gapkit.search.oracle import CalculatorFactory, OracleResult
from gapkit.search.outcomes import MethodOutcome, SeedOutcome, search_outcome, trajectory_outcome
from gapkit.search.random_search import random_search
from gapkit.search.state import state_file

log = logging.getLogger(__name__)

BASELINES = {"random": random_search, "ase_ga": ase_ga_search}


def baseline_outcomes(formula: str, n_atoms: int, reference: OracleResult | Atoms, oracle: CalculatorFactory,
                      budget: int, seed: int, relax_steps: int = 30,
                      methods: tuple[str, ...] = tuple(BASELINES)) -> dict[str, MethodOutcome]:
    """The outcome of random search and/or ase-ga (``methods``) given ``budget`` oracle calls on one seed."""
    unknown = set(methods) - set(BASELINES)
    if unknown:
        raise ValueError(f"Unknown baseline(s) {sorted(unknown)}; choose from {sorted(BASELINES)}.")
    return {m: trajectory_outcome(BASELINES[m](formula, n_atoms, oracle, budget, seed=seed, relax_steps=relax_steps,
                                               progress=False).improvements, reference) for m in methods}


def compare_seed(config: SearchConfig, reference: OracleResult | Atoms, oracle: CalculatorFactory,
                 baselines: tuple[str, ...] = tuple(BASELINES), state_dir: Path | str | None = None,
                 relax_match: bool = True) -> SeedOutcome:
    """One seed (``config.seed``): the GA's search, then each baseline at exactly the calls the GA spent.

    A config with a target stops at it, which cuts the budget the baselines would inherit: run it without
    baselines. With ``state_dir`` the search keeps its state there (a killed run resumes; one folder per oracle).
    """
    if config.target is not None and baselines:
        raise ValueError("A search with a target stops early, cutting the budget the baselines would inherit; run "
                         "the GA alone (baselines=()) and the baselines at a budget of their own.")
    path = None
    if state_dir is not None:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        path = state_file(state_dir, config)
    state = run_search(config, oracle, executor=SerialExecutor(), state_path=path)
    budget = state.counter.total
    methods = {"ga_potential": search_outcome(state, reference, oracle, config, relax_match)}
    methods.update(baseline_outcomes(config.formula, config.n_atoms, reference, oracle, budget, config.seed,
                                     config.final.relax_steps, baselines))
    return SeedOutcome(config.seed, budget, methods)


def calls_to_ground_state(config: SearchConfig, reference: OracleResult | Atoms, oracle: CalculatorFactory,
                          seeds: range | list[int] = range(3), baselines: tuple[str, ...] = tuple(BASELINES),
                          state_dir: Path | str | None = None, relax_match: bool = True) -> pd.DataFrame:
    """:func:`compare_seed` for each of ``seeds`` (replacing ``config.seed``), as a record's per-seed rows."""
    rows = []
    for seed in seeds:
        outcome = compare_seed(config.replace(seed=seed), reference, oracle, baselines, state_dir, relax_match)
        rows.append(outcome.row())
        log.info("seed %d: %s", seed, rows[-1])
    return pd.DataFrame(rows)
