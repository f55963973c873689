"""Transfer learning to the 175 cubic perovskites of CGCrabNet: folds, networks, baselines, learning curve.

Every model is scored on the same seeded folds: a formula-grouped K-fold (K = 5) gives each fold's test
part (20 %), and the rest is split 3:1 into train and validation, so every fold is a 6:2:2 split and every
perovskite is in exactly one test part. Per-fold MAEs therefore pair up across models, and the test
predictions of all folds together are held-out (cross-validated) predictions for all 175.

* networks: ``fine-tuned`` starts from a pretrained estimator's weights and target scaling
  (``BandGapEstimator.fine_tune``, all layers trainable, the shared trainer, batch 16, early stopping on
  the fold's validation part); ``scratch`` is the same architecture freshly initialised (seed per fold);
* classical baselines: concatenated A, B and X element vectors (Atom_DL by default), a 5-fold grid search
  on train + validation (``gapkit.models.classical.grid_search``), scored on the fold's test part.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from gapkit.data.splits import grouped_kfold, train_val_test_split
from gapkit.evaluate.metrics import regression_metrics

logger = logging.getLogger(__name__)

CLASSICAL = {"rf": "RF", "svr": "SVR", "gbr": "GBR", "krr": "KRR"}
# what every network run overrides in the pretrained estimator's parameters (the rest: its architecture)
RUN_OVERRIDES = dict(progress=False, run_dir=None, fused_edges=False, device="cpu", graph_cache=True)


@dataclass(frozen=True)
class FitSettings:
    """Training schedule of one kind of network run (the shared trainer's parameters)."""

    max_epochs: int = 150
    patience: int = 20
    batch_size: int = 16
    lr_min: float = 1e-4
    lr_max: float = 1e-2

    def params(self) -> dict[str, Any]:
        """As estimator parameters."""
        return dict(max_epochs=self.max_epochs, patience=self.patience, batch_size=self.batch_size,
                    lr_min=self.lr_min, lr_max=self.lr_max)


@dataclass(frozen=True)
class TransferStudyConfig:
    """Everything a profile of the perovskite transfer study sets (validated, frozen)."""

    n_folds: int = 5
    seed: int = 0
    finetune: FitSettings = field(default_factory=FitSettings)
    scratch: FitSettings = field(default_factory=FitSettings)
    classical: tuple[str, ...] = ("rf", "svr", "gbr", "krr")
    quick_grids: bool = False
    embedding: str = "atom_dl"
    curve_sizes: tuple[int, ...] = (15, 30, 60, 105)
    curve_folds: int = 1
    network_folds: int | None = None  # None: every fold; fewer for a quick rehearsal

    def __post_init__(self) -> None:
        if self.n_folds < 2:
            raise ValueError(f"n_folds must be >= 2, got {self.n_folds}.")
        unknown = set(self.classical) - set(CLASSICAL)
        if unknown:
            raise ValueError(f"unknown classical methods {sorted(unknown)}; choose from {sorted(CLASSICAL)}.")
        if not 1 <= self.curve_folds <= self.n_folds or any(n < 4 for n in self.curve_sizes):
            raise ValueError("curve_folds must be in 1..n_folds and every curve size >= 4.")
        if self.network_folds is not None and not 1 <= self.network_folds <= self.n_folds:
            raise ValueError(f"network_folds must be in 1..{self.n_folds} or None, got {self.network_folds}.")

    def with_(self, **changes: Any) -> TransferStudyConfig:
        """A copy with ``changes`` (validated again)."""
        return replace(self, **changes)


def fold_splits(df: pd.DataFrame, n_folds: int = 5, seed: int = 0) -> list[dict[str, pd.DataFrame]]:
    """Seeded 6:2:2 folds: grouped K-fold test parts, the rest split 3:1 train/val (seed + fold)."""
    folds = []
    for k, (rest_idx, test_idx) in enumerate(grouped_kfold(df, n_splits=n_folds, seed=seed)):
        rest = df.iloc[rest_idx].reset_index(drop=True)
        train, val, _ = train_val_test_split(rest, (0.75, 0.25, 0.0), seed=seed + k)
        folds.append({"train": train, "val": val, "test": df.iloc[test_idx].reset_index(drop=True)})
    return folds


def _clean_params(estimator) -> dict[str, Any]:
    return {k: v for k, v in estimator.params.items() if k not in RUN_OVERRIDES}


def fine_tuned(pretrained, train: pd.DataFrame, val: pd.DataFrame, settings: FitSettings, seed: int):
    """``pretrained`` fine-tuned on ``train`` (all layers; early stopping on ``val``)."""
    return pretrained.fine_tune(train, val, **RUN_OVERRIDES, **settings.params(), seed=seed)


def from_scratch(pretrained, train: pd.DataFrame, val: pd.DataFrame, settings: FitSettings, seed: int):
    """The pretrained model's architecture, freshly initialised and trained on ``train`` only."""
    params = {**_clean_params(pretrained), **RUN_OVERRIDES, **settings.params(), "seed": seed}
    return type(pretrained)(**params).fit(train, val)


def site_features(df: pd.DataFrame, embedding: str = "atom_dl") -> np.ndarray:
    """Concatenated A, B and X element vectors (columns ``A``, ``B``, ``X``) of each row."""
    from gapkit.featurize.embeddings import get_embedding

    table = get_embedding(embedding)
    missing = sorted(set(df[["A", "B", "X"]].to_numpy().ravel()) - set(table.index))
    if missing:
        raise KeyError(f"embedding {embedding!r} has no vector for {missing}; pick another embedding.")
    return np.hstack([table.loc[df[site]].to_numpy() for site in ("A", "B", "X")])


def _prediction_frame(test: pd.DataFrame, model: str, fold: int, pred: np.ndarray,
                      unc: np.ndarray | None = None) -> pd.DataFrame:
    out = test[["mp_id", "formula", "gap_ev"]].copy()
    out["model"], out["fold"], out["pred_ev"] = model, fold, np.asarray(pred, dtype=float)
    out["uncertainty_ev"] = np.nan if unc is None else np.asarray(unc, dtype=float)
    return out


def run_networks(pretrained: dict[str, Any], folds: list[dict[str, pd.DataFrame]], config: TransferStudyConfig,
                 scratch_for: Sequence[str] = ("CGCrabNet",), keep_models: Sequence[str] = ("CGCrabNet",),
                 progress: bool = True) -> tuple[pd.DataFrame, dict[str, list]]:
    """Fine-tune every pretrained model (and train ``scratch_for`` from scratch) on every fold.

    Returns the test predictions of all runs (columns mp_id, formula, gap_ev, model, fold, pred_ev,
    uncertainty_ev) and the fine-tuned estimators of ``keep_models`` per fold (for the screen).
    """
    from tqdm.auto import tqdm

    jobs = [(name, "fine-tuned") for name in pretrained] + [(name, "scratch") for name in scratch_for]
    frames, kept = [], {name: [] for name in keep_models}
    bar = tqdm(total=len(jobs) * len(folds), desc="networks", disable=not progress)
    folds = folds[: config.network_folds or len(folds)]
    bar.total = len(jobs) * len(folds)
    for k, fold in enumerate(folds):
        for name, kind in jobs:
            seed = config.seed + k
            if kind == "fine-tuned":
                est = fine_tuned(pretrained[name], fold["train"], fold["val"], config.finetune, seed)
                if name in kept:
                    kept[name].append(est)
            else:
                est = from_scratch(pretrained[name], fold["train"], fold["val"], config.scratch, seed)
            pred = est.predict(fold["test"])
            frames.append(_prediction_frame(fold["test"], f"{name} ({kind})", k, pred["gap_ev"],
                                            pred["uncertainty_ev"]))
            bar.update()
    bar.close()
    return pd.concat(frames, ignore_index=True), kept


def run_classical(folds: list[dict[str, pd.DataFrame]], config: TransferStudyConfig) -> pd.DataFrame:
    """Grid-searched (5-fold CV on train + val) RF/SVR/GBR/KRR on site vectors, scored on each test part."""
    from gapkit.models.classical import PARAM_GRIDS, QUICK_GRIDS, grid_search

    frames = []
    for k, fold in enumerate(folds):
        fit_df = pd.concat([fold["train"], fold["val"]], ignore_index=True)
        X, y = site_features(fit_df, config.embedding), fit_df["gap_ev"].to_numpy()
        X_test = site_features(fold["test"], config.embedding)
        for method in config.classical:
            grid = (QUICK_GRIDS if config.quick_grids else PARAM_GRIDS)[method]
            search = grid_search(method, X, y, grid=grid, n_splits=5, seed=config.seed + k)
            frames.append(_prediction_frame(fold["test"], CLASSICAL[method], k, search.predict(X_test)))
    return pd.concat(frames, ignore_index=True)


def fold_maes(predictions: pd.DataFrame) -> pd.DataFrame:
    """Test MAE per model (rows) and fold (columns)."""
    err = (predictions["pred_ev"] - predictions["gap_ev"]).abs()
    return err.groupby([predictions["model"], predictions["fold"]]).mean().unstack("fold")


def summary_table(predictions: pd.DataFrame, published: dict[str, float] | None = None) -> pd.DataFrame:
    """Mean ± std of the per-fold test MAE per model and the paper's number, from test predictions."""
    return record_table(metrics_record(predictions), published)


def metrics_record(predictions: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """``{model: {"mean", "std", "per_split"}}`` of the per-fold test MAEs (for ``record_results``)."""
    maes = fold_maes(predictions)
    return {m: {"mean": float(row.mean()), "std": float(row.std(ddof=1)),
                "per_split": [float(v) for v in row.to_numpy()]} for m, row in maes.iterrows()}


def record_table(test_mae: dict[str, dict[str, Any]], published: dict[str, float] | None = None) -> pd.DataFrame:
    """The ``metrics_record`` (or a recorded ``test_mae``) as a table: mean, std, folds, the paper's number."""
    table = pd.DataFrame({"mean_mae_ev": {m: v["mean"] for m, v in test_mae.items()},
                          "std_mae_ev": {m: v["std"] for m, v in test_mae.items()},
                          "n_folds": {m: int(np.isfinite(v["per_split"]).sum()) for m, v in test_mae.items()}})
    if published:
        table["paper_mae_ev"] = [published.get(m, np.nan) for m in table.index]
    return table.sort_values("mean_mae_ev")


def learning_curve(pretrained, folds: list[dict[str, pd.DataFrame]], config: TransferStudyConfig,
                   name: str = "CGCrabNet", progress: bool = True) -> pd.DataFrame:
    """Test MAE against the number of perovskite training examples, fine-tuned vs from scratch.

    The first ``curve_folds`` folds are used; each size is a seeded subset of that fold's training part
    (validation and test parts unchanged), so the only thing that varies is how much the model sees.
    """
    from tqdm.auto import tqdm

    rows = []
    jobs = [(k, n) for k in range(config.curve_folds) for n in config.curve_sizes]
    for k, n in tqdm(jobs, desc="learning curve", disable=not progress):
        fold, seed = folds[k], config.seed + k
        train = fold["train"].sample(n=min(n, len(fold["train"])), random_state=seed)
        for kind, make, settings in (("fine-tuned", fine_tuned, config.finetune),
                                     ("scratch", from_scratch, config.scratch)):
            pred = make(pretrained, train, fold["val"], settings, seed).predict(fold["test"])
            mae = regression_metrics(fold["test"]["gap_ev"].to_numpy(), pred["gap_ev"].to_numpy())["mae"]
            rows.append({"model": f"{name} ({kind})", "fold": k, "n_train": len(train), "test_mae_ev": mae})
    return pd.DataFrame(rows)


def paired_wins(predictions: pd.DataFrame, model: str, reference: str) -> tuple[int, int]:
    """(folds where ``model`` has the lower test MAE than ``reference``, number of folds)."""
    maes = fold_maes(predictions)
    return int((maes.loc[model] < maes.loc[reference]).sum()), int(maes.shape[1])


# chapter name -> the shipped pretrained model (gapkit.pretrained) it loads
PRETRAINED = {"CGCrabNet": "cgcrabnet-mp-gap", "CGCNN": "cgcnn-mp-gap", "CrabNet": "crabnet-mp-gap"}


def load_pretrained_models(names: Sequence[str] = tuple(PRETRAINED)) -> tuple[dict[str, Any], dict[str, str]]:
    """The MP-pretrained estimators shipped with gapkit, and the call that loads each."""
    import gapkit.pretrained as shipped

    unknown = sorted(set(names) - set(PRETRAINED))
    if unknown:
        raise KeyError(f"No pretrained model for {unknown}; choose from {sorted(PRETRAINED)}.")
    models = {name: shipped.load(PRETRAINED[name]) for name in names}
    return models, {name: f"gapkit.pretrained.load({PRETRAINED[name]!r})" for name in names}
