"""The spinel -> perovskite transfer study of Li et al. (2023): source model, paired CV, learning curve, screen.

Every model is scored on the same seeded repeated K-fold splits of the 855 perovskites
(``gapkit.models.classical.outer_splits``), so per-fold MAEs pair up and ``classical.paired_test``
applies. Neural models train with the shared trainer through ``gapkit.train.tabular``; transfer copies
the spinel model (``gapkit.train.transfer``) and fine-tunes all layers or only the last ones; the
perovskite-only network is re-initialised (seeded per fold) in every fold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from gapkit.models.classical import CVConfig, NestedCVResult, make_pipeline, outer_splits
from gapkit.models.mlp import MLPConfig, MLPRegressor, last_layers
from gapkit.train.tabular import TabularFitConfig, fit_task, make_task, predict_task
from gapkit.train.tasks import BandGapTask
from gapkit.train.transfer import transferred_copy

logger = logging.getLogger(__name__)

NEURAL = ("transfer (all layers)", "transfer (last layers)", "perovskite only", "source model, no fine-tuning")


@dataclass(frozen=True)
class CEStudyConfig:
    """Sizes and schedules of the whole study (one per notebook profile)."""

    hidden: tuple[int, ...] = (256, 128, 64)
    dropout: float = 0.0
    source_fit: TabularFitConfig = field(default_factory=lambda: TabularFitConfig(max_epochs=150, batch_size=128,
                                                                                  lr_max=3e-3, patience=20))
    scratch_fit: TabularFitConfig = field(default_factory=lambda: TabularFitConfig(max_epochs=300, batch_size=64,
                                                                                   lr_max=3e-3, patience=40))
    finetune_fit: TabularFitConfig = field(default_factory=lambda: TabularFitConfig(max_epochs=200, batch_size=64,
                                                                                    lr_max=1e-3, patience=30))
    n_last_layers: int = 2  # "last layers only": the last hidden block and the output head
    n_folds: int = 10
    n_repeats: int = 3
    tree_params: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "et": {"n_estimators": 300, "max_features": 0.33},
        "rf": {"n_estimators": 300, "max_features": 0.33},
        "gbr": {"n_estimators": 500, "learning_rate": 0.05, "max_depth": 4, "subsample": 0.8},
    })
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_folds < 2 or self.n_repeats < 1:
            raise ValueError(f"need n_folds >= 2 and n_repeats >= 1, got {self.n_folds}, {self.n_repeats}.")
        if not 1 <= self.n_last_layers <= len(self.hidden) + 1:
            raise ValueError(f"n_last_layers must be in 1..{len(self.hidden) + 1}, got {self.n_last_layers}.")

    @property
    def cv(self) -> CVConfig:
        """The outer-split config shared with the classical module (inner folds unused here)."""
        return CVConfig(n_outer=self.n_folds, n_repeats=self.n_repeats, seed=self.seed)


def new_network(x: np.ndarray, config: CEStudyConfig, seed: int) -> MLPRegressor:
    """A freshly (seeded) initialised MLP whose input scaling is fitted to ``x``."""
    torch.manual_seed(seed)
    model = MLPRegressor(MLPConfig(x.shape[1], config.hidden, config.dropout))
    model.set_input_scaling(torch.as_tensor(x, dtype=torch.float32))
    return model


def _with_seed(fit: TabularFitConfig, seed: int) -> TabularFitConfig:
    return TabularFitConfig(**{**fit.__dict__, "seed": seed})


def pretrain_source(xs: np.ndarray, ys: np.ndarray, config: CEStudyConfig, run_dir: Path | str) -> BandGapTask:
    """Train the source (spinel) network on all spinels (inner 10 % for early stopping)."""
    fit = _with_seed(config.source_fit, config.seed)
    task = make_task(new_network(xs, config, config.seed), ys, fit)
    return fit_task(task, xs, ys, fit, run_dir)


def fine_tuned(source: BandGapTask, x: np.ndarray, y: np.ndarray, config: CEStudyConfig, seed: int,
               run_dir: Path | str, n_last: int | None = None) -> BandGapTask:
    """Copy the source task (weights, input and target scaling) and fine-tune it on (x, y)."""
    model = source.model
    trainable = () if n_last is None else tuple(last_layers(model, n_last))
    copy = transferred_copy(model, trainable)
    fit = _with_seed(config.finetune_fit, seed)
    task = make_task(copy, y, fit, target_scale=(float(source.target_mean), float(source.target_std)))
    return fit_task(task, x, y, fit, run_dir)


def scratch(x: np.ndarray, y: np.ndarray, config: CEStudyConfig, seed: int, run_dir: Path | str) -> BandGapTask:
    """A perovskite-only network, initialised afresh from ``seed``."""
    fit = _with_seed(config.scratch_fit, seed)
    task = make_task(new_network(x, config, seed), y, fit)
    return fit_task(task, x, y, fit, run_dir)


@dataclass
class NeuralCV:
    """Paired CV results of the neural models, and each fold model's predictions on extra inputs."""

    results: dict[str, NestedCVResult]
    extra_predictions: dict[str, np.ndarray]  # model -> [n_models, n_extra] (one row per fold model)
    extra_scales: dict[str, np.ndarray]  # model -> [n_models, n_extra] Laplace scales


