"""The search loop: learning cycles (GA on the potential -> oracle single points -> filter -> refit), then final
rounds (GA on the potential -> oracle relaxations), until the budget, the stage's end or the target.

:func:`run_search` runs it through any ``concurrent.futures.Executor`` (the 7 crystal systems' GAs and the oracle
jobs of a cycle are submitted with ``executor.map``: a thread pool, a process pool, or a Dask/Ray executor all
work unchanged) and pickles the whole :class:`~gapkit.search.state.SearchState` after each cycle or round;
calling it again with the same ``state_path`` resumes from there. All randomness of a cycle comes from
``SeedSequence([seed, stream, system])``, so a resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from itertools import repeat
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
from ase import Atoms

from gapkit.search.config import SearchConfig
from gapkit.search.ga import PopulationCollapsedError, run_ga
from gapkit.search.oracle import CalculatorFactory, OracleResult, chgnet_calculator, relax, single_point
from gapkit.search.outcomes import check_target
from gapkit.search.population import (StructureGenerationError, initial_population, is_duplicate, random_crystal,
                                      random_structure, too_close)
from gapkit.search.potential import NNPotential, single_thread
from gapkit.search.state import Improvement, Phase, SearchState, load_state, save_state
from gapkit.search.training_set import learn_from_relaxations, learn_from_single_point, retrain

log = logging.getLogger(__name__)

# Random streams: the second entry of SeedSequence([seed, stream, system]) (of [seed, stream] for random starts).
# Learning cycles use their cycle number (0, 1, ...); the others sit where no cycle number reaches, so no two parts
# of a search share random numbers. The values are those every recorded run used: changing one changes every search.
INITIAL_POPULATION_STREAM = 99_999
FINAL_GA_STREAM = 10_000           # + the cycle the loop stopped at + FINAL_ROUND_STRIDE x the round
FINAL_ROUND_STRIDE = 1_000
RANDOM_START_STREAM = 30_000       # + the round (random starts of a stale round)

# two picks closer than this in predicted energy (eV/atom) are compared as possible duplicates
PICK_ENERGY_WINDOW = 0.005


class SerialExecutor(Executor):
    """Runs every job in the calling thread at submit time: for tests, debugging and profiling."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        """Run ``fn`` now and return a finished future."""
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # handed to the caller through the future, as any executor does
            future.set_exception(err)
        return future


def cycle_rng(seed: int, stream: int, system_index: int) -> np.random.Generator:
    """The random generator of one (stream, crystal system) task: independent of execution order."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream, system_index]))


def make_scorer(potential: NNPotential, relax_steps: int = 0, fmax: float = 0.05) -> Callable:
    """Scorer for the GA: (optionally potential-relaxed) atoms and predicted energy per atom, or None."""
    def score(atoms: Atoms) -> tuple[Atoms, float] | None:
        """``atoms`` (relaxed on the potential when asked) and its predicted energy per atom, or None."""
        atoms, e = atoms.copy(), None
        try:
            if relax_steps > 0:
                from ase.filters import UnitCellFilter
                from ase.optimize import BFGS

                from gapkit.search.potential import PotentialCalculator
                calc = atoms.calc = PotentialCalculator(potential)
                BFGS(UnitCellFilter(atoms), logfile=None, maxstep=0.2).run(fmax=fmax, steps=relax_steps)
                atoms.calc = None
                # the optimizer's last step computed the energy at these very positions: the same number that
                # predict would compute again
                e = calc.energy_of(atoms)
            if e is None:
                with single_thread():
                    e = potential.predict(atoms)
            e = e / len(atoms)
        except (ValueError, RuntimeError, np.linalg.LinAlgError) as err:
            log.debug("potential could not score a structure: %s", err)
            return None
        if not np.isfinite(e) or not np.all(np.isfinite(atoms.positions)):
            return None
        atoms.info["e_pred"] = e
        return atoms, e
    return score


def ga_task(system: str, population: list[Atoms], potential: NNPotential | None, config: SearchConfig,
            stream: int, n_generations: int, n_recommend: int,
            known: tuple[list[Atoms], list[float]] | None = None) -> tuple[str, list[Atoms], list[int]]:
    """Run one crystal system's GA (or, with no potential yet, bootstrap); return system, population and picks.

    ``known`` (structures the oracle has labelled, with the potential's energies per atom for them) keeps the
    picks new: a GA child relaxed into a minimum the oracle already saw is skipped for the next-best one instead
    of paying an oracle call that would only be dropped as a duplicate.
    """
    rng = cycle_rng(config.seed, stream, config.crystal_systems.index(system))
    if potential is None:  # bootstrap: oracle single points on random initial structures
        fresh = [k for k, a in enumerate(population) if not a.info.get("evaluated")]
        picks = sorted(rng.choice(fresh, size=min(n_recommend, len(fresh)), replace=False).tolist())
        return system, population, picks
    scorer = make_scorer(potential, config.ga.potential_relax_steps, config.fmax)
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
        log.warning("%s, stream %d: %s No picks from it this time.", system, stream, err)
        return system, population, []
    picks = []
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
    return system, pop, picks


