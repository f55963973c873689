"""Genetic-algorithm operators (small, testable functions) and the GA loop.

Every operator keeps the atom count and the stoichiometry; children whose atoms come closer than
the minimum distance are rejected before anything scores them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np
from ase import Atoms
from ase.build import niggli_reduce
from ase.cell import Cell

from gapkit.search.population import is_duplicate, too_close

log = logging.getLogger(__name__)

# A scorer returns (possibly relaxed) atoms and the energy per atom (eV/atom), or None if it failed.
Scorer = Callable[[Atoms], "tuple[Atoms, float] | None"]


@dataclass(frozen=True)
class GASettings:
    """GA settings; defaults are the paper's (population 64, top third parents, 16 children, p_mut 0.05)."""

    population_size: int = 64
    parent_fraction: float = 1 / 3
    n_children: int = 16
    mutation_prob: float = 0.05
    min_distance_factor: float = 0.6
    max_child_tries: int = 50
    n_immigrants: int = 0  # fresh random structures per generation (besides the children), for diversity
    # BFGS steps on the learned potential for every structure before it is ranked (0 = none; as in every GA
    # structure search, a child is judged by its local minimum, not by where crossover left its atoms)
    potential_relax_steps: int = 0


def select_parents(energies: np.ndarray, fraction: float = 1 / 3) -> np.ndarray:
    """Indices of the lowest-energy ``fraction`` of the population (at least two)."""
    n = max(2, int(np.ceil(fraction * len(energies))))
    return np.argsort(energies, kind="stable")[:n]


def cut_and_splice(a: Atoms, b: Atoms, rng: np.random.Generator) -> Atoms:
    """Child from a random plane cut of a's and b's fractional coordinates, cell = weighted average.

    Both parents are first Niggli-reduced and the cell is averaged as lattice parameters (lengths,
    angles), then scaled to the averaged volume: averaging raw cell matrices of differently
    oriented cells can collapse the volume. For each element the child takes, from both parents' atoms of that element, the ones lying
    deepest on their own parent's side of the plane, so each element's count is kept exactly.
    """
    if sorted(a.numbers.tolist()) != sorted(b.numbers.tolist()):
        raise ValueError("Parents must have the same composition for crossover.")
    a, b = a.copy(), b.copy()
    niggli_reduce(a)
    niggli_reduce(b)
    axis = int(rng.integers(3))
    cut = float(rng.uniform(0.2, 0.8))
    # random shifts of each parent make every plane position reachable
    fa = (a.get_scaled_positions() + rng.uniform(size=3)) % 1.0
    fb = (b.get_scaled_positions() + rng.uniform(size=3)) % 1.0
    new_frac, new_numbers = [], []
    for z in np.unique(a.numbers):
        ia, ib = np.where(a.numbers == z)[0], np.where(b.numbers == z)[0]
        score = np.concatenate([cut - fa[ia, axis], fb[ib, axis] - cut])  # >0: on its own side
        frac = np.concatenate([fa[ia], fb[ib]])
        take = np.argsort(-score, kind="stable")[: len(ia)]
        new_frac.append(frac[take])
        new_numbers += [int(z)] * len(ia)
    w = float(rng.uniform(0.3, 0.7))
    cell = Cell.fromcellpar(w * a.cell.cellpar() + (1 - w) * b.cell.cellpar()).array
    volume = abs(np.linalg.det(cell))
    if not np.isfinite(volume) or volume < 1e-3:  # averaged angles can be geometrically impossible
        cell = a.cell.array.copy() if rng.uniform() < w else b.cell.array.copy()
        volume = abs(np.linalg.det(cell))
    target = w * a.get_volume() + (1 - w) * b.get_volume()
    cell *= (target / volume) ** (1 / 3)
    child = Atoms(numbers=new_numbers, cell=cell, pbc=True)
    child.set_scaled_positions(np.concatenate(new_frac))
    return child


def mutate_displace(atoms: Atoms, rng: np.random.Generator, sigma: float = 0.3) -> Atoms:
    """Move every atom by a Gaussian displacement of ``sigma`` Å."""
    out = atoms.copy()
    out.positions += rng.normal(scale=sigma, size=out.positions.shape)
    out.wrap()
    return out