def cv_neural(source: BandGapTask, x: np.ndarray, y: np.ndarray, config: CEStudyConfig, run_dir: Path | str,
              models: tuple[str, ...] = NEURAL, x_extra: np.ndarray | None = None, progress: bool = True) -> NeuralCV:
    """Repeated K-fold CV of the neural models on the target data; all share the same splits."""
    splits = outer_splits(len(y), config.cv)
    fold_mae = {m: np.zeros((config.n_repeats, config.n_folds)) for m in models}
    oof = {m: np.full((config.n_repeats, len(y)), np.nan) for m in models}
    extra: dict[str, list[np.ndarray]] = {m: [] for m in models}
    scales: dict[str, list[np.ndarray]] = {m: [] for m in models}
    tests: list[list[np.ndarray]] = [[test for _, test in repeat] for repeat in splits]
    bar = tqdm(total=config.n_repeats * config.n_folds, desc="neural CV", disable=not progress)
    for r, repeat in enumerate(splits):
        for k, (train, test) in enumerate(repeat):
            seed = config.seed * 1000 + 100 * r + k
            for m in models:
                fold_dir = Path(run_dir) / f"r{r}k{k}" / m.split(" ")[0] / ("last" if "last" in m else "all")
                if m == "source model, no fine-tuning":
                    task = source
                elif m == "perovskite only":
                    task = scratch(x[train], y[train], config, seed, fold_dir)
                elif m == "transfer (last layers)":
                    task = fine_tuned(source, x[train], y[train], config, seed, fold_dir, config.n_last_layers)
                elif m == "transfer (all layers)":
                    task = fine_tuned(source, x[train], y[train], config, seed, fold_dir)
                else:
                    raise KeyError(f"unknown neural model {m!r}; choose from {NEURAL}.")
                pred, _ = predict_task(task, x[test])
                oof[m][r, test] = pred
                fold_mae[m][r, k] = float(np.abs(pred - y[test]).mean())
                if x_extra is not None:
                    p, s = predict_task(task, x_extra)
                    extra[m].append(p)
                    scales[m].append(s)
            bar.update(1)
    bar.close()
    results = {m: NestedCVResult(m, config.cv, fold_mae[m], oof[m], tests, [], y) for m in models}
    return NeuralCV(results, {m: np.array(v) for m, v in extra.items()}, {m: np.array(v) for m, v in scales.items()})


