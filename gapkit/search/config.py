"""What defines a search: one frozen, validated :class:`SearchConfig` made of four named parts.

* :class:`~gapkit.search.ga.GASettings` — the genetic algorithm (population, children, mutation);
* :class:`LearningLoop` — the active-learning cycles (GA on the potential -> oracle single points -> refit);
* :class:`FinalStage` — the rounds after the loop, in which the oracle relaxes the GA's best picks;
* :class:`~gapkit.search.potential.TrainSettings` — how the potential is fitted;

plus what is searched (formula, cell size, crystal systems, seed), ONE ``budget`` of oracle calls bounding the
whole search, and an optional :class:`Target` that stops it once reached. Build one with
:func:`gapkit.search.profiles.search_config`, which gives the recommended method at a profile's scale.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from gapkit.search.ga import GASettings
from gapkit.search.oracle import OracleResult
from gapkit.search.population import CRYSTAL_SYSTEMS, stoichiometry
from gapkit.search.potential import TrainSettings


class ConfigError(ValueError):
    """A search setting that is out of range or that would be silently ignored by the others."""


@dataclass(frozen=True)
class LearningLoop:
    """The active-learning cycles; defaults follow the paper where it gives a number."""

    generations: int = 30             # paper: 30 inner GA iterations per cycle
    picks_per_system: int = 16        # paper: 16 per crystal system, 112 per cycle
    max_cycles: int = 20              # paper: 20 cycles
    min_training_size: int = 112 * 20  # the loop may converge only with this many labelled structures
    target_rmse: float = 0.08         # eV/atom: the validation RMSE at which the potential counts as converged
    # eV/atom above the best oracle energy: labels above it (of any phase) are not trained on; such near-collisions
    # would dominate a small network's loss while saying nothing about the low-energy region searched
    train_energy_window: float = 2.0

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings out of range."""
        _at_least(self, 1, "generations", "picks_per_system", "max_cycles")
        _at_least(self, 0, "min_training_size")
        if self.target_rmse <= 0 or self.train_energy_window <= 0:
            raise ConfigError("LearningLoop.target_rmse and train_energy_window must be positive (eV/atom).")


