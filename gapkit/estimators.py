"""scikit-learn-style band-gap estimators: ``CrabNet``, ``CGCNN``, ``CGCrabNet``; ``MetalClassifier``, ``TwoStageGap``.

    model = CGCrabNet(max_epochs=300).fit(train_df, val_df)   # df: structure (and/or formula), gap_ev
    model.predict(test_df)            # -> DataFrame with gap_ev and uncertainty_ev
    model.save("cgcrabnet.pt"); BandGapEstimator.load("cgcrabnet.pt")

``fit`` trains through ``gapkit.train.trainer.fit`` (checkpoints, resume, early stopping on val MAE,
mixed precision on CUDA) and keeps the best-validation weights. ``fit(..., init_from=other)`` or
``other.fine_tune(df)`` start from a trained estimator's weights (transfer learning). Long CPU trainings
of the structure models use fused edge kernels (``fused_edges``: "auto", True or False; see
``gapkit.models.fused_edges``); CPU trainings keep freed large blocks for reuse (``keep_allocations``, see
``gapkit.runtime.keep_large_allocations``).

What a user should never meet silently:

* ``fit`` refuses training or validation gaps that are NaN, infinite, negative or above
  ``MAX_PLAUSIBLE_GAP_EV`` (:class:`BadTargetError`, naming the rows); ``bad_targets="drop"`` drops them
  with a :class:`BadTargetsWarning` instead. A loss that becomes NaN stops training with
  ``gapkit.train.trainer.NonFiniteMetricError``, never a silent early stop.
* ``predict`` clips gaps at 0 eV (a band gap cannot be negative; the network's raw output can be);
  ``predict(X, errors="skip")`` gives NaN and an ``error`` message for rows it cannot featurise.
* Checkpoints go to ``run_dir`` when given (kept), else to a temporary folder removed after ``fit``
  (``history()`` still works: the log is read into memory first).
* ``target`` names another column to regress (e.g. ``target="heat_all_ev_per_atom"``): any finite number is
  accepted and predictions come back unclipped in a column of that name. ``CGCNN(readout="linear")`` makes
  every prediction the mean of per-site contributions (``gapkit.evaluate.site_contributions``).
* ``MetalClassifier`` (CGCNN, softmax + cross-entropy, the same trainer) tells metals (gap 0) from
  semiconductors; ``TwoStageGap`` predicts 0 eV for predicted metals and a regressor's gap for the rest.
* ``progress=True`` (default) shows bars for graph building, training epochs (with the validation MAE) and
  large predictions; ``progress=False`` is quiet.
"""

from __future__ import annotations

import copy
import logging
import pickle
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from gapkit.featurize.composition import FormulaError, encode_compositions, parse_formula
from gapkit.featurize.graphs import GraphCache, GraphError, build_graphs_or_errors
from gapkit.models.cgcnn import CGCNNModel, atom_init_table, use_fused_edges
from gapkit.models.crabnet import CrabNetModel, element_table
from gapkit.models.fusion import CGCrabNetModel
from gapkit.train.tasks import METAL, BandGapTask, MaterialsDataset, MetalTask

logger = logging.getLogger(__name__)

_FORMAT_VERSION = 1
TARGET = "gap_ev"
PREDICT_BATCH_SIZE = 64

CRABNET_PARAMS = dict(embedding="crabnet_mat2vec", d_model=512, n_layers=3, n_heads=4, d_ff=2048,
                      dropout=0.1, head_dims=(1024, 512, 256, 128), max_elements=None)
CGCNN_PARAMS = dict(node_features="atom_init", node_dim=64, n_conv=3, hidden_dim=128, n_hidden=1,
                    use_distance=True, cutoff=8.0, max_neighbors=12, gaussian_step=0.2, readout="mean")
# bad_targets: "raise" | "drop" (see fit); disorder: "raise" | "majority" (see gapkit.featurize.graphs)
TRAIN_PARAMS = dict(max_epochs=300, batch_size=256, patience=20, lr_min=1e-4, lr_max=1e-2, cycle_epochs=2,
                    weight_decay=0.0, seed=0, device="auto", devices=1, mixed_precision=True, progress=True,
                    run_dir=None, graph_cache=True, fused_edges="auto", keep_allocations=True,
                    bad_targets="raise", disorder="raise", loss="laplace", target=TARGET)
# the widest measured band gaps are ~14 eV (LiF); a training target above this is a unit or data error
MAX_PLAUSIBLE_GAP_EV = 20.0
# predictions of more rows than this show a progress bar (smaller ones finish in about a second)
PREDICT_PROGRESS_MIN_ROWS = 2000
# fused CGCNN edge kernels cost a one-time compile (~15-50 s on 2 cores) and save ~30-40 % of every CPU training
# step: worth it from about this many training batches (measured: benchmarks/graphs_and_training.py)
FUSED_MIN_BATCHES = 1000
FINISHED_MARKER = "finished"  # in a kept run folder: the best checkpoint's path, written when training ended


