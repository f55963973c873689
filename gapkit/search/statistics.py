"""Statistics over seeds: success rates against oracle calls, calls to 50 % success, Wilson and bootstrap
intervals, and the oracle-call saving of a method over random search. Numbers in, numbers out: formatting is
:mod:`gapkit.search.tables`' business."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


def success_rate(calls: list[float], budgets: np.ndarray) -> np.ndarray:
    """Fraction of seeds that reached the ground state within each budget of oracle calls."""
    calls_arr = np.asarray(calls, dtype=float)
    return np.array([(calls_arr <= b).mean() for b in np.asarray(budgets)])


def _halves(samples: np.ndarray) -> np.ndarray:
    """Calls to 50 % success of each row of seed resamples (inf where a row never gets there)."""
    return np.sort(samples, axis=1)[:, (samples.shape[1] + 1) // 2 - 1]


def calls_to_half_success(calls: list[float]) -> float:
    """Oracle calls by which at least half of the seeds had found the ground state (inf = never)."""
    if not len(calls):
        raise ValueError("No seeds to summarise.")
    return float(_halves(np.asarray(calls, dtype=float)[None, :])[0])


def wilson_interval(successes: int, n: int, level: float = 0.9) -> tuple[float, float]:
    """Wilson score interval (``level``) of a success fraction ``successes`` / ``n``: honest for few seeds and for
    fractions at 0 or 1, where the normal approximation collapses to a point."""
    from scipy.stats import norm

    if n <= 0:
        raise ValueError("Need at least one seed for a success interval.")
    z = float(norm.ppf(0.5 + level / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def savings_interval(ga_calls: list[float], random_calls: list[float], random_budget: float, level: float = 0.9,
                     n_boot: int = 4000, seed: int = 0) -> tuple[float, float]:
    """A bootstrap interval (``level``, percentile) of random search's calls to 50 % success over the GA's: each
    method's seeds resampled with replacement, on their own (the methods' runs are independent). Where random
    search never reaches 50 % its budget stands in (the ratio is then a lower bound); where the GA never does,
    the ratio is 0."""
    rng = np.random.default_rng(seed)
    ga, rs = np.asarray(ga_calls, dtype=float), np.asarray(random_calls, dtype=float)
    ga_half = _halves(rng.choice(ga, size=(n_boot, len(ga))))
    rs_half = np.minimum(_halves(rng.choice(rs, size=(n_boot, len(rs)))), random_budget)
    tail = (1 - level) / 2
    return tuple(float(q) for q in np.quantile(rs_half / ga_half, [tail, 1 - tail]))


@dataclass(frozen=True)
class Savings:
    """How many fewer oracle calls a method needed than random search to reach 50 % success over the seeds.

    ``ratio`` is random search's calls to 50 % over the method's; ``bound`` is "=" for an exact ratio, ">" where
    random search never got there (its budget bounds the ratio from below), "" where the method never did (NaN).
    """

    found: int
    seeds: int
    calls_to_half: float
    random_found: int
    random_seeds: int
    random_budget: int
    random_calls_to_half: float
    ratio: float
    bound: str
    interval: tuple[float, float]  # bootstrap, 90 %

    def target_met(self, min_found: float = 0.9, min_ratio: float = 5.0) -> bool:
        """The issue's goal: found in at least ``min_found`` of the seeds, ``min_ratio``x fewer calls (NaN: no)."""
        return bool(self.found / self.seeds >= min_found and self.ratio >= min_ratio)


def oracle_savings(ga: pd.DataFrame, random: pd.DataFrame, column: str = "ga_potential",
                   random_column: str = "random") -> Savings:
    """:class:`Savings` of per-seed calls ``ga[column]`` over ``random[random_column]`` (inf = not found); the
    random-search runs may be longer than the GA's budget. ``column`` may be another outcome, e.g.
    "ga_potential_relaxed", or "ga_potential_energy" against "random_energy"."""
    ga_calls, rs_calls = ga[column].astype(float), random[random_column].astype(float)
    ga_half, rs_half = calls_to_half_success(list(ga_calls)), calls_to_half_success(list(rs_calls))
    budget = int(random["budget"].max())
    if math.isfinite(ga_half) and math.isfinite(rs_half):
        ratio, bound = rs_half / ga_half, "="
    elif math.isfinite(ga_half):  # random search never got there: its budget bounds the ratio
        ratio, bound = budget / ga_half, ">"
    else:
        ratio, bound = math.nan, ""
    interval = savings_interval(list(ga_calls), list(rs_calls), float(budget))
    return Savings(int(np.isfinite(ga_calls).sum()), len(ga_calls), ga_half, int(np.isfinite(rs_calls).sum()),
                   len(rs_calls), budget, rs_half, ratio, bound, interval)


def break_even_oracle_seconds(ga_half: float, ga_seconds_per_call: float, random_half: float,
                              random_seconds_per_call: float) -> float:
    """The cost of one oracle call (s) above which the GA reaches 50 % success sooner in wall time than random search.

    Each method's time to 50 % is its calls to 50 % times its measured seconds per call (its own work plus the
    oracle used in the run, whose cost ``random_seconds_per_call`` approximates, random search doing little else).
    An oracle dearer by ``c`` per call adds ``c`` to both; the two times are equal at
    ``c = (T_ga - T_random) / (random_half - ga_half)``. Returns ``random_seconds_per_call + c`` (at least 0), inf
    where the GA never needs fewer calls, 0 where random search never reached 50 % and the GA did.
    """
    if not math.isfinite(ga_half) or random_half <= ga_half:
        return math.inf
    if not math.isfinite(random_half):
        return 0.0
    extra = (ga_half * ga_seconds_per_call - random_half * random_seconds_per_call) / (random_half - ga_half)
    return max(0.0, random_seconds_per_call + extra)
