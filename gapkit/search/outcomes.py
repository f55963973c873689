"""What a search achieved against a reference: calls to its first match, to a cell as low as it, to a lower other
crystal; typed per-seed outcomes (:class:`MethodOutcome`, :class:`SeedOutcome`) and the target check that stops a
search once it has found what it was looking for.

Success means the lowest structure found so far matches the reference under pymatgen's StructureMatcher; counting
oracle calls to that point lets every method be compared at the same budget.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from gapkit.search.config import SearchConfig, Target
from gapkit.search.oracle import CalculatorFactory, OracleResult, relax
from gapkit.search.population import same_structure
from gapkit.search.state import Improvement, Phase, SearchState

LOWER_MARGIN = 0.005  # eV/atom: below the reference by more than this counts as lower; within it, as low


def first_match(improvements: list[Improvement], reference: Atoms) -> Improvement | None:
    """The first best-so-far structure that matches ``reference`` (None if none does)."""
    return next((imp for imp in improvements if same_structure(imp.atoms, reference)), None)


def calls_to_success(improvements: list[Improvement], reference: Atoms) -> float:
    """Oracle calls after which the best-so-far structure first matches ``reference`` (inf if never)."""
    match = first_match(improvements, reference)
    return math.inf if match is None else float(match.calls)


def calls_below(improvements: list[Improvement], reference: Atoms, energy_per_atom: float,
                margin: float = LOWER_MARGIN) -> float:
    """Oracle calls after which the best-so-far structure is another crystal than ``reference`` more than
    ``margin`` eV/atom below its energy (inf if never): the oracle's minimum is not the reference."""
    for imp in improvements:
        if imp.energy_per_atom < energy_per_atom - margin and not same_structure(imp.atoms, reference):
            return float(imp.calls)
    return math.inf


def calls_to_energy(improvements: list[Improvement], energy_per_atom: float, margin: float = LOWER_MARGIN) -> float:
    """Oracle calls after which the best-so-far structure lies at most ``margin`` eV/atom above ``energy_per_atom``
    (inf if never): whatever crystal it is, the search holds a cell as low as the reference (a polytype the oracle
    ranks level with it counts; a cell that only matches it at the wrong volume does not)."""
    return next((float(imp.calls) for imp in improvements if imp.energy_per_atom <= energy_per_atom + margin),
                math.inf)


