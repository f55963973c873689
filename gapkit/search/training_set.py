"""The potential's training set: which oracle labels join it (the paper's filter), and the refit on it."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from gapkit.search.config import SearchConfig
from gapkit.search.oracle import OracleResult
from gapkit.search.population import is_duplicate
from gapkit.search.potential import fit_potential
from gapkit.search.state import LabelledStructure, SearchState


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


def accept_for_training(state: SearchState, result: OracleResult, config: SearchConfig) -> bool:
    """Whether a labelled structure joins: not if it failed, lies more than ``train_energy_window`` eV/atom above
    the best structure, duplicates the set, or the potential already knew it (the paper: error below min_loss)."""
    if result.failed:
        return False
    atoms, e_atom = result.atoms, result.energy_per_atom
    if _too_high(state, e_atom, config.learning.train_energy_window):
        return False
    pred = atoms.info.get("e_pred")
    # paper: drop if |E_pred - E_oracle| < min_loss x n_atoms (total energies, as it compares them)
    if (state.min_loss is not None and pred is not None
            and abs(pred - e_atom) * len(atoms) < state.min_loss * len(atoms)):
        state.dropped["known"] += 1
        return False
    pool_e = [r.energy_per_atom for r in state.training]
    return not _already_trained(state, atoms, e_atom, pool_e)


def learn_from_single_point(state: SearchState, result: OracleResult, config: SearchConfig) -> bool:
    """Add an oracle single point to the training set if :func:`accept_for_training` keeps it; say whether it did."""
    if not accept_for_training(state, result, config):
        return False
    state.training.append(LabelledStructure(result.atoms, float(result.energy_ev), result.forces, result.stress))
    return True


def learn_from_relaxations(state: SearchState, results: list[OracleResult], config: SearchConfig) -> int:
    """Add the kept frames of oracle relaxations to the training set; return how many joined.

    Frames within the energy window and not duplicating the set join; the paper's "already known" filter does
    not apply (nothing predicted them).
    """
    added = 0
    pool_e = [r.energy_per_atom for r in state.training]
    for result in results:
        for frame in result.frames:
            e_atom = frame.energy_ev / len(frame.atoms)
            if (_too_high(state, e_atom, config.learning.train_energy_window)
                    or _already_trained(state, frame.atoms, e_atom, pool_e)):
                continue
            pool_e.append(e_atom)
            state.training.append(LabelledStructure(frame.atoms, float(frame.energy_ev), frame.forces, frame.stress))
            added += 1
    return added


def retrain(state: SearchState, config: SearchConfig) -> None:
    """Refit the potential on the whole training set (early stopping) and log its RMSE."""
    if len(state.training) < 4:
        return
    species = sorted({atomic_numbers[el] for el in config.counts()})
    seed = int(np.random.SeedSequence([config.seed, state.cycle]).generate_state(1)[0])
    # the training set only grows: the same size, seed and settings as the last fit mean the same data, and the
    # fit (deterministic) would return the same potential; final rounds that added no label keep it
    key = (seed, len(state.training), tuple(species), config.train)
    if state.potential is None or getattr(state.potential, "fit_key", None) != key:
        pot, hist = fit_potential(state.train_atoms, state.train_energies, species, config.train, seed=seed,
                                  forces=[r.forces for r in state.training],
                                  stresses=[r.stress for r in state.training])
        pot.fit_key = key
        state.potential, state.min_loss, state.val_rmse = pot, hist.min_loss, hist.best_val_rmse
    state.rmse_history.append(state.val_rmse)
    state.train_size_history.append(len(state.training))