def known_structures(state: SearchState) -> tuple[list[Atoms], list[float]] | None:
    """The oracle-labelled structures with the current potential's energies per atom (None before one)."""
    if state.potential is None or not state.training:
        return None
    with single_thread():
        return state.train_atoms, [state.potential.predict_known(a) / len(a) for a in state.train_atoms]


def init_state(config: SearchConfig) -> SearchState:
    """Random symmetric initial populations for every crystal system."""
    counts = config.counts()
    state = SearchState()
    for k, system in enumerate(config.crystal_systems):
        rng = cycle_rng(config.seed, INITIAL_POPULATION_STREAM, k)
        state.populations[system] = initial_population(
            counts, system, config.ga.population_size, rng, min_distance_factor=config.ga.min_distance_factor)
        state.best_per_system[system] = []
    return state


def record_oracle(state: SearchState, result: OracleResult, phase: Phase, step: int) -> None:
    """Count an oracle job; track failures and the best structure (found in ``phase`` of cycle/round ``step``)."""
    state.counter.add(result)
    if result.failed:
        state.failed.append({"cycle": state.cycle, "error": result.error, **result.tag})
        return
    e = result.energy_per_atom
    if state.best is None or e < state.best.energy_per_atom - 1e-9:
        state.improvements.append(Improvement(state.counter.total, e, result.atoms.copy(), phase, step,
                                              result.relaxed))


def calls_left(state: SearchState, config: SearchConfig) -> int | None:
    """Oracle calls left in the search's budget (None: no budget)."""
    return None if config.budget is None else max(0, config.budget - state.counter.total)


def run_cycle(state: SearchState, config: SearchConfig, oracle: CalculatorFactory, executor: Executor) -> None:
    """One learning cycle: GA per crystal system -> oracle single points -> filter -> refit."""
    loop = config.learning
    systems = list(config.crystal_systems)
    jobs = executor.map(ga_task, systems, [state.populations[s] for s in systems],
                        repeat(state.potential), repeat(config), repeat(state.cycle),
                        repeat(loop.generations), repeat(loop.picks_per_system),
                        repeat(known_structures(state) if config.skip_known else None))
    batch = _take_picks(state, jobs)
    n_picked = len(batch)
    batch = _distinct(batch)  # two crystal systems can recommend the same structure: label it once
    state.dropped["repeated pick"] = state.dropped.get("repeated pick", 0) + n_picked - len(batch)
    # lowest predicted first, across systems: a budget cut keeps the most promising, and calls-to-success counts
    # what an oracle working through the batch in that order spends (not where a system falls in the list)
    batch = _most_promising_first(batch)
    left = calls_left(state, config)
    if left is not None:
        batch = batch[:left]
    results = list(executor.map(single_point, [a for _, a in batch], repeat(oracle),
                                [{"system": s} for s, _ in batch]))
    added = 0
    for (system, _), result in zip(batch, results):
        record_oracle(state, result, Phase.LEARNING_CYCLE, state.cycle)
        if not result.failed:
            state.best_per_system[system].append(min([result.energy_per_atom] + state.best_per_system[system][-1:]))
        added += learn_from_single_point(state, result, config)
    retrain(state, config)
    log.info("cycle %d: %d oracle jobs, %d added, train %d, val RMSE %s, calls %d", state.cycle,
             len(batch), added, len(state.training), state.val_rmse, state.counter.total)
    state.cycle += 1
    big_enough = len(state.training) >= loop.min_training_size
    state.converged = bool(big_enough and state.val_rmse is not None and state.val_rmse <= loop.target_rmse)
    if calls_left(state, config) == 0:  # the budget is spent: no final stage can follow
        state.finished = True


class Relaxation(NamedTuple):
    """One oracle relaxation of a final round: the crystal system it is tagged with, the structure, the potential
    that pre-relaxes it (None: none) and the oracle's single point of it to start from (None: a new call)."""

    system: str
    atoms: Atoms
    potential: NNPotential | None = None
    start: OracleResult | None = None