def best_energy_curve(improvements: list[Improvement], budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Step curve of the best oracle energy per atom (eV/atom) against oracle calls, up to ``budget``."""
    calls = np.arange(1, budget + 1)
    best = np.full(budget, np.nan)
    for imp in improvements:
        if imp.calls <= budget:
            best[imp.calls - 1:] = imp.energy_per_atom
    return calls, best


def reference_parts(reference: OracleResult | Atoms) -> tuple[Atoms, float | None]:
    """The reference's atoms and its oracle energy per atom (None for bare Atoms)."""
    if isinstance(reference, OracleResult):
        return reference.atoms, reference.energy_per_atom
    return reference, None


def relaxed_match(improvements: list[Improvement], reference: Atoms, oracle: CalculatorFactory,
                  steps: int = 100, fmax: float = 0.05) -> Improvement | None:
    """The first match of ``reference`` as a relaxed cell, with the calls until then (None if no match, or if its
    relaxation fails or leaves the reference): the match itself when a converged oracle relaxation made it;
    otherwise (a single point, or a relaxation cut at its step cap: StructureMatcher ignores volume and small
    distortions, so such a cell can lie far above the minimum) the oracle relaxes it further and its calls are
    added, less the first, which that cell's energy already paid."""
    match = first_match(improvements, reference)
    if match is None or match.relaxed:
        return match
    relaxed = relax(match.atoms, oracle, fmax=fmax, steps=steps)
    if relaxed.failed or not same_structure(relaxed.atoms, reference):
        return None
    return Improvement(match.calls + relaxed.n_calls - 1, relaxed.energy_per_atom, relaxed.atoms, Phase.RELAXED_MATCH,
                       relaxed=relaxed.relaxed)


def _calls_to_energy_or_relaxed(improvements: list[Improvement], match: Improvement | None,
                                energy_per_atom: float, margin: float = LOWER_MARGIN) -> float:
    """Calls until the trajectory, or the relaxed ``match``, holds a cell as low as ``energy_per_atom``."""
    return min(calls_to_energy(improvements, energy_per_atom, margin),
               calls_to_energy([match] if match else [], energy_per_atom, margin))


def _relaxed_match_once(state: SearchState, target: Target, oracle: CalculatorFactory,
                        config: SearchConfig) -> Improvement | None:
    """The state's relaxed match of the target's structure, computed at most once per search (the first match
    never changes); its calls go to ``state.check_calls``."""
    if not state.match_checked:
        match = first_match(state.improvements, target.structure)
        state.relaxed_match = relaxed_match(state.improvements, target.structure, oracle, config.final.relax_steps,
                                            config.fmax)
        state.match_checked = True
        if state.relaxed_match is not None and match is not None and not match.relaxed:
            state.check_calls = state.relaxed_match.calls - match.calls + 1
    return state.relaxed_match


def check_target(state: SearchState, config: SearchConfig, oracle: CalculatorFactory) -> bool:
    """Whether ``state`` has reached ``config.target``: matched its structure and, when it has an energy, holds a
    cell at most its tolerance above it (with ``relax_match``, the match relaxed once by the oracle counts). A
    match whose relaxation still ends above the energy does not stop the search."""
    target = config.target
    if target is None:
        return False
    if target.structure is None:
        return math.isfinite(calls_to_energy(state.improvements, target.energy_per_atom, target.tolerance))
    if first_match(state.improvements, target.structure) is None:
        return False
    if target.energy_per_atom is None:
        return True
    if math.isfinite(calls_to_energy(state.improvements, target.energy_per_atom, target.tolerance)):
        return True
    if not target.relax_match:
        return False
    match = _relaxed_match_once(state, target, oracle, config)
    return math.isfinite(_calls_to_energy_or_relaxed(state.improvements, match, target.energy_per_atom,
                                                     target.tolerance))


# a MethodOutcome field -> the suffix of its column in a record's per-seed rows (``ga_potential_below`` ...)
COLUMN_SUFFIXES = {"match": "", "below": "_below", "energy": "_energy", "relaxed": "_relaxed", "phase": "_phase",
                   "best_mev_above_reference": "_best_meV_above_reference"}


@dataclass
class MethodOutcome:
    """One method's outcome on one seed: oracle calls (inf = never within its budget; None = not measured) to the
    first match of the reference (``match``), to a lower other crystal (``below``), to a cell as low as the
    reference (``energy``) and to the match as a relaxed cell (``relaxed``); the phase whose call first matched
    and how far above the reference (meV/atom) the best cell ended (searches only)."""

    match: float
    below: float | None = None
    energy: float | None = None
    relaxed: float | None = None
    phase: str | None = None
    best_mev_above_reference: float | None = None

    def columns(self, method: str) -> dict[str, Any]:
        """The outcome as a record's per-seed columns of ``method`` (measured ones only)."""
        return {f"{method}{suffix}": getattr(self, name) for name, suffix in COLUMN_SUFFIXES.items()
                if getattr(self, name) is not None}

    @classmethod
    def from_columns(cls, row: dict[str, Any], method: str) -> "MethodOutcome":
        """The outcome of ``method`` in a record's per-seed row (null calls, JSON's "never", read as inf)."""
        values = {name: row.get(f"{method}{suffix}") for name, suffix in COLUMN_SUFFIXES.items()}
        for name in ("match", "below", "energy", "relaxed"):
            if f"{method}{COLUMN_SUFFIXES[name]}" in row:
                value = values[name]
                values[name] = math.inf if value is None or value != value else float(value)  # NaN != NaN
        return cls(**values)


@dataclass
class SeedOutcome:
    """One seed of a comparison: the oracle calls the search spent (the baselines get the same), each method's
    outcome, and the wall time (s) when measured."""

    seed: int
    budget: int
    methods: dict[str, MethodOutcome] = field(default_factory=dict)
    wall_s: float | None = None

    def row(self) -> dict[str, Any]:
        """The outcome as one per-seed row of a record (and of the benchmark's CSV)."""
        out: dict[str, Any] = {"seed": self.seed, "budget": self.budget}
        for method, outcome in self.methods.items():
            out.update(outcome.columns(method))
        if self.wall_s is not None:
            out["wall_s"] = self.wall_s
        return out


def trajectory_outcome(improvements: list[Improvement], reference: OracleResult | Atoms) -> MethodOutcome:
    """Calls to match ``reference`` and, when it comes with its oracle energy (an OracleResult), to a lower other
    crystal (a seed can miss the reference because the oracle ranks something else lower) and to a cell as low."""
    atoms, energy_per_atom = reference_parts(reference)
    outcome = MethodOutcome(calls_to_success(improvements, atoms))
    if energy_per_atom is not None:
        outcome.below = calls_below(improvements, atoms, energy_per_atom)
        outcome.energy = calls_to_energy(improvements, energy_per_atom)
    return outcome


def search_outcome(state: SearchState, reference: OracleResult | Atoms, oracle: CalculatorFactory,
                   config: SearchConfig, relax_match: bool = True) -> MethodOutcome:
    """The GA's outcome: :func:`trajectory_outcome`, where it first matched, how far above the reference its best
    ended and (``relax_match``) the calls until its match is a relaxed cell and until it holds a cell as low as the
    reference, the relaxed match counted (relaxed once: the state's target check may have done it). A search
    stopped at its target has no lower-crystal outcome (it would only be looked for until then)."""
    atoms, energy_per_atom = reference_parts(reference)
    outcome = trajectory_outcome(state.improvements, reference)
    if config.target is not None:
        outcome.below = None
    match = None
    if relax_match:
        if state.match_checked:
            match = state.relaxed_match
        else:
            match = relaxed_match(state.improvements, atoms, oracle, config.final.relax_steps, config.fmax)
        outcome.relaxed = math.inf if match is None else float(match.calls)
        if energy_per_atom is not None:
            outcome.energy = _calls_to_energy_or_relaxed(state.improvements, match, energy_per_atom)
    found = first_match(state.improvements, atoms)
    outcome.phase = "" if found is None else found.label
    outcome.best_mev_above_reference = math.nan
    if state.improvements and energy_per_atom is not None:  # the relaxed match counts: a search may stop on it
        best = min(e.energy_per_atom for e in [state.improvements[-1], *([match] if match else [])])
        outcome.best_mev_above_reference = round(1000 * (best - energy_per_atom), 1)
    return outcome


def with_target(config: SearchConfig, reference: OracleResult | Atoms) -> SearchConfig:
    """``config`` stopping at ``reference`` (its structure, and its energy when it has one)."""
    return dataclasses.replace(config, target=Target.from_reference(reference))
