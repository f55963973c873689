"""The CGCNN-insight workflows: perovskite site contributions, and metal/semiconductor + two-stage gaps on MP.

Two frozen, validated configurations, one per workflow, and a profile table (``insight_configs``):

* ``PerovskiteSiteConfig``: CGCNN with the linear per-site readout and with the full head, trained on the
  heat of formation of the Castelli perovskites with relaxed structures (``castelli_perovskites_cdvae``);
* ``MetalGapConfig``: a ``MetalClassifier`` and a band-gap ``CGCNN`` on Materials Project structures,
  combined into a ``TwoStageGap``.

Both split formula-grouped 6:2:2 (``gapkit.data.splits.train_val_test_split``) and train with the shared
trainer through the estimators.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from gapkit.estimators import TwoStageGap

PEROVSKITE_TARGET = "heat_all_ev_per_atom"
READOUT_NAMES = {"linear": "linear per-site readout", "mean": "full head (mean pool + hidden layer)"}


@dataclass(frozen=True)
class _NetworkSettings:
    """Size and schedule of one CGCNN (the estimators' parameters)."""

    node_dim: int = 64
    n_conv: int = 3
    hidden_dim: int = 128
    cutoff: float = 8.0
    max_epochs: int = 300
    patience: int = 30
    batch_size: int = 128
    lr_min: float = 1e-4
    lr_max: float = 5e-3
    run_root: str | None = None  # None: checkpoints in a temporary folder (quick runs); else kept and resumable

    def _validate(self) -> None:
        for name in ("node_dim", "n_conv", "hidden_dim", "max_epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not 3.0 <= self.cutoff <= 12.0:
            raise ValueError(f"cutoff is a neighbour radius in Å between 3 and 12, got {self.cutoff}.")
        if not 0 < self.lr_min <= self.lr_max:
            raise ValueError(f"need 0 < lr_min <= lr_max, got {self.lr_min}, {self.lr_max}.")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}.")

    def estimator_params(self, seed: int, name: str = "model") -> dict[str, Any]:
        """As CGCNN / MetalClassifier parameters (CPU, quiet, fused edge kernels for long runs).

        With ``run_root`` each model keeps its checkpoints in ``run_root/name``, so a stopped run resumes
        and a finished model is read back instead of retrained.
        """
        return dict(node_dim=self.node_dim, n_conv=self.n_conv, hidden_dim=self.hidden_dim, cutoff=self.cutoff,
                    max_epochs=self.max_epochs, patience=self.patience, batch_size=self.batch_size,
                    lr_min=self.lr_min, lr_max=self.lr_max, seed=seed, device="cpu", progress=False,
                    fused_edges="auto", run_dir=None if self.run_root is None else str(Path(self.run_root) / name))


@dataclass(frozen=True)
class PerovskiteSiteConfig(_NetworkSettings):
    """Perovskite workflow: how many structures, and the CGCNN both readouts share."""

    n_structures: int | None = None  # None: all 7,572 relaxed structures
    cutoff: float = 6.0  # 12 neighbours of a ~4 Å cubic cell lie within ~4.2 Å; 6 Å builds graphs ~2x faster
    seed: int = 0

    def __post_init__(self) -> None:
        self._validate()
        if self.n_structures is not None and self.n_structures < 20:
            raise ValueError(f"n_structures must be None (all) or >= 20, got {self.n_structures}.")

    def with_(self, **changes: Any) -> PerovskiteSiteConfig:
        """A copy with ``changes`` (validated again)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class MetalGapConfig(_NetworkSettings):
    """Metal/semiconductor workflow: how many MP materials, the classifier's and the regressor's CGCNN."""

    n_materials: int | None = None  # None: all 36,737
    regressor_epochs: int | None = None  # None: max_epochs
    threshold: float | str = 0.5  # p(metal) to call a metal, or "validation": the balanced-accuracy optimum there
    seed: int = 0

    def __post_init__(self) -> None:
        self._validate()
        if self.n_materials is not None and self.n_materials < 50:
            raise ValueError(f"n_materials must be None (all) or >= 50, got {self.n_materials}.")
        if self.threshold != "validation" and not (isinstance(self.threshold, float) and 0 < self.threshold < 1):
            raise ValueError(f"threshold is a probability in (0, 1) or 'validation', got {self.threshold!r}.")
        if self.regressor_epochs is not None and self.regressor_epochs < 1:
            raise ValueError(f"regressor_epochs must be >= 1 or None, got {self.regressor_epochs}.")

    def with_(self, **changes: Any) -> MetalGapConfig:
        """A copy with ``changes`` (validated again)."""
        return replace(self, **changes)


PROFILES: dict[str, tuple[PerovskiteSiteConfig, MetalGapConfig]] = {
    # quick: a CI rehearsal on one CPU thread (~3 min with the caches warm): small subsets, small nets, few epochs
    "quick": (PerovskiteSiteConfig(n_structures=700, node_dim=32, n_conv=2, hidden_dim=32, max_epochs=12,
                                   patience=None, batch_size=32, lr_max=1e-2),
              MetalGapConfig(n_materials=1200, node_dim=24, n_conv=2, hidden_dim=32, max_epochs=8,
                             regressor_epochs=8, patience=None, batch_size=32, lr_max=1e-2)),
    # full: every structure, the paper's network size, early stopping on the validation part. Estimated on the
    # 2-core CPU (models-full: CGCNN ~30 s per epoch on 12.6k MP structures): perovskites ~2 x 300 x ~3 s, MP
    # classifier <= 100 x ~55 s, regressor <= 100 x ~30 s: about 3 h at most, less with early stopping
    "full": (PerovskiteSiteConfig(n_structures=None, node_dim=64, n_conv=3, hidden_dim=128, max_epochs=300,
                                  patience=40, batch_size=64, lr_max=5e-3, run_root="runs/cgcnn_insight-full"),
             MetalGapConfig(n_materials=None, node_dim=64, n_conv=3, hidden_dim=128, max_epochs=100,
                            patience=15, batch_size=128, lr_max=5e-3, threshold="validation",
                            run_root="runs/cgcnn_insight-full")),
}


def insight_configs(profile: str) -> tuple[PerovskiteSiteConfig, MetalGapConfig]:
    """The (perovskite, metal/gap) configurations of a profile: 'quick' or 'full'."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}.")
    return PROFILES[profile]


