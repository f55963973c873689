"""Run a search end to end through any ``concurrent.futures.Executor``, saving state every cycle.

The 7 crystal-system GAs of a cycle and the oracle jobs are submitted with ``executor.map``; a
thread pool, a process pool, or a Dask/Ray executor all work unchanged. After each cycle the whole
:class:`~gapkit.search.active.SearchState` is pickled atomically to ``state_path``; calling
:func:`run_search` again with the same path resumes from there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import pickle
from concurrent.futures import Executor, ThreadPoolExecutor
from itertools import repeat
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
from ase import Atoms

from gapkit.io import atomic_pickle
from gapkit.search.active import (SearchConfig, SearchState, ga_task, init_state, known_structures,
                                  learn_from_relaxations, learn_from_single_point, make_scorer, record_oracle,
                                  retrain)
from gapkit.search.population import StructureGenerationError, is_duplicate, random_crystal, too_close
from gapkit.search.oracle import CalculatorFactory, OracleResult, chgnet_calculator, relax, single_point
from gapkit.search.potential import NNPotential

log = logging.getLogger(__name__)


class SerialExecutor(Executor):
    """Runs every job in the calling thread at submit time: for tests, debugging and profiling."""

    def submit(self, fn, /, *args, **kwargs):
        """Run ``fn`` now and return a finished future."""
        from concurrent.futures import Future

        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # handed to the caller through the future, as any executor does
            future.set_exception(err)
        return future


def save_state(state: SearchState, path: Path) -> None:
    """Pickle ``state`` atomically (write a temp file, then rename), so a kill never corrupts it."""
    atomic_pickle(state, Path(path))


# settings added after runs were saved: left out of the digest while at these defaults, so those runs still resume
_LATER_SETTINGS = {"known_error_cap": None, "stale_random_relaxations": 0}


def _settings_text(config: SearchConfig) -> str:
    """``repr(config)`` without the later settings that keep their defaults."""
    kept = [f"{f.name}={getattr(config, f.name)!r}" for f in dataclasses.fields(config)
            if not (f.name in _LATER_SETTINGS and getattr(config, f.name) == _LATER_SETTINGS[f.name])]
    return f"{type(config).__qualname__}({', '.join(kept)})"


def state_file(directory: Path | str, config: SearchConfig) -> Path:
    """Where a search with exactly these settings keeps its state in ``directory`` (named by formula, cell size,
    seed and a digest of every setting, so that a changed setting starts afresh instead of resuming)."""
    digest = hashlib.sha1(_settings_text(config).encode()).hexdigest()[:10]
    return Path(directory) / f"{config.formula}{config.n_atoms}-seed{config.seed}-{digest}.pkl"


def load_state(path: Path) -> SearchState:
    """Read a state saved by :func:`save_state` (states from older versions get the newer fields)."""
    with open(path, "rb") as fh:
        state = pickle.load(fh)
    n = len(state.train_atoms)
    for name in ("train_forces", "train_stresses"):  # labels kept since this version: none for older states
        if not hasattr(state, name):
            setattr(state, name, [None] * n)
    return state


def _budget_left(state: SearchState, config: SearchConfig) -> int | None:
    """Oracle calls left in the learning-loop budget (None = unlimited)."""
    if config.oracle_budget is None:
        return None
    return max(0, config.oracle_budget - state.counter.total)


def run_cycle(state: SearchState, config: SearchConfig, oracle: CalculatorFactory, executor: Executor) -> None:
    """One active-learning cycle: GA per system -> oracle single points -> filter -> retrain."""
    systems = list(config.crystal_systems)
    jobs = executor.map(ga_task, systems, [state.populations[s] for s in systems],
                        repeat(state.potential), repeat(config), repeat(state.cycle),
                        repeat(config.ga_generations), repeat(config.recommend_per_system),
                        repeat(known_structures(state) if config.skip_known else None))
    batch = _take_picks(state, jobs)
    n_picked = len(batch)
    batch = _distinct(batch)  # two crystal systems can recommend the same structure: label it once
    state.dropped["repeated pick"] = state.dropped.get("repeated pick", 0) + n_picked - len(batch)
    # lowest predicted first, across systems: a budget cut keeps the most promising, and calls-to-success counts
    # what an oracle working through the batch in that order spends (not where a system falls in the list)
    batch = _most_promising_first(batch)
    left = _budget_left(state, config)
    if left is not None:
        batch = batch[:left]
    results = list(executor.map(single_point, [a for _, a in batch], repeat(oracle),
                                [{"system": s} for s, _ in batch]))
    added = 0
    for (system, _), result in zip(batch, results):
        record_oracle(state, result, f"learning cycle {state.cycle}")
        if not result.failed:
            state.best_per_system[system].append(
                min([result.energy_per_atom] + state.best_per_system[system][-1:]))
        added += learn_from_single_point(state, result, config)
    retrain(state, config)
    log.info("cycle %d: %d oracle jobs, %d added, train %d, val RMSE %s, calls %d", state.cycle,
             len(batch), added, len(state.train_atoms), state.val_rmse, state.counter.total)
    state.cycle += 1
    big_enough = len(state.train_atoms) >= config.min_training_size
    state.converged = bool(big_enough and state.val_rmse is not None and state.val_rmse <= config.target_rmse)


def run_final(state: SearchState, config: SearchConfig, oracle: CalculatorFactory, executor: Executor) -> None:
    """One final round: GA on the potential alone, then the oracle relaxes and ranks its picks.

    With ``config.final_rounds`` > 1 the round's relaxations can teach the potential
    (``relaxation_frames_every``) before the next round searches again; the search finishes at the
    round limit, after ``round_patience`` rounds without a lower oracle energy, or when
    ``total_budget`` is spent (the round's relaxations are cut to what it leaves).
    """
    systems = list(config.crystal_systems)
    known = known_structures(state) if config.skip_known and state.final_round > 0 else None
    jobs = executor.map(ga_task, systems, [state.populations[s] for s in systems],
                        repeat(state.potential), repeat(config), repeat(10_000 + state.cycle + 1_000 * state.final_round),
                        repeat(config.final_generations), repeat(config.final_per_system), repeat(known))
    batch = _take_picks(state, jobs)
    # the oracle relaxes the most promising first, so calls-to-success counts what a user would spend
    batch = _most_promising_first(_distinct(batch))
    best_before = state.best.energy_per_atom if state.best is not None else float("inf")
    potential, screening, starts = state.potential, [], [None] * len(batch)
    if config.screen_final_picks:
        # pre-relaxed already, and each relaxation starts from its screening single point (no second call)
        (batch, starts, screening), potential = _screened(state, config, oracle, executor, batch), None
    n_random = config.stale_random_relaxations if state.stale_rounds > 0 else 0
    relaxations = [Relaxation(system, atoms, potential, start) for (system, atoms), start in zip(batch, starts)]
    if config.relax_per_round is not None:
        relaxations = relaxations[:max(0, config.relax_per_round - n_random)]
    n_picks = len(relaxations)
    # random starts come last: a budget cut drops them first, and the GA's picks keep their place in the call count
    relaxations += [Relaxation(system, atoms) for system, atoms in random_starts(state, config, n_random)]
    steps = _relax_steps_within_budget(len(relaxations), state, config)
    relaxations = relaxations[:len(steps)]
    results = list(executor.map(_relax_job, relaxations, repeat(oracle), repeat(config), steps))
    for k, result in enumerate(results):
        kind = "relaxation" if k < n_picks else "random start relaxation"
        record_oracle(state, result, f"final round {state.final_round + 1} {kind}")
    state.final_results = sorted(state.final_results + results, key=lambda r: r.energy_per_atom)
    state.final_round += 1
    improved = state.best is not None and state.best.energy_per_atom < best_before - 1e-9
    state.stale_rounds = 0 if improved else state.stale_rounds + 1
    spent = config.total_budget is not None and config.total_budget - state.counter.total < 2
    state.finished = (state.final_round >= config.final_rounds or state.stale_rounds >= config.round_patience
                      or spent or not relaxations)
    if not state.finished and config.relaxation_frames_every > 0:
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
                 len(results), added, len(state.train_atoms), state.counter.total)


def random_starts(state: SearchState, config: SearchConfig, n: int) -> list[tuple[str, Atoms]]:
    """``n`` fresh random symmetric structures as (crystal system, atoms), each of a random crystal system, drawn
    from the run's seed and the final round (so a resumed run draws the same)."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 30_000 + state.final_round]))
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
    """The picks pre-relaxed on the potential and ranked by one oracle single point each (counted, as many
    as the budget leaves room for with one relaxation step after them; failed ones are dropped), each
    ranked pick's single point, and all the single points."""
    if config.total_budget is not None:
        batch = batch[:max(0, config.total_budget - state.counter.total - 2)]
    prepared = list(executor.map(_pre_relaxed, [a for _, a in batch], repeat(state.potential), repeat(config)))
    results = list(executor.map(single_point, prepared, repeat(oracle), [{"system": s} for s, _ in batch]))
    for result in results:
        record_oracle(state, result, f"final round {state.final_round + 1} screening")
    ranked = sorted((r.energy_per_atom, k) for k, r in enumerate(results) if not r.failed)
    return [(batch[k][0], prepared[k]) for _, k in ranked], [results[k] for _, k in ranked], results


def _pre_relaxed(atoms: Atoms, potential, config: SearchConfig) -> Atoms:
    """``atoms`` relaxed on the potential (free) when that keeps atoms apart, else as given."""
    if potential is not None and config.final_potential_relax_steps > 0:
        scored = make_scorer(potential, config.final_potential_relax_steps, config.fmax)(atoms)
        if scored is not None and not too_close(scored[0], config.ga.min_distance_factor):
            return scored[0]
    return atoms


def _relax_steps_within_budget(n_picks: int, state: SearchState, config: SearchConfig) -> list[int]:
    """Oracle relaxation steps for each pick, lowest first: ``final_relax_steps``, cut so that the round
    cannot spend more than what ``total_budget`` leaves (a relaxation of s steps costs at most s + 1 calls);
    picks that do not fit get none."""
    if config.total_budget is None:
        return [config.final_relax_steps] * n_picks
    left, steps = config.total_budget - state.counter.total, []
    for _ in range(n_picks):
        cap = min(config.final_relax_steps, left - 1)
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
    """Drop recommendations that repeat one from another crystal system (the oracle would relax the
    same structure twice); compared within 5 meV/atom of predicted energy."""
    kept: list[tuple[str, Atoms]] = []
    for system, atoms in batch:
        e = atoms.info.get("e_pred", 0.0)
        if not is_duplicate(atoms, e, [a for _, a in kept], [a.info.get("e_pred", 0.0) for _, a in kept],
                            energy_window=0.005):
            kept.append((system, atoms))
    return kept


class Relaxation(NamedTuple):
    """One oracle relaxation of a final round: the crystal system it is tagged with, the structure, the potential
    that pre-relaxes it (None: none) and the oracle's single point of it to start from (None: a new call)."""

    system: str
    atoms: Atoms
    potential: NNPotential | None = None
    start: OracleResult | None = None


def _relax_job(job: Relaxation, oracle: CalculatorFactory, config: SearchConfig,
               steps: int | None = None) -> OracleResult:
    """Pre-relax with the job's potential (free), then relax with the oracle (counted; ``steps``, default
    ``config.final_relax_steps``), tagged by the job's crystal system."""
    atoms = _pre_relaxed(job.atoms, job.potential, config)
    return relax(atoms, oracle, fmax=config.fmax, steps=config.final_relax_steps if steps is None else steps,
                 tag={"system": job.system},
                 keep_every=config.relaxation_frames_every if config.final_rounds > 1 else 0, start=job.start)


def run_search(config: SearchConfig, oracle: CalculatorFactory = chgnet_calculator,
               executor: Executor | None = None, state_path: Path | str | None = None,
               stop_after_cycles: int | None = None,
               stop_when: Callable[[SearchState], bool] | None = None) -> SearchState:
    """Run (or resume) a search; ``stop_after_cycles`` stops early, as a kill would (for tests), and so does
    ``stop_when`` once it returns True after a cycle or round (a benchmark that knows the answer stops
    there: the trajectory up to then is the same)."""
    config.counts()  # fail fast on bad formula / atom count
    path = Path(state_path) if state_path is not None else None
    if path is not None and path.exists():
        state = load_state(path)
        log.info("resuming from %s at cycle %d", path, state.cycle)
    else:
        state = init_state(config)
        if path is not None:
            save_state(state, path)
    own = executor is None
    executor = executor or ThreadPoolExecutor(max_workers=min(len(config.crystal_systems), os.cpu_count() or 1))
    try:
        done_here = 0
        while not state.finished:
            if stop_after_cycles is not None and done_here >= stop_after_cycles:
                break
            if stop_when is not None and stop_when(state):
                break
            left = _budget_left(state, config)
            if state.converged or state.cycle >= config.max_cycles or left == 0:
                run_final(state, config, oracle, executor)
            else:
                run_cycle(state, config, oracle, executor)
            done_here += 1
            if path is not None:
                save_state(state, path)
    finally:
        if own:
            executor.shutdown()
    return state