def cv_trees(x: np.ndarray, y: np.ndarray, config: CEStudyConfig, methods: tuple[str, ...] = ("et", "rf", "gbr"),
             progress: bool = True) -> dict[str, NestedCVResult]:
    """Fixed-parameter tree models on the same outer folds as ``cv_neural`` (no inner search: a thin wrapper
    over ``classical.make_pipeline`` and ``classical.outer_splits``, so results pair with the networks)."""
    splits = outer_splits(len(y), config.cv)
    out = {}
    for method in methods:
        fold_mae = np.zeros((config.n_repeats, config.n_folds))
        oof = np.full((config.n_repeats, len(y)), np.nan)
        tests = []
        for r, repeat in enumerate(tqdm(splits, desc=method, disable=not progress)):
            tests.append([])
            for k, (train, test) in enumerate(repeat):
                seed = config.seed * 1000 + 100 * r + k
                model = make_pipeline(method, seed=seed, **config.tree_params.get(method, {})).fit(x[train], y[train])
                pred = model.predict(x[test])
                oof[r, test] = pred
                fold_mae[r, k] = float(np.abs(pred - y[test]).mean())
                tests[-1].append(test)
        out[method] = NestedCVResult(method, config.cv, fold_mae, oof, tests, [], y)
    return out


def summary_table(results: dict[str, NestedCVResult]) -> pd.DataFrame:
    """Mean ± std of the per-fold MAEs (eV/atom) of each model, best first."""
    rows = [{"model": name, "mae_mean": res.mae, "mae_std": res.mae_std, "n_folds": res.fold_mae.size}
            for name, res in results.items()]
    return pd.DataFrame(rows).set_index("model").sort_values("mae_mean")


def learning_curve(source: BandGapTask, x: np.ndarray, y: np.ndarray, sizes: tuple[int, ...], config: CEStudyConfig,
                   run_dir: Path | str, test_fraction: float = 0.2, methods: tuple[str, ...] = ("transfer (all layers)",
                   "perovskite only", "et"), progress: bool = True) -> pd.DataFrame:
    """Test MAE vs number of perovskite training examples on one seeded held-out set (nested subsets)."""
    rng = np.random.default_rng(config.seed)
    perm = rng.permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, pool = perm[:n_test], perm[n_test:]
    if max(sizes) > len(pool):
        raise ValueError(f"largest size {max(sizes)} exceeds the {len(pool)} training examples available.")
    rows = []
    for n in tqdm(sizes, desc="learning curve", disable=not progress):
        train = pool[:n]  # nested: each larger set contains the smaller ones
        seed = config.seed * 1000 + n
        for m in methods:
            if m == "et":
                pred = make_pipeline("et", seed=seed, **config.tree_params["et"]).fit(x[train], y[train]).predict(x[test])
            elif m == "perovskite only":
                pred = predict_task(scratch(x[train], y[train], config, seed, Path(run_dir) / f"n{n}" / "scratch"),
                                    x[test])[0]
            elif m == "transfer (all layers)":
                pred = predict_task(fine_tuned(source, x[train], y[train], config, seed,
                                               Path(run_dir) / f"n{n}" / "transfer"), x[test])[0]
            else:
                raise KeyError(f"unknown method {m!r} for the learning curve.")
            rows.append({"n_train": n, "model": m, "mae": float(np.abs(pred - y[test]).mean())})
    return pd.DataFrame(rows)


def screen(candidates: pd.DataFrame, energy: np.ndarray, spread: np.ndarray | None = None,
           threshold: float = -1.0, n_sigma: float = 2.0, t_col: str = "tolerance_factor",
           mu_col: str = "octahedral_factor") -> pd.DataFrame:
    """The paper's screen: 0.7 < t <= 1.1, 0.45 < mu < 0.7 and E_f < threshold; with ``spread`` also the
    stricter E_f + n_sigma * spread < threshold. Adds columns and returns the table."""
    from gapkit.featurize.perovskite_factors import in_perovskite_window

    out = candidates.copy()
    out["predicted_ef_ev_per_atom"] = np.asarray(energy, float)
    out["in_window"] = in_perovskite_window(out[t_col], out[mu_col])
    out["stable"] = out["in_window"] & (out["predicted_ef_ev_per_atom"] < threshold)
    if spread is not None:
        out["ef_spread_ev_per_atom"] = np.asarray(spread, float)
        out["stable_strict"] = out["in_window"] & (out["predicted_ef_ev_per_atom"] + n_sigma * out["ef_spread_ev_per_atom"]
                                                   < threshold)
    return out