def describe(config: PerovskiteSiteConfig | MetalGapConfig) -> dict[str, Any]:
    """The configuration as a plain dict (for the results record)."""
    return asdict(config)


# --------------------------------------------------------------------------- perovskites
def perovskite_splits(config: PerovskiteSiteConfig, table: pd.DataFrame | None = None
                      ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, val, test) of the Castelli structures (a seeded subset of ``n_structures``), formula-grouped 6:2:2."""
    from gapkit.data import load_castelli_perovskites
    from gapkit.data.splits import train_val_test_split

    df = load_castelli_perovskites(progress=False) if table is None else table
    if config.n_structures is not None and config.n_structures < len(df):
        df = df.sample(n=config.n_structures, random_state=config.seed)
    df = df.reset_index(drop=True)
    return train_val_test_split(df, seed=config.seed)


def fit_site_models(config: PerovskiteSiteConfig, train: pd.DataFrame, val: pd.DataFrame,
                    readouts: tuple[str, ...] = ("linear", "mean")) -> dict[str, Any]:
    """A fitted CGCNN per readout ('linear', 'mean'), regressing the heat of formation (eV/atom)."""
    from gapkit.estimators import CGCNN

    return {r: CGCNN(**config.estimator_params(config.seed, f"perovskite-{r}"), readout=r, target=PEROVSKITE_TARGET,
                     loss="l1").fit(train, val) for r in readouts}


# --------------------------------------------------------------------------- metals and gaps
def mp_splits(config: MetalGapConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, val, test) of MP structures (all gaps, metals included; a seeded subset), formula-grouped 6:2:2."""
    from gapkit.data import load_mp_structures
    from gapkit.data.splits import train_val_test_split

    df = load_mp_structures(n=config.n_materials, seed=config.seed, progress=False)
    return train_val_test_split(df, seed=config.seed)


def fit_two_stage(config: MetalGapConfig, train: pd.DataFrame, val: pd.DataFrame) -> TwoStageGap:
    """A fitted TwoStageGap: MetalClassifier on all rows, band-gap CGCNN on the semiconductors; its metal threshold
    fixed or, with ``threshold="validation"``, chosen on ``val`` for balanced accuracy."""
    from gapkit.estimators import CGCNN, MetalClassifier, TwoStageGap

    regressor = CGCNN(**{**config.estimator_params(config.seed, "regressor"),
                         "max_epochs": config.regressor_epochs or config.max_epochs})
    classifier = MetalClassifier(**config.estimator_params(config.seed, "classifier"))
    if config.threshold == "validation":
        return TwoStageGap(classifier, regressor).fit(train, val).choose_threshold(val)
    return TwoStageGap(classifier, regressor, threshold=config.threshold).fit(train, val)


