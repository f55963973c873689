"""Search settings per profile: 'quick' (small cells, CPU, minutes), 'medium' (Si8, CPU, about an hour for
five seeds of all three methods) and 'full' (the paper's scale); and the size of the training study."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gapkit.search.config import FinalStage, LearningLoop, SearchConfig
from gapkit.search.ga import GASettings
from gapkit.search.potential import OPTIMIZERS, TrainSettings

# (formula, atoms per cell) searched in each profile; the paper's Table 2 cells in 'full'.
SYSTEMS = {"quick": [("Si", 2)], "medium": [("Si", 8)], "full": [("Si", 8), ("TiO2", 12), ("CaTiO3", 5)]}

# The recommended final stage, the best measured (benchmarks/RESULTS.md, the appendix): 40 rounds that learn from
# every 5th frame of the oracle's relaxations, picks screened by one oracle single point each, 3 relaxed per
# round, one of them a fresh random start after a round with no lower energy; stopped by the budget, 40 rounds
# without a lower energy, or the target.
RECOMMENDED_FINAL = {"rounds": 40, "patience": 40, "frames_every": 5, "screen_picks": True, "relax_per_round": 3,
                     "stale_random_relaxations": 1}
# the paper's final stage: one round in which the oracle relaxes every pick (``search_config(..., final=PAPER_FINAL)``)
PAPER_FINAL = {"rounds": 1, "patience": None, "frames_every": 0, "screen_picks": False, "relax_per_round": None,
               "stale_random_relaxations": 0}
# oracle calls of the whole search; the recorded quick and medium runs spent at most this
BUDGETS = {"quick": 1000, "medium": 1000, "full": 5000}


def search_config(profile: str, formula: str = "Si", n_atoms: int = 2, seed: int = 0, **changes: Any) -> SearchConfig:
    """The recommended search at ``profile``'s scale; ``changes`` replace settings as :meth:`SearchConfig.replace`
    takes them (e.g. ``target=Target(...)``, ``budget=300``, ``final=PAPER_FINAL``)."""
    # potential_relax_steps: every GA child is locally relaxed on the learned potential before it is ranked; with
    # 5 steps or none the quick Si search never reached diamond, with 20 it does (the chapter, the benchmark).
    # final relax_steps: 30 oracle BFGS steps stopped several 2-atom relaxations short of diamond (seed 1 reached
    # it in 49); random search and ase-ga get the same cap.
    if profile == "quick":  # few oracle calls: every one costs ~0.1 s of CHGNet on a laptop CPU
        ga = GASettings(population_size=12, n_children=6, n_immigrants=2, potential_relax_steps=20)
        learning = LearningLoop(generations=3, picks_per_system=2, max_cycles=3, min_training_size=60)
        final = FinalStage(generations=5, picks_per_system=2, relax_steps=60, **RECOMMENDED_FINAL)
        train = TrainSettings(max_epochs=1000, patience=150)
    elif profile == "medium":  # the paper's 8-atom Si cell at a CPU-sized budget
        ga = GASettings(population_size=24, n_children=8, n_immigrants=2, potential_relax_steps=20)
        learning = LearningLoop(generations=5, picks_per_system=4, max_cycles=6, min_training_size=150)
        final = FinalStage(generations=20, picks_per_system=2, relax_steps=100, **RECOMMENDED_FINAL)
        train = TrainSettings(max_epochs=2000, patience=200)
    elif profile == "full":  # the paper's numbers (GA 64/16/0.05, 16 and 10 per system, 20 cycles); the final
        # stage's settings were measured at the quick and medium scale only
        ga = GASettings(n_immigrants=4, potential_relax_steps=10)
        learning = LearningLoop(generations=30, picks_per_system=16, max_cycles=20, min_training_size=112 * 5)
        final = FinalStage(generations=300, picks_per_system=10, relax_steps=100, **RECOMMENDED_FINAL)
        train = TrainSettings(max_epochs=5000, patience=300)
    else:
        raise ValueError(f"Unknown profile {profile!r}; use 'quick', 'medium' or 'full'.")
    config = SearchConfig(formula=formula, n_atoms=n_atoms, seed=seed, ga=ga, learning=learning, final=final,
                          train=train, budget=BUDGETS[profile])
    return config.replace(**changes) if changes else config


@dataclass(frozen=True)
class TrainingStudy:
    """Size of the reduced activation/optimizer study (gapkit.search.training_study) in one profile."""

    max_atoms: int               # the paper's Ti:O compositions up to this cell size
    per_composition: int         # random cells labelled per composition
    activations: tuple[str, ...]
    optimizers: tuple[str, ...]
    batch_sizes: tuple[int | None, ...]  # None = full batch
    learning_rates: tuple[float, ...]
    seeds: tuple[int, ...]       # activation and descriptor comparisons (each seed: its own split and init)
    grid_seeds: tuple[int, ...]  # the optimizer x batch size x learning rate grid
    train: TrainSettings


ALL_OPTIMIZERS = tuple(sorted(OPTIMIZERS))  # the paper's eight


def training_study(profile: str) -> TrainingStudy:
    """The study's size for ``profile``: 'quick' is 6 compositions x 20 cells, 3 seeds, and a grid of 2 batch sizes x 3 rates on 1 seed;
    'full' is the paper's 15 compositions, 5 batch sizes x 5 rates and 5 seeds (about 400 cells each)."""
    activations = ("sigmoid", "tanh", "relu", "elu", "prelu")
    if profile in ("quick", "medium"):
        return TrainingStudy(9, 20, activations, ALL_OPTIMIZERS, (8, None), (1e-3, 1e-2, 1e-1), (0, 1, 2), (0,),
                             TrainSettings(lr=1e-3, batch_size=8, max_epochs=150, patience=30))
    if profile == "full":
        return TrainingStudy(24, 400, activations, ALL_OPTIMIZERS, (1, 8, 16, 32, None),
                             (1e-5, 1e-4, 1e-3, 1e-2, 1e-1), (0, 1, 2, 3, 4), (0, 1, 2, 3, 4),
                             TrainSettings(lr=1e-4, batch_size=32, max_epochs=2000, patience=100))
    raise ValueError(f"Unknown profile {profile!r}; use 'quick', 'medium' or 'full'.")