def run_final(state: SearchState, config: SearchConfig, oracle: CalculatorFactory, executor: Executor) -> None:
    """One final round: GA on the potential alone, then the oracle relaxes its picks (see :class:`FinalStage`)."""
    final = config.final
    systems = list(config.crystal_systems)
    known = known_structures(state) if config.skip_known and state.final_round > 0 else None
    stream = FINAL_GA_STREAM + state.cycle + FINAL_ROUND_STRIDE * state.final_round
    jobs = executor.map(ga_task, systems, [state.populations[s] for s in systems],
                        repeat(state.potential), repeat(config), repeat(stream), repeat(final.generations),
                        repeat(final.picks_per_system), repeat(known))
    batch = _take_picks(state, jobs)
    # the oracle relaxes the most promising first, so calls-to-success counts what a user would spend
    batch = _most_promising_first(_distinct(batch))
    best_before = state.best.energy_per_atom if state.best is not None else float("inf")
    potential, screening, starts = state.potential, [], [None] * len(batch)
    if final.screen_picks:
        # pre-relaxed already, and each relaxation starts from its screening single point (no second call)
        (batch, starts, screening), potential = _screened(state, config, oracle, executor, batch), None
    n_random = final.stale_random_relaxations if state.stale_rounds > 0 else 0
    relaxations = [Relaxation(system, atoms, potential, start) for (system, atoms), start in zip(batch, starts)]
    if final.relax_per_round is not None:
        relaxations = relaxations[:max(0, final.relax_per_round - n_random)]
    n_picks = len(relaxations)
    # random starts come last: a budget cut drops them first, and the GA's picks keep their place in the call count
    relaxations += [Relaxation(system, atoms) for system, atoms in random_starts(state, config, n_random)]
    steps = _relax_steps_within_budget(len(relaxations), state, config)
    relaxations = relaxations[:len(steps)]
    results = list(executor.map(_relax_job, relaxations, repeat(oracle), repeat(config), steps))
    for k, result in enumerate(results):
        record_oracle(state, result, Phase.RELAXATION if k < n_picks else Phase.RANDOM_START, state.final_round + 1)
    state.final_results = sorted(state.final_results + results, key=lambda r: r.energy_per_atom)
    state.final_round += 1
    improved = state.best is not None and state.best.energy_per_atom < best_before - 1e-9
    state.stale_rounds = 0 if improved else state.stale_rounds + 1
    left = calls_left(state, config)
    state.finished = (state.final_round >= final.rounds
                      or (final.patience is not None and state.stale_rounds >= final.patience)
                      or (left is not None and left < 2) or not relaxations)
    if not state.finished and final.frames_every > 0:
        added = learn_from_relaxations(state, results, config)
        # the screening's single points are labelled structures too
        added += sum(learn_from_single_point(state, r, config) for r in screening)
        for job, result in zip(relaxations, results):  # relaxed minima become parents of the next round
            if not result.failed:
                relaxed = result.atoms.copy()
                relaxed.info["evaluated"] = True
                state.populations[job.system].append(relaxed)
        retrain(state, config)
        log.info("final round %d: %d relaxations, %d frames added, train %d, calls %d", state.final_round,
                 len(results), added, len(state.training), state.counter.total)


