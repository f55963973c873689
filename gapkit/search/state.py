"""The state of a search: everything a run needs to continue, picklable, saved after every cycle or round.

A state file is named by formula, cell size, seed and :meth:`SearchConfig.digest` (every setting), and holds
:data:`SCHEMA_VERSION`: a changed setting starts a new search instead of resuming the wrong one, and a state
written by another version of this module is refused with a message rather than patched field by field.
"""

from __future__ import annotations

import enum
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from gapkit.io import atomic_pickle
from gapkit.search.config import SearchConfig
from gapkit.search.oracle import OracleCounter, OracleResult
from gapkit.search.potential import NNPotential

# bump when SearchState's fields change: older state files are then refused, not patched
SCHEMA_VERSION = 2


class StateSchemaError(RuntimeError):
    """A saved state was written by another version of the search."""


class Phase(enum.Enum):
    """The part of a search whose oracle call found a structure."""

    UNTOLD = ""                        # baselines and hand-made trails
    LEARNING_CYCLE = "learning cycle"  # a single point of a learning cycle's pick
    SCREENING = "screening"            # a final round's single point of a pick, before its relaxation
    RELAXATION = "relaxation"          # a final round's oracle relaxation of a pick
    RANDOM_START = "random start relaxation"  # a final round's oracle relaxation of a fresh random structure
    RELAXED_MATCH = "relaxed match"    # a target check's relaxation of a single-point match


@dataclass
class Improvement:
    """A new lowest oracle energy: after how many oracle calls, its energy per atom (eV/atom), the structure, the
    phase whose call found it and its cycle (learning) or round (final, from 1), and whether that call was an
    oracle relaxation that converged (a minimum, not a single point or a relaxation cut at its step cap)."""

    calls: int
    energy_per_atom: float
    atoms: Atoms
    phase: Phase = Phase.UNTOLD
    step: int = 0
    relaxed: bool = False

    @property
    def label(self) -> str:
        """The phase in words as records store it, e.g. "learning cycle 3", "final round 2 screening"."""
        if self.phase in (Phase.UNTOLD, Phase.RELAXED_MATCH):
            return self.phase.value
        if self.phase is Phase.LEARNING_CYCLE:
            return f"learning cycle {self.step}"
        return f"final round {self.step} {self.phase.value}"


@dataclass
class LabelledStructure:
    """One oracle-labelled training structure: total energy (eV), forces (eV/Å) and stress (3x3, eV/Å^3) of the
    same call, each None when the oracle gives none."""

    atoms: Atoms
    energy_ev: float
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None

    @property
    def energy_per_atom(self) -> float:
        """Energy per atom (eV/atom)."""
        return self.energy_ev / len(self.atoms)


@dataclass
class SearchState:
    """Everything a run needs to continue: populations, training set, potential, counters."""

    cycle: int = 0
    populations: dict[str, list[Atoms]] = field(default_factory=dict)
    training: list[LabelledStructure] = field(default_factory=list)
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
    target_reached: bool = False      # the config's target was found (the search stopped there)
    # the target check's relaxation of a single-point match (done once; None before), and its oracle calls, which
    # the search's counter leaves out (the check watches the search, it does not steer it)
    relaxed_match: Improvement | None = None
    match_checked: bool = False
    check_calls: int = 0
    schema: int = SCHEMA_VERSION

    @property
    def best(self) -> Improvement | None:
        """The lowest-energy oracle-evaluated structure so far."""
        return self.improvements[-1] if self.improvements else None

    @property
    def found(self) -> Improvement | None:
        """What the search found: the best structure, or the target check's relaxation of its match where that
        is lower (the search stopped on it)."""
        if self.relaxed_match is not None and (self.best is None
                                               or self.relaxed_match.energy_per_atom < self.best.energy_per_atom):
            return self.relaxed_match
        return self.best

    @property
    def train_atoms(self) -> list[Atoms]:
        """The training structures (read-only view of :attr:`training`)."""
        return [r.atoms for r in self.training]

    @property
    def train_energies(self) -> list[float]:
        """The training energies (eV), in the order of :attr:`training`."""
        return [r.energy_ev for r in self.training]


def save_state(state: SearchState, path: Path | str) -> None:
    """Pickle ``state`` atomically (write a temp file, then rename), so a kill never corrupts it."""
    atomic_pickle(state, Path(path))


def load_state(path: Path | str) -> SearchState:
    """Read a state saved by :func:`save_state`; :class:`StateSchemaError` if another version wrote it."""
    with open(path, "rb") as fh:
        state = pickle.load(fh)
    if getattr(state, "schema", None) != SCHEMA_VERSION or not hasattr(state, "training"):
        raise StateSchemaError(f"{path} was saved by another version of the search (schema "
                               f"{getattr(state, 'schema', 'before 2')}, this is {SCHEMA_VERSION}); delete it to "
                               "start the search afresh.")
    return state


def state_file(directory: Path | str, config: SearchConfig) -> Path:
    """Where a search with exactly these settings keeps its state in ``directory``."""
    return Path(directory) / (f"{config.formula}{config.n_atoms}-seed{config.seed}-"
                              f"v{SCHEMA_VERSION}-{config.digest()}.pkl")