class StructureRequiredError(ValueError):
    """A structure model was asked to predict from formulas alone."""


class EmptyInputError(ValueError):
    """No rows to train on or predict."""


class BadTargetError(ValueError):
    """Training gaps that are NaN, infinite, negative or implausibly large."""


class BadTargetsWarning(UserWarning):
    """Rows with unusable training gaps were dropped (``bad_targets="drop"``)."""


class ElementOutsideTableError(ValueError):
    """An element the model has no vector for (outside its element table)."""


class UncalibratedIntervalWarning(UserWarning):
    """Intervals from the raw Laplace scale: the model was not calibrated on validation data (``calibrate``)."""


class ModelFileError(ValueError):
    """A model file that is corrupt, truncated, or not written by gapkit's ``save``."""


class BandGapEstimator:
    """Common fit / predict / save / load for every band-gap network of gapkit."""

    uses_composition: ClassVar[bool] = True
    uses_structure: ClassVar[bool] = False
    model_defaults: ClassVar[dict[str, Any]] = {}
    task_class: ClassVar[type] = BandGapTask
    monitor: ClassVar[str] = "val_mae"  # the validation metric of early stopping and the kept checkpoint

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.model_defaults) - set(TRAIN_PARAMS)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown parameters {sorted(unknown)}; "
                            f"known: {sorted(set(self.model_defaults) | set(TRAIN_PARAMS))}.")
        self.params: dict[str, Any] = {**TRAIN_PARAMS, **self.model_defaults, **params}
        for name, allowed in (("fused_edges", (True, False, "auto")), ("bad_targets", ("raise", "drop")),
                              ("disorder", ("raise", "majority"))):
            if self.params[name] not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {self.params[name]!r}.")
        self.task_: BandGapTask | None = None
        self.run_dir_: Path | None = None  # None after a fit in a temporary folder (removed)
        self.history_: pd.DataFrame | None = None
        self.calibration_: dict[str, Any] | None = None  # set by calibrate(), saved with the model

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
                          cutoff=p["cutoff"], gaussian_step=p["gaussian_step"], readout=p.get("readout", "mean"))

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
            if len(X) == 0:
                raise EmptyInputError("No inputs: the DataFrame has no rows. Pass at least one formula or structure.")
            # a missing cell (NaN, e.g. formula-only CSV rows beside structure files) is None from here on
            structures = ([s if isinstance(s, Structure) else None for s in X["structure"]]
                          if "structure" in X.columns else None)
            formulas = list(X["formula"]) if "formula" in X.columns else None
            if formulas is not None and structures is not None:  # a row with only a structure: its formula
                formulas = [s.composition.formula if s is not None and not (isinstance(f, str) and f.strip())
                            else f for f, s in zip(formulas, structures)]
        else:
            items = list(X) if isinstance(X, Iterable) else None
            if items is None:
                raise TypeError(f"Cannot predict from {type(X).__name__}: pass a DataFrame, formulas or Structures.")
            if not items:
                raise EmptyInputError("No inputs: the list is empty. Pass at least one formula or structure.")
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
            formulas = [s.composition.formula if s is not None else None for s in structures]
        return formulas, structures

    def _element_tables(self, model: nn.Module | None = None) -> dict[str, tuple[str, np.ndarray]]:
        """{'element_vectors'|'atom_vectors': (table name, bool[Z] has a vector)} of a built or fitted model."""
        model = model if model is not None else (self.task_.model if self.task_ is not None else None)
        if model is None:
            return {}
        names = {"element_vectors": self.params.get("embedding"), "atom_vectors": self.params.get("node_features")}
        out = {}
        for key, table in model.state_dict().items():
            kind = key.rsplit(".", 1)[-1]
            if kind in names and kind not in out:
                known = (table.abs().sum(dim=1) > 0).numpy()
                known[0] = False  # row 0 is padding
                out[kind] = (str(names[kind]), known)
        return out

    @staticmethod
    def _check_elements(numbers: Iterable[int], tables: dict[str, tuple[str, np.ndarray]],
                        what: Callable[[], str]) -> None:
        """Raise ElementOutsideTableError when an atomic number has no (non-zero) vector in a model table."""
        from pymatgen.core import Element

        for name, known in tables.values():
            for z in numbers:
                if z >= len(known) or not known[z]:
                    covered = np.flatnonzero(known)
                    lo, hi = int(covered.min()), int(covered.max())
                    holes = ", with gaps" if len(covered) < hi - lo + 1 else ""
                    raise ElementOutsideTableError(
                        f"{what()} contains {Element.from_Z(int(z)).symbol} (Z={z}), which has no vector in this "
                        f"model's element table {name!r} (it covers Z={lo}-{hi}, {Element.from_Z(lo).symbol} to "
                        f"{Element.from_Z(hi).symbol}{holes}). Remove the row, or skip bad rows with "
                        "predict(..., errors='skip') / gapkit predict --on-error skip."
                    )

    def _featurize(self, X: Any, targets: np.ndarray | None = None, skip_errors: bool = False,
                   model: nn.Module | None = None,
                   disorder: str | None = None) -> tuple[MaterialsDataset | None, dict[int, str]]:
        """(dataset of the rows that featurise, {row: error message} of those that do not, when skipping)."""
        formulas, structures = self._inputs(X)
        n = len(formulas) if formulas is not None else len(structures)
        if n == 0:
            raise EmptyInputError("No inputs: the DataFrame or list is empty. Pass at least one formula or structure.")
        p = self.params
        tables = self._element_tables(model)
        failed: dict[int, str] = {}

        def fail(i: int, exc: Exception) -> None:
            if not skip_errors:
                raise type(exc)(str(exc) if str(exc).startswith(("Row ", "Structure ")) else f"Row {i}: {exc}") from exc
            failed.setdefault(i, str(exc))

        comps: list = [None] * n
        if self.uses_composition:
            element_tables = {k: v for k, v in tables.items() if k == "element_vectors"}
            for i, formula in enumerate(tqdm(formulas, desc="reading formulas", disable=not p["progress"],
                                             mininterval=1.0, leave=False)):
                try:
                    comp = parse_formula(formula)
                    if p["max_elements"] is not None and len(comp) > p["max_elements"]:
                        raise FormulaError(f"Formula {formula!r} has {len(comp)} elements, more than this model's "
                                           f"max_elements={p['max_elements']}; leave max_elements=None (the "
                                           "default) to take any number of elements.")
                    self._check_elements([el.Z for el in comp], element_tables, lambda: f"Formula {formula!r}")
                    comps[i] = comp
                except (FormulaError, ElementOutsideTableError) as exc:
                    fail(i, exc)
        graphs: list = [None] * n
        if self.uses_structure:
            cache = GraphCache(p["graph_cache"]) if isinstance(p["graph_cache"], (str, Path)) else p["graph_cache"]
            atom_tables = {k: v for k, v in tables.items() if k == "atom_vectors"}
            for i, s in enumerate(structures):
                if s is None and i not in failed:
                    fail(i, StructureRequiredError(f"Row {i} has no structure, and {type(self).__name__} reads "
                                                   "crystal structures: give it one, or use a composition model "
                                                   "(CrabNet) for formulas."))
            todo = [i for i in range(n) if i not in failed]
            built = build_graphs_or_errors([structures[i] for i in todo], cutoff=p["cutoff"],
                                           max_neighbors=p["max_neighbors"], cache=cache,
                                           disorder=disorder or p["disorder"], progress=p["progress"])
            for j, (i, graph) in enumerate(zip(todo, built)):
                try:
                    if isinstance(graph, GraphError):  # numbered among todo: renumber as a row of X
                        raise type(graph)(str(graph).replace(f"Structure {j}:", f"Structure {i}:", 1))
                    # the label is built only on failure: reduced_formula costs more than the check
                    self._check_elements(np.unique(graph.atomic_numbers).tolist(), atom_tables,
                                         lambda: f"Structure {i} ({structures[i].composition.reduced_formula})")
                    graphs[i] = graph
                except (GraphError, ElementOutsideTableError) as exc:
                    fail(i, exc)
        keep = [i for i in range(n) if i not in failed]
        if not keep:
            return None, failed
        elements = fractions = None
        if self.uses_composition:
            elements, fractions = encode_compositions([comps[i] for i in keep], max_elements=p["max_elements"])
        ds = MaterialsDataset(elements, fractions, [graphs[i] for i in keep] if self.uses_structure else None,
                              None if targets is None else np.asarray(targets)[keep])
        return ds, failed

    def dataset(self, X: Any, targets: np.ndarray | None = None) -> MaterialsDataset:
        """Featurise inputs (formula encodings and/or cached crystal graphs) into a MaterialsDataset."""
        ds, _ = self._featurize(X, targets)
        return ds

    # ------------------------------------------------------------------ training
    @property
    def target(self) -> str:
        """The column this estimator learns and predicts (``gap_ev`` unless ``target`` says otherwise)."""
        return self.params.get("target", TARGET)

    def _usable_targets(self, df: pd.DataFrame, what: str) -> pd.DataFrame:
        """``df`` with every target finite (a gap also >= 0 and <= MAX_PLAUSIBLE_GAP_EV); else BadTargetError."""
        column = self.target
        if column not in df.columns:
            unit = "band gap in eV" if column == "gap_ev" else "the target"
            raise KeyError(f"The {what} DataFrame needs a {column!r} column ({unit}).")
        if len(df) == 0:
            raise EmptyInputError(f"The {what} data has no rows.")
        y = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)  # text -> NaN, reported below
        with np.errstate(invalid="ignore"):
            problems = {"missing or not a number": np.isnan(y), "infinite": np.isinf(y)}
            if column == "gap_ev":  # only a band gap has a physical range to check
                problems |= {"negative": y < 0,
                             f"above {MAX_PLAUSIBLE_GAP_EV:g} eV": np.isfinite(y) & (y > MAX_PLAUSIBLE_GAP_EV)}
        bad = np.logical_or.reduce(list(problems.values()))
        if not bad.any():
            return df
        parts = []
        for reason, mask in problems.items():
            if mask.any():
                labels = [str(x) for x in df.index[mask][:5]]
                more = ", ..." if mask.sum() > 5 else ""
                parts.append(f"{int(mask.sum())} {reason} (rows {', '.join(labels)}{more})")
        summary = f"{int(bad.sum())} of {len(df)} {what} rows have unusable {column!r} values: {'; '.join(parts)}"
        if self.params["bad_targets"] == "raise":
            need = (f"A band gap must be a finite number from 0 to {MAX_PLAUSIBLE_GAP_EV:g} eV" if column == "gap_ev"
                    else "A target must be a finite number")
            raise BadTargetError(f"{summary}. {need}: fix or remove these rows, or pass bad_targets='drop' to drop "
                                 "them with a warning.")
        warnings.warn(f"Dropped {summary}.", BadTargetsWarning, stacklevel=3)
        if bad.all():
            raise EmptyInputError(f"No {what} rows left after dropping the unusable {column!r} values.")
        return df[~bad]

    def fit(self, df: pd.DataFrame, val_df: pd.DataFrame | None = None,
            init_from: BandGapEstimator | None = None, resume: bool = True) -> BandGapEstimator:
        """Train on ``df`` (column ``gap_ev``), early-stopping on ``val_df`` (else a 20% formula-grouped split).

        Gaps must be finite, >= 0 and <= ``MAX_PLAUSIBLE_GAP_EV`` eV: other rows raise BadTargetError
        (``bad_targets="drop"``: dropped with a warning). With ``run_dir`` the checkpoints and log stay there
        and ``resume`` continues a run killed midway, or reads back a run that finished there without training
        (``resume=False`` deletes an earlier run in ``run_dir``); without it they go to a temporary folder
        removed at the end.
        """
        from gapkit.runtime import seed_everything
        from gapkit.train.trainer import TrainConfig, fit, read_log

        p = self.params
        df = self._usable_targets(df, "training")
        if val_df is None:
            from gapkit.data.splits import train_val_test_split

            df, val_df, _ = train_val_test_split(df, (0.8, 0.2, 0.0), seed=p["seed"])
        val_df = self._usable_targets(val_df, "validation")
        seed_everything(p["seed"])  # before construction: initial weights depend only on the seed
        if init_from is not None:
            if type(init_from) is not type(self):
                raise TypeError(f"init_from must be a trained {type(self).__name__}, got {type(init_from).__name__}.")
            if init_from.task_ is None:
                raise ValueError("init_from has not been trained or loaded yet.")
            model = copy.deepcopy(init_from.task_.model).train()
        else:
            model = self.build_model()
        task = self._new_task(model, df, init_from)
        # featurised after the model exists, so an element outside its tables is named, not an IndexError
        train_ds, _ = self._featurize(df, self._fit_targets(df), model=model)
        val_ds, _ = self._featurize(val_df, self._fit_targets(val_df), model=model)
        n_batches = p["max_epochs"] * -(-len(train_ds) // p["batch_size"])
        fused = p["fused_edges"] is True or (p["fused_edges"] == "auto" and n_batches >= FUSED_MIN_BATCHES)
        use_fused_edges(model, fused)
        keep_run = bool(p["run_dir"])
        run_dir = Path(p["run_dir"]) if keep_run else Path(tempfile.mkdtemp(prefix="gapkit-run-"))
        if keep_run and not resume and run_dir.exists():
            shutil.rmtree(run_dir)  # a fresh run: stale checkpoints or logs would be picked up
        config = TrainConfig(max_epochs=p["max_epochs"], run_dir=run_dir, device=p["device"],
                             devices=p["devices"], patience=p["patience"], mixed_precision=p["mixed_precision"],
                             progress=p["progress"], seed=p["seed"], keep_allocations=p["keep_allocations"],
                             monitor=self.monitor)
        finished = run_dir / FINISHED_MARKER  # a kept run that ended: a rerun (resume) reads it back, trains nothing
        try:
            if keep_run and resume and finished.is_file():
                relative = finished.read_text().strip()
                best = str(run_dir / relative) if relative else ""
            else:
                trainer = fit(task, train_ds.loader(p["batch_size"], shuffle=True, seed=p["seed"]),
                              val_ds.loader(p["batch_size"]), config, resume=resume)
                best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
                if keep_run:  # relative, so a moved run folder still reads back
                    finished.write_text(str(Path(best).resolve().relative_to(run_dir.resolve())) if best else "")
            if best and Path(best).is_file():  # keep the best-validation weights, not the last epoch's
                state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
                task.load_state_dict(state)
            self.history_ = read_log(run_dir)  # in memory: a temporary run folder is removed below
        finally:
            if not keep_run:
                shutil.rmtree(run_dir, ignore_errors=True)  # ~hundreds of MB of checkpoints nobody asked for
        self.run_dir_ = run_dir if keep_run else None
        self.task_ = task.cpu().eval()
        return self

    def _fit_targets(self, df: pd.DataFrame) -> np.ndarray:
        """The training targets of ``df`` as float32 (the regressed column)."""
        return df[self.target].to_numpy(dtype=np.float32)

    def _new_task(self, model: nn.Module, df: pd.DataFrame, init_from: BandGapEstimator | None) -> BandGapTask:
        """The LightningModule that trains ``model``: targets standardised by ``df`` (or by ``init_from``'s scaling)."""
        p = self.params
        if init_from is not None:
            mean, std = float(init_from.task_.target_mean), float(init_from.task_.target_std)
        else:
            y = df[self.target].to_numpy(dtype=np.float64)
            mean, std = float(y.mean()), float(y.std() if len(y) > 1 and y.std() > 0 else 1.0)
        return BandGapTask(model, mean, std, lr_min=p["lr_min"], lr_max=p["lr_max"], cycle_epochs=p["cycle_epochs"],
                           weight_decay=p["weight_decay"], loss=p["loss"])

    def fine_tune(self, df: pd.DataFrame, val_df: pd.DataFrame | None = None, **overrides: Any) -> BandGapEstimator:
        """A new estimator trained on ``df`` starting from this one's weights (``overrides``: e.g. lr, epochs)."""
        params = {k: v for k, v in self.params.items() if k != "run_dir"}
        new = type(self)(**{**params, **overrides})
        return new.fit(df, val_df, init_from=self)

    def history(self) -> pd.DataFrame:
        """The per-epoch training log (train/val loss and MAE) of the last ``fit``."""
        if self.history_ is None:
            raise ValueError("No training run: call fit first (a loaded model has no training log).")
        return self.history_.copy()

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self) -> BandGapTask:
        if self.task_ is None:
            raise ValueError(f"This {type(self).__name__} is not fitted: call fit() or load() first.")
        return self.task_

    def calibrate(self, val_df: pd.DataFrame, method: Literal["conformal_scaled", "recalibrated"] = "conformal_scaled",
                  batch_size: int | None = None) -> BandGapEstimator:
        """Fit the intervals of ``predict(X, interval=p)`` on validation data (column ``gap_ev``) never trained on.

        Stores (and ``save`` writes) the normalised validation scores |error|/b, for scaled split-conformal
        intervals ``gap +- q_p(|e|/b) * b`` (``method="conformal_scaled"``, the default: coverage >= p on
        exchangeable data, at any p), and the one-factor recalibration c of the Laplace scale
        (``method="recalibrated"``: ``gap +- c*b*ln(1/(1-p))``). See ``gapkit.evaluate.uncertainty``.
        """
        from gapkit.evaluate.uncertainty import recalibration_factor

        if method not in ("conformal_scaled", "recalibrated"):
            raise ValueError(f"method must be 'conformal_scaled' or 'recalibrated', got {method!r}.")
        val_df = self._usable_targets(val_df, "calibration")
        pred = self.predict(val_df, batch_size=batch_size)
        errors = np.abs(pred[self.target].to_numpy() - val_df[self.target].to_numpy(dtype=np.float64))
        scale = pred["uncertainty_ev"].to_numpy()
        self.calibration_ = {"method": method, "n": int(len(errors)),
                             "scores": np.sort(errors / scale).astype(np.float32).tolist(),
                             "factor": recalibration_factor(errors, scale),
                             "val_mae_ev": float(errors.mean())}
        return self

    def interval_halfwidth(self, scale_ev: np.ndarray, level: float, method: str | None = None) -> np.ndarray:
        """Half-widths (eV) of central ``level`` intervals for these Laplace scales (see ``calibrate``)."""
        from gapkit.evaluate.uncertainty import conformal_quantile, laplace_halfwidth

        cal = self.calibration_
        method = method or (cal["method"] if cal else "laplace")
        if method != "laplace" and cal is None:
            raise ValueError(f"Interval method {method!r} needs a calibrated model: call calibrate(val_df) first.")
        if method == "laplace":
            return laplace_halfwidth(scale_ev, level)
        if method == "recalibrated":
            return laplace_halfwidth(cal["factor"] * np.asarray(scale_ev, float), level)
        if method == "conformal_scaled":
            return conformal_quantile(np.asarray(cal["scores"], float), level) * np.asarray(scale_ev, float)
        raise ValueError(f"Unknown interval method {method!r}; choose laplace, recalibrated or conformal_scaled.")

    @torch.no_grad()
    def predict(self, X: Any, batch_size: int | None = None, errors: Literal["raise", "skip"] = "raise",
                disorder: Literal["raise", "majority"] | None = None, interval: float | None = None,
                interval_method: str | None = None) -> pd.DataFrame:
        """DataFrame with ``gap_ev`` (clipped at 0: a band gap is never negative) and ``uncertainty_ev``.

        ``interval=p`` (e.g. 0.9) adds ``lower_ev`` and ``upper_ev``, a central p-interval (lower end clipped
        at 0): scaled split-conformal on the validation set of ``calibrate`` (or its ``method``); an
        uncalibrated model gives raw Laplace intervals, with an ``UncalibratedIntervalWarning``.
        ``interval_method`` ("laplace", "recalibrated", "conformal_scaled") overrides the calibrated choice.

        ``uncertainty_ev`` is the Laplace scale b (eV) of the prediction, ``exp(S)/2 * target_std`` (see
        ``gapkit.train.losses.laplace_scale``): the model's expected |error| (a model trained with
        ``loss="l1"`` has no meaningful one). ``errors="skip"`` keeps going past rows
        that cannot be featurised (bad formula, element outside the model's table, disordered or empty
        structure): they get NaN and their message in an extra ``error`` column (empty for good rows).
        ``disorder`` overrides the estimator's policy for partially occupied sites ("majority" or "raise").
        """
        from gapkit.runtime import resolve_device

        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}.")
        if disorder not in (None, "raise", "majority"):
            raise ValueError(f"disorder must be 'raise' or 'majority', got {disorder!r}.")
        task = self._check_fitted()
        ds, failed = self._featurize(X, skip_errors=errors == "skip", disorder=disorder)
        n = (len(ds) if ds is not None else 0) + len(failed)
        gap = np.full(n, np.nan)
        unc = np.full(n, np.nan)
        if ds is not None:
            device = resolve_device(self.params["device"])
            task = task.to(device).eval()
            gaps, uncs = [], []
            # small inference batches keep each graph batch's edge tensors in cache: faster per structure on CPU
            loader = ds.loader(batch_size or min(self.params["batch_size"], PREDICT_BATCH_SIZE))
            show = self.params["progress"] and len(ds) > PREDICT_PROGRESS_MIN_ROWS
            for batch in tqdm(loader, desc="predicting", disable=not show, leave=False):
                g, u = task({k: v.to(device) for k, v in batch.items()})
                gaps.append(g.float().cpu())
                uncs.append(u.float().cpu())
            task.cpu()
            good = np.array([i for i in range(n) if i not in failed], dtype=np.int64)
            # clipped here, not in the network: saved models keep their weights and training its loss
            values = torch.cat(gaps)
            gap[good] = (values.clamp(min=0.0) if self.target == TARGET else values).numpy().astype(np.float64)
            unc[good] = torch.cat(uncs).numpy().astype(np.float64)
        out = pd.DataFrame({self.target: gap, "uncertainty_ev": unc})
        if interval is not None:
            if not 0 < interval < 1:
                raise ValueError(f"interval is a coverage level in (0, 1), e.g. 0.9; got {interval!r}.")
            if self.calibration_ is None and interval_method in (None, "laplace"):
                warnings.warn("Intervals from the raw Laplace scale: this model was not calibrated, so their "
                              "coverage is not checked. Call model.calibrate(val_df) on data it was not trained "
                              "on first.", UncalibratedIntervalWarning, stacklevel=3)
            half = self.interval_halfwidth(np.where(np.isnan(unc), 1.0, unc), interval, interval_method)
            half = np.where(np.isnan(unc), np.nan, half)
            out["lower_ev"] = np.clip(gap - half, 0.0, None)
            out["upper_ev"] = gap + half
        if errors == "skip":
            out["error"] = [failed.get(i, "") for i in range(n)]
        if isinstance(X, pd.DataFrame):
            out.index = X.index
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path | str) -> Path:
        """Write the estimator (parameters, weights, target scaling) to one file."""
        task = self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self._to_blob(), path)
        return path

    def _to_blob(self) -> dict[str, Any]:
        """What ``save`` writes: format, estimator name, parameters, weights, task hyperparameters, calibration."""
        task = self._check_fitted()
        params = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.params.items()}
        return {"format": _FORMAT_VERSION, "estimator": type(self).__name__, "params": params,
                "state_dict": task.state_dict(), "hparams": dict(task.hparams), "calibration": self.calibration_}

    @classmethod
    def load(cls, path: Path | str) -> BandGapEstimator:
        """Read an estimator written by ``save`` (any of CrabNet, CGCNN, CGCrabNet); load only files you trust.

        The file is a pickle (parameters beside the weights), so a file from an unknown source can run code.
        A missing file raises FileNotFoundError; a corrupt, truncated or foreign one ModelFileError.
        """
        return cls._from_blob(_read_blob(path), path)

    @classmethod
    def _from_blob(cls, blob: dict[str, Any], path: Path | str = "<memory>") -> BandGapEstimator:
        """Rebuild an estimator from what ``_to_blob`` returned."""
        kind = ESTIMATORS.get(blob["estimator"])
        if kind is None or (cls is not BandGapEstimator and not issubclass(kind, cls)):
            raise TypeError(f"{path} holds a {blob['estimator']}, not a {cls.__name__}.")
        params = dict(blob["params"])
        if "max_elements" in params:
            params["max_elements"] = None  # padding width only (attention masks it): older files fixed 7
        est = kind(**params)
        state = blob["state_dict"]
        # Zero tables of the saved shapes: the real ones come with the weights, no data download needed.
        tables = {name: np.zeros(tuple(t.shape), dtype=np.float32) for key, t in state.items()
                  for name in ("element_vectors", "atom_vectors") if key.endswith("." + name) or key == name}
        model = est.build_model(tables)
        task = kind.task_class(model, **blob["hparams"])
        task.load_state_dict(state)
        est.task_ = task.eval()
        est.calibration_ = blob.get("calibration")  # absent in files saved before calibrate() existed
        return est