def mutate_strain(atoms: Atoms, rng: np.random.Generator, sigma: float = 0.1) -> Atoms:
    """Apply a random symmetric strain of size ``sigma`` to the cell (atoms follow)."""
    out = atoms.copy()
    eps = rng.normal(scale=sigma, size=(3, 3))
    eps = 0.5 * (eps + eps.T)
    out.set_cell(out.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    return out


def mutate_swap(atoms: Atoms, rng: np.random.Generator) -> Atoms:
    """Swap the positions of two atoms of different elements (identity for one element)."""
    out = atoms.copy()
    if len(set(out.numbers.tolist())) < 2:
        return out
    i = int(rng.integers(len(out)))
    unlike = np.where(out.numbers != out.numbers[i])[0]
    j = int(rng.choice(unlike))
    out.numbers[[i, j]] = out.numbers[[j, i]]
    return out


def mutate(atoms: Atoms, rng: np.random.Generator) -> Atoms:
    """Apply one mutation chosen at random (displacement, strain, or swap where elements differ)."""
    ops = [mutate_displace, mutate_strain]
    if len(set(atoms.numbers.tolist())) > 1:
        ops.append(mutate_swap)
    return ops[int(rng.integers(len(ops)))](atoms, rng)


class PopulationCollapsedError(RuntimeError):
    """The potential could score fewer than two structures, so no GA generation can run."""


def make_child(parents: list[Atoms], rng: np.random.Generator, settings: GASettings) -> Atoms | None:
    """Crossover of two random parents, mutation with probability p_mut, min-distance check."""
    for _ in range(settings.max_child_tries):
        i, j = rng.choice(len(parents), size=2, replace=False)
        child = cut_and_splice(parents[i], parents[j], rng)
        if rng.uniform() < settings.mutation_prob:
            child = mutate(child, rng)
        if child.get_volume() > 1.0 and not too_close(child, settings.min_distance_factor):
            child.info.update(origin="crossover")
            return child
    return None


def run_ga(population: list[Atoms], score: Scorer, rng: np.random.Generator, n_generations: int,
           settings: GASettings | None = None,
           new_random: Callable[[np.random.Generator], Atoms] | None = None) -> tuple[list[Atoms], np.ndarray]:
    """Evolve ``population`` for ``n_generations``; return it sorted by energy per atom.

    ``new_random`` makes a fresh random structure; with ``settings.n_immigrants`` > 0 that many join
    as candidates each generation, so the population cannot collapse into one basin.
    """
    settings = settings or GASettings()
    pop, energies, dupes = [], [], []
    for atoms in population:  # (re)score: the potential may have changed since last time
        scored = score(atoms)
        if scored is None or not np.isfinite(scored[1]):
            continue
        # relaxation on a new potential often sends several members into the same minimum
        if is_duplicate(scored[0], scored[1], pop, energies, energy_window=0.005):
            dupes.append(scored)
            continue
        pop.append(scored[0])
        energies.append(scored[1])
    for atoms, e in dupes[: max(0, 2 - len(pop))]:  # keep two parents even if all collapsed
        pop.append(atoms)
        energies.append(e)
    # a poor early potential can collapse almost every member during its relaxation: refill from
    # fresh random structures before giving up (only reached where fewer than two members survived)
    tries = settings.population_size if new_random is not None else 0
    while len(pop) < 2 and tries > 0:
        tries -= 1
        fresh = new_random(rng)
        scored = score(fresh) if fresh is not None else None
        if scored is not None and np.isfinite(scored[1]):
            pop.append(scored[0])
            energies.append(scored[1])
    if len(pop) < 2:
        raise PopulationCollapsedError(
            f"Fewer than two of {len(population)} structures (and {settings.population_size if new_random else 0} "
            "fresh random ones) could be scored by the potential.")
    for _ in range(n_generations):
        parents = [pop[k] for k in select_parents(np.asarray(energies), settings.parent_fraction)]
        n_new = settings.n_immigrants if new_random is not None else 0
        for k in range(settings.n_children + n_new):
            child = make_child(parents, rng, settings) if k < settings.n_children else new_random(rng)
            if child is None:
                continue
            scored = score(child)
            if scored is None or not np.isfinite(scored[1]) or too_close(scored[0], settings.min_distance_factor):
                continue
            if is_duplicate(scored[0], scored[1], pop, energies, energy_window=0.005):
                continue
            pop.append(scored[0])
            energies.append(scored[1])
        order = np.argsort(energies, kind="stable")[: settings.population_size]
        pop = [pop[k] for k in order]
        energies = [energies[k] for k in order]
    return pop, np.asarray(energies)
