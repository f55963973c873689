"""Search settings per profile: 'quick' (Si2, CPU, minutes), 'medium' (Si8, CPU, about an hour for
five seeds of all three methods) and 'full' (the paper's scale)."""

from __future__ import annotations

from dataclasses import dataclass

from gapkit.search.active import SearchConfig
from gapkit.search.ga import GASettings
from gapkit.search.potential import OPTIMIZERS, TrainSettings

# (formula, atoms per cell) searched in each profile; the paper's Table 2 cells in 'full'.
SYSTEMS = {"quick": [("Si", 2)], "medium": [("Si", 8)], "full": [("Si", 8), ("TiO2", 12), ("CaTiO3", 5)]}


def search_config(profile: str, formula: str = "Si", n_atoms: int = 2, seed: int = 0) -> SearchConfig:
    """The SearchConfig the chapter uses for ``profile``."""
    # potential_relax_steps: every GA child is locally relaxed on the learned potential before it is
    # ranked (as in every GA structure search); with 5 steps or none the quick Si search never reached
    # diamond, with 20 it does (measured: see the chapter and benchmarks/search_oracle_calls.py).
    # final_relax_steps: 30 oracle BFGS steps stopped several 2-atom relaxations short of diamond
    # (seed 1 reached it in 49); random search and ase-ga get the same cap.
    if profile == "quick":  # few oracle calls: every one costs ~0.1 s of CHGNet on a laptop CPU
        return SearchConfig(
            formula=formula, n_atoms=n_atoms, seed=seed,
            ga=GASettings(population_size=12, n_children=6, n_immigrants=2), ga_generations=3, final_generations=5,
            recommend_per_system=2, final_per_system=2, max_cycles=3, min_training_size=60,
            target_rmse=0.08, final_relax_steps=60, potential_relax_steps=20,
            train=TrainSettings(max_epochs=1000, patience=150))
    if profile == "medium":  # the paper's 8-atom Si cell at a CPU-sized budget (benchmarks/search_oracle_calls.py)
        return SearchConfig(
            formula=formula, n_atoms=n_atoms, seed=seed,
            ga=GASettings(population_size=24, n_children=8, n_immigrants=2), ga_generations=5,
            final_generations=20, recommend_per_system=4, final_per_system=2, max_cycles=6,
            min_training_size=150, target_rmse=0.08, final_relax_steps=100, potential_relax_steps=20,
            train=TrainSettings(max_epochs=2000, patience=200))
    if profile == "full":  # the paper's numbers (GA 64/16/0.05, 16 and 10 per system, 20 cycles)
        return SearchConfig(
            formula=formula, n_atoms=n_atoms, seed=seed, ga=GASettings(n_immigrants=4), ga_generations=30,
            final_generations=300, recommend_per_system=16, final_per_system=10, max_cycles=20,
            min_training_size=112 * 5, target_rmse=0.08, final_relax_steps=100, potential_relax_steps=10,
            train=TrainSettings(max_epochs=5000, patience=300))
    raise ValueError(f"Unknown profile {profile!r}; use 'quick', 'medium' or 'full'.")


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