def random_starts(state: SearchState, config: SearchConfig, n: int) -> list[tuple[str, Atoms]]:
    """``n`` fresh random symmetric structures as (crystal system, atoms), each of a random crystal system, drawn
    from the run's seed and the final round (so a resumed run draws the same)."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, RANDOM_START_STREAM + state.final_round]))
    counts, systems, starts = config.counts(), list(config.crystal_systems), []
    for _ in range(n):
        try:
            starts.append(random_crystal(counts, systems, rng, min_distance_factor=config.ga.min_distance_factor))
        except StructureGenerationError as err:  # a system PyXtal cannot fill at this size: one relaxation fewer
            log.warning("no random start: %s", err)
    return starts


def _screened(state: SearchState, config: SearchConfig, oracle: CalculatorFactory, executor: Executor,
              batch: list[tuple[str, Atoms]]
              ) -> tuple[list[tuple[str, Atoms]], list[OracleResult], list[OracleResult]]:
    """The picks pre-relaxed on the potential and ranked by one oracle single point each (counted, as many as the
    budget leaves room for with one relaxation step after them; failed ones are dropped), each ranked pick's
    single point, and all the single points."""
    left = calls_left(state, config)
    if left is not None:
        batch = batch[:max(0, left - 2)]
    prepared = list(executor.map(_pre_relaxed, [a for _, a in batch], repeat(state.potential), repeat(config)))
    results = list(executor.map(single_point, prepared, repeat(oracle), [{"system": s} for s, _ in batch]))
    for result in results:
        record_oracle(state, result, Phase.SCREENING, state.final_round + 1)
    ranked = sorted((r.energy_per_atom, k) for k, r in enumerate(results) if not r.failed)
    return [(batch[k][0], prepared[k]) for _, k in ranked], [results[k] for _, k in ranked], results


def _pre_relaxed(atoms: Atoms, potential: NNPotential | None, config: SearchConfig) -> Atoms:
    """``atoms`` relaxed on the potential (free) when that keeps atoms apart, else as given."""
    if potential is not None and config.final.potential_relax_steps > 0:
        scored = make_scorer(potential, config.final.potential_relax_steps, config.fmax)(atoms)
        if scored is not None and not too_close(scored[0], config.ga.min_distance_factor):
            return scored[0]
    return atoms


def _relax_steps_within_budget(n_picks: int, state: SearchState, config: SearchConfig) -> list[int]:
    """Oracle relaxation steps for each pick, lowest first: ``final.relax_steps``, cut so that the round cannot
    spend more than the budget leaves (a relaxation of s steps costs at most s + 1 calls); picks that do not fit
    get none."""
    left = calls_left(state, config)
    if left is None:
        return [config.final.relax_steps] * n_picks
    steps = []
    for _ in range(n_picks):
        cap = min(config.final.relax_steps, left - 1)
        if cap < 1:
            break
        steps.append(cap)
        left -= cap + 1
    return steps


def _take_picks(state: SearchState, jobs) -> list[tuple[str, Atoms]]:
    """Store each system's new population; return its picks as (system, atoms), marked as sent to the oracle."""
    batch = []
    for system, pop, picks in jobs:
        state.populations[system] = pop
        for k in picks:
            pop[k].info["evaluated"] = True
            batch.append((system, pop[k]))
    return batch


def _most_promising_first(batch: list[tuple[str, Atoms]]) -> list[tuple[str, Atoms]]:
    """``batch`` ordered by the potential's predicted energy, lowest first (stable; unscored picks, as in the
    bootstrap cycle, keep their order at the end)."""
    return sorted(batch, key=lambda item: item[1].info.get("e_pred", float("inf")))


def _distinct(batch: list[tuple[str, Atoms]]) -> list[tuple[str, Atoms]]:
    """Drop recommendations that repeat one from another crystal system (the oracle would relax the same
    structure twice)."""
    kept: list[tuple[str, Atoms]] = []
    for system, atoms in batch:
        e = atoms.info.get("e_pred", 0.0)
        if not is_duplicate(atoms, e, [a for _, a in kept], [a.info.get("e_pred", 0.0) for _, a in kept],
                            energy_window=PICK_ENERGY_WINDOW):
            kept.append((system, atoms))
    return kept


def _relax_job(job: Relaxation, oracle: CalculatorFactory, config: SearchConfig, steps: int) -> OracleResult:
    """Pre-relax with the job's potential (free), then relax with the oracle (``steps``, counted), tagged by
    the job's crystal system."""
    atoms = _pre_relaxed(job.atoms, job.potential, config)
    return relax(atoms, oracle, fmax=config.fmax, steps=steps, tag={"system": job.system},
                 keep_every=config.final.frames_every, start=job.start)


def run_search(config: SearchConfig, oracle: CalculatorFactory = chgnet_calculator,
               executor: Executor | None = None, state_path: Path | str | None = None,
               stop_after: int | None = None) -> SearchState:
    """Run (or resume from ``state_path``) the search ``config`` defines with ``oracle``; ``stop_after`` cycles
    or rounds stops early, as a kill would (for tests and step-by-step demonstrations)."""
    path = Path(state_path) if state_path is not None else None
    if path is not None and path.exists():
        state = load_state(path)
        log.info("resuming from %s at cycle %d, final round %d", path, state.cycle, state.final_round)
    else:
        state = init_state(config)
        if path is not None:
            save_state(state, path)
    own = executor is None
    executor = executor or ThreadPoolExecutor(max_workers=min(len(config.crystal_systems), os.cpu_count() or 1))
    try:
        done_here = 0
        while not state.finished:
            if stop_after is not None and done_here >= stop_after:
                break
            if config.target is not None and check_target(state, config, oracle):
                state.finished = state.target_reached = True
                break
            if state.converged or state.cycle >= config.learning.max_cycles:
                run_final(state, config, oracle, executor)
            else:
                run_cycle(state, config, oracle, executor)
            done_here += 1
            if path is not None:
                save_state(state, path)
        if config.target is not None and state.finished and not state.target_reached:
            state.target_reached = check_target(state, config, oracle)
        if path is not None:
            save_state(state, path)
    finally:
        if own:
            executor.shutdown()
    return state