def reference_metal_probabilities(structures: list) -> np.ndarray:
    """p(metal) of the original pretrained CGCNN metal/semiconductor model (Xie & Grossman) for ``structures``."""
    import torch

    from gapkit.data import load_cgcnn_checkpoint
    from gapkit.featurize.graphs import build_graphs, collate_graphs
    from gapkit.models.cgcnn import from_original_checkpoint

    model = from_original_checkpoint(load_cgcnn_checkpoint("semi-metal-classification"))
    graphs = build_graphs(structures, cutoff=8.0, max_neighbors=12, progress=False)
    out = []
    with torch.no_grad():
        for i in range(0, len(graphs), 64):
            logits = model.outputs_batch(collate_graphs(graphs[i:i + 64]))
            out.append(torch.softmax(logits, -1)[:, ORIGINAL_METAL_CLASS])
    return torch.cat(out).double().numpy()


# class index of "metal" in the original checkpoint's two outputs (checked in tests: Cu and Al metal, NaCl not)
ORIGINAL_METAL_CLASS = 1


def two_stage_mae(test: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, float]:
    """MAE (eV) of two-stage gaps on all materials, on the metals and on the semiconductors (true labels)."""
    y = test["gap_ev"].to_numpy(float)
    err = np.abs(predictions["gap_ev"].to_numpy(float) - y)
    metal = y <= 0
    return {"all": float(err.mean()), "metals": float(err[metal].mean()) if metal.any() else float("nan"),
            "semiconductors": float(err[~metal].mean()) if (~metal).any() else float("nan"), "n": int(len(y))}


# --------------------------------------------------------------------------- shipping
TWO_STAGE_NAME = "cgcnn-mp-two-stage"
HALF_PRECISION_TOLERANCE_EV = 0.002  # ship half-precision weights only when they keep the test MAE this close


def ship_two_stage(config: MetalGapConfig, record: dict[str, Any], folder: Path | str | None = None) -> Path:
    """Export the full run's TwoStageGap (read back from ``config.run_root``) to ``gapkit.pretrained`` with its card.

    ``record`` is the chapter's full-profile record; the shipped model must reproduce its two-stage test MAE.
    """
    from gapkit import pretrained
    from gapkit.estimators import load_estimator

    if config.run_root is None:
        raise ValueError("Shipping reads the trained models back from config.run_root; this config keeps none.")
    train, val, test = mp_splits(config)
    model = fit_two_stage(config, train, val)  # finished run folders are read back, not trained again
    mae = two_stage_mae(test, model.predict(test))["all"]
    recorded = record["metrics"]["two_stage_mae_all"]
    if abs(mae - recorded) > 1e-3:
        raise ValueError(f"The models in {config.run_root} give a two-stage MAE of {mae:.4f} eV, the record "
                         f"{recorded:.4f}: they are not the recorded run.")
    folder = Path(folder) if folder is not None else pretrained.pretrained_dir()
    folder.mkdir(parents=True, exist_ok=True)
    prov = record["provenance"]
    card = dict(training_data=f"Materials Project structures, all gaps (mp_structures_kdmsit); {len(train)} train / "
                              f"{len(val)} val; metal = gap 0 eV; the regressor on the semiconductors",
                split=f"formula-grouped 6:2:2, seed {config.seed} (gapkit.data.splits.train_val_test_split)",
                hyperparameters={k: v for k, v in describe(config).items() if k != "run_root"},  # a local path
                metal_threshold=round(float(model.threshold), 4),  # p(metal) from which a crystal is called a metal
                provenance={"device": prov["device"], "commit": prov["commit"], "wall_time_s": prov["wall_time_s"],
                            "record": f"results/cgcnn_insight-{record['profile']}.json"})
    for half in (True, False):
        card["metrics"] = {"test_mae_ev": round(mae, 4), "n_test": len(test),
                           "roc_auc": record["metrics"]["roc_auc"],
                           "balanced_accuracy": record["metrics"]["balanced_accuracy"]}
        path = pretrained.export(model, TWO_STAGE_NAME, folder, half=half, **card)
        shipped = two_stage_mae(test, load_estimator(path).predict(test))["all"]
        if not half or abs(shipped - mae) < HALF_PRECISION_TOLERANCE_EV:
            card["metrics"]["test_mae_ev_as_shipped"] = round(shipped, 4)
            return pretrained.export(model, TWO_STAGE_NAME, folder, half=half, **card)
    raise AssertionError("unreachable: full precision is always shipped")


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--ship`` exports the full run's two-stage model (run from book/, where its run folders are)."""
    import argparse
    import json

    from gapkit.results import results_dir

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--ship", action="store_true", required=True, help="export the two-stage model")
    parser.add_argument("--run-root", help="where the full run kept its models (default: the full profile's)")
    args = parser.parse_args(argv)
    config = insight_configs("full")[1]
    if args.run_root:
        config = config.with_(run_root=args.run_root)
    record = json.loads((results_dir() / "cgcnn_insight-full.json").read_text())
    print("shipped", ship_two_stage(config, record))


if __name__ == "__main__":
    main()