def _read_blob(path: Path | str) -> dict[str, Any]:
    """The dict a gapkit ``save`` wrote to ``path``; FileNotFoundError or ModelFileError with what to do."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No saved model at {path}: give the path of a file written by estimator.save().")
    remedy = ("Save the model again with estimator.save(path), or copy or download the file again "
              "(a shipped model: gapkit.pretrained).")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError, OSError) as exc:
        kind = "truncated" if isinstance(exc, EOFError) or "central directory" in str(exc) else "corrupt"
        raise ModelFileError(f"{path} is not a readable gapkit estimator file (it looks {kind}: "
                             f"{type(exc).__name__}: {str(exc)[:200]}). {remedy}") from exc
    if not isinstance(blob, dict) or "format" not in blob or "estimator" not in blob:
        raise ModelFileError(f"{path} is not a gapkit estimator file: torch can read it, but it was not written "
                             "by gapkit's estimator.save() (a Lightning checkpoint or a bare state_dict?). "
                             f"{remedy}")
    if blob["format"] != _FORMAT_VERSION:
        raise ModelFileError(f"{path} is a gapkit estimator file of format {blob['format']}, but this gapkit "
                             f"reads format {_FORMAT_VERSION}: use the gapkit version that saved it.")
    return blob


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


# a material is a metal when its gap is at most this (MP and matbench mp_is_metal: exactly 0)
METAL_GAP_EV = 0.0


class MetalClassifier(BandGapEstimator):
    """CGCNN metal/semiconductor classifier: softmax + cross-entropy, trained like the regressors.

    ``fit(df)`` reads ``gap_ev`` (a metal: gap <= ``METAL_GAP_EV``); ``predict`` gives ``p_metal`` and ``is_metal``.
    """

    uses_composition = False
    uses_structure = True
    model_defaults = CGCNN_PARAMS
    task_class = MetalTask
    monitor = "val_loss"

    def build_model(self, tables: dict[str, np.ndarray] | None = None) -> nn.Module:
        """A freshly initialised CGCNNModel whose two outputs are the class logits."""
        return self._cgcnn(tables or self._tables())

    def _fit_targets(self, df: pd.DataFrame) -> np.ndarray:
        """1.0 for metals, 0.0 for semiconductors."""
        return (df[self.target].to_numpy(dtype=np.float64) <= METAL_GAP_EV).astype(np.float32)

    def _new_task(self, model: nn.Module, df: pd.DataFrame, init_from: BandGapEstimator | None) -> MetalTask:
        """A MetalTask with this estimator's optimiser settings."""
        p = self.params
        return MetalTask(model, lr_min=p["lr_min"], lr_max=p["lr_max"], cycle_epochs=p["cycle_epochs"],
                         weight_decay=p["weight_decay"])

    def calibrate(self, *args: Any, **kwargs: Any) -> BandGapEstimator:
        """Not defined for a classifier (its probabilities are its uncertainty)."""
        raise NotImplementedError("calibrate() fits band-gap intervals; a MetalClassifier gives probabilities.")

    @torch.no_grad()
    def predict_proba(self, X: Any, batch_size: int | None = None) -> np.ndarray:
        """float[n, 2] class probabilities: column 0 semiconductor, column 1 metal (rows sum to one)."""
        from gapkit.runtime import resolve_device

        task = self._check_fitted()
        ds, _ = self._featurize(X)
        device = resolve_device(self.params["device"])
        task = task.to(device).eval()
        probs = [task({k: v.to(device) for k, v in batch.items()}).cpu()
                 for batch in ds.loader(batch_size or min(self.params["batch_size"], PREDICT_BATCH_SIZE))]
        task.cpu()
        return torch.cat(probs).numpy().astype(np.float64)

    def predict(self, X: Any, batch_size: int | None = None, threshold: float = 0.5) -> pd.DataFrame:
        """DataFrame with ``p_metal`` and ``is_metal`` (p_metal >= ``threshold``)."""
        if not 0 < threshold < 1:
            raise ValueError(f"threshold is a probability in (0, 1), got {threshold!r}.")
        p_metal = self.predict_proba(X, batch_size)[:, METAL]
        out = pd.DataFrame({"p_metal": p_metal, "is_metal": p_metal >= threshold})
        if isinstance(X, pd.DataFrame):
            out.index = X.index
        return out