@dataclass(frozen=True)
class FinalStage:
    """The rounds after the learning loop: the GA searches on the potential alone and the oracle relaxes its picks.

    The paper has one round (``rounds=1``). More rounds learn from the oracle's relaxations (every
    ``frames_every``-th step, with the energy, forces and stress it computed anyway), refit and search again,
    until ``rounds``, ``patience`` rounds without a lower oracle energy, or the search's budget.
    """

    generations: int = 1500           # paper: 1,500 GA generations after convergence
    picks_per_system: int = 10        # paper: 10 per crystal system ranked by the oracle
    relax_steps: int = 100            # oracle BFGS steps per relaxation
    potential_relax_steps: int = 100  # free pre-relaxation on the potential before the oracle's
    rounds: int = 1
    patience: int | None = None       # stop after this many rounds without a lower oracle energy (None: never)
    frames_every: int = 0             # learn from every k-th relaxation step (0: nothing, the paper); needs rounds > 1
    # not in the paper: one oracle single point of each pick (pre-relaxed on the potential) ranks the picks, which
    # the oracle then relaxes lowest oracle energy first instead of lowest predicted
    screen_picks: bool = False
    # not in the paper: relax only this many picks per round (the first in the order above), so the potential is
    # refitted after fewer oracle relaxations; None relaxes every pick
    relax_per_round: int | None = None
    # not in the paper: in a round after one without a lower oracle energy, this many relaxations start from fresh
    # random symmetric structures instead of GA picks. A potential fitted only around one wrong basin ranks every
    # GA pick into it (8-atom Si, seed 3: diamond 0.47 eV/atom above that basin); random starts label other regions
    # and their minima join the populations as parents. Needs rounds > 1.
    stale_random_relaxations: int = 0

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings out of range or ones the others would ignore."""
        _at_least(self, 1, "generations", "picks_per_system", "rounds")
        _at_least(self, 0, "relax_steps", "potential_relax_steps", "frames_every", "stale_random_relaxations")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"FinalStage.patience must be at least 1 (or None), got {self.patience}.")
        if self.relax_per_round is not None and self.relax_per_round < max(1, self.stale_random_relaxations):
            raise ConfigError(f"FinalStage.relax_per_round ({self.relax_per_round}) must be at least 1 and at least "
                              f"stale_random_relaxations ({self.stale_random_relaxations}); None relaxes every pick.")
        if self.rounds == 1:  # these act between rounds: with one round they would be silently ignored
            for name in ("frames_every", "stale_random_relaxations"):
                if getattr(self, name):
                    raise ConfigError(f"FinalStage.{name}={getattr(self, name)} acts between final rounds; "
                                      "set rounds > 1 or leave it 0.")
            if self.patience is not None:
                raise ConfigError("FinalStage.patience counts rounds without improvement; set rounds > 1 or None.")


@dataclass(frozen=True, eq=False)
class Target:
    """What counts as found: a reference ``structure`` (pymatgen's StructureMatcher decides) and/or an energy
    per atom (eV/atom) reached within ``tolerance``; a search given a target stops once it is reached.

    With both, the search stops once it matched the structure and holds a cell at most ``tolerance`` above the
    energy; a match that is a single point (or a relaxation cut at its step cap) is relaxed once by the oracle to
    see whether it gets there (``relax_match``), its calls reported apart in ``SearchState.check_calls``.
    """

    structure: Atoms | None = None
    energy_per_atom: float | None = None
    tolerance: float = 0.005
    relax_match: bool = True

    def __post_init__(self) -> None:
        if self.structure is None and self.energy_per_atom is None:
            raise ConfigError("A Target needs a reference structure, an energy per atom, or both.")
        if self.tolerance < 0:
            raise ConfigError(f"Target.tolerance must be 0 or more eV/atom, got {self.tolerance}.")

    @classmethod
    def from_reference(cls, reference: "OracleResult | Atoms", **kwargs) -> "Target":
        """A target from an oracle-relaxed reference (an ``OracleResult``: structure and energy) or bare Atoms."""
        if isinstance(reference, Atoms):
            return cls(structure=reference, **kwargs)
        return cls(structure=reference.atoms, energy_per_atom=reference.energy_per_atom, **kwargs)

    def key(self) -> str:
        """A text that identifies the target (Atoms' repr omits positions), for the configuration digest."""
        parts = [f"tolerance={self.tolerance!r}", f"relax_match={self.relax_match!r}",
                 f"energy_per_atom={self.energy_per_atom!r}"]
        if self.structure is not None:
            s = self.structure
            parts.append(f"numbers={s.numbers.tolist()}, positions={np.round(s.positions, 6).tolist()}, "
                         f"cell={np.round(s.cell.array, 6).tolist()}")
        return f"Target({', '.join(parts)})"


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a search: what is searched, its four parts, one oracle budget and a target."""

    formula: str = "Si"
    n_atoms: int = 8
    seed: int = 0
    crystal_systems: tuple[str, ...] = tuple(CRYSTAL_SYSTEMS)
    ga: GASettings = field(default_factory=GASettings)
    learning: LearningLoop = field(default_factory=LearningLoop)
    final: FinalStage = field(default_factory=FinalStage)
    train: TrainSettings = field(default_factory=TrainSettings)
    budget: int | None = None         # oracle calls of the whole search, learning loop and final stage (None: no cap)
    fmax: float = 0.05                # eV/Å: force at which relaxations (potential and oracle) stop
    skip_known: bool = True           # never send the oracle a structure it has already labelled
    target: Target | None = None      # stop once this is found (None: run until the budget or the stage's end)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` (or the parser's ValueError for the formula) for an invalid search."""
        self.counts()
        unknown = set(self.crystal_systems) - set(CRYSTAL_SYSTEMS)
        if unknown or not self.crystal_systems:
            raise ConfigError(f"Unknown or no crystal systems {sorted(unknown)}; use some of {list(CRYSTAL_SYSTEMS)}.")
        if self.budget is not None and self.budget < 2:
            raise ConfigError(f"budget must be at least 2 oracle calls (or None), got {self.budget}.")
        if self.fmax <= 0:
            raise ConfigError(f"fmax must be positive (eV/Å), got {self.fmax}.")
        self.learning.validate()
        self.final.validate()

    def counts(self) -> dict[str, int]:
        """Atoms per element (validates formula and atom count)."""
        return stoichiometry(self.formula, self.n_atoms)

    def replace(self, **changes) -> "SearchConfig":
        """A copy with top-level fields changed, and parts' fields given as ``learning={...}`` etc. (validated)."""
        for part in ("ga", "learning", "final", "train"):
            if isinstance(changes.get(part), dict):
                changes[part] = dataclasses.replace(getattr(self, part), **changes[part])
        return dataclasses.replace(self, **changes)

    def digest(self) -> str:
        """A short hash of every setting (the target by its content): what a state file is keyed by."""
        target = "None" if self.target is None else self.target.key()
        text = repr(dataclasses.replace(self, target=None)) + target
        return hashlib.sha1(text.encode()).hexdigest()[:12]


def _at_least(part, low: int, *names: str) -> None:
    """Raise :class:`ConfigError` for the first field of ``names`` below ``low``."""
    for name in names:
        value = getattr(part, name)
        if value < low:
            raise ConfigError(f"{type(part).__name__}.{name} must be at least {low}, got {value}.")
