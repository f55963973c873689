"""The active-learning loop, one cycle at a time: GA on the potential -> oracle -> filter -> retrain.

The state of a run is one picklable :class:`SearchState`; :mod:`gapkit.search.runner` saves it after
every cycle so a killed run resumes where it stopped. All randomness of a cycle comes from
``SeedSequence([seed, cycle, system])``, so a resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from gapkit.search.ga import GASettings, PopulationCollapsedError, run_ga
from gapkit.search.oracle import OracleCounter, OracleResult
from gapkit.search.population import (CRYSTAL_SYSTEMS, StructureGenerationError, initial_population,
                                      is_duplicate, random_structure, stoichiometry)
from gapkit.search.potential import NNPotential, TrainSettings, fit_potential, single_thread

log = logging.getLogger(__name__)


@dataclass
class SearchConfig:
    """Everything that defines a search; defaults follow the paper where it gives a number."""

    formula: str = "Si"
    n_atoms: int = 8
    crystal_systems: tuple[str, ...] = tuple(CRYSTAL_SYSTEMS)
    seed: int = 0
    ga: GASettings = field(default_factory=GASettings)
    ga_generations: int = 30          # paper: 30 inner GA iterations per cycle before convergence
    final_generations: int = 1500     # paper: 1,500 after convergence
    recommend_per_system: int = 16    # paper: 16 per system, 112 per cycle
    final_per_system: int = 10        # paper: 10 per system ranked by the oracle at the end
    max_cycles: int = 20              # paper: 20 cycles
    min_training_size: int = 112 * 20
    target_rmse: float = 0.08         # eV/atom
    oracle_budget: int | None = None  # oracle calls allowed in the learning loop
    final_relax_steps: int = 100
    fmax: float = 0.05
    potential_relax_steps: int = 0    # BFGS steps on the potential for each GA structure (0 = none)
    final_potential_relax_steps: int = 100  # potential pre-relaxation before the oracle's final relax
    train_energy_window: float = 2.0  # eV/atom above the best oracle energy; higher ones not trained on
    skip_known: bool = True           # never send the oracle a structure it has already labelled
    # paper: one final stage. More rounds give the potential the oracle's relaxations (every
    # ``relaxation_frames_every``-th step, with energy, forces and stress the oracle computed anyway),
    # refit it and search again, until a round limit, ``round_patience`` rounds without a lower oracle
    # energy, or ``total_budget`` oracle calls (learning loop and final rounds together).
    final_rounds: int = 1
    round_patience: int = 2
    relaxation_frames_every: int = 0  # 0 = learn nothing from the final relaxations (paper)
    total_budget: int | None = None
    # not in the paper: before relaxing a final round's picks, the oracle computes one single point of each
    # (pre-relaxed on the potential) and relaxes them lowest oracle energy first instead of lowest predicted
    screen_final_picks: bool = False
    # not in the paper: relax only this many picks per final round (the first in the order above), so the
    # potential is refitted after fewer oracle relaxations; None relaxes every pick
    relax_per_round: int | None = None
    train: TrainSettings = field(default_factory=TrainSettings)
    # not in the paper: a label counts as already known only when the potential's error on it is below
    # min(min_loss, known_error_cap) eV/atom. min_loss is the training RMSE at the early-stopping epoch; fitted on
    # a dozen structures it can exceed 1 eV/atom, and the paper's filter then drops nearly every new label, so
    # the training set stops growing (8-atom Si, seed 3: 13 structures for six cycles). None: the paper's rule.
    known_error_cap: float | None = None
    # not in the paper: in a final round that follows one without a lower oracle energy, this many of the round's
    # relaxations start from fresh random symmetric structures (PyXtal, as random search does) instead of GA picks.
    # A potential fitted only around one wrong basin ranks every GA pick into it (8-atom Si, seed 3: its potential
    # puts diamond 0.47 eV/atom above that basin); the oracle relaxations of random starts label other regions and
    # their minima join the GA's populations as parents.
    stale_random_relaxations: int = 0

    def counts(self) -> dict[str, int]:
        """Atoms per element (validates formula and atom count)."""
        if self.relax_per_round is not None and self.relax_per_round < 1:
            raise ValueError(f"relax_per_round must be at least 1 (or None for every pick), got {self.relax_per_round}.")
        if self.stale_random_relaxations < 0:
            raise ValueError(f"stale_random_relaxations must be 0 or more, got {self.stale_random_relaxations}.")
        return stoichiometry(self.formula, self.n_atoms)


@dataclass
class Improvement:
    """A new lowest oracle energy: after how many oracle calls, its energy per atom, the structure, and the part
    of the search whose oracle call found it (e.g. "learning cycle 3", "final round 2 screening"; "" if untold),
    and whether that call was an oracle relaxation that converged (so the structure is a minimum, not a single
    point or a relaxation cut at its step cap)."""

    calls: int
    energy_per_atom: float
    atoms: Atoms
    phase: str = ""
    relaxed: bool = False


@dataclass
class SearchState:
    """Everything a run needs to continue: populations, training set, potential, counters."""

    cycle: int = 0
    populations: dict[str, list[Atoms]] = field(default_factory=dict)
    train_atoms: list[Atoms] = field(default_factory=list)
    train_energies: list[float] = field(default_factory=list)
    train_forces: list[np.ndarray | None] = field(default_factory=list)  # oracle forces, None if absent
    train_stresses: list[np.ndarray | None] = field(default_factory=list)  # oracle stresses, likewise
    potential: NNPotential | None = None
    min_loss: float | None = None     # training RMSE of the current potential (eV/atom)
    val_rmse: float | None = None     # its validation RMSE (eV/atom): the convergence test
    rmse_history: list[float] = field(default_factory=list)
    train_size_history: list[int] = field(default_factory=list)
    counter: OracleCounter = field(default_factory=OracleCounter)
    improvements: list[Improvement] = field(default_factory=list)
    best_per_system: dict[str, list[float]] = field(default_factory=dict)
    failed: list[dict] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=lambda: {"duplicate": 0, "known": 0, "high": 0})
    converged: bool = False
    finished: bool = False
    final_results: list[OracleResult] = field(default_factory=list)  # every final round, lowest first
    final_round: int = 0              # final rounds done
    stale_rounds: int = 0             # consecutive final rounds without a lower oracle energy

    @property
    def best(self) -> Improvement | None:
        """The lowest-energy oracle-evaluated structure so far."""
        return self.improvements[-1] if self.improvements else None


def cycle_rng(seed: int, cycle: int, system_index: int) -> np.random.Generator:
    """The random generator of one (cycle, system) task: independent of execution order."""
    return np.random.default_rng(np.random.SeedSequence([seed, cycle, system_index]))


def make_scorer(potential: NNPotential, relax_steps: int = 0, fmax: float = 0.05) -> Callable:
    """Scorer for the GA: (optionally potential-relaxed) atoms and predicted energy per atom."""
    def score(atoms: Atoms):
        atoms = atoms.copy()
        try:
            if relax_steps > 0:
                from ase.filters import UnitCellFilter
                from ase.optimize import BFGS

                from gapkit.search.potential import PotentialCalculator
                atoms.calc = PotentialCalculator(potential)
                BFGS(UnitCellFilter(atoms), logfile=None, maxstep=0.2).run(fmax=fmax, steps=relax_steps)
                atoms.calc = None
            with single_thread():
                e = potential.predict(atoms) / len(atoms)
        except (ValueError, RuntimeError, np.linalg.LinAlgError) as err:
            log.debug("potential could not score a structure: %s", err)
            return None
        if not np.isfinite(e) or not np.all(np.isfinite(atoms.positions)):
            return None
        atoms.info["e_pred"] = e
        return atoms, e
    return score


def ga_task(system: str, population: list[Atoms], potential: NNPotential | None, config: SearchConfig,
            cycle: int, n_generations: int, n_recommend: int,
            known: tuple[list[Atoms], list[float]] | None = None) -> tuple[str, list[Atoms], list[int]]:
    """Run one system's GA (or, with no potential yet, bootstrap); return population and picks.

    ``known`` (structures the oracle has labelled, with the potential's energies per atom for them)
    keeps the picks new: a GA child relaxed into a minimum the oracle already saw is skipped for the
    next-best one instead of paying an oracle call that would only be dropped as a duplicate.
    """
    rng = cycle_rng(config.seed, cycle, config.crystal_systems.index(system))
    if potential is None:  # bootstrap: oracle single points on random initial structures
        fresh = [k for k, a in enumerate(population) if not a.info.get("evaluated")]
        picks = sorted(rng.choice(fresh, size=min(n_recommend, len(fresh)), replace=False).tolist())
        return system, population, picks
    scorer = make_scorer(potential, config.potential_relax_steps, config.fmax)
    counts = config.counts()

    def immigrant(gen: np.random.Generator) -> Atoms | None:
        """A fresh PyXtal structure of this crystal system (None if PyXtal finds none)."""
        try:
            return random_structure(counts, system, gen, min_distance_factor=config.ga.min_distance_factor)
        except StructureGenerationError:
            return None

    try:
        pop, energies = run_ga(population, scorer, rng, n_generations, config.ga, new_random=immigrant)
    except PopulationCollapsedError as err:  # this system sits the cycle out; the others go on
        log.warning("%s, cycle %d: %s No picks from it this cycle.", system, cycle, err)
        return system, population, []
    picks, chosen = [], []
    for k, atoms in enumerate(pop):  # lowest first; skip what the oracle saw and duplicates
        if len(picks) >= n_recommend:
            break
        if atoms.info.get("evaluated"):
            continue
        if is_duplicate(atoms, energies[k], [pop[i] for i in picks], [energies[i] for i in picks]):
            continue
        if known is not None and is_duplicate(atoms, energies[k], *known):
            continue
        picks.append(k)
        chosen.append(atoms)
    return system, pop, picks


def known_structures(state: SearchState) -> tuple[list[Atoms], list[float]] | None:
    """The oracle-labelled structures with the current potential's energies per atom (None before one)."""
    if state.potential is None or not state.train_atoms:
        return None
    with single_thread():
        return state.train_atoms, [state.potential.predict(a) / len(a) for a in state.train_atoms]


def init_state(config: SearchConfig) -> SearchState:
    """Random symmetric initial populations for every crystal system."""
    counts = config.counts()
    state = SearchState()
    for k, system in enumerate(config.crystal_systems):
        rng = cycle_rng(config.seed, 99_999, k)  # a cycle number no loop reaches
        state.populations[system] = initial_population(
            counts, system, config.ga.population_size, rng,
            min_distance_factor=config.ga.min_distance_factor)
        state.best_per_system[system] = []
    return state


def record_oracle(state: SearchState, result: OracleResult, phase: str = "") -> None:
    """Count an oracle job and track the best structure (found in ``phase`` of the search) and failures."""
    state.counter.add(result)
    if result.failed:
        state.failed.append({"cycle": state.cycle, "error": result.error, **result.tag})
        return
    e = result.energy_per_atom
    if state.best is None or e < state.best.energy_per_atom - 1e-9:
        state.improvements.append(Improvement(state.counter.total, e, result.atoms.copy(), phase, result.relaxed))


def _too_high(state: SearchState, e_atom: float, energy_window: float) -> bool:
    """True (and counted) when ``e_atom`` lies more than ``energy_window`` eV/atom above the best."""
    if state.best is not None and e_atom > state.best.energy_per_atom + energy_window:
        state.dropped["high"] += 1
        return True
    return False


def _already_trained(state: SearchState, atoms: Atoms, e_atom: float, pool_e: list[float]) -> bool:
    """True (and counted) when ``atoms`` duplicates a training structure (``pool_e``: their eV/atom)."""
    if is_duplicate(atoms, e_atom, state.train_atoms, pool_e, energy_window=0.01):
        state.dropped["duplicate"] += 1
        return True
    return False


def add_training_example(state: SearchState, atoms: Atoms, energy_ev: float, forces: np.ndarray | None,
                         stress: np.ndarray | None) -> None:
    """Append one oracle-labelled structure to the training set."""
    state.train_atoms.append(atoms)
    state.train_energies.append(float(energy_ev))
    state.train_forces.append(forces)
    state.train_stresses.append(stress)


def accept_for_training(state: SearchState, result: OracleResult, config: SearchConfig) -> bool:
    """Keep a labelled structure unless it duplicates the set, the potential already knew it (error below
    min_loss, or below ``config.known_error_cap`` eV/atom if that is smaller), or it lies more than
    ``config.train_energy_window`` eV/atom above the best structure (such near-collisions would dominate a tiny
    network's loss while saying nothing about the low-energy region searched)."""
    if result.failed:
        return False
    atoms, e_atom = result.atoms, result.energy_per_atom
    if _too_high(state, e_atom, config.train_energy_window):
        return False
    pred = atoms.info.get("e_pred")
    if state.min_loss is not None and pred is not None:
        # paper: drop if |E_pred - E_oracle| < min_loss x n_atoms (total energies)
        cap = config.known_error_cap
        tolerance = state.min_loss if cap is None else min(state.min_loss, cap)
        if abs(pred - e_atom) * len(atoms) < tolerance * len(atoms):
            state.dropped["known"] += 1
            return False
    pool_e = [e / len(a) for a, e in zip(state.train_atoms, state.train_energies)]
    return not _already_trained(state, atoms, e_atom, pool_e)


def learn_from_single_point(state: SearchState, result: OracleResult, config: SearchConfig) -> bool:
    """Add an oracle single point to the training set if :func:`accept_for_training` keeps it; say whether it did."""
    if not accept_for_training(state, result, config):
        return False
    add_training_example(state, result.atoms, result.energy_ev, result.forces, result.stress)
    return True


def learn_from_relaxations(state: SearchState, results: list[OracleResult], config: SearchConfig) -> int:
    """Add the kept frames of oracle relaxations to the training set; return how many joined.

    Frames within an energy window of the best structure and not duplicating the set join, like any
    labelled structure; the paper's "already predicted" filter does not apply (nothing predicted them).
    """
    added = 0
    pool_e = [e / len(a) for a, e in zip(state.train_atoms, state.train_energies)]
    for result in results:
        for frame in result.frames:
            e_atom = frame.energy_ev / len(frame.atoms)
            if (_too_high(state, e_atom, config.train_energy_window)
                    or _already_trained(state, frame.atoms, e_atom, pool_e)):
                continue
            pool_e.append(e_atom)
            add_training_example(state, frame.atoms, frame.energy_ev, frame.forces, frame.stress)
            added += 1
    return added


def retrain(state: SearchState, config: SearchConfig) -> None:
    """Refit the potential on the whole training set (early stopping) and log its RMSE."""
    if len(state.train_atoms) < 4:
        return
    species = sorted({atomic_numbers[el] for el in config.counts()})
    pot, hist = fit_potential(state.train_atoms, state.train_energies, species, config.train,
                              seed=int(np.random.SeedSequence([config.seed, state.cycle]).generate_state(1)[0]),
                              forces=state.train_forces, stresses=state.train_stresses)
    state.potential, state.min_loss, state.val_rmse = pot, hist.min_loss, hist.best_val_rmse
    state.rmse_history.append(hist.best_val_rmse)
    state.train_size_history.append(len(state.train_atoms))