class TwoStageGap:
    """A band gap for every material: a MetalClassifier, then a gap regressor for the predicted semiconductors.

    ``predict`` gives 0 eV where the classifier says metal (p_metal >= ``threshold``), else the regressor's gap
    (which is trained on gaps > 0 only, as the paper and CGCrabNet do).
    """

    def __init__(self, classifier: MetalClassifier | None = None, regressor: BandGapEstimator | None = None,
                 threshold: float = 0.5) -> None:
        if not 0 < threshold < 1:
            raise ValueError(f"threshold is a probability in (0, 1), got {threshold!r}.")
        if classifier is not None and not isinstance(classifier, MetalClassifier):
            raise TypeError(f"classifier must be a MetalClassifier, got {type(classifier).__name__}.")
        if regressor is not None and (not isinstance(regressor, BandGapEstimator)
                                      or isinstance(regressor, MetalClassifier) or regressor.target != TARGET):
            raise TypeError("regressor must be a band-gap estimator (CGCNN, CGCrabNet, CrabNet) predicting gap_ev.")
        self.classifier = classifier if classifier is not None else MetalClassifier()
        self.regressor = regressor if regressor is not None else CGCNN()
        self.threshold = threshold

    def fit(self, df: pd.DataFrame, val_df: pd.DataFrame | None = None) -> TwoStageGap:
        """Train the classifier on all rows and the regressor on the rows with gap_ev > 0."""
        if TARGET not in df.columns:
            raise KeyError(f"The training DataFrame needs a {TARGET!r} column (band gap in eV; 0 for metals).")
        self.classifier.fit(df, val_df)
        semis = df[df[TARGET] > METAL_GAP_EV]
        if len(semis) < 2:
            raise EmptyInputError("Fewer than two semiconductors (gap_ev > 0) to train the regressor on.")
        self.regressor.fit(semis, None if val_df is None else val_df[val_df[TARGET] > METAL_GAP_EV])
        return self

    def choose_threshold(self, val_df: pd.DataFrame) -> TwoStageGap:
        """Set ``threshold`` to the p(metal) that maximises balanced accuracy on labelled ``val_df`` (never the test
        part: the threshold is then a fitted setting like any other)."""
        from gapkit.evaluate.metrics import balanced_threshold

        if TARGET not in val_df.columns:
            raise KeyError(f"Choosing a threshold needs a {TARGET!r} column (band gap in eV; 0 for metals).")
        p_metal = self.classifier.predict(val_df)["p_metal"].to_numpy()
        self.threshold = balanced_threshold(val_df[TARGET].to_numpy() <= METAL_GAP_EV, p_metal)
        return self

    def predict(self, X: Any, batch_size: int | None = None) -> pd.DataFrame:
        """DataFrame with ``gap_ev`` (0 for predicted metals), ``p_metal``, ``is_metal``, ``regressor_gap_ev``."""
        cls = self.classifier.predict(X, batch_size, threshold=self.threshold)
        reg = self.regressor.predict(X, batch_size)
        out = pd.DataFrame({"gap_ev": np.where(cls["is_metal"].to_numpy(), 0.0, reg["gap_ev"].to_numpy()),
                            "p_metal": cls["p_metal"].to_numpy(), "is_metal": cls["is_metal"].to_numpy(),
                            "regressor_gap_ev": reg["gap_ev"].to_numpy()})
        if isinstance(X, pd.DataFrame):
            out.index = X.index
        return out

    def save(self, path: Path | str) -> Path:
        """Write both stages and the threshold to one file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": _FORMAT_VERSION, "estimator": "TwoStageGap", "threshold": self.threshold,
                    "classifier": self.classifier._to_blob(), "regressor": self.regressor._to_blob()}, path)
        return path

    @classmethod
    def load(cls, path: Path | str) -> TwoStageGap:
        """Read a TwoStageGap written by ``save`` (a pickle: load only files you trust)."""
        blob = _read_blob(path)
        if blob["estimator"] != "TwoStageGap":
            raise TypeError(f"{path} holds a {blob['estimator']}, not a TwoStageGap.")
        return cls(BandGapEstimator._from_blob(blob["classifier"], path),
                   BandGapEstimator._from_blob(blob["regressor"], path), blob["threshold"])


ESTIMATORS: dict[str, type[BandGapEstimator]] = {"CrabNet": CrabNet, "CGCNN": CGCNN, "CGCrabNet": CGCrabNet,
                                                 "MetalClassifier": MetalClassifier}


def load_estimator(path: Path | str) -> BandGapEstimator | TwoStageGap:
    """Load any saved gapkit estimator (a TwoStageGap too)."""
    blob = _read_blob(path)
    if blob["estimator"] == "TwoStageGap":
        return TwoStageGap.load(path)
    return BandGapEstimator._from_blob(blob, path)
