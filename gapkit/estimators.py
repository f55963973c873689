"""scikit-learn-style band-gap estimators: ``CrabNet``, ``CGCNN`` and ``CGCrabNet``.

    model = CGCrabNet(max_epochs=300).fit(train_df, val_df)   # df: structure (and/or formula), gap_ev
    model.predict(test_df)            # -> DataFrame with gap_ev and uncertainty_ev
    model.save("cgcrabnet.pt"); BandGapEstimator.load("cgcrabnet.pt")

``fit`` trains through ``gapkit.train.trainer.fit`` (checkpoints, resume, early stopping on val MAE,
mixed precision on CUDA) and keeps the best-validation weights. ``fit(..., init_from=other)`` or
``other.fine_tune(df)`` start from a trained estimator's weights (transfer learning). Long CPU trainings
of the structure models use fused edge kernels (``fused_edges``: "auto", True or False; see
``gapkit.models.fused_edges``); CPU trainings keep freed large blocks for reuse (``keep_allocations``, see
``gapkit.runtime.keep_large_allocations``).
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from gapkit.featurize.graphs import GraphCache, build_graphs
from gapkit.models.cgcnn import CGCNNModel, atom_init_table, use_fused_edges
from gapkit.featurize.composition import encode_formulas
from gapkit.models.crabnet import CrabNetModel, element_table
from gapkit.models.fusion import CGCrabNetModel
from gapkit.train.tasks import BandGapTask, MaterialsDataset

logger = logging.getLogger(__name__)

_FORMAT_VERSION = 1
TARGET = "gap_ev"
PREDICT_BATCH_SIZE = 64

CRABNET_PARAMS = dict(embedding="crabnet_mat2vec", d_model=512, n_layers=3, n_heads=4, d_ff=2048,
                      dropout=0.1, head_dims=(1024, 512, 256, 128), max_elements=None)
CGCNN_PARAMS = dict(node_features="atom_init", node_dim=64, n_conv=3, hidden_dim=128, n_hidden=1,
                    use_distance=True, cutoff=8.0, max_neighbors=12, gaussian_step=0.2)
TRAIN_PARAMS = dict(max_epochs=300, batch_size=256, patience=20, lr_min=1e-4, lr_max=1e-2, cycle_epochs=2,
                    weight_decay=0.0, seed=0, device="auto", devices=1, mixed_precision=True, progress=False,
                    run_dir=None, graph_cache=True, fused_edges="auto", keep_allocations=True)
# fused CGCNN edge kernels cost a one-time compile (~15-50 s on 2 cores) and save ~30-40 % of every CPU training
# step: worth it from about this many training batches (measured: benchmarks/graphs_and_training.py)
FUSED_MIN_BATCHES = 1000


class StructureRequiredError(ValueError):
    """A structure model was asked to predict from formulas alone."""


class BandGapEstimator:
    """Common fit / predict / save / load for every band-gap network of gapkit."""

    uses_composition: ClassVar[bool] = True
    uses_structure: ClassVar[bool] = False
    model_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.model_defaults) - set(TRAIN_PARAMS)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown parameters {sorted(unknown)}; "
                            f"known: {sorted(set(self.model_defaults) | set(TRAIN_PARAMS))}.")
        self.params: dict[str, Any] = {**TRAIN_PARAMS, **self.model_defaults, **params}
        if self.params["fused_edges"] not in (True, False, "auto"):
            raise ValueError(f"fused_edges must be True, False or 'auto', got {self.params['fused_edges']!r}.")
        self.task_: BandGapTask | None = None
        self.run_dir_: Path | None = None

    # ------------------------------------------------------------------ model construction
    def _tables(self) -> dict[str, np.ndarray]:
        p, out = self.params, {}
        if self.uses_composition:
            out["element_vectors"] = element_table(p["embedding"])
        if self.uses_structure:
            out["atom_vectors"] = atom_init_table(p["node_features"])
        return out

    def _crabnet(self, tables: dict[str, np.ndarray]) -> CrabNetModel:
        p = self.params
        return CrabNetModel(tables["element_vectors"], d_model=p["d_model"], n_layers=p["n_layers"],
                            n_heads=p["n_heads"], d_ff=p["d_ff"], dropout=p["dropout"],
                            head_dims=tuple(p["head_dims"]))

    def _cgcnn(self, tables: dict[str, np.ndarray]) -> CGCNNModel:
        p = self.params
        return CGCNNModel(tables["atom_vectors"], node_dim=p["node_dim"], n_conv=p["n_conv"],
                          hidden_dim=p["hidden_dim"], n_hidden=p["n_hidden"], use_distance=p["use_distance"],
                          cutoff=p["cutoff"], gaussian_step=p["gaussian_step"])

    def build_model(self, tables: dict[str, np.ndarray] | None = None) -> nn.Module:
        """A freshly initialised network (tables of element/atom vectors loaded when not given)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ inputs
    def _inputs(self, X: Any) -> tuple[list[str] | None, list | None]:
        """(formulas, structures) from a DataFrame, a list of formulas/Structures, or one of them."""
        from pymatgen.core import Structure

        if isinstance(X, (str, Structure)):
            X = [X]
        if isinstance(X, pd.DataFrame):
            structures = list(X["structure"]) if "structure" in X.columns else None
            formulas = list(X["formula"]) if "formula" in X.columns else None
        else:
            items = list(X) if isinstance(X, Iterable) else None
            if items is None:
                raise TypeError(f"Cannot predict from {type(X).__name__}: pass a DataFrame, formulas or Structures.")
            if all(isinstance(x, str) for x in items):
                formulas, structures = items, None
            elif all(isinstance(x, Structure) for x in items):
                formulas, structures = None, items
            else:
                raise TypeError("Pass a list of formula strings or a list of pymatgen Structures, not a mixture.")
        if self.uses_structure and structures is None:
            raise StructureRequiredError(
                f"{type(self).__name__} reads crystal structures, but only formulas were given. Pass a DataFrame "
                "with a 'structure' column (pymatgen Structures) or a list of Structures / CIF files; to "
                "predict from a formula alone use a composition model such as gapkit.estimators.CrabNet."
            )
        if self.uses_composition and formulas is None:
            if structures is None:
                raise ValueError("The DataFrame needs a 'formula' or a 'structure' column.")
            formulas = [s.composition.formula for s in structures]
        return formulas, structures

    def dataset(self, X: Any, targets: np.ndarray | None = None) -> MaterialsDataset:
        """Featurise inputs (formula encodings and/or cached crystal graphs) into a MaterialsDataset."""
        formulas, structures = self._inputs(X)
        p = self.params
        elements = fractions = graphs = None
        if self.uses_composition:
            elements, fractions = encode_formulas(formulas, max_elements=p["max_elements"], progress=p["progress"])
        if self.uses_structure:
            cache = GraphCache(p["graph_cache"]) if isinstance(p["graph_cache"], (str, Path)) else p["graph_cache"]
            graphs = build_graphs(structures, cutoff=p["cutoff"], max_neighbors=p["max_neighbors"],
                                  cache=cache, progress=p["progress"])
        return MaterialsDataset(elements, fractions, graphs, targets)

    # ------------------------------------------------------------------ training
    def fit(self, df: pd.DataFrame, val_df: pd.DataFrame | None = None,
            init_from: BandGapEstimator | None = None, resume: bool = True) -> BandGapEstimator:
        """Train on ``df`` (column ``gap_ev``), early-stopping on ``val_df`` (else a 20% formula-grouped split).

        With ``resume`` a run killed midway in ``run_dir`` continues from its last checkpoint;
        ``resume=False`` deletes an earlier run in ``run_dir`` and trains from scratch.
        """
        from gapkit.runtime import seed_everything
        from gapkit.train.trainer import TrainConfig, fit

        p = self.params
        if TARGET not in df.columns:
            raise KeyError(f"The training DataFrame needs a {TARGET!r} column (band gap in eV).")
        if val_df is None:
            from gapkit.data.splits import train_val_test_split

            df, val_df, _ = train_val_test_split(df, (0.8, 0.2, 0.0), seed=p["seed"])
        train_ds = self.dataset(df, df[TARGET].to_numpy(dtype=np.float32))
        val_ds = self.dataset(val_df, val_df[TARGET].to_numpy(dtype=np.float32))
        seed_everything(p["seed"])  # before construction: initial weights depend only on the seed
        if init_from is not None:
            if type(init_from) is not type(self):
                raise TypeError(f"init_from must be a trained {type(self).__name__}, got {type(init_from).__name__}.")
            if init_from.task_ is None:
                raise ValueError("init_from has not been trained or loaded yet.")
            model = copy.deepcopy(init_from.task_.model).train()
            mean, std = float(init_from.task_.target_mean), float(init_from.task_.target_std)
        else:
            model = self.build_model()
            y = df[TARGET].to_numpy(dtype=np.float64)
            mean, std = float(y.mean()), float(y.std() if len(y) > 1 and y.std() > 0 else 1.0)
        n_batches = p["max_epochs"] * -(-len(train_ds) // p["batch_size"])
        fused = p["fused_edges"] is True or (p["fused_edges"] == "auto" and n_batches >= FUSED_MIN_BATCHES)
        use_fused_edges(model, fused)
        task = BandGapTask(model, mean, std, lr_min=p["lr_min"], lr_max=p["lr_max"],
                           cycle_epochs=p["cycle_epochs"], weight_decay=p["weight_decay"])
        self.run_dir_ = Path(p["run_dir"]) if p["run_dir"] else Path(tempfile.mkdtemp(prefix="gapkit-run-"))
        if not resume and self.run_dir_.exists():
            shutil.rmtree(self.run_dir_)  # a fresh run: stale checkpoints or logs would be picked up
        config = TrainConfig(max_epochs=p["max_epochs"], run_dir=self.run_dir_, device=p["device"],
                             devices=p["devices"], patience=p["patience"], mixed_precision=p["mixed_precision"],
                             progress=p["progress"], seed=p["seed"], keep_allocations=p["keep_allocations"])
        trainer = fit(task, train_ds.loader(p["batch_size"], shuffle=True, seed=p["seed"]),
                      val_ds.loader(p["batch_size"]), config, resume=resume)
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if best and Path(best).is_file():  # keep the best-validation weights, not the last epoch's
            state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
            task.load_state_dict(state)
        self.task_ = task.cpu().eval()
        return self

    def fine_tune(self, df: pd.DataFrame, val_df: pd.DataFrame | None = None, **overrides: Any) -> BandGapEstimator:
        """A new estimator trained on ``df`` starting from this one's weights (``overrides``: e.g. lr, epochs)."""
        params = {k: v for k, v in self.params.items() if k != "run_dir"}
        new = type(self)(**{**params, **overrides})
        return new.fit(df, val_df, init_from=self)

    def history(self) -> pd.DataFrame:
        """The per-epoch training log (train/val loss and MAE) of the last ``fit``."""
        from gapkit.train.trainer import read_log

        if self.run_dir_ is None:
            raise ValueError("No training run: call fit first.")
        return read_log(self.run_dir_)

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self) -> BandGapTask:
        if self.task_ is None:
            raise ValueError(f"This {type(self).__name__} is not fitted: call fit() or load() first.")
        return self.task_

    @torch.no_grad()
    def predict(self, X: Any, batch_size: int | None = None) -> pd.DataFrame:
        """DataFrame with ``gap_ev`` and ``uncertainty_ev`` (Laplace scale) for each input row."""
        from gapkit.runtime import resolve_device

        task = self._check_fitted()
        ds = self.dataset(X)
        device = resolve_device(self.params["device"])
        task = task.to(device).eval()
        gaps, uncs = [], []
        # small inference batches keep each graph batch's edge tensors in cache: faster per structure on CPU
        for batch in ds.loader(batch_size or min(self.params["batch_size"], PREDICT_BATCH_SIZE)):
            gap, unc = task({k: v.to(device) for k, v in batch.items()})
            gaps.append(gap.cpu())
            uncs.append(unc.cpu())
        task.cpu()
        out = pd.DataFrame({"gap_ev": torch.cat(gaps).numpy().astype(np.float64),
                            "uncertainty_ev": torch.cat(uncs).numpy().astype(np.float64)})
        if isinstance(X, pd.DataFrame):
            out.index = X.index
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path | str) -> Path:
        """Write the estimator (parameters, weights, target scaling) to one file."""
        task = self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        params = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.params.items()}
        torch.save({"format": _FORMAT_VERSION, "estimator": type(self).__name__, "params": params,
                    "state_dict": task.state_dict(), "hparams": dict(task.hparams)}, path)
        return path

    @classmethod
    def load(cls, path: Path | str) -> BandGapEstimator:
        """Read an estimator written by ``save`` (any of CrabNet, CGCNN, CGCrabNet)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No saved model at {path}.")
        blob = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(blob, dict) or blob.get("format") != _FORMAT_VERSION:
            raise ValueError(f"{path} is not a gapkit estimator file (format {_FORMAT_VERSION}).")
        kind = ESTIMATORS.get(blob["estimator"])
        if kind is None or (cls is not BandGapEstimator and not issubclass(kind, cls)):
            raise TypeError(f"{path} holds a {blob['estimator']}, not a {cls.__name__}.")
        est = kind(**blob["params"])
        state = blob["state_dict"]
        # Zero tables of the saved shapes: the real ones come with the weights, no data download needed.
        tables = {name: np.zeros(tuple(t.shape), dtype=np.float32) for key, t in state.items()
                  for name in ("element_vectors", "atom_vectors") if key.endswith("." + name)}
        model = est.build_model(tables)
        task = BandGapTask(model, **blob["hparams"])
        task.load_state_dict(state)
        est.task_ = task.eval()
        return est


class CrabNet(BandGapEstimator):
    """CrabNet from compositions (mat2vec by default; ``embedding="crabnet_onehot"`` gives HotCrab)."""

    model_defaults = CRABNET_PARAMS

    def build_model(self, tables: dict[str, np.ndarray] | None = None) -> nn.Module:
        """A freshly initialised CrabNetModel."""
        return self._crabnet(tables or self._tables())


class CGCNN(BandGapEstimator):
    """CGCNN from crystal structures (``atom_init`` node features, Gaussian distances)."""

    uses_composition = False
    uses_structure = True
    model_defaults = CGCNN_PARAMS

    def build_model(self, tables: dict[str, np.ndarray] | None = None) -> nn.Module:
        """A freshly initialised CGCNNModel."""
        return self._cgcnn(tables or self._tables())


class CGCrabNet(BandGapEstimator):
    """CGCrabNet: CrabNet and CGCNN fused as w1*z1 + w2*z2 (7:3 fixed, or ``weights="learned"``)."""

    uses_structure = True
    # the paper's structure branch: one-hot nodes embedded to 16, no bond features
    model_defaults = {**CRABNET_PARAMS, **CGCNN_PARAMS, "node_features": "onehot", "node_dim": 16,
                      "use_distance": False, "weights": (0.7, 0.3)}

    def build_model(self, tables: dict[str, np.ndarray] | None = None) -> nn.Module:
        """A freshly initialised CGCrabNetModel."""
        tables = tables or self._tables()
        w = self.params["weights"]
        return CGCrabNetModel(self._crabnet(tables), self._cgcnn(tables), w if w == "learned" else tuple(w))


ESTIMATORS: dict[str, type[BandGapEstimator]] = {"CrabNet": CrabNet, "CGCNN": CGCNN, "CGCrabNet": CGCrabNet}


def load_estimator(path: Path | str) -> BandGapEstimator:
    """Load any saved gapkit estimator."""
    return BandGapEstimator.load(path)
