"""Success rate against oracle calls over several seeds: GA + learned potential vs random search."""

from __future__ import annotations

import logging
import tempfile

import numpy as np
import pandas as pd
from ase import Atoms

from gapkit.search.baselines import calls_to_success, random_search, success_rate
from gapkit.search.oracle import CalculatorFactory
from gapkit.search.profiles import search_config
from gapkit.search.runner import SerialExecutor, run_search

log = logging.getLogger(__name__)


def calls_to_ground_state(formula: str, n_atoms: int, reference: Atoms, oracle: CalculatorFactory,
                          profile: str = "quick", seeds: range | list[int] = range(3)) -> pd.DataFrame:
    """Per seed: the GA's oracle budget and the calls each method needed to match ``reference``
    (random search gets exactly the GA's budget; inf = not found)."""
    rows = []
    for seed in seeds:
        config = search_config(profile, formula, n_atoms, seed)
        with tempfile.TemporaryDirectory() as tmp:
            state = run_search(config, oracle, executor=SerialExecutor(), state_path=f"{tmp}/state.pkl")
        budget = state.counter.total
        trace = random_search(formula, n_atoms, oracle, budget, seed=seed,
                              relax_steps=config.final_relax_steps, progress=False)
        rows.append({"seed": seed, "budget": budget,
                     "ga_potential": calls_to_success(state.improvements, reference),
                     "random": calls_to_success(trace.improvements, reference)})
        log.info("seed %d: %s", seed, rows[-1])
    return pd.DataFrame(rows)


def success_table(calls: pd.DataFrame, budgets: np.ndarray) -> pd.DataFrame:
    """Success rate of each method at each budget of oracle calls."""
    return pd.DataFrame({"oracle calls": budgets,
                         "GA + potential": success_rate(calls["ga_potential"].tolist(), budgets),
                         "random search": success_rate(calls["random"].tolist(), budgets)})
